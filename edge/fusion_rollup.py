"""The fusion job: closed store-local hours → fused footfall, dwell, zone dwell and floor heatmap tables → HQ.

An hour closes by event time when every source that feeds it has delivered past it: each camera's windows past
its end, WiFi presence past its end plus ``traffic.visit_horizon_s`` (WiFi visits are counted by the window they
*started* in, and are only known once they end), never later than the wall clock less ``rollup_lateness_s``. A
source that lags the most advanced one by more than ``traffic.max_source_lag_s`` (a dead camera) is not waited
for. Resumable: the end of the last closed hour is a watermark in ``rollup_state``.

Late rows (a replayed file, a writer backlog, a visit that closes after its hour was fused) are found by rowid:
every input table's largest rowid is remembered, and rows above it whose time lies before the watermark make
their hour, and the ``factor_lookback_h`` hours after it (their persons factor may move), be computed again. A
window whose stored rows change is re-sent to HQ with the same ``idem_key`` and a higher ``seq``; one whose
rows come out the same is left alone, so running the job again changes nothing.
"""

import logging
import math
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import cast

from edge import const
from edge.config.models import EdgeConfig
from edge.footfall import (
    HOUR_S,
    DwellWindow,
    FootfallWindow,
    HeatWindow,
    HourFusion,
    Setup,
    ZoneWindow,
    compute_hours,
)
from edge.store import outbox

logger = logging.getLogger(__name__)

WATERMARK = "fusion"
MAX_HOURS_PER_RUN = 24
"""Catching up after a long outage is spread over runs, so one writer transaction stays short."""

# Input tables, the column that places a row in time, and an optional filter (tills only, for scans).
INPUTS: tuple[tuple[str, str], ...] = (
    (const.TABLE_AGG_OCCUPANCY, "window_start"),
    (const.TABLE_AGG_TRAFFIC, "window_start"),
    (const.TABLE_AGG_PRESENCE, "window_start"),
    (const.TABLE_AGG_ZONES, "window_start"),
    (const.TABLE_AGG_WIFI_CELLS, "window_start"),
    (const.TABLE_AGG_CAMERA_HEATMAP, "window_start"),
    (const.TABLE_WIFI_VISITS, "start"),
    (const.TABLE_SCANS, "ts"),
)

# The fused tables: (table, columns, extra ORDER BY key) and the outbox kind that carries each to HQ.
TABLES: tuple[tuple[str, tuple[str, ...], str, str | None], ...] = (
    (const.TABLE_AGG_STORE_HOURS, HourFusion.COLUMNS, "", None),
    (const.TABLE_AGG_FOOTFALL, FootfallWindow.COLUMNS, "", const.AGG_FOOTFALL),
    (const.TABLE_AGG_DWELL, DwellWindow.COLUMNS, "", const.AGG_DWELL),
    (const.TABLE_AGG_ZONE_DWELL, ZoneWindow.COLUMNS, ", zone", const.AGG_ZONE_DWELL),
    (const.TABLE_AGG_FLOOR_HEAT, HeatWindow.COLUMNS, "", const.AGG_FLOOR_HEATMAP),
)

# What each fused kind sends to HQ per batch window: the rows of its table in that window.
FUSION_OUTBOX: tuple[tuple[str, str, str], ...] = (
    (const.AGG_FOOTFALL, const.SHED_KEEP, f"""
        SELECT window_start, window_end, entries, exits, occupancy, occupancy_mean, occupancy_max, person_seconds,
               came_in, visitors, quick_visits, passersby, capture_rate, wifi_visitors, wifi_quick, wifi_passersby,
               persons_factor, transactions, conversion, entrances_json AS entrances__json
        FROM {const.TABLE_AGG_FOOTFALL}
        WHERE window_start >= :start AND window_start < :end ORDER BY window_start"""),
    (const.AGG_DWELL, const.SHED_KEEP, f"""
        SELECT window_start, window_end, wifi_visits, mean_dwell_s, visits_json AS visits__json,
               persons_json AS persons__json FROM {const.TABLE_AGG_DWELL}
        WHERE window_start >= :start AND window_start < :end ORDER BY window_start"""),
    (const.AGG_ZONE_DWELL, const.SHED_KEEP, f"""
        SELECT window_start, window_end, zone, person_seconds, share, device_seconds FROM {const.TABLE_AGG_ZONE_DWELL}
        WHERE window_start >= :start AND window_start < :end ORDER BY window_start, zone"""),
    (const.AGG_FLOOR_HEATMAP, const.SHED_DETAIL, f"""
        SELECT window_start, window_end, json_array(0.0, 0.0) AS origin__json, cell_m, nx, ny,
               cells_json AS cells__json, person_seconds, camera_seconds, wifi_seconds, till_seconds
        FROM {const.TABLE_AGG_FLOOR_HEAT}
        WHERE window_start >= :start AND window_start < :end ORDER BY window_start"""),
)


