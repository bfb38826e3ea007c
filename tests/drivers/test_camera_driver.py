"""The camera driver on real inputs: rendered video files (the real interface here), a corrupt file, a source that
stalls and comes back, and the child-process mode."""

import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

from drivers.camera.config import CameraConfig
from drivers.camera.driver import CameraDriver, window_events
from drivers.camera.sources import Frame, FrameSource, VideoFileSource, make_source, redact, source_kind, stall_after
from edge.driver import DriverContext
from edge.errors import DeviceUnavailable
from edge.events import CameraHeatmap, CameraOccupancy, CameraTraffic
from edge.health import DeviceMonitor
from simulators.camera import CountLine, GroundTruth, Scenario, corrupt_video, render
from tests.drivers.helpers import Collect, wait_for

START = 1_795_420_800.0  # a window boundary: windows of the clip are [START, START + 60), ...
DOOR = CountLine("door", 24, 240, 616, 240)
# 40 s replayed from 20 s before a window boundary: two windows, one partial at each end.
SCENARIO = Scenario(name="driver_clip", lines=(DOOR,), duration_s=40, seed=11, walkers=14, groups=1, stoppers=1)
SHORT = Scenario(name="short_clip", lines=(DOOR,), duration_s=16, seed=12, walkers=6)
REPLAY_START = START - 20


@pytest.fixture(scope="session")
def clip(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, GroundTruth]:
    folder = tmp_path_factory.mktemp("camera-driver")
    video = folder / "driver_clip.avi"
    return video, render(SCENARIO, video)


@pytest.fixture(scope="session")
def short_clip(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, GroundTruth]:
    folder = tmp_path_factory.mktemp("camera-driver-short")
    video = folder / "short_clip.avi"
    return video, render(SHORT, video)


def _config(source: Path | str, **extra: object) -> CameraConfig:
    return CameraConfig.model_validate({
        "type": "camera", "name": "door-cam", "source": str(source), "person_size_px": [48, 30],
        "lines": [{"name": "door", "p1": [24, 240], "p2": [616, 240], "band_px": 22}], "process_fps": 12,
        "process_width": 640, "calibration": "entrance-topdown.toml", "run_in_process": False, **extra,
    })


def _driver(config: CameraConfig, **kwargs: object) -> tuple[CameraDriver, Collect, DeviceMonitor]:
    sink, monitor = Collect(), DeviceMonitor(name=config.name, kind="camera")
    driver = CameraDriver(config, DriverContext(monitor, sink), **kwargs)  # type: ignore[arg-type]
    return driver, sink, monitor


def _totals(sink: Collect) -> tuple[int, int]:
    traffic = [e for e in sink.of(CameraTraffic) if isinstance(e, CameraTraffic)]
    return sum(e.in_count for e in traffic), sum(e.out_count for e in traffic)


def test_camera_driver__file_windows_sum_to_the_counter_and_the_truth(clip: tuple[Path, GroundTruth]) -> None:
    video, truth = clip
    driver, sink, monitor = _driver(_config(video), replay_start=REPLAY_START)
    driver.start()
    try:
        wait_for(lambda: monitor.details.get("replay") == "finished")
        assert driver._worker is not None and driver._worker.counter is not None
        totals = driver._worker.counter.totals["door"]
    finally:
        driver.stop()
    assert monitor.state == "ok"
    assert _totals(sink) == (totals["in"], totals["out"]), "windows add up to the counter's totals"
    true_in, true_out = truth.line("door").count("in"), truth.line("door").count("out")
    assert abs(totals["in"] - true_in) <= 1 and abs(totals["out"] - true_out) <= 1
    occupancy = [e for e in sink.of(CameraOccupancy) if isinstance(e, CameraOccupancy)]
    assert [(e.window_start, e.window_end) for e in occupancy] == [(START - 60, START), (START, START + 60)]
    assert sum(e.frames for e in occupancy) == truth.frames == monitor.counters["frames_processed"]
    heat = [e for e in sink.of(CameraHeatmap) if isinstance(e, CameraHeatmap)]
    assert len(heat) == 2 and all(e.person_seconds > 0 and e.nx * e.ny > 0 for e in heat)
    assert monitor.counters["windows"] == 2 and float(monitor.details.get("fps", "1")) > 0


@pytest.mark.parametrize("mode", ["garbage", "header_only"])
def test_camera_driver__corrupt_file_is_unavailable_with_a_reason_and_retried(tmp_path: Path, mode: str) -> None:
    bad = corrupt_video(tmp_path / f"{mode}.avi", mode=mode)  # type: ignore[arg-type]
    driver, sink, monitor = _driver(_config(bad))
    driver.reconnect_initial_s = 0.05  # type: ignore[misc]
    driver._backoff.initial = 0.05
    attempts = 0
    real_open = driver.open

    def counting_open() -> None:
        nonlocal attempts
        attempts += 1
        real_open()

    driver.open = counting_open  # type: ignore[method-assign]
    driver.start()
    try:
        wait_for(lambda: attempts >= 3)
        assert monitor.state == "unavailable"
        assert monitor.reason is not None and monitor.reason.startswith(f"cannot decode {bad}")
        assert driver._thread is not None and driver._thread.is_alive(), "the driver keeps retrying"
    finally:
        driver.stop()
    assert sink.events == []


