"""Simulated people: their looks and their floor paths, planned so that scenario events happen on cue."""

import itertools
import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from simulators.camera.homography import Array, FloorMap
from simulators.camera.scene import CountLine, Direction, Scenario

PersonKind = Literal["walker", "group", "stopper", "turn_back", "loiterer"]
BGR = tuple[int, int, int]

FLOOR_BGR: BGR = (150, 160, 168)  # mean colour of the floor texture
ANGLED_FORESHORTEN = 0.9  # apparent height / true height of a standing person in the angled view
SPEED_M_S = (0.6, 1.8)
HAIR: tuple[BGR, ...] = ((30, 32, 38), (28, 45, 72), (45, 80, 120), (150, 165, 175), (70, 75, 80))


@dataclass(frozen=True)
class Look:
    """How one person is drawn: body size in metres and clothing colours (BGR)."""

    width_m: float  # shoulder width
    depth_m: float  # chest-to-back depth, seen from above
    height_m: float
    head_m: float  # head diameter
    shirt: BGR
    trousers: BGR
    hair: BGR


@dataclass(frozen=True, eq=False)
class Person:
    """One simulated person: a floor position (metres) for each frame from ``first_frame`` on."""

    id: int
    kind: PersonKind
    group: int | None
    line: str  # the line this person was sent toward
    look: Look
    first_frame: int
    floor: Array  # (n, 2)


@dataclass(frozen=True)
class _Path:
    times: Array  # keyframe times (s) from the start of the event
    points: Array  # (k, 2) floor keyframes
    look: Look
    walk: Array  # unit floor direction of the main walk, for the sway


def extent_px(kind: str, look: Look, foot: Array, scale: Array) -> Array:
    """Image boxes (n, 4: x0, y0, x1, y1) that hold each person and shadow, at foot points with px/m scales."""
    x, y = foot[:, 0], foot[:, 1]
    if kind == "top-down":
        r = (0.5 * look.width_m + 0.25) * scale
        return np.stack([x - r, y - r, x + r, y + r], axis=1)
    half = (0.5 * look.width_m + 0.4) * scale
    top = (look.height_m + 0.1) * scale * ANGLED_FORESHORTEN
    return np.stack([x - half, y - top, x + half, y + 0.3 * scale], axis=1)


def lateral_scale(fmap: FloorMap, floor: Array) -> Array:
    """Image pixels per metre across the view (floor x direction) at each floor point."""
    return fmap.px_per_m(floor, (1.0, 0.0))


def plan_people(scenario: Scenario, fmap: FloorMap) -> list[Person]:
    """Every person of the scenario with a per-frame floor track, placed to keep strangers min_gap_m apart."""
    rng = np.random.default_rng(scenario.seed)
    specs = _event_specs(scenario, rng)
    placed: list[Person] = []
    next_group = 0
    for index, (kind, line, direction) in enumerate(specs):
        best: list[_Member] = []
        best_gap = -math.inf
        for attempt in range(30):
            paths = _event_paths(kind, line, direction, scenario, fmap, rng)
            duration = max(float(p.times[-1]) for p in paths)
            span = max(scenario.duration_s - duration, 0.0)
            first = (index + rng.uniform()) / len(specs) * span if attempt == 0 else rng.uniform(0.0, span)
            group = next_group if kind == "group" else None
            members = [_sample(p, first, scenario, rng, kind, group, line.name) for p in paths]
            members = [m for m in members if len(m.floor)]
            gap = _closest(members, placed)
            if gap > best_gap:
                best, best_gap = members, gap
            if gap >= scenario.min_gap_m:
                break
        next_group += kind == "group"
        for member in best:
            placed.append(Person(len(placed), member.kind, member.group, member.line, member.look,
                                 member.first_frame, member.floor))
    return placed