@dataclass(slots=True)
class FusionResult:
    """What one run did: hours closed, hours recomputed for late rows, windows re-sent per kind, the watermark."""

    closed_hours: int = 0
    recomputed_hours: int = 0
    revised: dict[str, list[float]] = field(default_factory=dict)
    until: float | None = None


def _state(conn: sqlite3.Connection, key: str) -> float | None:
    row = conn.execute(f"SELECT watermark FROM {const.TABLE_ROLLUP_STATE} WHERE kind = ?", (key,)).fetchone()
    return None if row is None else float(row[0])


def _set_state(conn: sqlite3.Connection, key: str, value: float) -> None:
    conn.execute(f"""INSERT INTO {const.TABLE_ROLLUP_STATE} (kind, watermark) VALUES (?, ?)
                     ON CONFLICT(kind) DO UPDATE SET watermark = excluded.watermark""", (key, value))


class FusionRollup:
    """Closes hours and recomputes late ones; ``run`` is called inside a writer transaction."""

    def __init__(self, config: EdgeConfig) -> None:
        self.config = config
        self.setup = Setup.from_config(config)

    @property
    def enabled(self) -> bool:
        """True when the store has a camera or a WiFi sniffer to fuse."""
        return bool(self.setup.cameras) or self.setup.wifi

    def closed_until(self, conn: sqlite3.Connection, now: float) -> float | None:
        """Event time up to which every source has delivered (``None`` before any has)."""
        traffic = self.config.traffic
        sources: dict[str, tuple[float | None, float]] = {}  # name → (delivered until, needed margin)
        # Newest first along the primary key (window_start, ...): found at once for a camera that is delivering.
        for camera in self.setup.cameras:
            row = conn.execute(f"SELECT window_end FROM {const.TABLE_AGG_OCCUPANCY} WHERE camera = ? "
                               "ORDER BY window_start DESC LIMIT 1", (camera,)).fetchone()
            sources[f"camera {camera}"] = (None if row is None else float(row[0]), 0.0)
        if self.setup.wifi:
            row = conn.execute(f"SELECT window_end FROM {const.TABLE_AGG_PRESENCE} ORDER BY window_start DESC "
                               "LIMIT 1").fetchone()
            sources["wifi"] = (None if row is None else float(row[0]), traffic.visit_horizon_s)
        delivered = [until for until, _ in sources.values() if until is not None]
        if not delivered:
            return None
        first = self._first_input(conn)
        ahead = max(delivered)
        waits = []
        for until, margin in sources.values():
            reference = until if until is not None else (first if first is not None else ahead)
            if ahead - reference > traffic.max_source_lag_s:
                continue  # a stalled source: fuse without it, revise if it comes back with old windows
            if until is None:
                return None
            waits.append(until - margin)
        return min([*waits, now - self.config.runtime.rollup_lateness_s])

    @staticmethod
    def _first_input(conn: sqlite3.Connection) -> float | None:
        firsts = [conn.execute(f"SELECT min(window_start) FROM {table}").fetchone()[0]
                  for table in (const.TABLE_AGG_OCCUPANCY, const.TABLE_AGG_PRESENCE)]
        present = [float(f) for f in firsts if f is not None]
        return min(present) if present else None

    def _late_hours(self, conn: sqlite3.Connection, watermark: float | None) -> set[float]:
        """Hours before the watermark that received rows since the last run; moves the rowid marks."""
        late: set[float] = set()
        tills = self.setup.tills
        for table, column in INPUTS:
            if table == const.TABLE_SCANS and not tills:
                continue
            key = f"{WATERMARK}:rowid:{table}"
            last = int(_state(conn, key) or 0)
            newest = int(conn.execute(f"SELECT coalesce(max(rowid), 0) FROM {table}").fetchone()[0])
            if newest <= last:
                continue
            if watermark is not None:
                where = f"rowid > ? AND {column} < ?"
                args: list[object] = [last, watermark]
                if table == const.TABLE_SCANS:
                    where += f" AND device IN ({', '.join('?' * len(tills))})"
                    args += tills
                for (ts,) in conn.execute(f"SELECT DISTINCT {column} FROM {table} WHERE {where}", args):
                    late.add(self.setup.hour_start(float(ts)))
                    if table == const.TABLE_SCANS:  # a scan can join the next window's first burst
                        late.add(self.setup.hour_start(float(ts) + self.setup.gap_s))
            _set_state(conn, key, newest)
        return {h for h in late if watermark is None or h < watermark}

    def run(self, conn: sqlite3.Connection, now: float) -> FusionResult:
        """Close what event time allows, recompute hours that got late rows, store the rows; returns what changed."""
        result = FusionResult()
        watermark = _state(conn, WATERMARK)
        late = self._late_hours(conn, watermark)
        until = self.closed_until(conn, now)
        start = watermark
        if start is None:
            first = self._first_input(conn)
            start = None if first is None else self.setup.hour_start(first)
        new: list[float] = []
        if start is not None and until is not None:
            hour = start
            while hour + HOUR_S <= until and len(new) < MAX_HOURS_PER_RUN:
                new.append(hour)
                hour += HOUR_S
        # A late row moves the factor of the hours after it too (they look back ``factor_lookback_h`` hours).
        span = (self.config.traffic.factor_lookback_h - 1) * HOUR_S
        again = {h + i * HOUR_S for h in late for i in range(round(span / HOUR_S) + 1)}
        again = {h for h in again if watermark is not None and h < watermark}
        for fused in compute_hours(conn, self.setup, sorted(again | set(new))):
            changed = self._store(conn, fused)
            if fused.hour_start in again:
                result.recomputed_hours += 1
                for kind, windows in changed.items():
                    result.revised.setdefault(kind, []).extend(windows)
        if new:
            _set_state(conn, WATERMARK, new[-1] + HOUR_S)
            result.closed_hours = len(new)
        result.until = new[-1] + HOUR_S if new else watermark
        revised = sum(len(w) for w in result.revised.values())
        if revised:
            logger.info("Late rows changed %d fused window(s) in %d hour(s); HQ gets the corrected windows",
                        revised, result.recomputed_hours)
        return result

    @staticmethod
    def _store(conn: sqlite3.Connection, hour: HourFusion) -> dict[str, list[float]]:
        """Replace the hour's rows in every fused table; returns, per outbox kind, the windows whose rows changed."""
        fresh: dict[str, Sequence[tuple[object, ...]]] = {
            const.TABLE_AGG_STORE_HOURS: [hour.row()],
            const.TABLE_AGG_FOOTFALL: [w.row() for w in hour.footfall],
            const.TABLE_AGG_DWELL: [w.row() for w in hour.dwell],
            const.TABLE_AGG_ZONE_DWELL: [w.row() for w in hour.zones],
            const.TABLE_AGG_FLOOR_HEAT: [w.row() for w in hour.heat],
        }
        span = (hour.hour_start, hour.hour_start + HOUR_S)
        changed: dict[str, list[float]] = {}
        for table, columns, order, kind in TABLES:
            old = _by_window(tuple(r) for r in conn.execute(
                f"SELECT {', '.join(columns)} FROM {table} WHERE window_start >= ? AND window_start < ? "
                f"ORDER BY window_start{order}", span))
            new = _by_window(sorted(fresh[table], key=lambda r: (cast(float, r[0]), str(r[2]) if order else "")))
            if old == new:
                continue
            if kind is not None:
                changed[kind] = sorted(w for w in set(old) | set(new) if old.get(w) != new.get(w))
            conn.execute(f"DELETE FROM {table} WHERE window_start >= ? AND window_start < ?", span)
            conn.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
                             [row for rows in new.values() for row in rows])
        return changed


def _by_window(rows: Iterable[tuple[object, ...]]) -> dict[float, list[tuple[object, ...]]]:
    grouped: dict[float, list[tuple[object, ...]]] = {}
    for row in rows:
        grouped.setdefault(cast(float, row[0]), []).append(row)
    return grouped


def batch_s(config: EdgeConfig) -> int:
    """The fused kinds' batch window: ``sync.batch_window_s`` rounded up to whole fused windows."""
    window = config.traffic.window_s
    return math.ceil(config.sync.batch_window_s / window) * window


def enqueue(conn: sqlite3.Connection, config: EdgeConfig, result: FusionResult, now: float) -> int:
    """Queue the closed batch windows of every fused kind for HQ, and re-queue revised ones; returns messages."""
    if result.until is None:
        return 0
    queued = 0
    for kind, shed_class, select_sql in FUSION_OUTBOX:
        queued += outbox.enqueue_windows(conn, store_id=config.store_id, kind=kind, select_sql=select_sql,
                                         closed_until=result.until, batch_s=batch_s(config), shed_class=shed_class,
                                         now=now, revised=result.revised.get(kind, ()))
    return queued
