"""The store the day happens in, read from a store config: floor and zones, door lanes, camera view, sniffers, tills.

Geometry rules the people model keeps so that every device sees a consistent world:

* The door is where the camera's count line meets the store front (y = 0). Parties walk in on a lane right of the
  door centre and out on one left of it, straight across the camera's view, so the camera sees only door traffic.
* Everything else inside stays out of a keep-out rectangle in the front-left corner: the camera's view plus the
  reach of a drawn body, of a group around its leader, and a clearance. Routes bend round its inner corner.
* The street (the pavement walked by passersby and by shoppers to and from the door) lies beyond the view too.
"""

from __future__ import annotations

import dataclasses
import math
import random
import zoneinfo
from dataclasses import dataclass
from pathlib import Path

from drivers.barcode.config import BarcodeConfig
from drivers.camera.config import CameraConfig
from drivers.wifi_probe.config import WifiProbeConfig
from edge.config.loader import load_config
from edge.config.models import EdgeConfig
from simulators.camera.homography import FloorMap
from simulators.camera.scene import CountLine, Scenario
from simulators.wifi.world import Point, Sniffer, Street, World, point_in_polygon

DEFAULT_CONFIG = Path(__file__).resolve().parents[2] / "firmware_configs" / "stores" / "demo-store.toml"
VIEW_SIZE = (640, 240)  # the door camera's frame; the config's homography points are in these pixels
CAMERA_FPS = 12.0  # the camera simulator's usual rate
BODY_REACH_M = 0.5  # a drawn person with shadow reaches this far from the foot point
GROUP_SPREAD_M = 0.65  # farthest a group member walks beside the party's own track
CLEARANCE_M = 0.3
LANE_OFFSET_M = 1.0  # entering parties keep this far right of the door centre, leaving parties as far left
WALL_MARGIN_M = 0.5  # spots are at least this far from the outer walls
CUSTOMER_OFFSET_M = 0.6  # a paying customer stands this far in front of the till (+y, into the store)
STREET = Street(y=-4.5, half_width_m=1.2, x_min=-30.0, x_max=55.0)
ENTRANCE, CHECKOUT, PROMOTION = "entrance", "checkout", "promotion"


@dataclass(frozen=True, eq=False)
class CameraView:
    """The door camera as the camera simulator draws it: image↔floor map, count line, frame size and rate."""

    device: str
    line: CountLine  # in image pixels; crossing down the image (into the store) is "in"
    fmap: FloorMap
    size: tuple[int, int]
    fps: float
    person_size_px: tuple[float, float]
    count_band_px: float  # the band the gateway counts with (the truth rule uses the scenario's own band)
    view: tuple[float, float, float, float]  # floor rectangle seen: x0, y0, x1, y1

    def scenario(self, name: str, frames: int, seed: int) -> Scenario:
        """The camera-simulator scenario of one clip of ``frames`` frames (no planned people of its own)."""
        return Scenario(name=name, lines=(self.line,), kind="top-down", size=self.size, fps=self.fps,
                        duration_s=frames / self.fps, seed=seed, walkers=0, drift=0.08, drift_period_s=240.0)


@dataclass(frozen=True, eq=False)
class Site:
    """Everything the simulator needs to know about the store, derived from one validated store config."""

    config_path: Path
    config: EdgeConfig
    world: World  # the WiFi simulator's world: floor, zones, sniffers, door, street
    camera: CameraView
    tills: dict[str, Point]  # scanner name -> where the cashier stands and scans
    door_x: float
    lane_in: float
    lane_out: float
    inner_y: float  # where the door lanes end inside, just past the keep-out rectangle
    keep_out: tuple[float, float, float]  # x0, x1, y1: no in-store walking in [x0, x1] x [.., y1] off the lanes
    tz: zoneinfo.ZoneInfo

    @property
    def width(self) -> float:
        """Floor width in metres."""
        return self.world.floor.width_m

    @property
    def depth(self) -> float:
        """Floor depth in metres."""
        return self.world.floor.depth_m

    @property
    def shopping_zones(self) -> tuple[str, ...]:
        """Zones shoppers browse: the aisles and the promotion area."""
        return self.world.shopping_zones

    def blocked(self, x: float, y: float, margin: float = 0.0) -> bool:
        """Whether an in-store point lies in the keep-out rectangle grown by ``margin``."""
        x0, x1, y1 = self.keep_out
        return x0 - margin <= x <= x1 + margin and y <= y1 + margin

    def spot(self, zone: str, rng: random.Random) -> Point:
        """A random place to stand in a zone: inside its polygon, off the walls and out of the keep-out."""
        polygon = self.world.zone(zone).polygon
        xs, ys = [p[0] for p in polygon], [p[1] for p in polygon]
        lo_x, hi_x = max(min(xs), WALL_MARGIN_M), min(max(xs), self.width - WALL_MARGIN_M)
        lo_y, hi_y = max(min(ys), WALL_MARGIN_M), min(max(ys), self.depth - WALL_MARGIN_M)
        for _ in range(1000):
            x, y = rng.uniform(lo_x, hi_x), rng.uniform(lo_y, hi_y)
            if point_in_polygon(x, y, polygon) and not self.blocked(x, y, 0.05):
                return x, y
        raise ValueError(f"zone {zone!r} has no room outside the camera's keep-out rectangle")

    def route(self, a: Point, b: Point) -> list[Point]:
        """Waypoints from ``a`` to ``b`` (ending with ``b``) that go round the keep-out rectangle."""
        if not _crosses_box(a, b, self.keep_out):
            return [b]
        x0, x1, y1 = self.keep_out
        corners = [(c, y1 + 0.1) for c in (x1 + 0.1, x0 - 0.1) if 0.0 < c < self.width]
        best = min(corners, key=lambda c: math.dist(a, c) + math.dist(c, b))
        return [best, b]