def _event_specs(scenario: Scenario, rng: np.random.Generator) -> list[tuple[PersonKind, CountLine, Direction]]:
    counts: tuple[tuple[PersonKind, int], ...] = (
        ("walker", scenario.walkers), ("group", scenario.groups), ("stopper", scenario.stoppers),
        ("turn_back", scenario.turn_backs), ("loiterer", scenario.loiterers))
    lines = scenario.lines
    specs: list[tuple[PersonKind, CountLine, Direction]] = []
    for kind, count in counts:
        for j in range(count):
            direction: Direction = "in" if (j // len(lines)) % 2 == 0 else "out"
            specs.append((kind, lines[j % len(lines)], direction))
    order = rng.permutation(len(specs))
    return [specs[i] for i in order]


def random_look(scenario: Scenario, rng: np.random.Generator) -> Look:
    """A random body and outfit as the scenario dresses its people (``low_contrast`` share near the floor colour)."""
    return _look(scenario, rng)


def _look(scenario: Scenario, rng: np.random.Generator) -> Look:
    width = rng.uniform(0.40, 0.62)
    if rng.uniform() < scenario.low_contrast:
        shirt = tuple(int(np.clip(c + rng.integers(-22, 23), 0, 255)) for c in FLOOR_BGR)
    else:
        shirt = tuple(int(c) for c in rng.integers(15, 240, 3))
    trousers = tuple(int(c) for c in rng.integers(20, 120, 3))
    hair = HAIR[int(rng.integers(len(HAIR)))]
    return Look(width, width * rng.uniform(0.5, 0.62), rng.uniform(1.55, 1.9), rng.uniform(0.17, 0.22),
                shirt, trousers, hair)  # type: ignore[arg-type]


def _rotate(v: Array, degrees: float) -> Array:
    a = math.radians(degrees)
    return np.array([v[0] * math.cos(a) - v[1] * math.sin(a), v[0] * math.sin(a) + v[1] * math.cos(a)])


def _line_floor(line: CountLine, fmap: FloorMap) -> tuple[Array, Array, Array]:
    """The line's floor end points and the unit floor normal pointing to its ``in`` side."""
    a, b = fmap.to_floor([line.p1, line.p2])
    d = (b - a) / np.linalg.norm(b - a)
    normal = np.array([-d[1], d[0]])
    probe = fmap.to_image(a + 0.5 * (b - a) + 0.2 * normal)[0]
    (x1, y1), (x2, y2) = line.p1, line.p2
    if (x2 - x1) * (probe[1] - y1) - (y2 - y1) * (probe[0] - x1) < 0:
        normal = -normal
    return a, b, normal


def _exit_distance(scenario: Scenario, fmap: FloorMap, look: Look, start: Array, walk: Array) -> float:
    """Metres along ``walk`` from ``start`` until the person and shadow are wholly outside the image."""
    steps = np.arange(0.2, 40.0, 0.1)
    pts = start + steps[:, None] * walk
    box = extent_px(scenario.kind, look, fmap.to_image(pts), lateral_scale(fmap, pts))
    w, h = scenario.size
    outside = (box[:, 2] < 0) | (box[:, 0] > w) | (box[:, 3] < 0) | (box[:, 1] > h)
    return float(steps[int(np.argmax(outside))]) if outside.any() else float(steps[-1])


def _event_paths(kind: PersonKind, line: CountLine, direction: Direction, scenario: Scenario, fmap: FloorMap,
                 rng: np.random.Generator) -> list[_Path]:
    a, b, normal = _line_floor(line, fmap)
    length = float(np.linalg.norm(b - a))
    sign = 1.0 if direction == "in" else -1.0
    if kind == "group":
        return _group_paths(a, b, length, sign * normal, scenario, fmap, rng)
    look = _look(scenario, rng)
    walk = _rotate(sign * normal, rng.uniform(-20, 20))
    cross = a + rng.uniform(0.12, 0.88) * (b - a)
    back = _exit_distance(scenario, fmap, look, cross, -walk)
    ahead = _exit_distance(scenario, fmap, look, cross, walk)
    start, end = cross - back * walk, cross + ahead * walk
    speed = rng.uniform(*SPEED_M_S)
    side = np.array([-walk[1], walk[0]])
    along = float(fmap.px_per_m(cross, walk)[0])  # image px per metre along the walk at the line
    if kind == "walker":
        return [_path([start, cross, end], [speed, speed], [], look, walk)]
    if kind == "stopper":
        stop_at = _stop_point(start, end, scenario, fmap, rng)
        return [_path([start, stop_at, stop_at, end], [speed, 0.0, speed], [rng.uniform(2, 6)], look, walk)]
    if kind == "turn_back":
        turn = cross - rng.uniform(35, 100) / along * walk
        home = start + rng.uniform(-0.6, 0.6) * side
        return [_path([start, turn, turn, home], [speed, 0.0, speed * rng.uniform(0.8, 1.2)],
                      [rng.uniform(0.3, 2.0)], look, walk)]
    return [_loiter_path(start, cross, end, walk, side, along, speed, look, rng)]


def _loiter_path(start: Array, cross: Array, end: Array, walk: Array, side: Array, along: float, speed: float,
                 look: Look, rng: np.random.Generator) -> _Path:
    """Approach the line, dither across it by 3-9 px for 3-8 s, then cross (60 %) or go back."""
    points = [start, cross - rng.uniform(4, 9) / along * walk]
    times = [0.0, float(np.linalg.norm(points[1] - start)) / speed]
    budget, lateral, sign = rng.uniform(3, 8), 0.0, 1.0
    while budget > 0:
        step = rng.uniform(0.5, 1.2)
        if rng.uniform() < 0.3:
            points.append(points[-1])
        else:
            lateral = float(np.clip(lateral + rng.uniform(-0.08, 0.08), -0.3, 0.3))
            points.append(cross + sign * rng.uniform(3, 9) / along * walk + lateral * side)
            sign = -sign
        times.append(times[-1] + step)
        budget -= step
    goal = end if rng.uniform() < 0.6 else start + rng.uniform(-0.6, 0.6) * side
    points.append(goal)
    times.append(times[-1] + float(np.linalg.norm(goal - points[-2])) / speed)
    return _Path(np.array(times), np.array(points), look, walk)


def _group_paths(a: Array, b: Array, length: float, toward: Array, scenario: Scenario, fmap: FloorMap,
                 rng: np.random.Generator) -> list[_Path]:
    """Two or three people side by side, shoulders touching or nearly, at one common speed."""
    looks = [_look(scenario, rng) for _ in range(int(rng.choice([2, 2, 3])))]
    walk = _rotate(toward, rng.uniform(-10, 10))
    side = np.array([-walk[1], walk[0]])
    offsets = [0.0]
    for left, right in itertools.pairwise(looks):
        offsets.append(offsets[-1] + 0.5 * (left.width_m + right.width_m) * rng.uniform(0.9, 1.05))
    centre = 0.5 * offsets[-1]
    offsets = [o - centre for o in offsets]
    margin = (centre + 0.35) / length
    cross = a + rng.uniform(0.06 + margin, 0.94 - margin) * (b - a) if margin < 0.4 else 0.5 * (a + b)
    speed = rng.uniform(0.7, 1.4)
    anchors = [cross + off * side + rng.uniform(-0.12, 0.12) * walk for off in offsets]
    back = max(_exit_distance(scenario, fmap, look, p, -walk) for look, p in zip(looks, anchors, strict=True))
    ahead = max(_exit_distance(scenario, fmap, look, p, walk) for look, p in zip(looks, anchors, strict=True))
    return [_path([p - back * walk, p, p + ahead * walk], [speed, speed], [], look, walk)
            for look, p in zip(looks, anchors, strict=True)]


def _path(points: list[Array], speeds: list[float], pauses: list[float], look: Look, walk: Array) -> _Path:
    """Keyframes from way points; a zero speed marks a pause whose length comes from ``pauses`` in order."""
    times = [0.0]
    waits = iter(pauses)
    for p, q, v in zip(points, points[1:], speeds, strict=False):
        times.append(times[-1] + (next(waits) if v == 0 else float(np.linalg.norm(q - p)) / v))
    return _Path(np.array(times), np.array(points), look, walk)


def _stop_point(start: Array, end: Array, scenario: Scenario, fmap: FloorMap, rng: np.random.Generator) -> Array:
    """A point on the walk, well inside the image and at least 40 px from every counting line."""
    fractions = np.linspace(0.0, 1.0, 200)
    pts = start + fractions[:, None] * (end - start)
    img = fmap.to_image(pts)
    w, h = scenario.size
    ok = (img[:, 0] > 40) & (img[:, 0] < w - 40) & (img[:, 1] > 40) & (img[:, 1] < h - 40)
    for line in scenario.lines:
        (x1, y1), (x2, y2) = line.p1, line.p2
        dist = np.abs((x2 - x1) * (img[:, 1] - y1) - (y2 - y1) * (img[:, 0] - x1)) / math.hypot(x2 - x1, y2 - y1)
        ok &= dist >= 40
    choices = np.flatnonzero(ok)
    return np.asarray(pts[int(rng.choice(choices))] if len(choices) else pts[len(pts) // 4])


@dataclass(frozen=True, eq=False)
class _Member:
    kind: PersonKind
    group: int | None
    line: str
    look: Look
    first_frame: int
    floor: Array


def _sample(path: _Path, start_s: float, scenario: Scenario, rng: np.random.Generator, kind: PersonKind,
            group: int | None, line: str) -> _Member:
    """Floor positions at each frame of the event, with a small sway while walking."""
    fps = scenario.fps
    first = math.ceil(start_s * fps - 1e-9)
    last = min(math.floor((start_s + path.times[-1]) * fps + 1e-9), scenario.frame_count - 1)
    t = np.arange(first, last + 1) / fps - start_s
    floor = np.stack([np.interp(t, path.times, path.points[:, i]) for i in range(2)], axis=1)
    if len(floor) > 2:
        speed = np.linalg.norm(np.gradient(floor, axis=0), axis=1) * fps
        sway = 0.03 * np.sin(2 * math.pi * 1.0 * t + rng.uniform(0, 2 * math.pi)) * np.clip(speed / 0.5, 0, 1)
        floor = floor + sway[:, None] * np.array([-path.walk[1], path.walk[0]])
    return _Member(kind, group, line, path.look, first, floor)


def _closest(members: list[_Member], placed: list[Person]) -> float:
    """Smallest floor distance between any candidate member and any person already placed, at equal frames."""
    gap = math.inf
    for m in members:
        m_end = m.first_frame + len(m.floor)
        for p in placed:
            lo, hi = max(m.first_frame, p.first_frame), min(m_end, p.first_frame + len(p.floor))
            if lo < hi:
                a = m.floor[lo - m.first_frame:hi - m.first_frame]
                b = p.floor[lo - p.first_frame:hi - p.first_frame]
                gap = min(gap, float(np.linalg.norm(a - b, axis=1).min()))
    return gap
