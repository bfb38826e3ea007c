"""The WiFi rollup job: new sightings from the store → presence, visits and zone dwell → aggregate tables.

One run does its reading and writing in one writer transaction. The analytics objects (``edge.analytics``) live
in the daemon between runs and their state is saved in ``daemon_state`` at every run, so a restart resumes: it
re-reads the sightings of windows that were still open. Windows close by event time (the newest sighting seen,
less a lateness margin, never later than the wall clock), so a replayed capture gives the same aggregates as live.
"""

import json
import logging
import sqlite3
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from edge import const
from edge.analytics import (
    PresenceEstimator,
    PresenceState,
    SnifferSite,
    Visit,
    VisitState,
    VisitTracker,
    ZoneTracker,
    site_map,
    summarize_visits,
)
from edge.config.models import EdgeConfig
from edge.events import Sighting
from edge.store import state

logger = logging.getLogger(__name__)

STATE_KEY = "wifi_rollup"
SIGHTING_COLUMNS = ", ".join(Sighting.COLUMNS)


@dataclass(slots=True)
class WifiRollupResult:
    """What one run wrote."""

    sightings: int
    presence_windows: int
    visits: int
    zone_windows: int


def sniffer_sites(config: EdgeConfig) -> list[SnifferSite]:
    """Each enabled WiFi sniffer's placement and calibration, from its device section."""
    sites = []
    for device in config.enabled_devices():
        if device.type != "wifi_probe":
            continue
        position = getattr(device, "position", None)
        sites.append(SnifferSite(device.name, getattr(device, "zone", None),
                                 None if position is None else (float(position[0]), float(position[1])),
                                 float(getattr(device, "rssi_offset_db", 0.0))))
    return sites


