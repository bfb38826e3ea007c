"""The pure people-counting pipeline: BGR frames with their timestamps in, crossings, counts and floor points out.

``Counter`` owns the per-camera state (background, tracks, line states, heatmap). It never opens a camera,
reads a file or looks at a clock: the driver feeds it frames and their event time. Frames are given at the
source resolution and resized to the processing width inside ``process``; every coordinate in results and
config (lines, ROI, person size, homography) is in source pixels.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from drivers.camera.aggregate import Aggregator, LineCounts, SparseHeatmap, WindowAggregate
from drivers.camera.background import ForegroundModel, ForegroundParams, polygon_mask
from drivers.camera.blobs import BlobParams, View, detect_blobs
from drivers.camera.config import CameraConfig, CountLine, PointPair
from drivers.camera.counting import Direction, LineGeometry, LineState, advance
from drivers.camera.floor import GridSpec, Heatmap, Homography, footprint
from drivers.camera.frames import resize_to_width
from drivers.camera.overlay import draw_overlay
from drivers.camera.tracking import Tracker, TrackerParams

__all__ = [
    "Aggregator", "Counter", "CounterParams", "Crossing", "FrameResult", "LineCounts", "SparseHeatmap",
    "TrackPoint", "WindowAggregate",
]

U8 = npt.NDArray[np.uint8]
# A gap longer than this many nominal frame intervals is not credited to the heatmap (the camera was away).
MAX_GAP_FRAMES = 5.0
# After a gap this long (a stall, or the time between two motion clips) no track can be followed across it:
# they all end, so a person in the next clip is never matched to someone who left before.
TRACK_GAP_S = 2.0


@dataclass(frozen=True, slots=True)
class Crossing:
    """One counted crossing of a line by a track, at the event time of the frame that completed it."""

    line: str
    direction: Direction
    track_id: int
    ts: float


@dataclass(frozen=True, slots=True)
class TrackPoint:
    """A confirmed track's foot point this frame: source pixels and, with a homography, floor metres."""

    track_id: int
    foot_px: tuple[float, float]
    floor_m: tuple[float, float] | None
    observed: bool


@dataclass(frozen=True, slots=True)
class FrameResult:
    """What one processed frame produced. ``dt`` is the seconds this frame stands for in person-seconds."""

    ts: float
    dt: float
    crossings: tuple[Crossing, ...]
    visible: int
    tracks: tuple[TrackPoint, ...]
    learning: bool = False


@dataclass(frozen=True, slots=True)
class CounterParams:
    """Everything ``Counter`` needs, in source-resolution units; build it with ``from_config``."""

    lines: tuple[CountLine, ...]
    person_size_px: tuple[float, float]
    process_width: int = 320
    process_fps: float = 10.0
    view: View = "top_down"
    roi: tuple[tuple[float, float], ...] | None = None
    homography_points: tuple[PointPair, ...] | None = None
    floor_bounds: tuple[float, float, float, float] | None = None
    heatmap_cell_m: float = 0.5
    foreground: ForegroundParams = field(default_factory=ForegroundParams)
    min_person_fraction: float = 0.3
    max_group_size: int = 3
    confirm_frames: int = 3
    max_missed_frames: int = 6
    gate_persons: float = 1.2

    @classmethod
    def from_config(
        cls,
        config: CameraConfig,
        homography_points: Sequence[PointPair] | None = None,
        floor_bounds: tuple[float, float, float, float] | None = None,
    ) -> "CounterParams":
        """Parameters from a camera config; ``homography_points`` come from its calibration file if it has one.

        ``floor_bounds`` (x0, y0, x1, y1 in metres, e.g. the floor plan) bounds the heatmap grid; without it the
        grid covers the camera's floor footprint.
        """
        pairs = homography_points if homography_points is not None else config.homography_points
        return cls(
            lines=tuple(config.lines),
            person_size_px=config.person_size_px,
            process_width=config.process_width,
            process_fps=config.process_fps,
            view=config.view,
            roi=tuple(config.roi) if config.roi is not None else None,
            homography_points=tuple(pairs) if pairs is not None else None,
            floor_bounds=floor_bounds,
            heatmap_cell_m=config.heatmap_cell_m,
            foreground=ForegroundParams(
                kind=config.background,
                diff_threshold=config.diff_threshold,
                alpha=config.background_alpha,
                lights_change_fraction=config.lights_change_fraction,
                shadow_removal=config.shadow_removal,
            ),
            min_person_fraction=config.min_person_fraction,
            max_group_size=config.max_group_size,
            confirm_frames=config.confirm_frames,
            max_missed_frames=config.max_missed_frames,
        )


