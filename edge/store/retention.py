"""Retention: delete rows older than each table's configured age, by event time."""

import sqlite3

from edge import const

# The event-time column each pruned table is aged by.
TIME_COLUMNS: dict[str, str] = {
    const.TABLE_SCANS: "ts",
    const.TABLE_SIGHTINGS: "ts",
    const.TABLE_WIFI_VISITS: "ts",
    const.TABLE_AGG_SCANS: "window_end",
    const.TABLE_AGG_PRESENCE: "window_end",
    const.TABLE_AGG_VISITS: "window_end",
    const.TABLE_AGG_ZONES: "window_end",
    const.TABLE_AGG_WIFI_CELLS: "window_end",
    const.TABLE_AGG_TRAFFIC: "window_end",
    const.TABLE_AGG_OCCUPANCY: "window_end",
    const.TABLE_AGG_CAMERA_HEATMAP: "window_end",
    const.TABLE_AGG_CAMERA_ZONES: "window_end",
    const.TABLE_AGG_ESL: "window_end",
    const.TABLE_ESL_LABEL_HISTORY: "ts",
    const.TABLE_ESL_UPDATES: "created_at",
    const.TABLE_ESL_REQUESTS: "created_at",
    const.TABLE_AGG_FOOTFALL: "window_end",
    const.TABLE_AGG_DWELL: "window_end",
    const.TABLE_AGG_ZONE_DWELL: "window_end",
    const.TABLE_AGG_FLOOR_HEAT: "window_end",
    const.TABLE_AGG_STORE_HOURS: "window_end",
    # Handled command ids are kept as long as aggregates: a re-delivery within that time is still a duplicate.
    const.TABLE_COMMANDS: "received_at",
}


def prune(conn: sqlite3.Connection, days_for: dict[str, int], now: float) -> dict[str, int]:
    """Delete expired rows from every table in ``days_for``; returns rows deleted per table."""
    deleted: dict[str, int] = {}
    for table, days in days_for.items():
        column = TIME_COLUMNS[table]
        cursor = conn.execute(f"DELETE FROM {table} WHERE {column} < ?", (now - days * 86400,))
        deleted[table] = cursor.rowcount
    return deleted
