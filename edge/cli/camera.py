"""``edge camera count|snapshot`` for installers calibrating a camera, and ``edge heatmap`` for store managers.

The camera code lives in the camera driver; this module reaches it through the driver registry (``edge`` never
imports driver internals), and OpenCV is imported only by the commands that draw.
"""

import json
import sqlite3
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, cast, get_args

import click

from edge import const
from edge.cli import common
from edge.config.base import DeviceConfig
from edge.errors import ConfigError, EdgeError
from edge.events import VideoCount

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from edge.config.models import FloorPlan

CAMERA = "camera"
DEFAULT_PERSON_SIZE = "48,30"  # a 0.6 × 0.375 m top-down blob at 80 px/m (640 px across 8 m)


class CameraTools(Protocol):
    """The offline tools the camera driver class offers."""

    def count_video(self, config: DeviceConfig, video: Path) -> VideoCount:
        """Count a whole video file."""
        ...

    def snapshot(self, config: DeviceConfig, seconds: float) -> "npt.NDArray[np.uint8]":
        """The overlay image of a camera's current frame."""
        ...


def _tools() -> tuple[CameraTools, type[DeviceConfig]]:
    """The camera driver class (its offline tools) and the camera config model, from the registry."""
    from drivers.registry import config_models, driver_class

    model = next(m for m in config_models() if get_args(m.model_fields["type"].annotation) == (CAMERA,))
    return cast(CameraTools, driver_class(CAMERA)), model


def _numbers(value: str, count: int, what: str) -> list[float]:
    try:
        numbers = [float(part) for part in value.split(",")]
    except ValueError as err:
        raise click.BadParameter(f"{value!r}: {what} must be {count} comma-separated numbers") from err
    if len(numbers) != count:
        raise click.BadParameter(f"{value!r}: {what} must be {count} comma-separated numbers")
    return numbers


def _camera_config(source: str, lines: tuple[str, ...], person_size: str, view: str, fps: float | None,
                   width: int | None, band: float, calibration: str | None) -> DeviceConfig:
    _, model = _tools()
    settings: dict[str, object] = {
        "type": CAMERA, "name": "cli", "source": source, "view": view, "run_in_process": False,
        "person_size_px": _numbers(person_size, 2, "--person-size"),
        "lines": [{"name": f"line{i + 1}" if len(lines) > 1 else "line", "band_px": band,
                   "p1": (x1, y1), "p2": (x2, y2)}
                  for i, (x1, y1, x2, y2) in enumerate(_numbers(v, 4, "--line") for v in lines)],
    }
    if fps is not None:
        settings["process_fps"] = fps
    if width is not None:
        settings["process_width"] = width
    if calibration is not None:
        settings["calibration"] = calibration
    try:
        return model.model_validate(settings)
    except ValueError as err:
        raise click.BadParameter(str(err)) from err


@click.group(name="camera")
def camera() -> None:
    """People-counting cameras: count a video, snapshot a calibration."""


