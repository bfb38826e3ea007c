"""Floor heatmaps: the camera, WiFi and fused layers over a period, drawn to scale as a PNG or in the terminal.

Layers (all on floor metres, y growing away from the floor's origin corner, drawn downwards):

* ``camera``: person-seconds per cell the cameras saw (their own grids, summed; ``edge heatmap`` since the camera
  driver landed);
* ``wifi``: WiFi device-seconds per cell (phones placed by RSSI; shares are meaningful, absolute seconds are not
  person-seconds);
* ``fused``: the fusion job's floor heatmap in person-seconds (``edge.analytics.floormap.fuse_heat``).

OpenCV is imported only by the PNG functions.
"""

import json
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from edge import const
from edge.analytics import floormap
from edge.config.models import FloorPlan
from edge.footfall import Setup, hours_between, load_hours, wifi_layer

if TYPE_CHECKING:
    import numpy.typing as npt

Rect = tuple[float, float, float, float]

LAYER_UNITS = {"camera": "person-seconds", "fused": "person-seconds", "wifi": "device-seconds"}


@dataclass(slots=True)
class FloorHeat:
    """A layer on one floor raster: ``values[iy, ix]`` for the cell whose corner is ``(x0 + ix·cell_m, y0 +
    iy·cell_m)``; ``windows`` summed, the first and last window start; ``views`` the camera grids' rectangles."""

    values: floormap.F64
    x0: float
    y0: float
    cell_m: float
    windows: int
    first: float | None
    last: float | None
    units: str = "person-seconds"
    views: tuple[Rect, ...] = ()

    @property
    def total(self) -> float:
        """Sum over the cells."""
        return float(self.values.sum())


def camera_views(conn: sqlite3.Connection, since: float, until: float, camera: str | None = None) -> tuple[Rect, ...]:
    """The floor rectangles the cameras' heatmap grids cover in ``[since, until)``."""
    rows = _camera_rows(conn, "DISTINCT origin_x, origin_y, origin_x + cell_m * nx, origin_y + cell_m * ny", since,
                        until, camera)
    return tuple((float(a), float(b), float(c), float(d)) for a, b, c, d in rows)


def _camera_rows(conn: sqlite3.Connection, columns: str, since: float, until: float,
                 camera: str | None) -> list[tuple[Any, ...]]:
    """``columns`` of the camera heatmap windows in ``[since, until)``, of one camera or all."""
    sql = f"SELECT {columns} FROM {const.TABLE_AGG_CAMERA_HEATMAP} WHERE window_start >= ? AND window_start < ?"
    args: list[object] = [since, until]
    if camera is not None:
        sql += " AND camera = ?"
        args.append(camera)
    return [tuple(row) for row in conn.execute(sql, args)]


