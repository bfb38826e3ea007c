"""Per-window camera aggregates in event time: line counts, occupancy, visible people, heatmap and zone seconds.

Pure: fed ``FrameResult``-shaped values, returns closed windows. The heatmap of a window is stored sparsely as
(flat cell index, person-seconds) pairs: in a 60-s window people touch a few dozen cells of a grid of
thousands, so the sparse form is ~10–50× smaller than a dense float32 array (and stays readable in JSON).
"""

import math
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from drivers.camera.config import CountLine
from drivers.camera.floor import GridSpec, points_in_polygon

if TYPE_CHECKING:
    from drivers.camera.protocol import FrameResult

ENTRIES_KEPT = 1440  # one day of 60-s windows for the WiFi calibration hook


def utc_time(ts: float) -> datetime:
    """The default clock mapping: event time → aware UTC datetime."""
    return datetime.fromtimestamp(ts, UTC)


@dataclass(frozen=True, slots=True)
class LineCounts:
    """Crossings of one line in one window."""

    line: str
    in_count: int
    out_count: int


@dataclass(frozen=True, slots=True)
class ZoneSeconds:
    """Person-seconds spent in one floor zone in one window."""

    zone: str
    seconds: float


@dataclass(frozen=True, slots=True)
class SparseHeatmap:
    """Person-seconds per cell of ``grid``, as (row-major flat index, seconds) pairs for non-zero cells only."""

    grid: GridSpec
    cells: tuple[tuple[int, float], ...]

    def to_dense(self) -> npt.NDArray[np.float32]:
        """The grid as a (ny, nx) float32 array."""
        dense = np.zeros(self.grid.ny * self.grid.nx, dtype=np.float32)
        for index, seconds in self.cells:
            dense[index] = seconds
        return dense.reshape(self.grid.ny, self.grid.nx)

    @property
    def total_seconds(self) -> float:
        """Sum over all cells."""
        return float(sum(seconds for _, seconds in self.cells))


@dataclass(frozen=True, slots=True)
class WindowAggregate:
    """One closed window [start, end) of one camera.

    ``entries``/``exits`` sum the entrance lines; ``occupancy`` is the running in − out (clamped at 0, reset at
    closing time) at the window's last frame and ``occupancy_max`` its peak in the window.
    """

    start: float
    end: float
    lines: tuple[LineCounts, ...]
    entries: int
    exits: int
    occupancy: int
    occupancy_max: int
    visible_mean: float
    visible_max: int
    frames: int
    heatmap: SparseHeatmap | None
    zones: tuple[ZoneSeconds, ...]
    occupancy_resets: int = 0


@dataclass(slots=True)
class _Open:
    start: float
    counts: dict[str, list[int]]
    occupancy_max: int = 0
    visible_sum: int = 0
    visible_max: int = 0
    frames: int = 0
    cells: dict[int, float] = field(default_factory=dict)
    zones: dict[str, float] = field(default_factory=dict)
    resets: int = 0


