"""Ground truth of a simulated clip: line crossings under the hysteresis rule, tracks, heatmap, JSON round trip."""

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from simulators.camera.homography import Array, FloorMap, floor_map
from simulators.camera.people import Person, PersonKind, plan_people
from simulators.camera.scene import CountLine, Direction, Scenario

CELL_M = 0.5
RULE = (
    "A person's foot point (top-down: body centre; angled: bottom of the body) has signed distance "
    "d = cross(p2 - p1, pt - p1) / |p2 - p1| from the line. The person is on the 'in' side once d >= band and on "
    "the 'out' side once d <= -band; in between the side is unchanged. A change of side counts one crossing "
    "('in' when it ends on the 'in' side) if the last sign change of d before it lies on the segment itself. "
    "Dithering inside the band counts nothing; walking in and back out counts one 'in' and one 'out'. "
    "'frame' is the first frame past the line, 'confirmed_frame' the first frame at least band beyond it."
)


@dataclass(frozen=True)
class Crossing:
    """One person crossing one line."""

    person: int
    direction: Direction
    frame: int  # first frame with the foot point past the line
    confirmed_frame: int  # first frame with the foot point at least the band beyond the line


@dataclass(frozen=True)
class LineTruth:
    """A counting line and every true crossing of it."""

    line: CountLine
    crossings: tuple[Crossing, ...]

    def count(self, direction: Direction) -> int:
        """Number of crossings in one direction."""
        return sum(c.direction == direction for c in self.crossings)


@dataclass(frozen=True, eq=False)
class Track:
    """One person's foot point in the image and on the floor for each frame from ``first_frame`` on."""

    person: int
    kind: PersonKind
    group: int | None
    first_frame: int
    image: Array  # (n, 2) pixels
    floor: Array  # (n, 2) metres

    def frame_at(self, index: int) -> int:
        """The video frame of the index-th sample."""
        return self.first_frame + index


@dataclass(frozen=True, eq=False)
class Heatmap:
    """Person-seconds per floor cell; row r, column c covers origin + (c, r) * cell_m."""

    cell_m: float
    origin_m: tuple[float, float]
    person_seconds: Array  # (rows, cols)


@dataclass(frozen=True, eq=False)
class GroundTruth:
    """Everything that truly happened in a simulated clip."""

    scenario: Scenario
    video: str  # file name of the video, next to the truth file
    frames: int
    band_px: float
    lines: tuple[LineTruth, ...]
    tracks: tuple[Track, ...]
    heatmap: Heatmap
    floor_map: FloorMap
    lights_on_frame: int | None

    @property
    def total_people(self) -> int:
        """Number of distinct people in the clip."""
        return len(self.tracks)

    def line(self, name: str) -> LineTruth:
        """The truth of one line by name."""
        return next(lt for lt in self.lines if lt.line.name == name)

    def to_json(self) -> dict[str, Any]:
        """The JSON document written next to the video."""
        sc = self.scenario
        return {
            "scenario": asdict(sc),
            "video": self.video,
            "fps": sc.fps,
            "size": list(sc.size),
            "frames": self.frames,
            "duration_s": self.frames / sc.fps,
            "rule": {"band_px": self.band_px, "text": RULE},
            "lines": [{
                "name": lt.line.name, "p1": list(lt.line.p1), "p2": list(lt.line.p2),
                "in": lt.count("in"), "out": lt.count("out"),
                "crossings": [asdict(c) for c in lt.crossings],
            } for lt in self.lines],
            "total_people": self.total_people,
            "tracks": [{
                "person": t.person, "kind": t.kind, "group": t.group, "first_frame": t.first_frame,
                "image": np.round(t.image, 2).tolist(), "floor": np.round(t.floor, 4).tolist(),
            } for t in self.tracks],
            "heatmap": {
                "cell_m": self.heatmap.cell_m, "origin_m": list(self.heatmap.origin_m),
                "shape": list(self.heatmap.person_seconds.shape),
                "person_seconds": np.round(self.heatmap.person_seconds, 4).tolist(),
            },
            "homography": {
                "image_points": [list(p) for p in self.floor_map.image_points],
                "floor_points": [list(p) for p in self.floor_map.floor_points],
                "image_to_floor": self.floor_map.image_to_floor.tolist(),
            },
            "lights_on_frame": self.lights_on_frame,
        }

    def write(self, path: Path) -> None:
        """Write the JSON document to ``path``."""
        path.write_text(json.dumps(self.to_json(), separators=(",", ":")), encoding="utf-8")


def truth_path(video: Path) -> Path:
    """Where the ground truth of a video lives: ``clip.avi`` -> ``clip.truth.json``."""
    return video.with_suffix(".truth.json")


