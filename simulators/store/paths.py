"""Walking paths as time-stamped waypoints: stays in zones, routes round the camera's keep-out, street walks."""

from __future__ import annotations

import random

from simulators.store.site import STREET, WALL_MARGIN_M, Site
from simulators.wifi.people import Kind, PathBuilder, Person
from simulators.wifi.world import Point

STREET_SPEED_M_S = (1.0, 1.6)
WINDOW_SHOPPERS = 0.12  # passersby who stop at the shop window for a while
STAFF_ZONE_WEIGHTS = {"checkout": 2.0, "entrance": 0.4, "promotion": 1.0}  # other zones (aisles) weigh 2


class StorePath(PathBuilder):
    """A path in the store day: routes round the camera's keep-out rectangle, waits, and group members' offsets."""

    def go(self, site: Site, p: Point, speed: float) -> float:
        """Walk to ``p`` inside the store, round the camera's keep-out rectangle; returns the arrival time."""
        for q in site.route(self.p, p):
            self.walk(q, speed)
        return self.t

    def wait_until(self, t: float) -> float:
        """Stand where the path is until ``t``."""
        return self.at(t, self.p) if t > self.t else self.t

    def member(self, pid: str, kind: Kind, offset: Point = (0.0, 0.0), width: float | None = None,
               depth: float | None = None) -> Person:
        """The path as a ``Person``, shifted by ``offset`` (a group member) and kept off the walls indoors."""
        xs, ys = [], []
        for px, py in self.pts:
            x, y = px + offset[0], py + offset[1]
            if y > 0 and width is not None and depth is not None:
                x, y = min(max(x, 0.25), width - 0.25), min(y, depth - 0.25)
            xs.append(x)
            ys.append(y)
        return Person(pid, kind, tuple(self.ts), tuple(xs), tuple(ys), *door_times(self.ts, ys))


def door_times(ts: list[float] | tuple[float, ...], ys: list[float] | tuple[float, ...]) -> tuple[float | None,
                                                                                                      float | None]:
    """When a path first crosses the store front inwards (y from < 0 to >= 0) and last crosses it outwards."""
    enter = leave = None
    for i in range(1, len(ts)):
        y0, y1 = ys[i - 1], ys[i]
        if (y0 < 0 <= y1) or (y0 >= 0 > y1):
            at = ts[i - 1] + (0.0 - y0) / (y1 - y0) * (ts[i] - ts[i - 1])
            if y1 >= 0:
                enter = at if enter is None else enter
            else:
                leave = at
    return enter, leave


def stay(path: StorePath, site: Site, zone: str, seconds: float, rng: random.Random, speed: float) -> None:
    """Spend about ``seconds`` in ``zone``: walk to a few random spots there and linger at each."""
    spots = max(1, min(4, 1 + int(seconds / 120)))
    end = path.t + seconds
    for j in range(spots):
        path.go(site, site.spot(zone, rng), speed)
        path.wait_until(end - (spots - j - 1) * seconds / spots)


def street_end(rng: random.Random) -> Point:
    """One end of the pavement, at a random distance from the store front."""
    return (STREET.x_min if rng.random() < 0.5 else STREET.x_max), street_y(rng)


def street_y(rng: random.Random) -> float:
    """A random line along the pavement."""
    return STREET.y + rng.uniform(-STREET.half_width_m, STREET.half_width_m)


def passerby(pid: str, appear_ts: float, site: Site, rng: random.Random) -> Person:
    """Someone walking the pavement from one end to the other who never enters; some stop at the shop window."""
    speed = rng.uniform(*STREET_SPEED_M_S)
    y = street_y(rng)
    a, b = (STREET.x_min, STREET.x_max) if rng.random() < 0.5 else (STREET.x_max, STREET.x_min)
    path = StorePath(appear_ts, (a, y))
    if rng.random() < WINDOW_SHOPPERS:
        # The window beside the door's camera view: step out of the walking line to it and back.
        x = rng.uniform(site.keep_out[1] + 1.0, site.width - WALL_MARGIN_M)
        path.walk((x, y), speed)
        path.walk((x, -rng.uniform(0.6, 1.2)), speed)
        path.wait_until(path.t + rng.uniform(20.0, 150.0))
        path.walk((x, y), speed)
    path.walk((b, y), speed)
    return path.member(pid, "passerby")


def staff_member(pid: str, site: Site, t0: float, t1: float, rng: random.Random, till: Point | None) -> Person:
    """A member of staff on the floor all shift (in and out by the back door); a cashier mostly at a till."""
    zones = list(site.world.zone_names)
    weights = [STAFF_ZONE_WEIGHTS.get(z, 2.0) for z in zones]
    speed = rng.uniform(0.8, 1.2)
    desk = None if till is None else (till[0], till[1] - 0.9)
    path = StorePath(t0, desk if desk is not None else site.spot(rng.choices(zones, weights)[0], rng))
    while path.t < t1:
        if desk is not None and rng.random() < 0.8:
            path.go(site, desk, speed)
            path.wait_until(path.t + rng.uniform(600.0, 2400.0))
        else:
            stay(path, site, rng.choices(zones, weights)[0], rng.uniform(120.0, 900.0), rng, speed)
    return path.member(pid, "staff")
