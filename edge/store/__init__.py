"""The local SQLite store: schema migrations, the single writer thread, rollups and read-only queries."""
