"""Per-zone occupancy from the cameras' floor heatmaps: person-seconds of each cell go to the zone containing it.

Camera drivers see only their own config, not the store's floor plan, so they store heatmap cells per window and
this step, which knows the plan, splits them over its zones (``agg_camera_zones``). Resumable by a watermark.
"""

import json
import sqlite3

from edge import const
from edge.analytics.wifi_presence import point_in_polygon
from edge.config.models import FloorPlan

WATERMARK = "camera_zones"


def zone_seconds(cells: list[list[float]], origin: tuple[float, float], cell_m: float, nx: int,
                 plan: FloorPlan) -> dict[str, float]:
    """Person-seconds per zone of one window's sparse cells (``[[index, seconds], ...]``, row-major)."""
    totals = dict.fromkeys((zone.name for zone in plan.zones), 0.0)
    for index, seconds in cells:
        iy, ix = divmod(int(index), nx)
        centre = (origin[0] + (ix + 0.5) * cell_m, origin[1] + (iy + 0.5) * cell_m)
        for zone in plan.zones:
            if point_in_polygon(centre, zone.polygon):
                totals[zone.name] += float(seconds)
                break
    return totals


def rollup(conn: sqlite3.Connection, plan: FloorPlan) -> int:
    """Split every heatmap window stored since the last run over the floor plan's zones; returns windows done."""
    if not plan.zones:
        return 0
    row = conn.execute(f"SELECT watermark FROM {const.TABLE_ROLLUP_STATE} WHERE kind = ?", (WATERMARK,)).fetchone()
    since = float(row[0]) if row else float("-inf")
    windows = conn.execute(
        f"""SELECT rowid, window_start, window_end, camera, origin_x, origin_y, cell_m, nx, cells_json
            FROM {const.TABLE_AGG_CAMERA_HEATMAP} WHERE rowid > ? ORDER BY rowid""",
        (since,),
    ).fetchall()
    for _rowid, start, end, camera, ox, oy, cell_m, nx, cells_json in windows:
        totals = zone_seconds(json.loads(cells_json), (ox, oy), cell_m, nx, plan)
        conn.executemany(
            f"""INSERT INTO {const.TABLE_AGG_CAMERA_ZONES} (window_start, window_end, camera, zone, person_seconds)
                VALUES (?, ?, ?, ?, ?)""",
            [(start, end, camera, zone, seconds) for zone, seconds in totals.items()],
        )
    if windows:
        conn.execute(
            f"""INSERT INTO {const.TABLE_ROLLUP_STATE} (kind, watermark) VALUES (?, ?)
                ON CONFLICT(kind) DO UPDATE SET watermark = excluded.watermark""",
            (WATERMARK, float(windows[-1][0])),
        )
    return len(windows)
