"""Config of one people-counting camera: source, processing rate, count lines, ROI, person size, floor mapping."""

import re
from typing import Literal, Self

from pydantic import Field, field_validator, model_validator

from drivers.camera import KEY
from edge.config.base import DeviceConfig, StrictModel

Point = tuple[float, float]
_CLOSING = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
_LINE_NAME = r"^[a-z0-9][a-z0-9_-]{0,62}$"


class CountLine(StrictModel):
    """A directed counting line segment, in pixel coordinates of the source resolution.

    Direction convention: in image coordinates (x to the right, y down), for the segment from ``p1`` to ``p2``
    a point ``pt`` lies on the *negative* side when ``cross(p2 - p1, pt - p1) < 0`` and on the *positive* side
    when it is ``> 0``. A track whose foot point crosses the segment from the negative side to the positive
    side is counted ``in``; from positive to negative, ``out``. ``swap = true`` exchanges the two.
    Example: for a horizontal line drawn left to right (p1 = (0, 240), p2 = (640, 240)) the positive side is
    below it (larger y), so walking down the image is ``in``.

    A crossing is only counted when the track has been at least ``band_px`` away from the line on one side
    and then reaches at least ``band_px`` on the other side (hysteresis), and the track's own step actually
    intersects the segment (walking past either end of it counts nothing).
    """

    name: str = Field(pattern=_LINE_NAME, description="Line name used in counts and topics, e.g. 'door-1'")
    p1: Point = Field(description="First end [x, y] in source-resolution pixels")
    p2: Point = Field(description="Second end [x, y] in source-resolution pixels; in = crossing to the right of p1→p2")
    swap: bool = Field(default=False, description="Swap in and out for this line")
    band_px: float = Field(
        default=20.0, ge=0, le=2000,
        description="Hysteresis: a track must be this far (source px) from the line on each side to count",
    )
    entrance: bool = Field(
        default=True, description="Crossings of this line change store occupancy (in − out); false for inner lines"
    )

    @model_validator(mode="after")
    def _not_degenerate(self) -> Self:
        if (self.p2[0] - self.p1[0]) ** 2 + (self.p2[1] - self.p1[1]) ** 2 < 1.0:
            raise ValueError(f"line {self.name!r}: p1 and p2 must be at least 1 px apart")
        return self


class PointPair(StrictModel):
    """One calibration correspondence: a pixel in the source image and the same spot on the floor."""

    image: Point = Field(description="[x, y] in source-resolution pixels")
    floor: Point = Field(description="[x, y] in floor-plan metres")


def check_point_pairs(pairs: list[PointPair]) -> None:
    """Raise ``ValueError`` unless there are 4+ pairs with distinct image and floor points."""
    if len(pairs) < 4:
        raise ValueError(f"a homography needs at least 4 point pairs, got {len(pairs)}")
    for label, points in (("image", [p.image for p in pairs]), ("floor", [p.floor for p in pairs])):
        if len(set(points)) != len(points):
            raise ValueError(f"homography {label} points must be distinct")


class CameraCalibration(StrictModel):
    """A calibration file in ``firmware_configs/cameras/``: image↔floor point pairs for one mounted camera."""

    description: str = Field(default="", description="Where the camera hangs and how the points were measured")
    source_size: tuple[int, int] = Field(description="[width, height] of the source image the pixels refer to")
    homography_points: list[PointPair] = Field(description="4+ image↔floor correspondences (metres)")

    @model_validator(mode="after")
    def _enough_points(self) -> Self:
        check_point_pairs(self.homography_points)
        width, height = self.source_size
        for pair in self.homography_points:
            x, y = pair.image
            if not (0 <= x <= width and 0 <= y <= height):
                raise ValueError(f"image point ({x}, {y}) lies outside the {width}x{height} source")
        return self