def test_camera_driver__truncated_file_counts_what_decodes_and_says_so(tmp_path: Path) -> None:
    bad = corrupt_video(tmp_path / "cut.avi", mode="truncated")
    driver, _, monitor = _driver(_config(bad), replay_start=START)
    driver.start()
    try:
        wait_for(lambda: monitor.details.get("replay") == "finished")
    finally:
        driver.stop()
    assert monitor.state == "degraded" and monitor.reason is not None and "truncated or corrupt" in monitor.reason
    assert monitor.counters["decode_errors"] == 1 and monitor.counters["frames_processed"] > 0


class FlakyLive:
    """A live source in the shape of ``LiveSource``: serves the frames of a real video with wall-clock-like times
    (from a fake clock), goes silent after ``stall_after_frame`` frames on its first connection (the camera hangs)
    and fails to open ``down_opens`` times (the camera reboots) before it serves the rest of the video."""

    def __init__(self, video: Path, state: dict[str, int], clock: list[float]) -> None:
        self._file = VideoFileSource(video, start_ts=0.0)
        self._state = state
        self._clock = clock
        self.fps = 12.0
        self.finished = False
        self.decode_errors = 0
        self.decoded = 0

    def open(self) -> None:
        state = self._state
        state["opens"] += 1
        if state["opens"] > 1 and state["down"] > 0:
            state["down"] -= 1
            raise DeviceUnavailable("rtsp rtsp://cam/stream unreachable")
        self._file.open()
        for _ in range(state["served"]):  # a live camera resumes at "now", not at the start of the video
            self._file.read(threading.Event(), None)

    def read(self, stop: threading.Event, due: float | None) -> Frame | None:
        state = self._state
        if state["opens"] == 1 and state["served"] >= state["stall_after_frame"]:
            raise DeviceUnavailable(f"rtsp rtsp://cam/stream stalled: no frame for {stall_after(self.fps):.1f} s")
        frame = self._file.read(stop, None)
        if frame is None:
            self.finished = self._file.finished
            return None
        state["served"] += 1
        self.decoded += 1
        self._clock[0] += 1 / 12.0
        return Frame(START + self._clock[0], frame.image, frame.number)

    def close(self) -> None:
        self._file.close()


class RecordingMonitor(DeviceMonitor):
    """A monitor that remembers every reason it was given."""

    def __init__(self, name: str) -> None:
        super().__init__(name=name, kind="camera")
        self.reasons: list[str | None] = []

    def set_state(self, state: str, reason: str | None = None) -> bool:  # type: ignore[override]
        self.reasons.append(reason)
        return DeviceMonitor.set_state(self, state, reason)  # type: ignore[arg-type]