def load_truth(path: Path) -> GroundTruth:
    """Read a ground-truth JSON file (or the truth of a video file) back into a GroundTruth."""
    if path.suffix != ".json":
        path = truth_path(path)
    doc = json.loads(path.read_text(encoding="utf-8"))
    raw = dict(doc["scenario"])
    raw["lines"] = tuple(CountLine(**line) for line in raw["lines"])
    raw["size"] = tuple(raw["size"])
    scenario = Scenario(**raw)
    lines = tuple(LineTruth(CountLine(d["name"], *d["p1"], *d["p2"]), tuple(Crossing(**c) for c in d["crossings"]))
                  for d in doc["lines"])
    tracks = tuple(Track(t["person"], t["kind"], t["group"], t["first_frame"],
                         np.array(t["image"], dtype=np.float64).reshape(-1, 2),
                         np.array(t["floor"], dtype=np.float64).reshape(-1, 2)) for t in doc["tracks"])
    heat = doc["heatmap"]
    heatmap = Heatmap(heat["cell_m"], tuple(heat["origin_m"]),
                      np.array(heat["person_seconds"], dtype=np.float64).reshape(heat["shape"]))
    homography = doc["homography"]
    fmap = FloorMap(tuple(tuple(p) for p in homography["image_points"]),
                    tuple(tuple(p) for p in homography["floor_points"]))
    return GroundTruth(scenario, doc["video"], doc["frames"], doc["rule"]["band_px"], lines, tracks, heatmap, fmap,
                       doc["lights_on_frame"])


def line_crossings(foot: Array, line: CountLine, band: float) -> list[tuple[Direction, int, int]]:
    """Crossings of one foot-point track as (direction, index past the line, index band beyond) under RULE."""
    (x1, y1), (x2, y2) = line.p1, line.p2
    length = math.hypot(x2 - x1, y2 - y1)
    dx, dy = foot[:, 0] - x1, foot[:, 1] - y1
    dist = ((x2 - x1) * dy - (y2 - y1) * dx) / length
    along = ((x2 - x1) * dx + (y2 - y1) * dy) / length**2
    found: list[tuple[Direction, int, int]] = []
    state = 0
    last_change: int | None = None
    on_segment = False
    for i in range(len(foot)):
        if i and (dist[i] > 0) != (dist[i - 1] > 0):
            frac = dist[i - 1] / (dist[i - 1] - dist[i])
            at = along[i - 1] + frac * (along[i] - along[i - 1])
            last_change, on_segment = i, 0.0 <= at <= 1.0
        side = 1 if dist[i] >= band else -1 if dist[i] <= -band else 0
        if side and state and side != state and last_change is not None and on_segment:
            found.append(("in" if side > 0 else "out", last_change, i))
        if side:
            state = side
    return found


def build_truth(scenario: Scenario, fmap: FloorMap, people: list[Person], video: str) -> GroundTruth:
    """Ground truth of a planned scenario: tracks, crossings per line and the floor heatmap."""
    tracks = tuple(Track(p.id, p.kind, p.group, p.first_frame, fmap.to_image(p.floor), p.floor) for p in people)
    lines = []
    for line in scenario.lines:
        crossings = [Crossing(t.person, direction, t.frame_at(i), t.frame_at(j))
                     for t in tracks for direction, i, j in line_crossings(t.image, line, scenario.band_px)]
        lines.append(LineTruth(line, tuple(sorted(crossings, key=lambda c: (c.frame, c.person)))))
    return GroundTruth(scenario, video, scenario.frame_count, scenario.band_px, tuple(lines), tracks,
                       _heatmap(scenario, fmap, tracks), fmap, scenario.lights_on_frame)


def _heatmap(scenario: Scenario, fmap: FloorMap, tracks: tuple[Track, ...]) -> Heatmap:
    """Person-seconds per CELL_M cell over the floor the camera sees, from foot points inside the image."""
    w, h = scenario.size
    corners = fmap.to_floor([(0, 0), (w, 0), (w, h), (0, h)])
    origin = np.floor(corners.min(axis=0) / CELL_M + 1e-9) * CELL_M
    cols, rows = np.ceil((corners.max(axis=0) - origin) / CELL_M - 1e-9).astype(int)
    grid = np.zeros((rows, cols))
    for t in tracks:
        seen = (t.image[:, 0] >= 0) & (t.image[:, 0] < w) & (t.image[:, 1] >= 0) & (t.image[:, 1] < h)
        cells = np.floor((t.floor[seen] - origin) / CELL_M).astype(int)
        inside = (cells[:, 0] >= 0) & (cells[:, 0] < cols) & (cells[:, 1] >= 0) & (cells[:, 1] < rows)
        np.add.at(grid, (cells[inside, 1], cells[inside, 0]), 1.0 / scenario.fps)
    return Heatmap(CELL_M, (float(origin[0]), float(origin[1])), grid)


def simulate(scenario: Scenario, video: str = "") -> GroundTruth:
    """The ground truth of a scenario without rendering it (fast: plans people and counts crossings)."""
    fmap = floor_map(scenario.kind, scenario.size)
    return build_truth(scenario, fmap, plan_people(scenario, fmap), video or f"{scenario.name}.avi")
