"""Ground-truth people: shoppers' itineraries through the zones, passersby on the street, staff on shift."""

from __future__ import annotations

import bisect
import math
import random
from dataclasses import dataclass
from typing import Literal

from simulators.wifi.world import Point, World

Kind = Literal["shopper", "passerby", "staff"]

WALK_SPEED_M_S = (0.8, 1.3)  # in the store
STREET_SPEED_M_S = (1.0, 1.6)
QUICK_VISIT_S = (120.0, 225.0)
LONG_VISIT_S = (1800.0, 3600.0)
REGULAR_VISIT_S = (330.0, 1800.0)  # the lognormal body is clipped to this range
REGULAR_SIGMA = 0.4


@dataclass(frozen=True, slots=True)
class Person:
    """One person's path as time-stamped waypoints (linear in between), and their door times if they entered."""

    pid: str
    kind: Kind
    ts: tuple[float, ...]
    xs: tuple[float, ...]
    ys: tuple[float, ...]
    enter_ts: float | None = None
    exit_ts: float | None = None

    @property
    def appear_ts(self) -> float:
        """When the person enters the simulated area (an end of the street, or the shift start)."""
        return self.ts[0]

    @property
    def leave_ts(self) -> float:
        """When the person leaves the simulated area."""
        return self.ts[-1]

    def position(self, t: float) -> Point:
        """Where the person is at ``t`` (clamped to the ends of the path)."""
        ts = self.ts
        if t <= ts[0]:
            return self.xs[0], self.ys[0]
        if t >= ts[-1]:
            return self.xs[-1], self.ys[-1]
        i = bisect.bisect_right(ts, t)
        t0, t1 = ts[i - 1], ts[i]
        f = 0.0 if t1 == t0 else (t - t0) / (t1 - t0)
        return self.xs[i - 1] + f * (self.xs[i] - self.xs[i - 1]), self.ys[i - 1] + f * (self.ys[i] - self.ys[i - 1])


class PathBuilder:
    """Builds a waypoint list while keeping time monotonic (the store-day simulator extends it)."""

    def __init__(self, t: float, p: Point) -> None:
        self.ts = [t]
        self.pts = [p]

    @property
    def t(self) -> float:
        """The time of the last waypoint."""
        return self.ts[-1]

    @property
    def p(self) -> Point:
        """The last waypoint."""
        return self.pts[-1]

    def walk(self, p: Point, speed: float) -> float:
        """Walk to ``p`` at ``speed``; returns the arrival time."""
        return self.at(self.t + math.dist(self.p, p) / speed, p)

    def at(self, t: float, p: Point) -> float:
        """Be at ``p`` at ``t`` (never earlier than the last waypoint); returns that time."""
        self.ts.append(max(t, self.t))
        self.pts.append(p)
        return self.t

    def person(self, pid: str, kind: Kind, enter_ts: float | None = None, exit_ts: float | None = None) -> Person:
        """The finished path as a ``Person``."""
        return Person(pid, kind, tuple(self.ts), tuple(p[0] for p in self.pts), tuple(p[1] for p in self.pts),
                      enter_ts, exit_ts)


def _stay(path: PathBuilder, world: World, zone: str, seconds: float, rng: random.Random, speed: float) -> None:
    """Spend ``seconds`` in ``zone``: walk to a few random spots there and linger at each."""
    spots = max(1, min(5, 1 + int(seconds / 120)))
    end = path.t + seconds
    slot = seconds / spots
    for j in range(spots):
        target = world.random_point(zone, rng)
        walk_s = min(math.dist(path.p, target) / speed, 0.6 * slot)
        path.at(path.t + walk_s, target)
        path.at(end - (spots - j - 1) * slot, target)


def visit_length(rng: random.Random, quick_share: float, long_share: float, median_s: float) -> float:
    """A planned time inside: quick trips (2–4 min), a lognormal body (median ``median_s``) and long visits."""
    u = rng.random()
    if u < quick_share:
        return rng.uniform(*QUICK_VISIT_S)
    if u < quick_share + long_share:
        return rng.uniform(*LONG_VISIT_S)
    lo, hi = REGULAR_VISIT_S
    return min(hi, max(lo, rng.lognormvariate(math.log(median_s), REGULAR_SIGMA)))


