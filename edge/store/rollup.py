"""Rollups: raw rows → per-window aggregate rows, bucketed by event time, resumable from a watermark."""

import math
import sqlite3

from edge import const


def _watermark(conn: sqlite3.Connection, kind: str) -> float | None:
    row = conn.execute(f"SELECT watermark FROM {const.TABLE_ROLLUP_STATE} WHERE kind = ?", (kind,)).fetchone()
    return None if row is None else float(row[0])


def _set_watermark(conn: sqlite3.Connection, kind: str, value: float) -> None:
    conn.execute(
        f"""INSERT INTO {const.TABLE_ROLLUP_STATE} (kind, watermark) VALUES (?, ?)
            ON CONFLICT(kind) DO UPDATE SET watermark = excluded.watermark""",
        (kind, value),
    )


def rollup_scans(conn: sqlite3.Connection, closed_until: float, window_s: int) -> int:
    """Aggregate scans of every window that ends at or before ``closed_until``; returns rows written.

    Windows are aligned to multiples of ``window_s`` in event time, so a replay at any speed gives the same
    aggregates. Runs inside the writer's transaction, so aggregates and the watermark move together.
    """
    kind = const.TABLE_AGG_SCANS
    end = math.floor(closed_until / window_s) * window_s
    start = _watermark(conn, kind)
    if start is None:
        first = conn.execute(f"SELECT min(ts) FROM {const.TABLE_SCANS}").fetchone()[0]
        if first is None:
            return 0
        start = math.floor(first / window_s) * window_s
    if end <= start:
        return 0
    cursor = conn.execute(
        f"""INSERT OR REPLACE INTO {const.TABLE_AGG_SCANS}
              (window_start, window_end, device, scans, valid, invalid, distinct_gtins)
            SELECT CAST(ts / :w AS INTEGER) * :w AS ws, CAST(ts / :w AS INTEGER) * :w + :w, device,
                   count(*), sum(valid), count(*) - sum(valid),
                   count(DISTINCT CASE WHEN valid THEN gtin END)
            FROM {const.TABLE_SCANS}
            WHERE ts >= :start AND ts < :end
            GROUP BY ws, device""",
        {"w": window_s, "start": start, "end": end},
    )
    _set_watermark(conn, kind, end)
    return cursor.rowcount