class WifiRollup:
    """Streams sightings into the analytics; ``run`` is called by the scheduler inside a writer transaction."""

    def __init__(self, config: EdgeConfig) -> None:
        self.config = config
        settings = config.wifi
        self.sites = site_map(sniffer_sites(config), config.floor_plan)
        self.presence = PresenceEstimator(settings, self.sites)
        self.visits = VisitTracker(settings, self.sites)
        tz = ZoneInfo(config.timezone)
        self.zones = ZoneTracker(settings, self.sites, floor=config.floor_plan if config.floor_plan.zones else None,
                                 store_open=lambda ts: config.opening_hours.is_open(ts, tz))
        self.last_id = 0
        self.max_ts: float | None = None
        self.period: float | None = None
        self.visits_until: float | None = None
        self._loaded = False

    @property
    def enabled(self) -> bool:
        """True when the store has at least one sniffer."""
        return bool(self.sites)

    def _load(self, conn: sqlite3.Connection) -> None:
        row = conn.execute(f"SELECT value_json FROM {const.TABLE_DAEMON_STATE} WHERE key = ?", (STATE_KEY,)).fetchone()
        self._loaded = True
        if row is None:
            return
        saved = json.loads(row[0])
        settings = self.config.wifi
        self.presence.state = PresenceState.from_json(saved["presence"], settings)
        self.visits.state = VisitState.from_json(saved["visits"], settings)
        self.zones.load_json(saved["zones"])
        self.max_ts, self.period, self.visits_until = saved["max_ts"], saved["period"], saved["visits_until"]
        # Rows of windows still open at the last run were buffered in memory: read them again.
        resume = self.presence.state.closed_until
        self.last_id = int(conn.execute(
            f"SELECT coalesce(min(id), 1) - 1 FROM {const.TABLE_SIGHTINGS} WHERE ts >= ?", (resume or 0,)
        ).fetchone()[0]) if resume is not None else 0

    def run(self, conn: sqlite3.Connection, now: float, period_start: float | None) -> WifiRollupResult:
        """Feed new sightings, close what event time allows, write the aggregates and save the state."""
        if not self._loaded:
            self._load(conn)
        if period_start is not None and period_start != self.period:
            if self.period is not None:
                self._write_visits(conn, self.visits.start_period(period_start))  # ids change with the salt
            self.period = period_start
        rows = [Sighting(*row[1:]) for row in conn.execute(
            f"SELECT id, {SIGHTING_COLUMNS} FROM {const.TABLE_SIGHTINGS} WHERE id > ? ORDER BY ts, id",
            (self.last_id,),
        )]
        if rows:
            self.last_id = int(conn.execute(f"SELECT max(id) FROM {const.TABLE_SIGHTINGS}").fetchone()[0])
            self.max_ts = max(self.max_ts or rows[-1].ts, rows[-1].ts)
        self.presence.feed(rows)
        self.zones.feed(rows)
        closed_visits = self.visits.feed(rows)
        if self.max_ts is None:
            return WifiRollupResult(0, 0, 0, 0)
        until = min(now, self.max_ts) - self.config.runtime.rollup_lateness_s
        closed_visits += self.visits.flush(until)
        windows = self.presence.close(until)
        zone_windows = self.zones.close(until)
        if self.visits_until is None and windows:
            self.visits_until = windows[0].window_start  # visit windows start with the first presence window
        conn.executemany(
            f"""INSERT OR REPLACE INTO {const.TABLE_AGG_PRESENCE} (window_start, window_end, frames, devices,
                stable_devices, randomized_clusters, probe_rate, persons_estimate, detail_json)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            [(w.window_start, w.window_end, w.frames, w.devices, w.stable_devices, w.randomized_clusters,
              w.probe_rate, w.persons_estimate, json.dumps(w.detail())) for w in windows],
        )
        conn.executemany(
            f"""INSERT OR REPLACE INTO {const.TABLE_AGG_ZONES} (window_start, window_end, zone, device_seconds,
                devices) VALUES (?, ?, ?, ?, ?)""",
            [(w.window_start, w.window_end, z.zone, z.device_seconds, z.devices)
             for w in zone_windows for z in w.zones],
        )
        conn.executemany(
            f"""INSERT OR REPLACE INTO {const.TABLE_AGG_WIFI_CELLS} (window_start, window_end, ix, iy, x, y,
                device_seconds) VALUES (?, ?, ?, ?, ?, ?, ?)""",
            [(w.window_start, w.window_end, c.ix, c.iy, c.x, c.y, c.device_seconds)
             for w in zone_windows for c in w.cells],
        )
        self._write_visits(conn, closed_visits)
        self._summarize_visits(conn, until)
        state.put_state(conn, {STATE_KEY: {
            "presence": self.presence.state.to_json(), "visits": self.visits.state.to_json(),
            "zones": self.zones.to_json(), "max_ts": self.max_ts, "period": self.period,
            "visits_until": self.visits_until,
        }})
        return WifiRollupResult(len(rows), len(windows), len(closed_visits), len(zone_windows))

    @staticmethod
    def _write_visits(conn: sqlite3.Connection, visits: list[Visit]) -> None:
        conn.executemany(
            f"""INSERT INTO {const.TABLE_WIFI_VISITS} (device, start, end, ts, dwell_s, max_rssi, visitor, randomized,
                bursts) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            [visit.row() for visit in visits],
        )

    def _summarize_visits(self, conn: sqlite3.Connection, until: float) -> None:
        """Visit windows are final once every visit ending in them has closed: ``gap_s`` after their end."""
        window = self.config.wifi.window_s
        final = (until - self.config.wifi.visits.gap_s) // window * window
        start = self.visits_until
        if start is None:
            return
        rows = []
        ws = float(start)
        while ws + window <= final:
            visits = [_VisitRow(*row) for row in conn.execute(
                f"""SELECT ts, dwell_s, visitor, device IN (SELECT device FROM {const.TABLE_WIFI_VISITS} AS earlier
                        WHERE earlier.visitor AND earlier.ts < v.ts AND earlier.device = v.device)
                    FROM {const.TABLE_WIFI_VISITS} AS v WHERE ts >= ? AND ts < ?""", (ws, ws + window))]
            summary = summarize_visits(visits, ws, ws + window, self.config.wifi.dwell_buckets_min)  # type: ignore[arg-type]
            rows.append((ws, ws + window, summary.visitors, summary.passersby, summary.capture_rate,
                         summary.repeat_visitors, summary.dwell_buckets_json()))
            ws += window
        conn.executemany(
            f"""INSERT OR REPLACE INTO {const.TABLE_AGG_VISITS} (window_start, window_end, visitors, passersby,
                capture_rate, repeat_visitors, dwell_buckets_json) VALUES (?, ?, ?, ?, ?, ?, ?)""",
            rows,
        )
        self.visits_until = ws


@dataclass(slots=True, frozen=True)
class _VisitRow:
    """The fields of a stored visit that ``summarize_visits`` reads."""

    ts: float
    dwell_s: float
    visitor: bool
    repeat: bool
