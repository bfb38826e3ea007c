"""Opening the database: the writer's connection, read-only connections, and migrations with a backup first."""

import logging
import sqlite3
import time
from pathlib import Path

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from edge.errors import StoreError
from edge.store.schema import migrations

logger = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 5000


def connect(path: Path) -> sqlite3.Connection:
    """A read-write connection in WAL mode with explicit transactions (``BEGIN``/``COMMIT`` by the caller)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA journal_mode = WAL")
        # NORMAL in WAL mode: a committed transaction survives a process crash; a power cut may lose
        # the last few, never corrupting the file.
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
    except (sqlite3.Error, OSError) as err:
        raise StoreError(f"cannot open database {path}: {err}") from err
    return conn


def connect_readonly(path: Path, schema: Migrations | None = None) -> sqlite3.Connection:
    """A read-only connection for the CLI; it never blocks or changes the daemon's database.

    Refuses a database whose schema (``schema``, by default the daemon's migrations) is older than this software
    (the daemon migrates it when it starts), so reports never fail half-way on a missing table.
    """
    if not path.exists():
        raise StoreError(f"database {path} does not exist (has the daemon run yet?)")
    uri = path.resolve().as_uri()
    try:
        conn = _open_ro(f"{uri}?mode=ro")
    except sqlite3.Error as err:
        if path.with_name(path.name + "-wal").exists():
            raise StoreError(f"cannot read database {path}: {err}") from err
        # After a clean stop there is no WAL, and a reader without write access to the directory cannot create
        # the shared-memory file; with no writer running, reading the file as immutable is safe.
        try:
            conn = _open_ro(f"{uri}?mode=ro&immutable=1")
        except sqlite3.Error as again:
            raise StoreError(f"cannot read database {path}: {again}") from again
    pending = [m.name for m in (schema or migrations).pending(Database(conn))]
    if pending:
        conn.close()
        raise StoreError(f"database {path} is older than this software (pending: {', '.join(pending)}); "
                         "start the daemon (systemctl restart store-edge) or, for an HQ database, `edge hq run` to "
                         "migrate it")
    conn.row_factory = sqlite3.Row
    return conn


def _open_ro(uri: str) -> sqlite3.Connection:
    conn = sqlite3.connect(uri, uri=True, check_same_thread=False)
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    return conn


def _backup(path: Path, keep: int) -> Path:
    """Copy the database with SQLite's online backup API and keep only the newest ``keep`` copies."""
    target = path.with_name(f"{path.name}.bak-{time.strftime('%Y%m%dT%H%M%S')}")
    source = sqlite3.connect(path)
    try:
        destination = sqlite3.connect(target)
        with destination:
            source.backup(destination)
        destination.close()
    finally:
        source.close()
    for old in sorted(path.parent.glob(f"{path.name}.bak-*"))[:-keep]:
        old.unlink(missing_ok=True)
    return target


def migrate(path: Path, backups_kept: int = 3) -> list[str]:
    """Apply pending migrations, copying an existing database first; returns the names applied."""
    conn = connect(path)
    try:
        db = Database(conn)
        pending = [migration.name for migration in migrations.pending(db)]
        if not pending:
            return []
        has_data = bool(db.table_names())
        if has_data:
            backup = _backup(path, backups_kept)
            logger.info("Backed up database to %s before migrations %s", backup, ", ".join(pending))
        migrations.apply(db)
        logger.info("Applied migrations: %s", ", ".join(pending))
        return pending
    except sqlite3.Error as err:
        raise StoreError(f"cannot migrate database {path}: {err}") from err
    finally:
        conn.close()
