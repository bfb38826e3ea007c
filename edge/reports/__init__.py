"""Store reports for managers and technicians: the day's traffic table, floor heatmaps (PNG and terminal) and the
self-contained daily HTML report, all read-only from the store's database."""