def _street_end(world: World, rng: random.Random) -> Point:
    st = world.street
    return (st.x_min if rng.random() < 0.5 else st.x_max), st.y + rng.uniform(-st.half_width_m, st.half_width_m)


def shopper(pid: str, enter_ts: float, world: World, rng: random.Random, planned_s: float) -> Person:
    """A shopper who reaches the door at ``enter_ts`` and spends about ``planned_s`` inside."""
    street_speed = rng.uniform(*STREET_SPEED_M_S)
    speed = rng.uniform(*WALK_SPEED_M_S)
    start = _street_end(world, rng)
    door = world.door
    kerb = (door[0], -1.0)
    approach_s = (math.dist(start, kerb) / street_speed) + 1.0 / speed
    path = PathBuilder(enter_ts - approach_s, start)
    path.walk(kerb, street_speed)
    path.at(enter_ts, door)

    quick = planned_s < 300
    entrance_s = rng.uniform(5, 15) if quick else rng.uniform(10, 40)
    checkout_s = rng.uniform(30, 75) if quick else rng.uniform(60, 300)
    browse_s = max(30.0, planned_s - entrance_s - checkout_s - 20.0)
    stops = 1 if quick else max(1, min(8, round(browse_s / rng.uniform(150, 360))))
    zones = list(world.shopping_zones)
    plan: list[str] = []
    for _ in range(stops):
        options = [z for z in zones if not plan or z != plan[-1]] or zones
        plan.append(rng.choice(options))
    shares = [rng.gammavariate(2.0, 1.0) for _ in plan]
    total = sum(shares)

    _stay(path, world, world.entrance_zone, entrance_s, rng, speed)
    for zone, share in zip(plan, shares, strict=True):
        _stay(path, world, zone, browse_s * share / total, rng, speed)
    _stay(path, world, world.checkout_zone, checkout_s, rng, speed)
    exit_ts = path.walk(door, speed)
    path.walk(kerb, speed)
    path.walk(_street_end(world, rng), street_speed)
    return path.person(pid, "shopper", enter_ts, exit_ts)


def passerby(pid: str, appear_ts: float, world: World, rng: random.Random) -> Person:
    """Someone walking along the street who never enters; some stop at the shop window for a while."""
    st = world.street
    speed = rng.uniform(*STREET_SPEED_M_S)
    left_to_right = rng.random() < 0.5
    y = st.y + rng.uniform(-st.half_width_m, st.half_width_m)
    a, b = (st.x_min, st.x_max) if left_to_right else (st.x_max, st.x_min)
    path = PathBuilder(appear_ts, (a, y))
    if rng.random() < 0.15:
        window = (rng.uniform(0.0, world.floor.width_m), -rng.uniform(0.6, 1.2))
        path.walk(window, speed)
        path.at(path.t + rng.uniform(20.0, 150.0), window)
    path.walk((b, y), speed)
    return path.person(pid, "passerby")


def staff_member(pid: str, world: World, t0: float, t1: float, rng: random.Random) -> Person:
    """A staff member on shift over [t0, t1], moving between zones (mostly checkout and aisles)."""
    zones = list(world.zone_names)
    weights = [3.0 if z == world.checkout_zone else 0.3 if z == world.entrance_zone else 2.0 for z in zones]
    path = PathBuilder(t0, world.random_point(rng.choices(zones, weights)[0], rng))
    speed = rng.uniform(*WALK_SPEED_M_S)
    while path.t < t1:
        _stay(path, world, rng.choices(zones, weights)[0], rng.uniform(120.0, 900.0), rng, speed)
    return path.person(pid, "staff")


def poisson_times(rng: random.Random, rate_per_h: float, t0: float, t1: float) -> list[float]:
    """Arrival times of a Poisson process with ``rate_per_h`` over [t0, t1)."""
    out: list[float] = []
    if rate_per_h <= 0:
        return out
    t = t0
    while True:
        t += rng.expovariate(rate_per_h / 3600.0)
        if t >= t1:
            return out
        out.append(t)
