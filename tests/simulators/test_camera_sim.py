"""The camera simulator: videos that decode as promised and ground truth that agrees with its own tracks."""

import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from simulators.camera import (
    CountLine,
    GroundTruth,
    Scenario,
    corrupt_video,
    line_crossings,
    load_truth,
    render,
    simulate,
    standard_scenarios,
    truth_path,
)
from simulators.camera.__main__ import main

DOOR = CountLine("door", 24, 240, 616, 240)
SHORT = Scenario(name="short", lines=(DOOR,), duration_s=6, seed=7, walkers=3, groups=1, loiterers=1)


def _recount(track_image: np.ndarray, line: CountLine, band: float) -> list[tuple[str, int]]:
    """An independent, loop-by-loop reading of the documented rule: (direction, first index past the line)."""
    (x1, y1), (x2, y2) = line.p1, line.p2
    side, past, past_on_segment = 0, -1, False
    prev_d = None
    out = []
    for i, (x, y) in enumerate(track_image):
        d = ((x2 - x1) * (y - y1) - (y2 - y1) * (x - x1)) / math.hypot(x2 - x1, y2 - y1)
        if prev_d is not None and (prev_d > 0) != (d > 0):
            (px, py) = track_image[i - 1]
            k = prev_d / (prev_d - d)
            cx, cy = px + k * (x - px), py + k * (y - py)
            t = ((cx - x1) * (x2 - x1) + (cy - y1) * (y2 - y1)) / ((x2 - x1) ** 2 + (y2 - y1) ** 2)
            past, past_on_segment = i, 0 <= t <= 1
        now = 1 if d >= band else -1 if d <= -band else 0
        if now and side and now != side and past_on_segment:
            out.append(("in" if now > 0 else "out", past))
        side = now or side
        prev_d = d
    return out


def _assert_crossings_match_tracks(truth: GroundTruth) -> None:
    for lt in truth.lines:
        expected = sorted((t.first_frame + i, t.person, direction) for t in truth.tracks
                          for direction, i in _recount(t.image, lt.line, truth.band_px))
        recorded = sorted((c.frame, c.person, c.direction) for c in lt.crossings)
        assert recorded == expected, lt.line.name


def _frames(path: Path) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    return frames


@pytest.fixture(scope="module")
def short_clip(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, GroundTruth]:
    """The SHORT scenario rendered once for the module."""
    video = tmp_path_factory.mktemp("clip") / "short.avi"
    return video, render(SHORT, video)


def test_render__same_seed_gives_identical_bytes_and_truth(short_clip: tuple[Path, GroundTruth],
                                                           tmp_path: Path) -> None:
    video, _ = short_clip
    again = render(SHORT, tmp_path / "again.avi")
    assert (tmp_path / "again.avi").read_bytes() == video.read_bytes()
    first, second = (json.loads(truth_path(p).read_text()) for p in (video, tmp_path / "again.avi"))
    first.pop("video"), second.pop("video")
    assert first == second
    other = render(Scenario(**{**SHORT.__dict__, "seed": 8}), tmp_path / "other.avi")
    assert [t.floor.tolist() for t in other.tracks] != [t.floor.tolist() for t in again.tracks]


def test_render__video_opens_with_expected_frame_count_and_size(short_clip: tuple[Path, GroundTruth]) -> None:
    video, truth = short_clip
    cap = cv2.VideoCapture(str(video))
    assert cap.isOpened()
    assert (cap.get(cv2.CAP_PROP_FRAME_WIDTH), cap.get(cv2.CAP_PROP_FRAME_HEIGHT)) == (640, 480)
    assert cap.get(cv2.CAP_PROP_FPS) == pytest.approx(SHORT.fps)
    cap.release()
    frames = _frames(video)
    assert len(frames) == truth.frames == SHORT.frame_count == 72
    assert frames[0].shape == (480, 640, 3)


