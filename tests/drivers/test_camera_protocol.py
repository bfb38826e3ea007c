"""Camera pipeline on arrays: foreground, blob splitting, tracking, directed line counting, floor mapping, windows.

Unit tests draw their own synthetic frames (discs on a textured floor). The accuracy tests at the end run the
whole pipeline on the camera simulator's standard scenarios and compare with its ground truth.
"""

import ast
import math
import tomllib
from datetime import datetime, timedelta, timezone
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import pytest

from drivers.camera.aggregate import Aggregator
from drivers.camera.blobs import BlobParams, detect_blobs, kmeans_1d
from drivers.camera.config import CameraCalibration, CameraConfig, CountLine, PointPair
from drivers.camera.counting import LineGeometry, LineState, advance, segments_intersect
from drivers.camera.floor import GridSpec, Heatmap, Homography, points_in_polygon
from drivers.camera.protocol import Counter, CounterParams, FrameResult
from drivers.camera.tracking import hungarian

ROOT = Path(__file__).resolve().parents[2]
FPS = 10.0
W, H = 640, 480
R = 20  # disc radius at source resolution: a 40 px "person"
DOOR = CountLine(name="door", p1=(40, 240), p2=(600, 240), band_px=16)

_rng = np.random.default_rng(7)
FLOOR = cv2.GaussianBlur(np.clip(_rng.normal(128, 14, (H, W, 3)), 0, 255).astype(np.uint8), (5, 5), 0)


def draw(discs: list[tuple[float, float]], gain: float = 1.0, radius: int = R) -> npt.NDArray[np.uint8]:
    frame = FLOOR.copy()
    for x, y in discs:
        cv2.circle(frame, (round(x), round(y)), radius, (50, 70, 190), -1)
    return np.asarray(cv2.convertScaleAbs(frame, alpha=gain), dtype=np.uint8)


def counter(*lines: CountLine, **overrides: object) -> Counter:
    params = CounterParams(lines=lines or (DOOR,), person_size_px=(2 * R, 2 * R), process_fps=FPS)
    for key, value in overrides.items():
        params = type(params)(**{**{f: getattr(params, f) for f in params.__dataclass_fields__}, key: value})
    return Counter(params)


class Clip:
    """Feeds frames to a counter at FPS and collects what comes back."""

    def __init__(self, c: Counter) -> None:
        self.c = c
        self.ts = 1_700_000_000.0
        self.results: list[FrameResult] = []

    def run(self, frames: list[list[tuple[float, float]]], gain: float = 1.0) -> None:
        for discs in frames:
            self.results.append(self.c.process(draw(discs, gain), self.ts))
            self.ts += 1.0 / FPS

    def empty(self, n: int, gain: float = 1.0) -> None:
        self.run([[]] * n, gain)

    @property
    def counts(self) -> list[tuple[str, str]]:
        return [(c.line, c.direction) for r in self.results for c in r.crossings]


def walk(start: tuple[float, float], end: tuple[float, float], speed_px: float = 14.0) -> list[tuple[float, float]]:
    steps = max(1, math.ceil(math.dist(start, end) / speed_px))
    return [(start[0] + (end[0] - start[0]) * i / steps, start[1] + (end[1] - start[1]) * i / steps)
            for i in range(steps + 1)]


def warmed(c: Counter) -> Clip:
    clip = Clip(c)
    clip.empty(10)
    return clip


# --- config ----------------------------------------------------------------------------------------------


def _camera(**fields: object) -> CameraConfig:
    base: dict[str, object] = {"type": "camera", "name": "door-cam", "source": "/dev/video0",
                               "person_size_px": (40, 40), "lines": [DOOR.model_dump()]}
    return CameraConfig.model_validate({**base, **fields})


