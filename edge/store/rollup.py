"""Rollups: raw rows → per-window aggregate rows, bucketed by event time, resumable from a watermark."""

import math
import sqlite3
from dataclasses import dataclass

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


@dataclass(slots=True, frozen=True)
class RollupResult:
    """What one rollup run did: rows written, and windows recomputed because late rows arrived for them."""

    rows: int
    late_rows: int
    revised_windows: tuple[float, ...]


_SCANS_SELECT = f"""
    SELECT CAST(ts / :w AS INTEGER) * :w AS ws, CAST(ts / :w AS INTEGER) * :w + :w, device,
           count(*), sum(valid), count(*) - sum(valid), count(DISTINCT CASE WHEN valid THEN gtin END)
    FROM {const.TABLE_SCANS} WHERE ts >= :start AND ts < :end GROUP BY ws, device"""
_SCANS_INSERT = f"""INSERT OR REPLACE INTO {const.TABLE_AGG_SCANS}
    (window_start, window_end, device, scans, valid, invalid, distinct_gtins) {_SCANS_SELECT}"""


def rollup_scans(conn: sqlite3.Connection, closed_until: float, window_s: int) -> RollupResult:
    """Aggregate scans of every window that ends at or before ``closed_until``, and recompute closed windows that
    received late rows since the last run.

    Windows are aligned to multiples of ``window_s`` in event time. A row whose window was already rolled up (it
    reached the store late: a writer backlog, a clock step, a replay) is not lost: its window is recomputed from
    the raw rows and reported in ``revised_windows`` so its batch can be re-sent to HQ. Runs inside the writer's
    transaction, so aggregates and watermarks move together.
    """
    kind = const.TABLE_AGG_SCANS
    id_key = f"{kind}:last_id"
    end = math.floor(closed_until / window_s) * window_s
    start = _watermark(conn, kind)
    last_id = int(_watermark(conn, id_key) or 0)
    max_id = int(conn.execute(f"SELECT coalesce(max(id), 0) FROM {const.TABLE_SCANS}").fetchone()[0])
    revised: list[float] = []
    late_rows = 0
    if start is not None and max_id > last_id:
        late = conn.execute(
            f"""SELECT CAST(ts / ? AS INTEGER) * ? AS ws, count(*) FROM {const.TABLE_SCANS}
                WHERE id > ? AND ts < ? GROUP BY ws ORDER BY ws""",
            (window_s, window_s, last_id, start),
        ).fetchall()
        for window_start, count in late:
            conn.execute(_SCANS_INSERT, {"w": window_s, "start": window_start, "end": window_start + window_s})
            revised.append(float(window_start))
            late_rows += count
    _set_watermark(conn, id_key, max_id)
    if start is None:
        first = conn.execute(f"SELECT min(ts) FROM {const.TABLE_SCANS}").fetchone()[0]
        if first is None:
            return RollupResult(0, late_rows, tuple(revised))
        start = math.floor(first / window_s) * window_s
    if end <= start:
        return RollupResult(0, late_rows, tuple(revised))
    cursor = conn.execute(_SCANS_INSERT, {"w": window_s, "start": start, "end": end})
    _set_watermark(conn, kind, end)
    return RollupResult(cursor.rowcount, late_rows, tuple(revised))
