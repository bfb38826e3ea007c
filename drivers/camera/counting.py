"""Directed line counting with hysteresis: a track's own step must cross the line *segment*.

Sign convention (see ``CountLine``): ``side(pt) = cross(p2 - p1, pt - p1)``; negative → positive is ``in``.
"""

from dataclasses import dataclass, field
from typing import Literal

Direction = Literal["in", "out"]
Vec = tuple[float, float]


def cross(ax: float, ay: float, bx: float, by: float) -> float:
    """The z component of the 2-D cross product a × b."""
    return ax * by - ay * bx


def segments_intersect(a: Vec, b: Vec, c: Vec, d: Vec) -> bool:
    """True when segment a–b meets segment c–d (touching counts)."""
    d1 = cross(d[0] - c[0], d[1] - c[1], a[0] - c[0], a[1] - c[1])
    d2 = cross(d[0] - c[0], d[1] - c[1], b[0] - c[0], b[1] - c[1])
    d3 = cross(b[0] - a[0], b[1] - a[1], c[0] - a[0], c[1] - a[1])
    d4 = cross(b[0] - a[0], b[1] - a[1], d[0] - a[0], d[1] - a[1])
    if ((d1 > 0 > d2) or (d1 < 0 < d2)) and ((d3 > 0 > d4) or (d3 < 0 < d4)):
        return True

    def on(p: Vec, q: Vec, r: Vec, value: float) -> bool:
        return value == 0 and min(p[0], q[0]) <= r[0] <= max(p[0], q[0]) and min(p[1], q[1]) <= r[1] <= max(p[1], q[1])

    return on(c, d, a, d1) or on(c, d, b, d2) or on(a, b, c, d3) or on(a, b, d, d4)


@dataclass(frozen=True, slots=True)
class LineGeometry:
    """A directed count segment in processing pixels, with its hysteresis band."""

    name: str
    p1: Vec
    p2: Vec
    band: float
    swap: bool = False

    @property
    def length(self) -> float:
        """Segment length in pixels."""
        return float(((self.p2[0] - self.p1[0]) ** 2 + (self.p2[1] - self.p1[1]) ** 2) ** 0.5)

    def signed_distance(self, pt: Vec) -> float:
        """Distance of ``pt`` from the line, positive on the ``in`` target side (before ``swap``)."""
        dx, dy = self.p2[0] - self.p1[0], self.p2[1] - self.p1[1]
        return cross(dx, dy, pt[0] - self.p1[0], pt[1] - self.p1[1]) / self.length

    def direction(self, to_side: int) -> Direction:
        """The count direction of a crossing towards ``to_side`` (+1 or −1)."""
        positive = to_side > 0
        return "in" if positive != self.swap else "out"


@dataclass(slots=True)
class LineState:
    """One track's progress against one line."""

    armed: int = 0  # side (±1) where the track was last at least ``band`` from the line; 0 = not yet
    crossed_to: int = 0  # side (±1) the track's step last crossed the segment towards; 0 = none pending
    counted: set[int] = field(default_factory=set)  # sides already counted (each direction once)


def advance(line: LineGeometry, state: LineState, previous: Vec | None, current: Vec) -> Direction | None:
    """Feed one observed step of a track; returns the direction when it completes a counted crossing."""
    s_cur = line.signed_distance(current)
    if previous is not None:
        s_prev = line.signed_distance(previous)
        if (s_prev < 0 <= s_cur) or (s_prev >= 0 > s_cur):
            to_side = 1 if s_cur >= 0 else -1
            # Crossing the infinite line beside the segment cancels any crossing in progress.
            state.crossed_to = to_side if segments_intersect(previous, current, line.p1, line.p2) else 0
    if abs(s_cur) < line.band or s_cur == 0:
        return None
    side = 1 if s_cur > 0 else -1
    result: Direction | None = None
    if state.crossed_to == side and state.armed == -side and side not in state.counted:
        state.counted.add(side)
        result = line.direction(side)
    if state.crossed_to == side:
        state.crossed_to = 0
    state.armed = side
    return result