def test_config__defaults_and_descriptions() -> None:
    config = _camera()
    assert (config.process_fps, config.process_width, config.heatmap_cell_m, config.closing_time) == (10, 320, 0.5,
                                                                                                        "23:00")
    for model in (CameraConfig, CountLine, PointPair, CameraCalibration):
        for name, field in model.model_fields.items():
            assert field.description, f"{model.__name__}.{name} has no description"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"lines": [DOOR.model_dump(), DOOR.model_dump()]}, "line names must be unique"),
        ({"calibration": "door.toml", "homography_points": [{"image": (i, i * i), "floor": (i, 0)} for i in range(4)]},
         "not both"),
        ({"homography_points": [{"image": (0, 0), "floor": (0, 0)}]}, "at least 4"),
        ({"roi": [(0, 0), (1, 1)]}, "roi needs at least 3"),
        ({"closing_time": "24:00"}, "closing_time"),
        ({"person_size_px": (0, 40)}, "positive"),
        ({"extra": 1}, "Extra inputs"),
        ({"lines": [{"name": "x", "p1": (5, 5), "p2": (5, 5.5)}]}, "1 px apart"),
    ],
)
def test_config__cross_field_rules(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _camera(**fields)


CALIBRATIONS = sorted((ROOT / "firmware_configs" / "cameras").glob("*.toml"))


@pytest.mark.parametrize("path", CALIBRATIONS, ids=[p.name for p in CALIBRATIONS])
def test_firmware_configs__camera_calibrations_validate_and_fit(path: Path) -> None:
    calibration = CameraCalibration.model_validate(tomllib.loads(path.read_text(encoding="utf-8")))
    pairs = calibration.homography_points
    homography = Homography.fit([p.image for p in pairs], [p.floor for p in pairs])
    assert homography.reprojection_error_m([p.image for p in pairs], [p.floor for p in pairs]) < 0.05


def test_firmware_configs__camera_calibrations_exist() -> None:
    assert CALIBRATIONS


CAMERA_MODULES = sorted((ROOT / "drivers" / "camera").glob("*.py"))


# driver.py, worker.py and sources.py are the I/O side (capture, threads, reconnects); every other camera module must
# stay pure.
IO_MODULES = {"driver.py", "worker.py", "sources.py"}


@pytest.mark.parametrize("path", [p for p in CAMERA_MODULES if p.name not in IO_MODULES], ids=lambda p: p.name)
def test_pure_modules__never_capture_write_or_sleep(path: Path) -> None:
    """cv2 is used for array maths only: no VideoCapture/imread/imwrite/imshow, no time, sockets or files."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)}
    names |= {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
    assert not names & {"VideoCapture", "VideoWriter", "imread", "imwrite", "imshow", "waitKey", "sleep", "open"}
    imports = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imports |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert not {i.split(".")[0] for i in imports} & {"time", "socket", "threading", "subprocess", "serial", "os"}


# --- geometry and assignment -------------------------------------------------------------------------------


def test_segments_intersect__crossing_touching_and_beside() -> None:
    assert segments_intersect((0, -1), (0, 1), (-5, 0), (5, 0))
    assert segments_intersect((5, -1), (5, 0), (-5, 0), (5, 0))  # touching the end
    assert not segments_intersect((6, -1), (6, 1), (-5, 0), (5, 0))  # beside the end


def test_hungarian__optimal_where_greedy_fails_and_respects_gates() -> None:
    cost = np.array([[1.0, 2.0], [2.0, 100.0]])  # greedy takes (0,0) then (1,1)=100; optimal is 4
    assert hungarian(cost) == [(0, 1), (1, 0)]
    gated = np.array([[1.0, math.inf], [math.inf, math.inf], [math.inf, 3.0]])
    assert hungarian(gated) == [(0, 0), (2, 1)]
    assert hungarian(np.zeros((0, 3))) == []


def test_hungarian__matches_brute_force_on_random_matrices() -> None:
    import itertools

    rng = np.random.default_rng(1)
    for _ in range(50):
        n, m = (int(v) for v in rng.integers(1, 6, size=2))
        cost = rng.random((n, m))
        if n <= m:
            best = min(sum(cost[i, c] for i, c in enumerate(cols)) for cols in itertools.permutations(range(m), n))
        else:
            best = min(sum(cost[r, j] for j, r in enumerate(rows)) for rows in itertools.permutations(range(n), m))
        pairs = hungarian(cost)
        assert len(pairs) == min(n, m)
        assert sum(cost[i, j] for i, j in pairs) == pytest.approx(best)


def test_advance__direction_convention_and_swap() -> None:
    # A horizontal line drawn left to right: cross(p2 - p1, pt - p1) > 0 below it, so walking down is "in".
    for swap, expected in ((False, "in"), (True, "out")):
        line = LineGeometry("l", (0, 0), (100, 0), band=5, swap=swap)
        state = LineState()
        got = [advance(line, state, prev, cur) for prev, cur in [(None, (50, -20)), ((50, -20), (50, 1)),
                                                                  ((50, 1), (50, 20))]]
        assert got == [None, None, expected]


def test_kmeans_1d__separates_two_runs() -> None:
    values = np.concatenate([np.linspace(0, 10, 50), np.linspace(30, 40, 50)])
    labels = kmeans_1d(values, 2)
    assert set(labels[:50]) == {0} and set(labels[50:]) == {1}


# --- blobs ---------------------------------------------------------------------------------------------------


def test_detect_blobs__two_touching_discs_split_into_two() -> None:
    mask = np.zeros((240, 320), dtype=np.uint8)
    cv2.circle(mask, (140, 120), 10, 255, -1)
    cv2.circle(mask, (160, 120), 10, 255, -1)  # touching side by side: one contour
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    assert len(contours) == 1
    blobs = detect_blobs(mask, BlobParams(20, 20))
    assert len(blobs) == 2
    xs = sorted(b.foot[0] for b in blobs)
    assert xs[0] == pytest.approx(140, abs=2) and xs[1] == pytest.approx(160, abs=2)


def test_detect_blobs__three_in_a_row_split_and_specks_ignored() -> None:
    mask = np.zeros((240, 320), dtype=np.uint8)
    for x in (120, 140, 160):
        cv2.circle(mask, (x, 100), 10, 255, -1)
    cv2.circle(mask, (50, 200), 2, 255, -1)  # far below the size gate
    blobs = detect_blobs(mask, BlobParams(20, 20))
    assert sorted(round(b.foot[0] / 10) for b in blobs) == [12, 14, 16]


def test_detect_blobs__angled_foot_is_bottom_centre() -> None:
    mask = np.zeros((240, 320), dtype=np.uint8)
    cv2.rectangle(mask, (100, 50), (119, 109), 255, -1)
    (blob,) = detect_blobs(mask, BlobParams(20, 60, view="angled"))
    assert blob.foot == pytest.approx((109.5, 110), abs=1)


def test_detect_blobs__angled_stack_of_two_splits_front_and_back() -> None:
    mask = np.zeros((240, 320), dtype=np.uint8)
    cv2.rectangle(mask, (100, 80), (119, 139), 255, -1)  # front person: foot on row 140
    cv2.rectangle(mask, (102, 50), (121, 100), 255, -1)  # the person behind, head 30 px higher, feet hidden
    blobs = sorted(detect_blobs(mask, BlobParams(20, 60, view="angled")), key=lambda b: b.foot[1])
    assert [round(b.foot[1]) for b in blobs] == [107, 140]  # hidden foot: head top + 0.95 × 60 px


def test_detect_blobs__angled_full_row_of_three_still_keeps_the_person_behind() -> None:
    mask = np.zeros((240, 320), dtype=np.uint8)
    cv2.rectangle(mask, (80, 83), (139, 139), 255, -1)  # three abreast (20 × 57 px each), feet on row 140
    cv2.rectangle(mask, (122, 50), (141, 100), 255, -1)  # a fourth behind them, head 30 px higher
    blobs = sorted(detect_blobs(mask, BlobParams(20, 60, view="angled")), key=lambda b: (b.foot[1], b.foot[0]))
    assert [round(b.foot[1]) for b in blobs] == [107, 140, 140, 140]
    assert blobs[0].foot[0] == pytest.approx(131.5, abs=2)


def test_detect_blobs__angled_legs_of_the_person_behind_are_not_a_second_person() -> None:
    mask = np.zeros((240, 320), dtype=np.uint8)
    cv2.rectangle(mask, (100, 83), (119, 139), 255, -1)  # front person: foot on row 140
    cv2.rectangle(mask, (118, 50), (141, 90), 255, -1)  # beside and behind, 30 px further up: torso ...
    cv2.rectangle(mask, (126, 91), (137, 109), 255, -1)  # ... and legs reaching down into the front rows
    blobs = sorted(detect_blobs(mask, BlobParams(20, 60, view="angled")), key=lambda b: b.foot[1])
    assert len(blobs) == 2
    assert blobs[0].foot == pytest.approx((131, 110), abs=2)  # the person behind, on their own visible foot
    assert blobs[1].foot == pytest.approx((109.5, 140), abs=2)


# --- counting on rendered frames ------------------------------------------------------------------------------


def test_counter__disc_crossing_both_ways_counts_in_then_out() -> None:
    clip = warmed(counter())
    clip.run([[p] for p in walk((300, 60), (300, 420))])
    clip.empty(10)
    clip.run([[p] for p in walk((200, 420), (200, 60))])
    clip.empty(10)
    assert clip.counts == [("door", "in"), ("door", "out")]
    assert clip.c.totals == {"door": {"in": 1, "out": 0 + 1}}


def test_counter__swap_flag_exchanges_in_and_out() -> None:
    clip = warmed(counter(DOOR.model_copy(update={"swap": True})))
    clip.run([[p] for p in walk((300, 60), (300, 420))])
    clip.empty(8)
    assert clip.counts == [("door", "out")]


def test_counter__two_side_by_side_walkers_count_two() -> None:
    clip = warmed(counter())
    clip.run([[p, (p[0] + 2 * R, p[1])] for p in walk((280, 60), (280, 420))])
    clip.empty(8)
    assert clip.counts == [("door", "in"), ("door", "in")]


def test_counter__turn_back_before_the_line_counts_nothing() -> None:
    clip = warmed(counter())
    clip.run([[p] for p in walk((300, 60), (300, 215)) + walk((300, 215), (300, 60))])
    clip.empty(8)
    assert clip.counts == []


def test_counter__loiterer_dithering_within_the_band_counts_nothing() -> None:
    clip = warmed(counter())
    path = walk((300, 60), (300, 232))
    for i in range(60):  # 6 s dithering across the line, always within ±16 px (band)
        path.append((300 + 3 * math.sin(i / 3), 240 + 12 * math.sin(i / 2)))
    path += walk((300, 236), (300, 60))
    clip.run([[p] for p in path])
    clip.empty(8)
    assert clip.counts == []


def test_counter__loiterer_who_then_crosses_counts_once() -> None:
    clip = warmed(counter())
    path = walk((300, 60), (300, 232))
    for i in range(60):
        path.append((300, 240 + 12 * math.sin(i / 2)))
    path += walk((300, 240), (300, 420))
    clip.run([[p] for p in path])
    clip.empty(8)
    assert clip.counts == [("door", "in")]


def test_counter__passing_beside_the_segment_end_counts_nothing() -> None:
    clip = warmed(counter())
    clip.run([[p] for p in walk((620, 60), (620, 420))])  # the segment ends at x = 600
    clip.empty(8)
    assert clip.counts == []


def test_counter__several_lines_count_independently() -> None:
    left = CountLine(name="left", p1=(20, 240), p2=(300, 240), band_px=16)
    right = CountLine(name="right", p1=(620, 240), p2=(340, 240), band_px=16)  # drawn right to left: down is out
    clip = warmed(counter(left, right))
    clip.run([[a, b] for a, b in zip(walk((150, 60), (150, 420)), walk((480, 60), (480, 420)), strict=True)])
    clip.empty(8)
    assert sorted(clip.counts) == [("left", "in"), ("right", "out")]


def test_counter__lights_on_makes_no_phantoms_and_no_counts() -> None:
    clip = warmed(counter())
    clip.run([[]] * 5, gain=0.7)
    clip.run([[]] * 40, gain=1.0)  # sudden lights-on (a 43 % brightness jump), then steady
    # A non-uniform change too: a bright gradient over half the frame.
    gradient = np.zeros_like(FLOOR)
    gradient[:, W // 2 :] = 60
    for _ in range(40):
        frame = cv2.add(draw([]), gradient)
        clip.results.append(clip.c.process(frame, clip.ts))
        clip.ts += 1 / FPS
    visible = [r.visible for r in clip.results]
    assert clip.counts == []
    assert sum(v > 0 for v in visible) <= 3


def test_counter__slow_drift_makes_no_phantoms() -> None:
    clip = warmed(counter())
    for i in range(300):
        clip.run([[]], gain=1.0 + 0.25 * math.sin(i / 300 * 2 * math.pi))
    assert max(r.visible for r in clip.results) == 0


def test_counter__roi_hides_motion_outside_it() -> None:
    roi = ((0.0, 0.0), (320.0, 0.0), (320.0, 480.0), (0.0, 480.0))
    clip = warmed(counter(roi=roi))
    clip.run([[p] for p in walk((480, 60), (480, 420))])
    assert clip.counts == [] and max(r.visible for r in clip.results) == 0


def test_counter__snapshot_overlay_draws_on_a_copy() -> None:
    clip = warmed(counter(roi=((10.0, 10.0), (630.0, 10.0), (630.0, 470.0), (10.0, 470.0))))
    clip.run([[p] for p in walk((300, 60), (300, 200))])
    frame = draw([(300, 200)])
    image = clip.c.snapshot_overlay(frame)
    assert image.shape == frame.shape and not np.array_equal(image, frame)
    assert np.array_equal(frame, draw([(300, 200)]))


# --- floor mapping and aggregates ------------------------------------------------------------------------------


def test_homography__round_trip_and_fit_to_pairs() -> None:
    image = [(0, 0), (640, 0), (640, 480), (0, 480), (320, 240)]
    truth = np.array([[0.01, 0.002, 1.0], [0.0005, 0.012, 0.5], [0.00001, 0.0003, 1.0]])
    floor = [tuple(p) for p in Homography(truth).to_floor(image)]
    fitted = Homography.fit(image, floor)
    points = np.random.default_rng(3).uniform(0, 640, (100, 2))
    assert np.allclose(fitted.to_image(fitted.to_floor(points)), points, atol=1e-6)
    assert np.allclose(fitted.to_floor(points), Homography(truth).to_floor(points), atol=1e-6)
    with pytest.raises(ValueError, match="at least 4"):
        Homography.fit(image[:3], floor[:3])


def test_points_in_polygon__square_and_concave() -> None:
    square = [(0, 0), (2, 0), (2, 2), (0, 2)]
    assert points_in_polygon(np.array([[1, 1], [3, 1], [-0.1, 1]]), square).tolist() == [True, False, False]
    ell = [(0, 0), (4, 0), (4, 1), (1, 1), (1, 4), (0, 4)]
    assert points_in_polygon(np.array([[0.5, 3], [3, 3], [3, 0.5]]), ell).tolist() == [True, False, True]


def test_grid__covering_and_cell_indices() -> None:
    grid = GridSpec.covering(0.2, 0.1, 2.9, 1.4, 0.5)
    assert (grid.origin_x, grid.origin_y, grid.nx, grid.ny) == (0.0, 0.0, 6, 3)
    assert grid.cell_indices(np.array([[0.0, 0.0], [2.9, 1.4], [3.1, 0.0]])).tolist() == [0, 17, -1]


def test_heatmap__person_seconds_equal_visible_person_frames_times_interval() -> None:
    pairs = [PointPair(image=(x, y), floor=(x / 80, y / 80)) for x, y in [(0, 0), (640, 0), (640, 480), (0, 480)]]
    clip = warmed(counter(homography_points=tuple(pairs)))
    clip.run([[a, b] for a, b in zip(walk((150, 60), (150, 420)), walk((500, 420), (500, 60)), strict=True)])
    heatmap = clip.c.heatmap
    assert heatmap is not None
    person_frames = sum(r.visible for r in clip.results)
    assert person_frames > 40
    assert heatmap.total_seconds + heatmap.outside_seconds == pytest.approx(person_frames / FPS)
    # The two walkers' columns (x = 1.875 m and 6.25 m) hold the heat.
    cols = heatmap.seconds.sum(axis=0)
    assert cols[3] > 0 and cols[12] > 0 and cols.sum() == pytest.approx(cols[3] + cols[12])


def test_heatmap__add_ignores_points_off_the_grid() -> None:
    heatmap = Heatmap(GridSpec(0, 0, 1.0, 2, 2))
    heatmap.add(np.array([[0.5, 0.5], [0.5, 0.5], [9, 9]]), 0.1)
    assert heatmap.seconds.tolist() == [[0.2, 0.0], [0.0, 0.0]] and heatmap.outside_seconds == pytest.approx(0.1)


def _result(ts: float, crossings: tuple[tuple[str, str], ...] = (), floor: tuple[tuple[float, float], ...] = (),
            dt: float = 1.0) -> FrameResult:
    from drivers.camera.protocol import Crossing, TrackPoint

    return FrameResult(
        ts, dt, tuple(Crossing(line, direction, 1, ts) for line, direction in crossings),  # type: ignore[arg-type]
        len(floor), tuple(TrackPoint(i, (0, 0), p, True) for i, p in enumerate(floor)),
    )


def test_aggregator__windows_counts_occupancy_and_entries() -> None:
    inner = CountLine(name="inner", p1=(0, 0), p2=(10, 0), entrance=False)
    agg = Aggregator([DOOR, inner], window_s=60)
    t0 = 1_700_000_060.0  # 20 s into the window that starts at 1_700_000_040
    out = agg.add(_result(t0, (("door", "in"), ("door", "in"), ("inner", "in"))))
    out += agg.add(_result(t0 + 10, (("door", "out"),)))
    assert out == []
    (window,) = agg.add(_result(t0 + 45, (("door", "out"), ("door", "out"), ("door", "out"))))
    assert window.start == 1_700_000_040.0 and window.end == window.start + 60
    assert [(lc.line, lc.in_count, lc.out_count) for lc in window.lines] == [("door", 2, 1), ("inner", 1, 0)]
    assert (window.entries, window.exits, window.occupancy, window.occupancy_max) == (2, 1, 1, 2)
    (last,) = agg.flush()
    assert last.occupancy == 0  # 1 − 3 is clamped at zero
    assert agg.entries_per_window == ((1_700_000_040.0, 2), (1_700_000_100.0, 0))


def test_aggregator__occupancy_resets_at_local_closing_time() -> None:
    tz = timezone(timedelta(hours=8))
    agg = Aggregator([DOOR], window_s=60, closing=(22, 30), local_time=lambda ts: datetime.fromtimestamp(ts, tz))
    before = datetime(2025, 3, 1, 22, 29, 0, tzinfo=tz).timestamp()
    agg.add(_result(before, (("door", "in"),) * 5))
    (window,) = agg.add(_result(before + 61))  # 22:30:01 local
    assert window.occupancy == 5
    (after,) = agg.flush()
    assert after.occupancy == 0 and after.occupancy_resets == 1
    next_day = datetime(2025, 3, 2, 10, 0, tzinfo=tz).timestamp()
    agg.add(_result(next_day, (("door", "in"),)))
    (morning,) = agg.flush()
    assert (morning.occupancy, morning.occupancy_resets) == (1, 0)


def test_aggregator__heatmap_cells_sparse_and_zone_seconds() -> None:
    grid = GridSpec(0, 0, 0.5, 4, 4)
    agg = Aggregator([DOOR], grid=grid, zones=[("left", [(0, 0), (1, 0), (1, 2), (0, 2)])])
    t0 = 1_700_000_040.0
    for i in range(10):
        agg.add(_result(t0 + i * 0.1, floor=((0.25, 0.25), (1.75, 1.75)), dt=0.1))
    (window,) = agg.flush()
    assert window.heatmap is not None
    assert window.heatmap.cells == ((0, 1.0), (15, 1.0))
    assert window.heatmap.to_dense().sum() == pytest.approx(2.0)
    assert [(z.zone, z.seconds) for z in window.zones] == [("left", 1.0)]
    assert (window.visible_mean, window.visible_max, window.frames) == (2.0, 2, 10)


# --- accuracy against the camera simulator -----------------------------------------------------------------------
#
# The installer's calibration is derived from each scene's geometry the way an installer measures it on a
# snapshot: the blob box of one person with shadow at the line (top-down 0.6 × 0.375 m, angled 0.86 × 1.49 m
# times the pixels per metre there), and a counting band of 22 px — wider than the truth rule's 15 px because our
# foot point (blob centroid with its shadow) jitters by a few pixels around the true body centre.

COUNT_BAND_PX = 22.0


def _render_one(args: tuple[str, str]) -> str:
    from simulators.camera import render, standard_scenarios

    name, folder = args
    scenario = next(s for s in standard_scenarios() if s.name == name)
    render(scenario, Path(folder))
    return name


@pytest.fixture(scope="session")
def simulated_clips(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """All standard scenarios rendered once per session (two at a time), with their truth files."""
    from concurrent.futures import ProcessPoolExecutor

    from simulators.camera import standard_scenarios

    folder = tmp_path_factory.mktemp("camera-clips")
    names = [s.name for s in standard_scenarios()]
    with ProcessPoolExecutor(max_workers=2) as pool:
        list(pool.map(_render_one, [(name, str(folder)) for name in names]))
    return folder


def _count_clip(video: Path) -> tuple[dict[str, dict[str, tuple[int, int]]], float, Counter]:
    from simulators.camera import load_truth

    truth = load_truth(video)
    sc = truth.scenario
    fmap = truth.floor_map
    line0 = sc.lines[0]
    mid = fmap.to_floor([((line0.x1 + line0.x2) / 2, (line0.y1 + line0.y2) / 2)])
    ppm = float(fmap.px_per_m(mid, [1.0, 0.0])[0])
    size_m = (0.6, 0.375) if sc.kind == "top-down" else (0.86, 1.49)
    heat = truth.heatmap
    rows, cols = heat.person_seconds.shape
    x0, y0 = heat.origin_m
    params = CounterParams(
        lines=tuple(CountLine(name=ln.name, p1=ln.p1, p2=ln.p2, band_px=COUNT_BAND_PX) for ln in sc.lines),
        person_size_px=(size_m[0] * ppm, size_m[1] * ppm),
        process_fps=sc.fps,
        view="top_down" if sc.kind == "top-down" else "angled",
        homography_points=tuple(PointPair(image=i, floor=f) for i, f in zip(fmap.image_points, fmap.floor_points,
                                                                               strict=True)),
        floor_bounds=(x0, y0, x0 + cols * heat.cell_m, y0 + rows * heat.cell_m),
        heatmap_cell_m=heat.cell_m,
    )
    c = Counter(params)
    capture = cv2.VideoCapture(str(video))
    index = 0
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            c.process(np.asarray(frame, dtype=np.uint8), index / sc.fps)
            index += 1
    finally:
        capture.release()
    assert index == truth.frames
    counts = {lt.line.name: {d: (c.totals[lt.line.name][d], lt.count(d)) for d in ("in", "out")}  # type: ignore[index]
              for lt in truth.lines}
    assert c.heatmap is not None
    correlation = float(np.corrcoef(c.heatmap.seconds.ravel(), heat.person_seconds.ravel())[0, 1])
    return counts, correlation, c


def _scenario_names() -> list[str]:
    from simulators.camera import standard_scenarios

    return [s.name for s in standard_scenarios()]


def test_simulator__standard_set_is_long_and_busy_enough() -> None:
    from simulators.camera import simulate, standard_scenarios

    scenarios = standard_scenarios()
    assert sum(s.duration_s for s in scenarios) >= 600
    for scenario in scenarios:
        truth = simulate(scenario)
        for lt in truth.lines:
            assert min(lt.count("in"), lt.count("out")) >= 20, (scenario.name, lt.line.name)


@pytest.mark.slow
@pytest.mark.parametrize("name", _scenario_names())
def test_simulator__per_direction_accuracy_and_heatmap(simulated_clips: Path, name: str) -> None:
    counts, correlation, _ = _count_clip(simulated_clips / f"{name}.avi")
    report = {f"{line}/{d}": (got, true, round(1 - abs(got - true) / true, 4))
              for line, dirs in counts.items() for d, (got, true) in dirs.items()}
    print(name, report, "heatmap r =", round(correlation, 4))
    for key, (_, _, accuracy) in report.items():
        assert accuracy >= 0.98, f"{name} {key}: {report[key]}"
    assert correlation >= 0.9, f"{name}: heatmap correlation {correlation:.3f}"