def test_truth__json_round_trips_and_counts_match_tracks(short_clip: tuple[Path, GroundTruth]) -> None:
    video, truth = short_clip
    loaded = load_truth(video)
    assert loaded.scenario == SHORT
    assert loaded.total_people == truth.total_people == len(json.loads(truth_path(video).read_text())["tracks"])
    assert [lt.crossings for lt in loaded.lines] == [lt.crossings for lt in truth.lines]
    _assert_crossings_match_tracks(loaded)


@pytest.mark.parametrize("scenario", standard_scenarios(), ids=lambda s: s.name)
def test_truth__standard_crossings_match_an_independent_recount_of_the_tracks(scenario: Scenario) -> None:
    _assert_crossings_match_tracks(simulate(scenario))


def test_standard_scenarios__ten_minutes_and_twenty_crossings_each_way_on_every_line() -> None:
    scenarios = standard_scenarios()
    assert sum(s.duration_s for s in scenarios) >= 600
    assert all(s.size == (640, 480) and 10 <= s.fps <= 15 for s in scenarios)
    assert {s.kind for s in scenarios} == {"top-down", "angled"}
    for s in scenarios:
        truth = simulate(s)
        for lt in truth.lines:
            assert lt.count("in") >= 20 and lt.count("out") >= 20, (s.name, lt.line.name)
    assert all(sum(getattr(s, k) for s in scenarios) > 0 for k in ("groups", "stoppers", "turn_backs", "loiterers"))
    assert any(s.lights_on_s is not None for s in scenarios)


def test_truth__turn_backs_never_count_and_loiterers_dither_but_count_at_most_once() -> None:
    truth = simulate(standard_scenarios()[0])
    counted = {c.person for lt in truth.lines for c in lt.crossings}
    per_person = {t.person: sum(c.person == t.person for lt in truth.lines for c in lt.crossings) for t in truth.tracks}
    turn_backs = [t for t in truth.tracks if t.kind == "turn_back"]
    loiterers = [t for t in truth.tracks if t.kind == "loiterer"]
    assert turn_backs and not counted & {t.person for t in turn_backs}
    assert all(per_person[t.person] <= 1 for t in loiterers)
    line = truth.lines[0].line
    sign_changes = [int(np.count_nonzero(np.diff(np.sign(t.image[:, 1] - line.y1)))) for t in loiterers]
    assert max(sign_changes) >= 3  # they really step back and forth across the line
    assert any(per_person[t.person] == 0 for t in loiterers) and any(per_person[t.person] == 1 for t in loiterers)
    groups = [t.group for t in truth.tracks if t.group is not None]
    assert groups and all(groups.count(g) in (2, 3) for g in groups)


def test_line_crossings__direction_segment_and_hysteresis() -> None:
    line = CountLine("l", 0, 100, 200, 100)  # cross((200, 0), pt - p1) > 0 below the line: walking down is "in"
    down = np.array([(100, y) for y in range(40, 170, 10)], dtype=float)
    assert [(d, i) for d, i, _ in line_crossings(down, line, 15)] == [("in", 7)]
    assert [d for d, *_ in line_crossings(down[::-1], line, 15)] == ["out"]
    beside = down + np.array([250.0, 0.0])  # crosses the infinite line but not the segment
    assert line_crossings(beside, line, 15) == []
    dither = np.array([(100, y) for y in (60, 80, 92, 108, 95, 110, 90, 106, 94, 70, 50)], dtype=float)
    assert line_crossings(dither, line, 15) == []
    in_and_back = np.vstack([down, down[::-1]])
    assert [d for d, *_ in line_crossings(in_and_back, line, 15)] == ["in", "out"]


def test_lights_on__mean_brightness_jumps_in_one_frame(tmp_path: Path) -> None:
    scenario = Scenario(name="lights", lines=(DOOR,), duration_s=3, seed=3, walkers=1, lights_on_s=1.5,
                        flicker=True)
    truth = render(scenario, tmp_path)
    frames = _frames(tmp_path / "lights.avi")
    means = [float(f.mean()) for f in frames]
    on = truth.lights_on_frame
    assert on == 18
    assert means[on] / means[on - 1] > 1.3
    assert means[on + 1] / means[on] < 0.8  # the flicker
    assert max(abs(means[i + 1] / means[i] - 1) for i in range(on - 1)) < 0.03  # no other jumps before