class Aggregator:
    """Folds frame results into fixed event-time windows (``window_s``, aligned to the epoch).

    ``local_time`` maps an event time to an aware datetime in the store's zone; occupancy resets to zero the
    first time event time reaches ``closing`` (hour, minute) local time each day. Windows without any frame are
    not emitted. Windows close when a later frame arrives or on ``flush``.
    """

    def __init__(
        self,
        lines: Sequence[CountLine],
        window_s: float = 60.0,
        closing: tuple[int, int] = (23, 0),
        local_time: Callable[[float], datetime] = utc_time,
        grid: GridSpec | None = None,
        zones: Sequence[tuple[str, Sequence[tuple[float, float]]]] = (),
    ) -> None:
        self.lines = tuple(lines)
        self.window_s = window_s
        self.closing = closing
        self.local_time = local_time
        self.grid = grid
        self.zones = tuple((name, tuple(polygon)) for name, polygon in zones)
        self.occupancy = 0
        self._entrance = {line.name for line in self.lines if line.entrance}
        self._open: _Open | None = None
        self._next_reset: float | None = None
        self._entries: deque[tuple[float, int]] = deque(maxlen=ENTRIES_KEPT)

    @property
    def entries_per_window(self) -> tuple[tuple[float, int], ...]:
        """(window start, entries) of recent closed windows, oldest first — the WiFi calibration hook's input."""
        return tuple(self._entries)

    def _closing_after(self, ts: float) -> float:
        local = self.local_time(ts)
        hour, minute = self.closing
        candidate = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
        if candidate.timestamp() <= ts:
            candidate = (candidate.replace(tzinfo=None) + timedelta(days=1)).replace(tzinfo=local.tzinfo)
        return candidate.timestamp()

    def add(self, result: "FrameResult") -> list[WindowAggregate]:
        """Fold one frame result in; returns the windows this frame closed (usually none)."""
        ts = result.ts
        start = math.floor(ts / self.window_s) * self.window_s
        closed: list[WindowAggregate] = []
        if self._open is not None and start > self._open.start:
            closed.append(self._close())
        if self._open is None:
            self._open = _Open(start, {line.name: [0, 0] for line in self.lines})
        window = self._open
        if self._next_reset is None:
            self._next_reset = self._closing_after(ts)
        elif ts >= self._next_reset:
            self.occupancy = 0
            window.resets += 1
            self._next_reset = self._closing_after(ts)
        for crossing in result.crossings:
            counts = window.counts.setdefault(crossing.line, [0, 0])
            counts[0 if crossing.direction == "in" else 1] += 1
            if crossing.line in self._entrance:
                self.occupancy = max(0, self.occupancy + (1 if crossing.direction == "in" else -1))
                window.occupancy_max = max(window.occupancy_max, self.occupancy)
        window.occupancy_max = max(window.occupancy_max, self.occupancy)
        window.frames += 1
        window.visible_sum += result.visible
        window.visible_max = max(window.visible_max, result.visible)
        floor = np.array([tp.floor_m for tp in result.tracks if tp.floor_m is not None], dtype=np.float64)
        floor = floor.reshape(-1, 2)
        if len(floor) and result.dt > 0:
            if self.grid is not None:
                for index in self.grid.cell_indices(floor).tolist():
                    if index >= 0:
                        window.cells[index] = window.cells.get(index, 0.0) + result.dt
            for name, polygon in self.zones:
                inside = int(points_in_polygon(floor, polygon).sum())
                if inside:
                    window.zones[name] = window.zones.get(name, 0.0) + inside * result.dt
        return closed

    def flush(self) -> list[WindowAggregate]:
        """Close the open window, if any (at shutdown or end of a file)."""
        return [self._close()] if self._open is not None else []

    def _close(self) -> WindowAggregate:
        window = self._open
        assert window is not None
        self._open = None
        lines = tuple(LineCounts(name, c[0], c[1]) for name, c in window.counts.items())
        entries = sum(lc.in_count for lc in lines if lc.line in self._entrance)
        exits = sum(lc.out_count for lc in lines if lc.line in self._entrance)
        self._entries.append((window.start, entries))
        heatmap = (
            SparseHeatmap(self.grid, tuple(sorted((i, round(s, 3)) for i, s in window.cells.items())))
            if self.grid is not None
            else None
        )
        return WindowAggregate(
            start=window.start,
            end=window.start + self.window_s,
            lines=lines,
            entries=entries,
            exits=exits,
            occupancy=self.occupancy,
            occupancy_max=window.occupancy_max,
            visible_mean=window.visible_sum / window.frames if window.frames else 0.0,
            visible_max=window.visible_max,
            frames=window.frames,
            heatmap=heatmap,
            zones=tuple(ZoneSeconds(name, round(window.zones.get(name, 0.0), 3)) for name, _ in self.zones),
            occupancy_resets=window.resets,
        )