@camera.command(name="count")
@click.argument("video", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option("--line", "lines", multiple=True, required=True,
              help="Counting line X1,Y1,X2,Y2 in video pixels; repeat for several (in = crossing to the right of "
                   "the line drawn from the first point to the second)")
@click.option("--person-size", default=DEFAULT_PERSON_SIZE, show_default=True,
              help="One person's blob W,H in video pixels (top_down: shoulders × front-to-back; angled: w × h)")
@click.option("--view", type=click.Choice(["top_down", "angled"]), default="top_down", show_default=True,
              help="Camera mounting")
@click.option("--fps", type=float, default=None, help="Frames processed per second (default: every frame)")
@click.option("--width", type=int, default=None, help="Processing width in px (default: the video's width)")
@click.option("--band", type=float, default=22.0, show_default=True, help="Hysteresis band of each line in px")
@click.option("--calibration", default=None, help="Calibration file (firmware_configs/cameras/ name or a path)")
@common.json_option
def count(video: Path, lines: tuple[str, ...], person_size: str, view: str, fps: float | None, width: int | None,
          band: float, calibration: str | None, as_json: bool) -> None:
    """Count people crossing each --line in VIDEO, offline, as fast as the CPU allows."""
    file_fps, file_width = _video_facts(video)
    config = _camera_config(str(video), lines, person_size, view, fps or min(60.0, file_fps),
                            width or max(80, min(1920, file_width)), band, calibration)
    tools, _ = _tools()
    try:
        result = tools.count_video(config, video)
    except (EdgeError, ConfigError) as err:
        click.echo(f"error: {err}", err=True)
        sys.exit(1)
    report = {
        "video": result.video,
        "lines": [{"name": line.name, "in": line.in_count, "out": line.out_count} for line in result.lines],
        "frames": result.frames, "processed": result.processed, "fps": result.fps, "duration_s": result.duration_s,
        "elapsed_s": result.elapsed_s, "processed_fps": result.processed_fps, "decode_errors": result.decode_errors,
    }
    if as_json:
        common.print_json(report)
        return
    click.echo(f"{video}: {result.frames} frames ({result.duration_s:.1f} s at {result.fps:g} fps), "
               f"{result.processed} processed at {result.processed_fps:g} frames/s")
    for line in result.lines:
        click.echo(f"  {line.name:<12} in {line.in_count:>5}   out {line.out_count:>5}")
    if result.decode_errors:
        click.echo(f"  warning: the video stopped decoding early ({result.decode_errors} error)", err=True)


def _video_facts(video: Path) -> tuple[float, int]:
    import cv2

    capture = cv2.VideoCapture(str(video), cv2.CAP_FFMPEG)
    try:
        if not capture.isOpened():
            click.echo(f"error: cannot decode {video}: not a video file OpenCV/FFMPEG can open", err=True)
            sys.exit(1)
        fps = float(capture.get(cv2.CAP_PROP_FPS) or 0.0)
        width = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH) or 0)
    finally:
        capture.release()
    return (fps if 0 < fps <= 240 else 25.0), (width or 640)


@camera.command(name="snapshot")
@click.argument("camera_name", metavar="CAMERA")
@click.option("--png", "png", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="PNG file to write")
@click.option("--seconds", default=3.0, show_default=True,
              help="Seconds of video read first, so the background is learnt and tracks show")
@click.option("--line", "lines", multiple=True,
              help="With a video path or URL as CAMERA: a line X1,Y1,X2,Y2 to draw (repeatable)")
@click.option("--person-size", default=DEFAULT_PERSON_SIZE, show_default=True,
              help="With a video path or URL as CAMERA: one person's blob W,H in pixels")
@common.config_option
def snapshot(camera_name: str, png: Path, seconds: float, lines: tuple[str, ...], person_size: str,
             config_path: Path | None) -> None:
    """Grab a frame from CAMERA (a configured camera's name, or a video path/URL) and draw its lines with in/out
    arrows, the ROI and current tracks into a PNG."""
    import cv2

    config = _configured_camera(camera_name, config_path)
    if config is None:
        config = _camera_config(camera_name, lines, person_size, "top_down", None, None, 22.0, None) if lines else \
            _tools()[1].model_validate({"type": CAMERA, "name": "cli", "source": camera_name, "run_in_process": False,
                                        "person_size_px": _numbers(person_size, 2, "--person-size")})
    tools, _ = _tools()
    try:
        image = tools.snapshot(config, seconds)
    except (EdgeError, ConfigError) as err:
        click.echo(f"error: {err}", err=True)
        sys.exit(1)
    if not cv2.imwrite(str(png), image):
        click.echo(f"error: cannot write {png}", err=True)
        sys.exit(1)
    click.echo(f"wrote {png} ({image.shape[1]}x{image.shape[0]})")


def _configured_camera(name: str, config_path: Path | None) -> DeviceConfig | None:
    """The camera device called ``name`` in the store config, if there is a config and it has one."""
    path = common.config_file(config_path)
    if config_path is None and not path.is_file():
        return None
    for device in common.load(path).devices:
        if device.type == CAMERA and device.name == name:
            return device
    if Path(name).exists() or "://" in name:
        return None
    click.echo(f"error: no camera called {name!r} in {path}", err=True)
    sys.exit(2)


# -- edge heatmap -------------------------------------------------------------------------------------------------


@dataclass(slots=True)
class FloorHeat:
    """Person-seconds summed on one floor raster, with the rectangle it covers (metres)."""

    seconds: "npt.NDArray[np.float64]"
    x0: float
    y0: float
    cell_m: float
    windows: int
    first: float | None
    last: float | None