def test_camera_driver__live_source_that_stalls_reconnects_and_counting_continues(
    short_clip: tuple[Path, GroundTruth],
) -> None:
    video, truth = short_clip
    state = {"opens": 0, "down": 2, "served": 0, "stall_after_frame": truth.frames // 2}
    clock = [0.0]

    def factory(config: CameraConfig, start: float | None) -> FrameSource:
        return FlakyLive(video, state, clock)

    sink, monitor = Collect(), RecordingMonitor("door-cam")
    driver = CameraDriver(_config("rtsp://cam/stream"), DriverContext(monitor, sink), source_factory=factory)
    driver._backoff.initial = 0.02
    reasons = monitor.reasons
    driver.start()
    try:
        wait_for(lambda: state["served"] >= truth.frames)
        wait_for(lambda: monitor.counters["frames_processed"] >= truth.frames - 1)
    finally:
        driver.stop()
    assert state["opens"] == 4, "stall → two failed reopens → back"
    assert any(r and "stalled" in r for r in reasons) and any(r and "unreachable" in r for r in reasons)
    assert monitor.state == "ok" and monitor.reconnects == 1
    counted_in, counted_out = _totals(sink)
    true_in, true_out = truth.line("door").count("in"), truth.line("door").count("out")
    # The counter restarts (relearns the background) after the reconnect: people crossing then may be missed.
    assert counted_in >= true_in - 3 and counted_out >= true_out - 3
    assert counted_in + counted_out > (true_in + true_out) // 2, "counting continued after the reconnect"


def test_camera_driver__file_replaced_while_away_is_counted_when_it_returns(
    short_clip: tuple[Path, GroundTruth], tmp_path: Path,
) -> None:
    video, truth = short_clip
    target = tmp_path / "drop.avi"  # the camera's file is not there yet (an upload in progress)
    driver, sink, monitor = _driver(_config(target), replay_start=START)
    driver._backoff.initial = 0.05
    driver.start()
    try:
        wait_for(lambda: monitor.reason is not None and "does not exist" in monitor.reason)
        shutil.copy(video, target)
        wait_for(lambda: monitor.details.get("replay") == "finished")
    finally:
        driver.stop()
    assert monitor.state == "ok"
    assert sum(_totals(sink)) >= truth.line("door").count("in") + truth.line("door").count("out") - 2


def test_camera_driver__child_process_mode_emits_the_same_windows(short_clip: tuple[Path, GroundTruth]) -> None:
    video, _ = short_clip
    thread_driver, thread_sink, thread_monitor = _driver(_config(video), replay_start=START)
    child_driver, child_sink, child_monitor = _driver(_config(video, run_in_process=True), replay_start=START)
    for driver, monitor in ((thread_driver, thread_monitor), (child_driver, child_monitor)):
        driver.start()
        try:
            wait_for(lambda m=monitor: m.details.get("replay") == "finished", timeout=45)  # type: ignore[misc]
        finally:
            driver.stop()
    assert child_monitor.details["process"] == "child"
    assert child_sink.events == thread_sink.events


def test_camera_window_events__rows_per_line_summary_and_sparse_heatmap() -> None:
    from drivers.camera.aggregate import LineCounts, SparseHeatmap, WindowAggregate
    from drivers.camera.floor import GridSpec

    window = WindowAggregate(START, START + 60, (LineCounts("a", 3, 1), LineCounts("b", 0, 2)), 3, 1, 2, 3, 1.5,
                             3, 600, SparseHeatmap(GridSpec(0.0, 0.0, 0.5, 4, 3), ((1, 2.5), (7, 1.0))), ())
    events = window_events("cam", window)
    assert [type(e).__name__ for e in events] == ["CameraTraffic", "CameraTraffic", "CameraOccupancy",
                                                  "CameraHeatmap"]
    heat = events[-1]
    assert isinstance(heat, CameraHeatmap)
    assert (heat.cells_json, heat.person_seconds, heat.nx, heat.ny) == ("[[1,2.5],[7,1.0]]", 3.5, 4, 3)


def test_sources__kinds_redaction_and_stall_rule() -> None:
    assert [source_kind(s) for s in ("rtsp://u:p@cam/1", "/dev/video0", "0", "clip.avi")] == \
        ["rtsp", "v4l2", "v4l2", "file"]
    assert redact("rtsp://user:secret@10.0.0.5:554/stream") == "rtsp://***@10.0.0.5:554/stream"
    assert stall_after(25.0) == 2.0 and stall_after(0.5) == 4.0
    assert isinstance(make_source("clip.avi"), VideoFileSource)


def test_sources__file_event_time_from_start_and_skips_frames_not_due(short_clip: tuple[Path, GroundTruth]) -> None:
    video, _ = short_clip
    source = VideoFileSource(video, start_ts=START)
    source.open()
    stop = threading.Event()
    try:
        first = source.read(stop, None)
        later = source.read(stop, START + 1.0)
    finally:
        source.close()
    assert first is not None and later is not None
    assert (first.ts, first.number) == (START, 0)
    assert later.number == 12 and later.ts == pytest.approx(START + 1.0)
    assert source.decoded == 13 and np.asarray(later.image).shape == (480, 640, 3)


def test_camera_driver__a_folder_of_clips_is_one_stream_with_each_clips_own_times(
    tmp_path: Path, clip: tuple[Path, GroundTruth], short_clip: tuple[Path, GroundTruth]
) -> None:
    import os

    folder = tmp_path / "clips"
    folder.mkdir()
    # Two motion clips an hour apart, named by start time; mtime = end of recording (file semantics).
    first, second = folder / "20261122T090000.avi", folder / "20261122T100000.avi"
    shutil.copy(clip[0], first)
    shutil.copy(short_clip[0], second)
    (folder / "20261122T093000.avi").write_bytes(b"not a video")  # a broken upload is skipped, not fatal
    os.utime(first, (START + SCENARIO.duration_s, START + SCENARIO.duration_s))
    os.utime(second, (START + 3600 + SHORT.duration_s, START + 3600 + SHORT.duration_s))
    driver, sink, monitor = _driver(_config(folder))
    driver.start()
    try:
        wait_for(lambda: monitor.details.get("replay") == "finished", timeout=60)
    finally:
        driver.stop()
    truths = [clip[1].line("door"), short_clip[1].line("door")]
    true_in = sum(t.count("in") for t in truths)
    true_out = sum(t.count("out") for t in truths)
    counted_in, counted_out = _totals(sink)
    assert abs(counted_in - true_in) <= 1 and abs(counted_out - true_out) <= 1
    starts = sorted({e.window_start for e in sink.of(CameraTraffic) if isinstance(e, CameraTraffic)})
    assert starts[0] >= START - 60 and starts[-1] >= START + 3600, "the second clip counts an hour later"
    assert not [s for s in starts if START + 120 < s < START + 3540], "nothing is invented between the clips"
    assert monitor.counters["decode_errors"] == 1, "the broken clip is counted"