def load_camera_heat(conn: sqlite3.Connection, since: float, until: float, camera_name: str | None,
                     bounds: Rect | None) -> FloorHeat | None:
    """Sum the stored camera heatmap windows in [since, until) onto one floor raster (None when there are none).

    The raster uses the finest cell size stored; cells of coarser grids are added at their centres. Without
    ``bounds`` (no floor plan) it covers what the cameras see.
    """
    rows = _camera_rows(conn, "window_start, origin_x, origin_y, cell_m, nx, ny, cells_json", since, until,
                        camera_name)
    if not rows:
        return None
    cell = min(float(r[3]) for r in rows)
    if bounds is None:
        bounds = (min(r[1] for r in rows), min(r[2] for r in rows),
                  max(r[1] + r[3] * r[4] for r in rows), max(r[2] + r[3] * r[5] for r in rows))
    x0, y0, x1, y1 = bounds
    nx, ny = max(1, round((x1 - x0) / cell)), max(1, round((y1 - y0) / cell))
    seconds = np.zeros((ny, nx), dtype=np.float64)
    for _, ox, oy, cm, gnx, _gny, cells_json in rows:
        cells = json.loads(cells_json)
        if not cells:
            continue
        data = np.asarray(cells, dtype=np.float64).reshape(-1, 2)
        index = data[:, 0].astype(np.int64)
        cx = ox + (index % gnx + 0.5) * cm
        cy = oy + (index // gnx + 0.5) * cm
        ix = np.floor((cx - x0) / cell).astype(np.int64)
        iy = np.floor((cy - y0) / cell).astype(np.int64)
        keep = (ix >= 0) & (ix < nx) & (iy >= 0) & (iy < ny)
        np.add.at(seconds, (iy[keep], ix[keep]), data[keep, 1])
    starts = [float(r[0]) for r in rows]
    return FloorHeat(seconds, x0, y0, cell, len(rows), min(starts), max(starts),
                     views=camera_views(conn, since, until, camera_name))


def load_fused_heat(conn: sqlite3.Connection, setup: Setup, since: float, until: float) -> FloorHeat | None:
    """The fused floor heatmap summed over the store-local hours in [since, until) (None without any)."""
    heat = setup.grid.zeros()
    starts: list[float] = []
    for hour in load_hours(conn, setup, hours_between(setup, since, until)):
        for window in hour.heat:
            if since <= window.window_start < until:
                heat += floormap.dense(setup.grid, window.cells)
                starts.append(window.window_start)
    if not starts:
        return None
    return FloorHeat(heat, 0.0, 0.0, setup.grid.cell_m, len(starts), min(starts), max(starts),
                     views=camera_views(conn, since, until))


def load_wifi_heat(conn: sqlite3.Connection, setup: Setup, since: float, until: float) -> FloorHeat | None:
    """The WiFi layer (device-seconds) summed over [since, until) (None without any WiFi cell)."""
    row = conn.execute(f"SELECT count(DISTINCT window_start), min(window_start), max(window_start) FROM "
                       f"{const.TABLE_AGG_WIFI_CELLS} WHERE window_start >= ? AND window_start < ?",
                       (since, until)).fetchone()
    if not row[0]:
        return None
    return FloorHeat(wifi_layer(conn, setup, since, until), 0.0, 0.0, setup.grid.cell_m, int(row[0]),
                     float(row[1]), float(row[2]), units="device-seconds")


def zone_totals(heat: FloorHeat, plan: FloorPlan | None) -> dict[str, float]:
    """The layer summed over each zone of the plan (a cell counts in the first zone holding its centre)."""
    if plan is None or not plan.zones:
        return {}
    ny, nx = heat.values.shape
    xs = heat.x0 + (np.arange(nx) + 0.5) * heat.cell_m
    ys = heat.y0 + (np.arange(ny) + 0.5) * heat.cell_m
    gx, gy = np.meshgrid(xs, ys)
    taken = np.zeros_like(heat.values, dtype=bool)
    out: dict[str, float] = {}
    for zone in plan.zones:
        mask = floormap.points_in_polygon(gx, gy, zone.polygon) & ~taken
        taken |= mask
        out[zone.name] = round(float(heat.values[mask].sum()), 1)
    return out


# -- PNG ---------------------------------------------------------------------------------------------------------


def render_png(heat: FloorHeat, plan: FloorPlan | None, title: str) -> "npt.NDArray[np.uint8]":
    """The layer as a BGR image: floor to scale, colour map, zones outlined and named, camera views dashed, and a
    legend bar with its units."""
    import cv2

    ny, nx = heat.values.shape
    width_m, depth_m = nx * heat.cell_m, ny * heat.cell_m
    ppm = max(8, min(60, int(900 / max(width_m, depth_m, 1e-6))))  # pixels per metre: ~900 px on the long side
    map_w, map_h = max(1, round(width_m * ppm)), max(1, round(depth_m * ppm))
    peak, clipped = colour_top(heat.values)
    scaled = np.zeros_like(heat.values) if peak <= 0 else np.clip(heat.values / peak, 0.0, 1.0)
    colours = cv2.applyColorMap(np.asarray(scaled * 255, dtype=np.uint8), cv2.COLORMAP_TURBO)
    colours = cv2.resize(colours, (map_w, map_h), interpolation=cv2.INTER_NEAREST)
    empty = cv2.resize(np.asarray(heat.values <= 0, dtype=np.uint8), (map_w, map_h),
                       interpolation=cv2.INTER_NEAREST).astype(bool)
    colours[empty] = (235, 235, 235)  # nobody stood here: light grey, not the colour map's "zero" blue
    font = cv2.FONT_HERSHEY_SIMPLEX
    margin, legend_w = 20, 190
    width = map_w + 2 * margin + legend_w
    lines = _wrap(title, width - 2 * margin, lambda text: cv2.getTextSize(text, font, 0.6, 1)[0][0])
    header = 22 + 24 * len(lines)
    image = np.full((map_h + header + margin + 40, width, 3), 255, dtype=np.uint8)
    image[header:header + map_h, margin:margin + map_w] = colours
    for i, line in enumerate(lines):
        cv2.putText(image, line, (margin, 28 + 24 * i), font, 0.6, (0, 0, 0), 1, cv2.LINE_AA)

    def to_px(x: float, y: float) -> tuple[int, int]:
        return margin + round((x - heat.x0) * ppm), header + round((y - heat.y0) * ppm)

    cv2.rectangle(image, to_px(heat.x0, heat.y0), to_px(heat.x0 + width_m, heat.y0 + depth_m), (60, 60, 60), 1)
    for x0, y0, x1, y1 in heat.views:
        _dashed_rect(image, to_px(max(x0, heat.x0), max(y0, heat.y0)),
                     to_px(min(x1, heat.x0 + width_m), min(y1, heat.y0 + depth_m)))
    if plan is not None:
        for zone in plan.zones:
            points = np.array([to_px(x, y) for x, y in zone.polygon], dtype=np.int32)
            cv2.polylines(image, [points], True, (255, 255, 255), 3, cv2.LINE_AA)
            cv2.polylines(image, [points], True, (30, 30, 30), 1, cv2.LINE_AA)
            label_x, label_y = int(points[:, 0].min()) + 5, int(points[:, 1].min()) + 18
            cv2.putText(image, zone.name, (label_x, label_y), font, 0.5, (255, 255, 255), 3, cv2.LINE_AA)
            cv2.putText(image, zone.name, (label_x, label_y), font, 0.5, (20, 20, 20), 1, cv2.LINE_AA)
    # Scale bar: whole metres, about a fifth of the floor.
    bar_m = max(1, round(width_m / 5))
    sx, sy = margin, header + map_h + 22
    cv2.line(image, (sx, sy), (sx + bar_m * ppm, sy), (0, 0, 0), 2)
    cv2.putText(image, f"{bar_m} m", (sx + bar_m * ppm + 8, sy + 5), font, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    # Legend: a vertical colour bar from 0 to the peak, with units.
    bar_x, bar_top, bar_h = margin + map_w + 25, header, max(60, min(map_h, 300))
    ramp = np.linspace(255, 0, bar_h).astype(np.uint8).reshape(-1, 1)
    image[bar_top:bar_top + bar_h, bar_x:bar_x + 20] = cv2.applyColorMap(np.repeat(ramp, 20, axis=1),
                                                                         cv2.COLORMAP_TURBO)
    cv2.rectangle(image, (bar_x, bar_top), (bar_x + 20, bar_top + bar_h), (0, 0, 0), 1)
    for fraction in (1.0, 0.5, 0.0):
        y = bar_top + round((1 - fraction) * (bar_h - 1))
        label = _number(peak * fraction, peak) + ("+" if clipped and fraction == 1.0 else "")
        cv2.putText(image, label, (bar_x + 26, y + 5), font, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    legend = [heat.units, f"per {heat.cell_m:g} m cell"]
    for i, text in enumerate(legend):
        cv2.putText(image, text, (bar_x - 5, bar_top + bar_h + 20 + 18 * i), font, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    swatch_y = bar_top + bar_h + 56
    cv2.rectangle(image, (bar_x, swatch_y), (bar_x + 20, swatch_y + 12), (235, 235, 235), -1)
    cv2.rectangle(image, (bar_x, swatch_y), (bar_x + 20, swatch_y + 12), (0, 0, 0), 1)
    cv2.putText(image, "nobody", (bar_x + 26, swatch_y + 11), font, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    if heat.views:
        _dashed_rect(image, (bar_x, swatch_y + 22), (bar_x + 20, swatch_y + 34))
        cv2.putText(image, "camera view", (bar_x + 26, swatch_y + 33), font, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    if image.shape[0] < swatch_y + 44:
        image = np.vstack([image, np.full((swatch_y + 44 - image.shape[0], image.shape[1], 3), 255, np.uint8)])
    return np.asarray(image, dtype=np.uint8)


def colour_top(values: "npt.NDArray[np.float64]") -> tuple[float, bool]:
    """The top of the colour scale: the peak, or the 99th percentile of the occupied cells when a few cells (the
    tills) exceed it more than twice and would leave the rest of the floor in one colour; and whether it clips."""
    occupied = values[values > 0]
    if occupied.size == 0:
        return 0.0, False
    peak, p99 = float(occupied.max()), float(np.percentile(occupied, 99))
    return (p99, True) if peak > 2.0 * p99 else (peak, False)


def encode_png(image: "npt.NDArray[np.uint8]") -> bytes:
    """PNG bytes of a BGR image."""
    import cv2

    ok, data = cv2.imencode(".png", image)
    if not ok:
        raise ValueError("OpenCV could not encode the image as PNG")
    return bytes(data.tobytes())


def _number(value: float, peak: float) -> str:
    return f"{value:.1f}" if peak < 10 else f"{value:,.0f}"


def _wrap(title: str, width: int, measure: Callable[[str], int]) -> list[str]:
    """Split a ' · '-separated title into lines that fit ``width`` pixels."""
    lines: list[str] = []
    for part in title.split(" · "):
        if lines and measure(f"{lines[-1]} · {part}") <= width:
            lines[-1] = f"{lines[-1]} · {part}"
        else:
            lines.append(part)
    return lines


def _dashed_rect(image: "npt.NDArray[np.uint8]", p0: tuple[int, int], p1: tuple[int, int]) -> None:
    import cv2

    (x0, y0), (x1, y1) = p0, p1
    for a, b in (((x0, y0), (x1, y0)), ((x1, y0), (x1, y1)), ((x1, y1), (x0, y1)), ((x0, y1), (x0, y0))):
        length = max(abs(b[0] - a[0]), abs(b[1] - a[1]))
        for start in range(0, max(1, length), 12):
            t0, t1 = start / max(1, length), min(1.0, (start + 6) / max(1, length))
            cv2.line(image, (round(a[0] + (b[0] - a[0]) * t0), round(a[1] + (b[1] - a[1]) * t0)),
                     (round(a[0] + (b[0] - a[0]) * t1), round(a[1] + (b[1] - a[1]) * t1)), (0, 0, 0), 1)


# -- terminal ----------------------------------------------------------------------------------------------------

SHADES = " .:-=+*#%@"
"""Nobody, then nine steps from the lowest to the peak."""
ANSI_RAMP = (17, 19, 26, 32, 38, 44, 49, 82, 118, 190, 226, 220, 214, 208, 202, 196)
"""256-colour codes from blue (little) to red (the peak), roughly the PNG's turbo map."""


def render_text(heat: FloorHeat, plan: FloorPlan | None, title: str, *, color: bool, max_width: int = 78) -> str:
    """The layer as text: two characters per cell (coarsened to fit ``max_width``), shade characters (and ANSI
    background colours with ``color``), zone names at their corners, then the legend and the zone totals."""
    factor = max(1, -(-2 * heat.values.shape[1] // max_width))
    values = floormap.block_sum(heat.values, factor)
    cell_m = heat.cell_m * factor
    peak = float(values.max())
    ny, nx = values.shape
    chars = [[" "] * (2 * nx) for _ in range(ny)]
    levels = np.zeros(values.shape, dtype=np.int64)
    if peak > 0:
        levels = np.where(values > 0, 1 + np.minimum(8, (values / peak * 9).astype(np.int64)), 0)
    for iy in range(ny):
        for ix in range(nx):
            chars[iy][2 * ix] = chars[iy][2 * ix + 1] = SHADES[int(levels[iy, ix])]
    if plan is not None:
        for zone in plan.zones:
            ix = int(min(x for x, _ in zone.polygon) - heat.x0) // max(cell_m, 1e-9)
            iy = int(min(y for _, y in zone.polygon) - heat.y0) // max(cell_m, 1e-9)
            ix, iy = int(max(0, min(nx - 1, ix))), int(max(0, min(ny - 1, iy)))
            for k, ch in enumerate(f"[{zone.name}]"[: 2 * nx - 2 * ix]):
                chars[iy][2 * ix + k] = ch
    out = [title, "+" + "-" * (2 * nx) + "+"]
    for iy in range(ny):
        row = ""
        for ix in range(2 * nx):
            ch = chars[iy][ix]
            level = int(levels[iy, ix // 2])
            if color and level > 0 and ch == SHADES[level]:
                code = ANSI_RAMP[min(len(ANSI_RAMP) - 1, int(values[iy, ix // 2] / peak * (len(ANSI_RAMP) - 1)))]
                row += f"\x1b[48;5;{code}m{ch}\x1b[0m"
            else:
                row += ch
        out.append("|" + row + "|")
    out.append("+" + "-" * (2 * nx) + "+")
    step = peak / 9 if peak > 0 else 0.0
    legend = "  ".join(f"{SHADES[i]}{SHADES[i]} {_number(step * (i - 1), peak)}+" for i in range(1, 10, 2))
    out.append(f"scale: '  ' nobody  {legend}  ({heat.units} per {cell_m:g} m cell; peak {_number(peak, peak)})")
    out.append(f"floor {nx * cell_m:g} m x {ny * cell_m:g} m; top left is the floor's origin corner, x to the "
               "right, y down")
    return "\n".join(out)
