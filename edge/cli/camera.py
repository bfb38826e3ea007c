"""``edge camera count|snapshot`` for installers calibrating a camera (``edge heatmap`` is in ``edge.cli.traffic``).

The camera code lives in the camera driver; this module reaches it through the driver registry (``edge`` never
imports driver internals), and OpenCV is imported only by the commands that draw.
"""

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, cast, get_args

import click

from edge.cli import common
from edge.config.base import DeviceConfig
from edge.errors import ConfigError, EdgeError
from edge.events import VideoCount

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt


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
