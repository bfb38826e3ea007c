"""A small store with hand-checkable numbers for the fusion tests: rows shaped like the real drivers' and rollups'.

Every fused window (15 min) of every hour gets the same traffic, so the expected values are easy to state:

* camera ``door-cam`` (line ``door``): a person enters at minute 0 of every 3 and leaves at minute 1 → 5 in and 5
  out per window, occupancy 1 during one minute in three → 300 person-seconds per window (trapezoid; 330 in the
  very first window, which has no window before it to start from), peak 1;
* its heatmap grid covers the ``front`` zone (x 0–10, y 0–2) and sees 4 person-seconds a minute in cell 0;
* WiFi: per window, visits starting at its minute 1: 2 visitors (600 s), 1 quick visit (120 s), 6 passersby
  (10 s); one placed cell in the ``back`` zone and ``agg_zones`` with 10 device-seconds a minute;
* till ``till-1``: 2 transactions of 3 scans per window (the aisle scanner's scans are not transactions).
"""

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from edge import const
from edge.config.models import EdgeConfig
from edge.events import CameraHeatmap, CameraOccupancy, CameraTraffic, Scan

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC).timestamp()
DAY = "2026-03-02"
HOUR = 3600.0
WINDOW = 900.0

CONFIG = """
store_id = "fz-0001"
timezone = "UTC"

[floor_plan]
width_m = 10.0
depth_m = 6.0
zones = [
  { name = "front", polygon = [[0, 0], [10, 0], [10, 2], [0, 2]] },
  { name = "back", polygon = [[0, 2], [10, 2], [10, 6], [0, 6]] },
]

[traffic]
tills = ["till-1"]
factor_prior_weight = 10.0

[sync]
enabled = true

[[devices]]
type = "camera"
name = "door-cam"
source = "door.avi"
person_size_px = [48, 30]
lines = [{ name = "door", p1 = [0, 100], p2 = [640, 100] }]

[[devices]]
type = "wifi_probe"
name = "sniffer-1"
source = "pcap"
pcap = "day.pcap"
position = [5.0, 3.0]

[[devices]]
type = "barcode"
name = "till-1"
port = "/dev/null"

[[devices]]
type = "barcode"
name = "aisle-1"
port = "/dev/null"
"""


def config(db: Path | None = None) -> EdgeConfig:
    """The store's config (its database at ``db``)."""
    import tomllib

    data = tomllib.loads(CONFIG)
    if db is not None:
        data["storage"] = {"path": str(db)}
    return EdgeConfig.model_validate(data)


def write_config(path: Path, db: Path) -> Path:
    """The config as a TOML file using database ``db``."""
    path.write_text(CONFIG + f'\n[storage]\npath = "{db}"\n', encoding="utf-8")
    return path


def insert(conn: sqlite3.Connection, event: object) -> None:
    """Insert one event the way the store writer does (its table and columns)."""
    columns = event.COLUMNS  # type: ignore[attr-defined]
    conn.execute(f"INSERT INTO {event.TABLE} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",  # type: ignore[attr-defined]
                 [getattr(event, c) for c in columns])


def camera_minute(conn: sqlite3.Connection, ts: float, entries: int | None = None) -> None:
    """The camera driver's rows for the minute starting at ``ts``."""
    m = round((ts - T0) / 60) % 3
    entry = (1 if m == 0 else 0) if entries is None else entries
    exit_ = 1 if m == 1 else 0
    occupancy = 1 if m == 0 else 0
    insert(conn, CameraTraffic(ts, ts + 60, "door-cam", "door", entry, exit_))
    insert(conn, CameraOccupancy(ts, ts + 60, "door-cam", entry, exit_, occupancy, max(occupancy, exit_), 0.5, 1,
                                 600, 0))
    insert(conn, CameraHeatmap(ts, ts + 60, "door-cam", 0.0, 0.0, 0.5, 20, 4, "[[0, 4.0]]", 4.0))


def wifi_minute(conn: sqlite3.Connection, ts: float) -> None:
    """The WiFi rollup's window rows for the minute starting at ``ts``."""
    conn.execute(f"INSERT INTO {const.TABLE_AGG_PRESENCE} (window_start, window_end, frames, devices, stable_devices, "
                 "randomized_clusters, probe_rate, persons_estimate, detail_json) VALUES (?, ?, 40, 9, 3, 4, 0.7, "
                 "7.0, '{}')", (ts, ts + 60))
    conn.execute(f"INSERT INTO {const.TABLE_AGG_ZONES} (window_start, window_end, zone, device_seconds, devices) "
                 "VALUES (?, ?, 'back', 10.0, 1)", (ts, ts + 60))
    conn.execute(f"INSERT INTO {const.TABLE_AGG_WIFI_CELLS} (window_start, window_end, ix, iy, x, y, device_seconds) "
                 "VALUES (?, ?, 10, 8, 5.25, 4.25, 10.0)", (ts, ts + 60))


def visit(conn: sqlite3.Connection, start: float, dwell: float, device: str, bursts: int) -> None:
    """One closed WiFi visit, as the WiFi rollup stores it."""
    conn.execute(f"INSERT INTO {const.TABLE_WIFI_VISITS} (device, start, end, ts, dwell_s, max_rssi, visitor, "
                 "randomized, bursts) VALUES (?, ?, ?, ?, ?, -60, ?, 0, ?)",
                 (device, start, start + dwell, start + dwell + 120, dwell, int(dwell >= 300), bursts))


PASSER_BURSTS = 2
"""Each passerby visit is 2 bursts 10 s apart: the passerby detection share is ``detection_share(2.0)``."""


def window_visits(conn: sqlite3.Connection, window: float) -> None:
    """The WiFi visits that start in one fused window: 2 visitors (600 s spans of 13 bursts: 700 s stays), 1 quick
    visit (120 s of 4 bursts: 200 s), 6 passersby."""
    visits = ((600.0, 13), (600.0, 13), (120.0, 4), *([(10.0, PASSER_BURSTS)] * 6))
    for k, (dwell, bursts) in enumerate(visits):
        visit(conn, window + 60 + k, dwell, f"w{int(window)}-{k}", bursts)


def window_scans(conn: sqlite3.Connection, window: float) -> None:
    """Two till transactions of three scans (5 s apart) and some aisle scans in one fused window."""
    for begin in (window + 100, window + 400):
        for k in range(3):
            insert(conn, Scan(begin + 5 * k, "till-1", "E0", "4006381333931", "gtin", "04006381333931", True))
        insert(conn, Scan(begin + 30, "aisle-1", "E0", "4006381333931", "gtin", "04006381333931", True))


def fill(conn: sqlite3.Connection, hours: int = 3, wifi_extra_s: float = 3600.0) -> None:
    """``hours`` hours of store from T0, WiFi windows ``wifi_extra_s`` longer."""
    for minute in range(hours * 60):
        camera_minute(conn, T0 + 60 * minute)
    for minute in range(round((hours * HOUR + wifi_extra_s) / 60)):
        wifi_minute(conn, T0 + 60 * minute)
    for window in range(hours * 4):
        window_visits(conn, T0 + WINDOW * window)
        window_scans(conn, T0 + WINDOW * window)
