"""Per-zone occupancy from camera heatmap cells and the store's floor plan."""

import sqlite3
from pathlib import Path

from edge import camera_zones, const
from edge.config.models import FloorPlan, Zone
from edge.store.db import connect

PLAN = FloorPlan(width_m=4, depth_m=2, zones=[Zone(name="left", polygon=[(0, 0), (2, 0), (2, 2), (0, 2)]),
                                             Zone(name="right", polygon=[(2, 0), (4, 0), (4, 2), (2, 2)])])


def _heatmap(conn: sqlite3.Connection, start: float, cells: str) -> None:
    conn.execute(
        f"""INSERT INTO {const.TABLE_AGG_CAMERA_HEATMAP} (window_start, window_end, camera, origin_x, origin_y,
            cell_m, nx, ny, cells_json, person_seconds) VALUES (?, ?, 'cam-1', 0, 0, 0.5, 8, 4, ?, 0)""",
        (start, start + 60, cells),
    )


def _zones(conn: sqlite3.Connection) -> list[tuple[float, str, float]]:
    return conn.execute(
        f"SELECT window_start, zone, person_seconds FROM {const.TABLE_AGG_CAMERA_ZONES} ORDER BY 1, 2"
    ).fetchall()


def test_camera_zones__cells_are_split_over_zones_once_per_window(fresh_db: Path) -> None:
    conn = connect(fresh_db)
    # Cell 1 (x 0.5-1.0) is in "left"; cell 6 (x 3.0-3.5) and cell 14 (row 1) are in "right".
    _heatmap(conn, 0.0, "[[1, 10.0], [6, 4.5], [14, 0.5]]")
    assert camera_zones.rollup(conn, PLAN) == 1
    assert _zones(conn) == [(0.0, "left", 10.0), (0.0, "right", 5.0)]
    assert camera_zones.rollup(conn, PLAN) == 0, "a window is split once"
    _heatmap(conn, 60.0, "[[0, 2.0]]")
    assert camera_zones.rollup(conn, PLAN) == 1
    assert _zones(conn)[-2:] == [(60.0, "left", 2.0), (60.0, "right", 0.0)]