class CameraConfig(DeviceConfig):
    """One people-counting camera (file, RTSP or USB), counting lines and mapping foot points to the floor."""

    type: Literal["camera"] = Field(description=f"Driver type, always '{KEY}'")
    source: str = Field(
        min_length=1,
        description="Video file path, a folder of recorded clips (played in name order), rtsp://... URL, "
                    "/dev/videoN, or a bare integer V4L2 index such as '0'",
    )
    view: Literal["top_down", "angled"] = Field(
        default="top_down",
        description="Mounting: top_down uses the blob centroid as foot point, angled the blob's bottom centre",
    )
    process_fps: float = Field(default=10.0, gt=0, le=60, description="Frames processed per second (newest frame)")
    process_width: int = Field(
        default=320, ge=80, le=1920, description="Frames are resized to this width (aspect kept) before processing"
    )
    lines: list[CountLine] = Field(default_factory=list, description="Directed count lines, one per entrance")
    roi: list[Point] | None = Field(
        default=None, description="Polygon [x, y] (source px) outside which motion is ignored; none = whole frame"
    )
    person_size_px: tuple[float, float] = Field(
        description=(
            "Bounding box (source px) of one person's blob with its shadow, at the first line: top_down = "
            "(across the shoulders, front to back), angled = (width, height); for size gates and group splits"
        ),
    )
    calibration: str | None = Field(
        default=None, description="Calibration file name in firmware_configs/cameras/ (homography point pairs)"
    )
    homography_points: list[PointPair] | None = Field(
        default=None, description="Inline image↔floor point pairs (4+), instead of a calibration file"
    )
    heatmap_cell_m: float = Field(default=0.5, gt=0, le=10, description="Heatmap cell size on the floor in metres")
    closing_time: str = Field(
        default="23:00", description="Store-local HH:MM at which occupancy (in − out) is reset to zero"
    )
    run_in_process: bool = Field(
        default=True, description="Run capture and processing in a child process so a heavy camera never starves"
    )
    background: Literal["running_average", "mog2", "knn"] = Field(
        default="running_average",
        description="Background model: running_average (fast, brightness-normalised), OpenCV mog2 or knn",
    )
    diff_threshold: int = Field(
        default=28, ge=1, le=255, description="Grey-level difference from the background that counts as foreground"
    )
    background_alpha: float = Field(
        default=0.03, gt=0, lt=1, description="Background learning rate per processed frame (running_average)"
    )
    lights_change_fraction: float = Field(
        default=0.45, ge=0.1, le=1.0,
        description="If more than this fraction of the ROI turns foreground at once, the background is re-learnt",
    )
    shadow_removal: bool = Field(
        default=False,
        description=(
            "Drop pixels that are only darker with unchanged colour (cast shadows). Off by default: it also eats "
            "people dressed like the floor; instead measure person_size_px with the shadow included"
        ),
    )
    min_person_fraction: float = Field(
        default=0.3, gt=0, le=1, description="Blobs smaller than this fraction of one person's area are ignored"
    )
    max_group_size: int = Field(default=3, ge=1, le=6, description="Most people one blob may be split into")
    confirm_frames: int = Field(default=3, ge=1, le=30, description="Detections needed before a track is counted")
    max_missed_frames: int = Field(
        default=6, ge=0, le=100, description="Frames a track may go undetected before it ends"
    )

    @field_validator("closing_time")
    @classmethod
    def _check_closing(cls, value: str) -> str:
        if not _CLOSING.match(value):
            raise ValueError(f"closing_time {value!r} is not HH:MM (00:00..23:59)")
        return value

    @model_validator(mode="after")
    def _cross_field(self) -> Self:
        names = [line.name for line in self.lines]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(f"line names must be unique; repeated: {', '.join(repeated)}")
        if self.calibration is not None and self.homography_points is not None:
            raise ValueError("give either 'calibration' (a file) or inline 'homography_points', not both")
        if self.homography_points is not None:
            check_point_pairs(self.homography_points)
        if self.roi is not None and len(self.roi) < 3:
            raise ValueError("roi needs at least 3 points")
        width, height = self.person_size_px
        if width <= 0 or height <= 0:
            raise ValueError("person_size_px must be positive")
        return self

    @property
    def closing_hm(self) -> tuple[int, int]:
        """Closing time as (hour, minute)."""
        hour, minute = self.closing_time.split(":")
        return int(hour), int(minute)