def _crosses_box(a: Point, b: Point, box: tuple[float, float, float]) -> bool:
    """Whether segment a-b touches [x0, x1] x [-inf, y1] (Liang-Barsky clipping)."""
    x0, x1, y1 = box
    lo, hi = 0.0, 1.0
    dx, dy = b[0] - a[0], b[1] - a[1]
    for p, q in ((-dx, a[0] - x0), (dx, x1 - a[0]), (dy, y1 - a[1])):
        if p == 0:
            if q < 0:
                return False
        elif p < 0:
            lo = max(lo, q / p)
        else:
            hi = min(hi, q / p)
    return lo <= hi


def load_site(path: Path = DEFAULT_CONFIG) -> Site:
    """The site of a store config: it needs entrance/checkout zones, one camera line at the front, sniffers, tills."""
    config = load_config(path)
    cameras = [d for d in config.devices if isinstance(d, CameraConfig)]
    if not cameras or not cameras[0].lines or not cameras[0].homography_points:
        raise ValueError(f"{path}: the store day needs a camera with a count line and inline homography_points")
    cam = cameras[0]
    pairs = cam.homography_points or []
    fmap = FloorMap(tuple(p.image for p in pairs), tuple(p.floor for p in pairs))
    first = cam.lines[0]
    line = CountLine(first.name, *first.p1, *first.p2)
    w, h = VIEW_SIZE
    corners = fmap.to_floor([(0, 0), (w, 0), (w, h), (0, h)])
    view = (float(corners[:, 0].min()), float(corners[:, 1].min()), float(corners[:, 0].max()),
            float(corners[:, 1].max()))
    door_x, door_y = (float(v) for v in fmap.to_floor([((first.p1[0] + first.p2[0]) / 2,
                                                          (first.p1[1] + first.p2[1]) / 2)])[0])
    if abs(door_y) > 1e-6:
        raise ValueError(f"{path}: the camera's count line must lie on the store front (floor y = 0), not {door_y}")
    camera = CameraView(cam.name, line, fmap, VIEW_SIZE, CAMERA_FPS, cam.person_size_px, first.band_px, view)
    grow = BODY_REACH_M + GROUP_SPREAD_M + CLEARANCE_M
    keep_out = (view[0] - grow, view[2] + grow, view[3] + grow)
    if view[1] - BODY_REACH_M - GROUP_SPREAD_M <= STREET.y + STREET.half_width_m:
        raise ValueError(f"{path}: the camera must not see the pavement walked by passersby")
    sniffers = tuple(Sniffer(name=d.name, x=d.position[0], y=d.position[1], offset_db=-d.rssi_offset_db)
                     for d in config.devices if isinstance(d, WifiProbeConfig) and d.position is not None)
    world = World(floor=config.floor_plan, sniffers=sniffers, door=(door_x, 0.0), street=STREET,
                  infrastructure=((config.floor_plan.width_m - 1.0, config.floor_plan.depth_m - 1.0),
                                  (keep_out[1] + 1.0, 0.5)))
    site = Site(path, config, world, camera, {}, door_x, door_x + LANE_OFFSET_M, door_x - LANE_OFFSET_M,
                keep_out[2] + 0.1, keep_out, zoneinfo.ZoneInfo(config.timezone))
    tills = sorted(d.name for d in config.devices if isinstance(d, BarcodeConfig) and d.name.startswith("till"))
    if not tills:
        raise ValueError(f"{path}: the store day needs barcode scanners named till-*")
    paying = {d.name: d.position for d in config.devices if isinstance(d, BarcodeConfig) and d.position is not None}
    return dataclasses.replace(site, tills=_till_spots(site, tills, paying))


def _till_spots(site: Site, names: list[str], paying: dict[str, tuple[float, float]]) -> dict[str, Point]:
    """Where each till's cashier scans: ``CUSTOMER_OFFSET_M`` behind where its config says the customer pays, or
    (no position in the config) spread evenly across the free part of the checkout zone, at half its depth."""
    polygon = site.world.zone(CHECKOUT).polygon
    xs, ys = [p[0] for p in polygon], [p[1] for p in polygon]
    lo, hi, y = min(xs), max(xs), (min(ys) + max(ys)) / 2
    if site.blocked(lo, y, 0.6):
        lo = site.keep_out[1] + 0.6  # the checkout's left end is under the door camera's keep-out
    spread = {name: (lo + (hi - lo) * (i + 1) / (len(names) + 1), y) for i, name in enumerate(names)}
    return {name: (paying[name][0], paying[name][1] - CUSTOMER_OFFSET_M) if name in paying else spread[name]
            for name in names}
