"""The simulated world: the floor plan with its zones, the street in front of the store, and the sniffers."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from edge.config.models import FloorPlan, Zone

Point = tuple[float, float]
FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

# Height of a phone in a hand or pocket; the vertical offset to a ceiling-mounted sniffer keeps d > 0.
DEVICE_HEIGHT_M = 1.2


@dataclass(frozen=True, slots=True)
class Sniffer:
    """One sniffer: where it hangs, which channel it listens on, and how its radio departs from the ideal."""

    name: str
    x: float
    y: float
    channel: int = 6
    hop: tuple[int, ...] = ()  # a channel plan; empty means it stays on ``channel``
    hop_dwell_s: float = 0.25
    sensitivity_dbm: float = -92.0
    offset_db: float = 0.0  # this unit's RSSI bias (antenna, cable, enclosure)
    antennas: int = 1  # 2 writes extended radiotap presence bitmaps with a signal per antenna
    height_m: float = 2.5

    def __post_init__(self) -> None:
        if self.antennas not in (1, 2):
            raise ValueError(f"sniffer {self.name}: antennas must be 1 or 2")
        if self.hop_dwell_s <= 0:
            raise ValueError(f"sniffer {self.name}: hop_dwell_s must be positive")

    @property
    def channels(self) -> frozenset[int]:
        """Every channel this sniffer ever listens on."""
        return frozenset(self.hop) if self.hop else frozenset((self.channel,))

    def channel_at(self, ts: float) -> int:
        """The channel the sniffer listens on at ``ts`` (hopping plans are aligned to the epoch)."""
        if not self.hop:
            return self.channel
        return self.hop[int(ts // self.hop_dwell_s) % len(self.hop)]


@dataclass(frozen=True, slots=True)
class Street:
    """The pavement in front of the store (y < 0), walked along x by passersby and arriving shoppers."""

    y: float = -4.0
    half_width_m: float = 1.5
    x_min: float = -30.0
    x_max: float = 54.0


@dataclass(frozen=True, slots=True)
class World:
    """A store: floor plan and zones, door on the front edge (y = 0), street, sniffers, fixed devices."""

    floor: FloorPlan
    sniffers: tuple[Sniffer, ...]
    door: Point = (3.0, 0.0)
    street: Street = field(default_factory=Street)
    entrance_zone: str = "entrance"
    checkout_zone: str = "checkout"
    wall_loss_db: float = 8.0  # extra loss between the street and the floor (store front)
    infrastructure: tuple[Point, ...] = ((22.5, 15.5), (0.5, 10.0), (23.5, 0.5))

    def __post_init__(self) -> None:
        names = [zone.name for zone in self.floor.zones]
        for needed in (self.entrance_zone, self.checkout_zone):
            if needed not in names:
                raise ValueError(f"world needs a zone named {needed!r}; zones are {names}")
        if not self.shopping_zones:
            raise ValueError("world needs at least one zone besides entrance and checkout")
        if self.door[1] != 0.0 or not 0.0 <= self.door[0] <= self.floor.width_m:
            raise ValueError("the door must lie on the front edge of the floor (y = 0)")
        if len({s.name for s in self.sniffers}) != len(self.sniffers):
            raise ValueError("sniffer names must be unique")
        if self.street.y + self.street.half_width_m >= 0:
            raise ValueError("the street must lie in front of the store (y < 0)")

    @property
    def zone_names(self) -> tuple[str, ...]:
        """Zone names in floor-plan order."""
        return tuple(zone.name for zone in self.floor.zones)

    @property
    def shopping_zones(self) -> tuple[str, ...]:
        """Zones shoppers browse: every zone except the entrance and checkout."""
        return tuple(n for n in self.zone_names if n not in (self.entrance_zone, self.checkout_zone))

    def inside(self, x: float, y: float) -> bool:
        """Whether a point lies on the sales floor."""
        return 0.0 <= x <= self.floor.width_m and 0.0 <= y <= self.floor.depth_m

    def zone(self, name: str) -> Zone:
        """The zone called ``name``."""
        for zone in self.floor.zones:
            if zone.name == name:
                return zone
        raise KeyError(name)

    def random_point(self, zone_name: str, rng: random.Random, margin: float = 0.4) -> Point:
        """A uniformly random point inside a zone, kept ``margin`` metres off the outer walls."""
        polygon = self.zone(zone_name).polygon
        xs = [p[0] for p in polygon]
        ys = [p[1] for p in polygon]
        x_lo, x_hi = max(min(xs), margin), min(max(xs), self.floor.width_m - margin)
        y_lo, y_hi = max(min(ys), margin), min(max(ys), self.floor.depth_m - margin)
        for _ in range(1000):
            x, y = rng.uniform(x_lo, x_hi), rng.uniform(y_lo, y_hi)
            if point_in_polygon(x, y, polygon):
                return x, y
        raise ValueError(f"zone {zone_name!r} is too small to place a person in")

    def zone_indices(self, xs: FloatArray, ys: FloatArray) -> IntArray:
        """Zone index (floor-plan order) per point; -1 off the floor; floor points in no polygon go to the nearest."""
        out = np.full(xs.shape, -1, dtype=np.int64)
        on_floor = (xs >= 0) & (xs <= self.floor.width_m) & (ys >= 0) & (ys <= self.floor.depth_m)
        for index, zone in enumerate(self.floor.zones):
            hit = on_floor & (out < 0) & _points_in_polygon(xs, ys, zone.polygon)
            out[hit] = index
        for i in np.flatnonzero(on_floor & (out < 0)):  # boundary points the ray test left out
            out[i] = self._nearest_zone(float(xs[i]), float(ys[i]))
        return out

    def _nearest_zone(self, x: float, y: float) -> int:
        best, best_d = 0, math.inf
        for index, zone in enumerate(self.floor.zones):
            poly = zone.polygon
            for (ax, ay), (bx, by) in zip(poly, [*poly[1:], poly[0]], strict=True):
                d = _segment_distance(x, y, ax, ay, bx, by)
                if d < best_d:
                    best, best_d = index, d
        return best


def point_in_polygon(x: float, y: float, polygon: list[Point]) -> bool:
    """Ray-casting point-in-polygon test."""
    inside = False
    n = len(polygon)
    for i in range(n):
        ax, ay = polygon[i]
        bx, by = polygon[(i + 1) % n]
        if (ay > y) != (by > y) and x < ax + (y - ay) * (bx - ax) / (by - ay):
            inside = not inside
    return inside


def _points_in_polygon(xs: FloatArray, ys: FloatArray, polygon: list[Point]) -> npt.NDArray[np.bool_]:
    inside = np.zeros(xs.shape, dtype=np.bool_)
    n = len(polygon)
    for i in range(n):
        ax, ay = polygon[i]
        bx, by = polygon[(i + 1) % n]
        if ay == by:
            continue
        crosses = (ay > ys) != (by > ys)
        x_cross = ax + (ys - ay) * (bx - ax) / (by - ay)
        inside ^= crosses & (xs < x_cross)
    return inside


def _segment_distance(x: float, y: float, ax: float, ay: float, bx: float, by: float) -> float:
    dx, dy = bx - ax, by - ay
    length2 = dx * dx + dy * dy
    t = 0.0 if length2 == 0 else max(0.0, min(1.0, ((x - ax) * dx + (y - ay) * dy) / length2))
    return math.hypot(x - ax - t * dx, y - ay - t * dy)


def default_world() -> World:
    """A 24 × 16 m store like ``firmware_configs/stores/example.toml`` with 3 sniffers on channel 6."""
    floor = FloorPlan(
        width_m=24.0,
        depth_m=16.0,
        zones=[
            Zone(name="entrance", polygon=[(0, 0), (6, 0), (6, 4), (0, 4)]),
            Zone(name="fresh", polygon=[(6, 0), (24, 0), (24, 8), (6, 8)]),
            Zone(name="aisles", polygon=[(0, 4), (6, 4), (6, 8), (24, 8), (24, 13), (0, 13)]),
            Zone(name="checkout", polygon=[(0, 13), (24, 13), (24, 16), (0, 16)]),
        ],
    )
    sniffers = (
        Sniffer(name="sn-entrance", x=3.0, y=1.5, offset_db=1.0),
        Sniffer(name="sn-middle", x=12.0, y=8.0, offset_db=-1.5, antennas=2),
        Sniffer(name="sn-back", x=20.0, y=14.5, offset_db=0.5),
    )
    return World(floor=floor, sniffers=sniffers)
