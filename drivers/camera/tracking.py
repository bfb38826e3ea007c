"""Multi-object tracking of foot points: constant-velocity prediction, optimal gated assignment, track life cycle.

Pure numpy and Python. Positions are processing pixels, velocities pixels per second, so a dropped frame only
widens one prediction step.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

INF = math.inf


def hungarian(cost: npt.NDArray[np.float64]) -> list[tuple[int, int]]:
    """Minimum-cost one-to-one assignment (rows × columns, any shape); returns (row, column) pairs.

    The O(n³) shortest-augmenting-path form of the Hungarian algorithm (Kuhn–Munkres with potentials). Entries
    that are ``inf`` are forbidden; a row with every entry forbidden stays unassigned.
    """
    rows, cols = cost.shape
    if rows == 0 or cols == 0:
        return []
    transposed = rows > cols
    matrix = cost.T if transposed else cost
    n, m = matrix.shape
    finite = matrix[np.isfinite(matrix)]
    # Forbidden pairs get a cost larger than any complete assignment of allowed pairs, then are dropped.
    big = (float(np.abs(finite).sum()) + 1.0) * 2.0 if finite.size else 1.0
    a = np.where(np.isfinite(matrix), matrix, big).tolist()
    u = [0.0] * (n + 1)
    v = [0.0] * (m + 1)
    p = [0] * (m + 1)
    way = [0] * (m + 1)
    for i in range(1, n + 1):
        p[0] = i
        j0 = 0
        minv = [INF] * (m + 1)
        used = [False] * (m + 1)
        while True:
            used[j0] = True
            i0 = p[j0]
            delta = INF
            j1 = 0
            row = a[i0 - 1]
            for j in range(1, m + 1):
                if not used[j]:
                    current = row[j - 1] - u[i0] - v[j]
                    if current < minv[j]:
                        minv[j] = current
                        way[j] = j0
                    if minv[j] < delta:
                        delta = minv[j]
                        j1 = j
            for j in range(m + 1):
                if used[j]:
                    u[p[j]] += delta
                    v[j] -= delta
                else:
                    minv[j] -= delta
            j0 = j1
            if p[j0] == 0:
                break
        while True:
            j1 = way[j0]
            p[j0] = p[j1]
            j0 = j1
            if j0 == 0:
                break
    pairs: list[tuple[int, int]] = []
    for j in range(1, m + 1):
        i = p[j]
        if i and math.isfinite(float(matrix[i - 1, j - 1])):
            pairs.append((j - 1, i - 1) if transposed else (i - 1, j - 1))
    return sorted(pairs)


@dataclass(frozen=True, slots=True)
class TrackerParams:
    """Tracking tunables (processing pixels and frames)."""

    gate_px: float
    confirm_frames: int = 3
    max_missed: int = 6
    tentative_max_missed: int = 1
    position_gain: float = 0.8
    velocity_gain: float = 0.35
    max_speed_px_s: float = 1e9


@dataclass(slots=True)
class Track:
    """One tracked person: filtered state, last observation and life-cycle counters."""

    track_id: int
    x: float
    y: float
    vx: float = 0.0
    vy: float = 0.0
    hits: int = 1
    missed: int = 0
    confirmed: bool = False
    observed: tuple[float, float] | None = None
    previous: tuple[float, float] | None = None
    first_ts: float = 0.0
    history: list[tuple[float, float]] = field(default_factory=list)

    @property
    def position(self) -> tuple[float, float]:
        """The filtered (or, while coasting, predicted) foot point."""
        return (self.x, self.y)


class Tracker:
    """Keeps tracks across frames: predict, assign detections one-to-one within a gate, update, confirm, end."""

    def __init__(self, params: TrackerParams) -> None:
        self.params = params
        self.tracks: list[Track] = []
        self._next_id = 1
        self.ended: list[Track] = []

    def predictions(self, dt: float) -> list[tuple[float, float]]:
        """Where each current track is expected ``dt`` seconds on (same order as ``tracks``)."""
        return [(t.x + t.vx * dt, t.y + t.vy * dt) for t in self.tracks]

    def coast(self, dt: float) -> None:
        """Advance every track ``dt`` seconds along its velocity without counting a miss (no detections exist)."""
        for track in self.tracks:
            track.x += track.vx * dt
            track.y += track.vy * dt
            track.observed = None
        self.ended = []

    def step(
        self, detections: Sequence[tuple[float, float]], dt: float, ts: float, gate_scale: float = 1.0
    ) -> list[Track]:
        """Advance by ``dt`` seconds with this frame's detections; returns the live tracks.

        ``gate_scale`` widens the gate after a gap (several frame intervals without detections). Tracks that
        end in this step are left in ``ended`` until the next step.
        """
        p = self.params
        gate = p.gate_px * gate_scale
        self.ended = []
        predicted = self.predictions(dt)
        n, m = len(predicted), len(detections)
        cost = np.full((n, m), INF)
        if n and m:
            pred = np.asarray(predicted, dtype=np.float64)
            det = np.asarray(detections, dtype=np.float64)
            distance = np.hypot(pred[:, None, 0] - det[None, :, 0], pred[:, None, 1] - det[None, :, 1])
            # Confirmed tracks win ties against tentative ones: a small bias, well under the gate.
            bias = np.array([0.0 if t.confirmed else 0.05 * gate for t in self.tracks])[:, None]
            cost = np.where(distance <= gate, distance + bias, INF)
        pairs = hungarian(cost)
        matched_tracks = {i for i, _ in pairs}
        matched_detections = {j for _, j in pairs}
        for i, j in pairs:
            self._update(self.tracks[i], predicted[i], detections[j], dt)
        survivors: list[Track] = []
        for index, track in enumerate(self.tracks):
            if index not in matched_tracks:
                track.x, track.y = predicted[index]
                track.missed += 1
                track.observed = None
                limit = p.max_missed if track.confirmed else p.tentative_max_missed
                if track.missed > limit:
                    self.ended.append(track)
                    continue
            survivors.append(track)
        for j, (x, y) in enumerate(detections):
            if j not in matched_detections:
                track = Track(self._next_id, x, y, observed=(x, y), first_ts=ts, history=[(x, y)])
                track.confirmed = p.confirm_frames <= 1
                self._next_id += 1
                survivors.append(track)
        self.tracks = survivors
        return self.tracks

    def _update(self, track: Track, predicted: tuple[float, float], z: tuple[float, float], dt: float) -> None:
        p = self.params
        rx, ry = z[0] - predicted[0], z[1] - predicted[1]
        if track.hits == 1 and dt > 0:
            # Second sighting: the velocity is simply the displacement.
            track.vx, track.vy = (z[0] - track.x) / dt, (z[1] - track.y) / dt
        elif dt > 0:
            track.vx += p.velocity_gain * rx / dt
            track.vy += p.velocity_gain * ry / dt
        speed = math.hypot(track.vx, track.vy)
        if speed > p.max_speed_px_s:
            track.vx, track.vy = track.vx * p.max_speed_px_s / speed, track.vy * p.max_speed_px_s / speed
        track.x = predicted[0] + p.position_gain * rx
        track.y = predicted[1] + p.position_gain * ry
        track.previous = track.history[-1] if track.history else None
        track.observed = z
        track.history.append(z)
        if len(track.history) > 2:
            del track.history[0]
        track.hits += 1
        track.missed = 0
        if not track.confirmed and track.hits >= p.confirm_frames:
            track.confirmed = True