class Counter:
    """Counts people crossing directed lines and accumulates floor person-seconds, one frame at a time.

    Built lazily on the first frame (the source size fixes the processing scale). ``process`` expects frames
    of one constant source size, in increasing event time.
    """

    def __init__(self, params: CounterParams) -> None:
        self.params = params
        self.homography = (
            Homography.fit([p.image for p in params.homography_points], [p.floor for p in params.homography_points])
            if params.homography_points
            else None
        )
        self.scale = 1.0
        self.source_size: tuple[int, int] | None = None
        self.heatmap: Heatmap | None = None
        self.totals: dict[str, dict[Direction, int]] = {line.name: {"in": 0, "out": 0} for line in params.lines}
        self._foreground: ForegroundModel | None = None
        self._tracker: Tracker | None = None
        self._blob_params: BlobParams | None = None
        self._lines: list[LineGeometry] = []
        self._states: dict[tuple[int, int], LineState] = {}
        self._pending: dict[int, list[Crossing]] = {}
        self._last_ts: float | None = None

    def _setup(self, width: int, height: int) -> None:
        p = self.params
        self.source_size = (width, height)
        self.scale = min(1.0, p.process_width / width)
        size = (round(height * self.scale), round(width * self.scale))
        self._foreground = ForegroundModel(p.foreground, polygon_mask(size, list(p.roi) if p.roi else None, self.scale))
        pw, ph = p.person_size_px[0] * self.scale, p.person_size_px[1] * self.scale
        row_scale = self._row_scale(size[0]) if p.view == "angled" else None
        self._blob_params = BlobParams(pw, ph, p.view, p.min_person_fraction, p.max_group_size, row_scale)
        self._tracker = Tracker(
            TrackerParams(
                gate_px=p.gate_persons * max(pw, ph), confirm_frames=p.confirm_frames, max_missed=p.max_missed_frames
            )
        )
        s = self.scale
        self._lines = [
            LineGeometry(line.name, (line.p1[0] * s, line.p1[1] * s), (line.p2[0] * s, line.p2[1] * s),
                         line.band_px * s, line.swap)
            for line in p.lines
        ]
        if self.homography is not None:
            bounds = p.floor_bounds or footprint(self.homography, width, height)
            self.heatmap = Heatmap(GridSpec.covering(*bounds, p.heatmap_cell_m))

    def _row_scale(self, rows: int) -> tuple[float, ...] | None:
        """Perspective: a person's size on each processing row relative to the reference row.

        The reference is where ``person_size_px`` was measured: the first line's midpoint (else the image
        centre). Size is taken proportional to image pixels per floor metre across the image at that row.
        """
        if self.homography is None or self.source_size is None:
            return None
        width, height = self.source_size
        if self.params.lines:
            line = self.params.lines[0]
            ref = ((line.p1[0] + line.p2[0]) / 2, (line.p1[1] + line.p2[1]) / 2)
        else:
            ref = (width / 2, height / 2)
        ys = (np.arange(rows) + 0.5) / self.scale
        xs = np.full(rows, ref[0])
        left = self.homography.to_floor(np.stack([xs - 0.5, ys], axis=1))
        right = self.homography.to_floor(np.stack([xs + 0.5, ys], axis=1))
        density = 1.0 / np.maximum(np.hypot(*(right - left).T), 1e-9)
        ref_left, ref_right = self.homography.to_floor([(ref[0] - 0.5, ref[1]), (ref[0] + 0.5, ref[1])])
        ref_density = 1.0 / max(float(np.hypot(*(ref_right - ref_left))), 1e-9)
        return tuple(float(v) for v in np.clip(density / ref_density, 0.2, 5.0))

    @property
    def frame_interval(self) -> float:
        """The nominal seconds between processed frames."""
        return 1.0 / self.params.process_fps

    def process(self, frame_bgr: U8, ts: float) -> FrameResult:
        """Process one source-resolution BGR frame taken at event time ``ts`` (epoch seconds)."""
        if self.source_size is None:
            self._setup(frame_bgr.shape[1], frame_bgr.shape[0])
        assert self._foreground is not None and self._tracker is not None and self._blob_params is not None
        dt = self.frame_interval if self._last_ts is None else max(0.0, ts - self._last_ts)
        self._last_ts = ts
        small = resize_to_width(frame_bgr, self.scale)
        mask = self._foreground.apply(small)
        tracker = self._tracker
        crossings: list[Crossing] = []
        if dt > TRACK_GAP_S:
            self._end_tracks()
        if self._foreground.learning:
            tracker.coast(dt)
        else:
            hints = [t.position for t in tracker.tracks if t.confirmed]
            blobs = detect_blobs(mask, self._blob_params, hints, self._foreground.shadow)
            gate_scale = min(3.0, max(1.0, math.sqrt(dt / self.frame_interval))) if dt > 0 else 1.0
            tracker.step([b.foot for b in blobs], dt, ts, gate_scale)
            crossings = self._count(ts)
        credited = dt if dt <= MAX_GAP_FRAMES * self.frame_interval else self.frame_interval
        points = self._track_points()
        if self.heatmap is not None:
            floor = np.array([tp.floor_m for tp in points if tp.floor_m is not None], dtype=np.float64)
            self.heatmap.add(floor.reshape(-1, 2), credited)
        return FrameResult(ts, credited, tuple(crossings), len(points), tuple(points), self._foreground.learning)

    def _end_tracks(self) -> None:
        """Forget every track and its half-made crossings (they cannot be followed across a gap)."""
        assert self._tracker is not None
        self._tracker.tracks = []
        self._pending.clear()
        self._states.clear()

    def _count(self, ts: float) -> list[Crossing]:
        assert self._tracker is not None
        out: list[Crossing] = []
        for track in self._tracker.ended:
            self._pending.pop(track.track_id, None)
            for index in range(len(self._lines)):
                self._states.pop((track.track_id, index), None)
        for track in self._tracker.tracks:
            if track.observed is not None:
                for index, line in enumerate(self._lines):
                    state = self._states.setdefault((track.track_id, index), LineState())
                    direction = advance(line, state, track.previous, track.observed)
                    if direction is not None:
                        self._pending.setdefault(track.track_id, []).append(
                            Crossing(line.name, direction, track.track_id, ts)
                        )
            if track.confirmed and track.track_id in self._pending:
                for crossing in self._pending.pop(track.track_id):
                    self.totals[crossing.line][crossing.direction] += 1
                    out.append(crossing)
        return out

    def _track_points(self) -> list[TrackPoint]:
        assert self._tracker is not None
        confirmed = [t for t in self._tracker.tracks if t.confirmed]
        if not confirmed:
            return []
        feet = np.array([t.position for t in confirmed], dtype=np.float64) / self.scale
        # A track coasting on past the image edge has left the view: it is neither visible nor on the heatmap.
        assert self.source_size is not None
        width, height = self.source_size
        seen = (feet[:, 0] >= 0) & (feet[:, 0] < width) & (feet[:, 1] >= 0) & (feet[:, 1] < height)
        if not seen.all():
            confirmed = [t for t, keep in zip(confirmed, seen, strict=True) if keep]
            feet = feet[seen]
        floor = self.homography.to_floor(feet) if self.homography is not None else None
        return [
            TrackPoint(
                t.track_id,
                (float(feet[i, 0]), float(feet[i, 1])),
                (float(floor[i, 0]), float(floor[i, 1])) if floor is not None else None,
                t.observed is not None,
            )
            for i, t in enumerate(confirmed)
        ]

    def snapshot_overlay(self, frame_bgr: U8) -> U8:
        """A copy of a source-resolution frame with lines (and in/out arrows), ROI and current tracks drawn."""
        tracks = [(tp.track_id, tp.foot_px) for tp in self._track_points()] if self._tracker is not None else []
        return draw_overlay(frame_bgr, self.params.lines, self.params.roi, tracks)