def load_camera_heat(conn: sqlite3.Connection, since: float, until: float, camera_name: str | None,
                     bounds: tuple[float, float, float, float] | None) -> FloorHeat | None:
    """Sum the stored camera heatmap windows in [since, until) onto one floor raster (None when there are none).

    The raster uses the finest cell size stored; cells of coarser grids are added at their centres.
    """
    import numpy as np

    sql = (f"SELECT window_start, origin_x, origin_y, cell_m, nx, ny, cells_json FROM "
           f"{const.TABLE_AGG_CAMERA_HEATMAP} WHERE window_start >= ? AND window_start < ?")
    args: list[object] = [since, until]
    if camera_name is not None:
        sql += " AND camera = ?"
        args.append(camera_name)
    rows = conn.execute(sql, args).fetchall()
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
    return FloorHeat(seconds, x0, y0, cell, len(rows), min(starts), max(starts))


def render_heatmap(heat: FloorHeat, plan: "FloorPlan | None", title: str) -> "npt.NDArray[np.uint8]":
    """The floor heatmap as a BGR image: colour map over the plan, zones outlined and named, a legend in
    person-seconds per cell."""
    import cv2
    import numpy as np

    ny, nx = heat.seconds.shape
    width_m, depth_m = nx * heat.cell_m, ny * heat.cell_m
    ppm = max(8, min(60, int(900 / max(width_m, depth_m, 1e-6))))  # pixels per metre: ~900 px on the long side
    map_w, map_h = max(1, round(width_m * ppm)), max(1, round(depth_m * ppm))
    peak = float(heat.seconds.max())
    scaled = np.zeros_like(heat.seconds) if peak <= 0 else heat.seconds / peak
    colours = cv2.applyColorMap(np.asarray(scaled * 255, dtype=np.uint8), cv2.COLORMAP_TURBO)
    colours = cv2.resize(colours, (map_w, map_h), interpolation=cv2.INTER_NEAREST)
    empty = cv2.resize(np.asarray(heat.seconds <= 0, dtype=np.uint8), (map_w, map_h),
                       interpolation=cv2.INTER_NEAREST).astype(bool)
    colours[empty] = (235, 235, 235)  # nobody stood here: light grey, not the colour map's "zero" blue
    margin, legend_w, header = 20, 170, 50
    image = np.full((map_h + header + margin, map_w + 2 * margin + legend_w, 3), 255, dtype=np.uint8)
    image[header:header + map_h, margin:margin + map_w] = colours
    font = cv2.FONT_HERSHEY_SIMPLEX
    cv2.putText(image, title, (margin, 32), font, 0.6, (0, 0, 0), 1, cv2.LINE_AA)

    def to_px(x: float, y: float) -> tuple[int, int]:
        return margin + round((x - heat.x0) * ppm), header + round((y - heat.y0) * ppm)

    cv2.rectangle(image, to_px(heat.x0, heat.y0), to_px(heat.x0 + width_m, heat.y0 + depth_m), (60, 60, 60), 1)
    if plan is not None:
        for zone in plan.zones:
            points = np.array([to_px(x, y) for x, y in zone.polygon], dtype=np.int32)
            cv2.polylines(image, [points], True, (255, 255, 255), 3, cv2.LINE_AA)
            cv2.polylines(image, [points], True, (30, 30, 30), 1, cv2.LINE_AA)
            label_x, label_y = int(points[:, 0].min()) + 5, int(points[:, 1].min()) + 18
            cv2.putText(image, zone.name, (label_x, label_y), font, 0.5, (255, 255, 255), 3, cv2.LINE_AA)
            cv2.putText(image, zone.name, (label_x, label_y), font, 0.5, (20, 20, 20), 1, cv2.LINE_AA)
    # Legend: a vertical colour bar from 0 to the peak, with units.
    bar_x, bar_top, bar_h = margin + map_w + 25, header, max(60, min(map_h, 300))
    ramp = np.linspace(255, 0, bar_h).astype(np.uint8).reshape(-1, 1)
    bar = cv2.applyColorMap(np.repeat(ramp, 20, axis=1), cv2.COLORMAP_TURBO)
    image[bar_top:bar_top + bar_h, bar_x:bar_x + 20] = bar
    cv2.rectangle(image, (bar_x, bar_top), (bar_x + 20, bar_top + bar_h), (0, 0, 0), 1)
    for fraction in (1.0, 0.5, 0.0):
        y = bar_top + round((1 - fraction) * (bar_h - 1))
        label = f"{peak * fraction:.1f}" if peak < 10 else f"{peak * fraction:.0f}"
        cv2.putText(image, label, (bar_x + 26, y + 5), font, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(image, "person-seconds", (bar_x - 5, bar_top + bar_h + 20), font, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(image, f"per {heat.cell_m:g} m cell", (bar_x - 5, bar_top + bar_h + 38), font, 0.45, (0, 0, 0), 1,
                cv2.LINE_AA)
    swatch_y = bar_top + bar_h + 50
    cv2.rectangle(image, (bar_x, swatch_y), (bar_x + 20, swatch_y + 12), (235, 235, 235), -1)
    cv2.rectangle(image, (bar_x, swatch_y), (bar_x + 20, swatch_y + 12), (0, 0, 0), 1)
    cv2.putText(image, "nobody", (bar_x + 26, swatch_y + 11), font, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    if image.shape[0] < swatch_y + 20:
        image = np.vstack([image, np.full((swatch_y + 20 - image.shape[0], image.shape[1], 3), 255, np.uint8)])
    return np.asarray(image, dtype=np.uint8)


@click.command(name="heatmap")
@click.option("--layer", type=click.Choice([CAMERA]), default=CAMERA, show_default=True,
              help="Which heatmap: camera (person-seconds from the people-counting cameras)")
@click.option("--png", "png", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="PNG file to write")
@click.option("--since", default="1d", show_default=True, help="How far back: 30m, 2h, 7d or an ISO date")
@click.option("--camera", "camera_name", default=None, help="Only this camera (default: all, summed)")
@common.config_option
@common.db_option
@common.json_option
def heatmap(layer: str, png: Path, since: str, camera_name: str | None, config_path: Path | None,
            db_path: Path | None, as_json: bool) -> None:
    """Draw where people spent time over the floor plan (colour = person-seconds per cell), zones outlined, with
    a legend; with --json also print the totals per zone."""
    import cv2
    import numpy as np

    del layer  # one layer so far
    plan = None
    if db_path is None or config_path is not None:
        plan = common.load(config_path).floor_plan
    conn, path = common.open_db(config_path, db_path)
    start = common.since_ts(since)
    now = time.time()
    try:
        bounds = (0.0, 0.0, plan.width_m, plan.depth_m) if plan is not None else None
        heat = load_camera_heat(conn, start, now, camera_name, bounds)
    except sqlite3.OperationalError as err:
        click.echo(f"error: {path} has no camera heatmap table ({err}); run the daemon once to migrate it", err=True)
        sys.exit(2)
    finally:
        conn.close()
    if heat is None:
        click.echo(f"no camera heatmap windows since {since} in {path}", err=True)
        sys.exit(1)
    period = (f"{time.strftime('%Y-%m-%d %H:%M', time.localtime(heat.first or start))} - "
              f"{time.strftime('%Y-%m-%d %H:%M', time.localtime((heat.last or now) + 60))}")
    title = f"Where people spent time, {period}" + (f" ({camera_name})" if camera_name else "")
    image = render_heatmap(heat, plan, title)
    if not cv2.imwrite(str(png), image):
        click.echo(f"error: cannot write {png}", err=True)
        sys.exit(1)
    zones: dict[str, float] = {}
    if plan is not None:
        ys, xs = np.nonzero(heat.seconds)
        centres = np.stack([heat.x0 + (xs + 0.5) * heat.cell_m, heat.y0 + (ys + 0.5) * heat.cell_m], axis=1)
        for zone in plan.zones:
            inside = _in_polygon(centres, zone.polygon)
            zones[zone.name] = round(float(heat.seconds[ys[inside], xs[inside]].sum()), 1)
    total = round(float(heat.seconds.sum()), 1)
    if as_json:
        common.print_json({"png": str(png), "windows": heat.windows, "person_seconds": total, "zones": zones,
                           "size": [image.shape[1], image.shape[0]]})
    else:
        click.echo(f"wrote {png}: {total:g} person-seconds over {heat.windows} window(s)")
        for name, seconds in zones.items():
            click.echo(f"  {name:<12} {seconds:>10g} person-seconds")


def _in_polygon(points: "npt.NDArray[np.float64]", polygon: list[tuple[float, float]]) -> "npt.NDArray[np.bool_]":
    import numpy as np

    inside = np.zeros(len(points), dtype=bool)
    x, y = points[:, 0], points[:, 1]
    for (xi, yi), (xj, yj) in zip(polygon, polygon[-1:] + polygon[:-1], strict=True):
        straddles = (yi > y) != (yj > y)
        with np.errstate(divide="ignore", invalid="ignore"):
            crossing = (xj - xi) * (y - yi) / (yj - yi) + xi
        inside ^= straddles & (x < crossing)
    return inside