@pytest.mark.parametrize("kind", ["top-down", "angled"])
def test_homography__maps_rendered_foot_points_to_recorded_floor_positions(kind: str, tmp_path: Path) -> None:
    line = DOOR if kind == "top-down" else CountLine("door", 40, 270, 600, 270)
    scenario = Scenario(name="one", kind=kind, lines=(line,), duration_s=8, seed=11, walkers=1, drift=0.0,  # type: ignore[arg-type]
                        noise=0.0, shadows=False, low_contrast=0.0)
    truth = render(scenario, tmp_path)
    pairs = json.loads(truth_path(tmp_path / "one.avi").read_text())["homography"]
    to_floor, _ = cv2.findHomography(np.array(pairs["image_points"]), np.array(pairs["floor_points"]), 0)

    def floor_of(points: np.ndarray) -> np.ndarray:
        return cv2.perspectiveTransform(points.reshape(-1, 1, 2).astype(np.float64), to_floor).reshape(-1, 2)

    (track,) = truth.tracks
    assert np.abs(floor_of(track.image) - track.floor).max() < 0.1
    frames = _frames(tmp_path / "one.avi")
    empty = frames[0].astype(int)
    inside = [i for i, (x, y) in enumerate(track.image) if 80 < x < 560 and 150 < y < 460]
    assert len(inside) > 10
    errors = []
    for i in inside[:: max(1, len(inside) // 8)]:
        mask = (np.abs(frames[track.frame_at(i)].astype(int) - empty).sum(axis=2) > 40).astype(np.uint8)
        mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, np.ones((5, 5), np.uint8))
        _, labels, stats, _ = cv2.connectedComponentsWithStats(mask)
        ys, xs = np.nonzero(labels == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA])))  # the person, not JPEG noise
        if kind == "top-down":
            foot = np.array([xs.mean(), ys.mean()])  # body centre
        else:
            foot = np.array([xs[ys >= ys.max() - 3].mean(), ys.max() + 0.5])  # bottom of the body
        errors.append(float(np.linalg.norm(floor_of(foot) - track.floor[i])))
    assert max(errors) < 0.1, errors


def test_heatmap__person_seconds_equal_time_foot_points_spend_in_view() -> None:
    truth = simulate(standard_scenarios()[3])
    w, h = truth.scenario.size
    seen = sum(int(((t.image[:, 0] >= 0) & (t.image[:, 0] < w) & (t.image[:, 1] >= 0) & (t.image[:, 1] < h)).sum())
               for t in truth.tracks)
    assert truth.heatmap.person_seconds.sum() == pytest.approx(seen / truth.scenario.fps)
    assert truth.heatmap.cell_m == 0.5
    assert (truth.heatmap.person_seconds > 0).sum() > 50


def test_corrupt_video__garbage_and_header_only_do_not_open_and_truncated_stops_early(tmp_path: Path) -> None:
    for mode in ("garbage", "header_only"):
        cap = cv2.VideoCapture(str(corrupt_video(tmp_path / f"{mode}.avi", mode=mode)))
        assert not cap.isOpened()
    truncated = corrupt_video(tmp_path / "truncated.avi", mode="truncated")
    cap = cv2.VideoCapture(str(truncated))
    assert cap.isOpened()
    assert 0 < len(_frames(truncated)) < cap.get(cv2.CAP_PROP_FRAME_COUNT)


def test_cli__writes_videos_and_truth(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--out", str(tmp_path), "--scenario", "topdown_groups", "--duration", "4", "--jobs", "1"]) == 0
    assert load_truth(tmp_path / "topdown_groups.avi").frames == 48
    assert "topdown_groups" in capsys.readouterr().out


def test_cli__has_help_for_every_option() -> None:
    from simulators.camera.__main__ import build_parser

    for action in build_parser()._actions:
        assert action.help, action.option_strings
