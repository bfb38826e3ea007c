"""People-counting camera driver: frames from a source → ``Counter`` → event-time windows → aggregate events.

``CameraWorker`` (``worker.py``) owns the source and the counter and picks frames at the configured rate; the
driver owns the ``Aggregator`` (so occupancy survives a reconnect) and emits ``CameraTraffic``/``CameraOccupancy``/
``CameraHeatmap``/``CameraZone`` once per closed window. With ``run_in_process`` the worker runs in a spawned
child process and sends each frame's small ``FrameResult`` back over a pipe, so a heavy camera never holds the
daemon's GIL; a child that fails or dies is reported as ``unavailable`` and restarted with backoff.

What drivers cannot see, and the choices made here: the daemon's ``runtime.rollup_window_s`` (camera windows are
``WINDOW_S`` = 60 s), the store's time zone (the closing-time occupancy reset uses the gateway's system zone,
which the installer sets to the store's) and the floor plan's zones (the driver emits no zone rows; the daemon's
``edge.camera_zones`` job splits the stored heatmap cells over the plan's zones).
"""

import json
import logging
import multiprocessing
import threading
import time
import tomllib
from datetime import datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pydantic

from drivers.camera.aggregate import Aggregator, WindowAggregate
from drivers.camera.config import CameraCalibration, CameraConfig, PointPair
from drivers.camera.floor import GridSpec, Homography, footprint
from drivers.camera.protocol import Counter, CounterParams, FrameResult
from drivers.camera.sources import FrameSource, VideoFileSource, make_source, redact, source_kind
from drivers.camera.worker import (
    CameraWorker,
    Failed,
    Finished,
    Message,
    Opened,
    Processed,
    SourceFactory,
    child_main,
)
from edge.const import HEALTH_DEGRADED
from edge.driver import DriverContext, ReaderDriver
from edge.errors import ConfigError, DeviceUnavailable
from edge.events import CameraHeatmap, CameraOccupancy, CameraTraffic, CameraZone, Event, LineTotal, VideoCount

logger = logging.getLogger(__name__)

U8 = npt.NDArray[np.uint8]
WINDOW_S = 60.0
FPS_REPORT_S = 2.0
CHILD_START_TIMEOUT_S = 20.0  # spawning imports numpy and OpenCV (~1 s) and an RTSP open may take its 3 s
CALIBRATION_DIRS = (Path(__file__).resolve().parents[2] / "firmware_configs" / "cameras",
                    Path("/etc/store-edge/cameras"))



def default_source(config: CameraConfig, start_ts: float | None) -> FrameSource:
    """The source a camera config names (files replay as fast as possible; event time comes from the file)."""
    return make_source(config.source, start_ts=start_ts)


# -- calibration ------------------------------------------------------------------------------------------------


def calibration_path(name: str) -> Path:
    """Where a calibration file lives: a path as given, else by name in ``firmware_configs/cameras/`` or
    ``/etc/store-edge/cameras/`` (``.toml`` may be left off)."""
    candidates = [Path(name)]
    for folder in CALIBRATION_DIRS:
        candidates += [folder / name, folder / f"{name}.toml"]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise ConfigError(f"camera calibration {name!r} not found (looked in "
                      f"{', '.join(str(d) for d in CALIBRATION_DIRS)})")


def homography_points(config: CameraConfig) -> list[PointPair] | None:
    """The camera's image↔floor point pairs: from its calibration file or inline; ``ConfigError`` if invalid."""
    if config.calibration is None:
        return list(config.homography_points) if config.homography_points is not None else None
    path = calibration_path(config.calibration)
    try:
        calibration = CameraCalibration.model_validate(tomllib.loads(path.read_text(encoding="utf-8")))
    except (OSError, tomllib.TOMLDecodeError, pydantic.ValidationError) as err:
        raise ConfigError(f"camera {config.name}: calibration {path} is invalid: {err}") from err
    return list(calibration.homography_points)


def heatmap_grid(params: CounterParams, width: int, height: int) -> GridSpec | None:
    """The heatmap grid ``Counter`` builds for a source of this size (None without a homography)."""
    if not params.homography_points:
        return None
    homography = Homography.fit([p.image for p in params.homography_points],
                                [p.floor for p in params.homography_points])
    bounds = params.floor_bounds or footprint(homography, width, height)
    return GridSpec.covering(*bounds, params.heatmap_cell_m)


def system_local_time(ts: float) -> datetime:
    """Event time in the gateway's system time zone (aware)."""
    return datetime.fromtimestamp(ts).astimezone()


def window_events(camera: str, window: WindowAggregate) -> list[Event]:
    """The rows one closed window becomes: one per line, one summary, the heatmap (if any) and one per zone."""
    start, end = window.start, window.end
    events: list[Event] = [CameraTraffic(start, end, camera, lc.line, lc.in_count, lc.out_count)
                           for lc in window.lines]
    events.append(CameraOccupancy(start, end, camera, window.entries, window.exits, window.occupancy,
                                  window.occupancy_max, round(window.visible_mean, 3), window.visible_max,
                                  window.frames, window.occupancy_resets))
    if window.heatmap is not None:
        grid = window.heatmap.grid
        cells = json.dumps([[index, seconds] for index, seconds in window.heatmap.cells], separators=(",", ":"))
        events.append(CameraHeatmap(start, end, camera, grid.origin_x, grid.origin_y, grid.cell_m, grid.nx, grid.ny,
                                    cells, round(window.heatmap.total_seconds, 3)))
    events.extend(CameraZone(start, end, camera, zone.zone, zone.seconds) for zone in window.zones)
    return events


# -- the driver -------------------------------------------------------------------------------------------------


class CameraDriver(ReaderDriver):
    """One people-counting camera (video file, RTSP stream or USB camera)."""

    type_key = "camera"

    def __init__(self, config: CameraConfig, ctx: DriverContext, *, source_factory: SourceFactory | None = None,
                 replay_start: float | None = None, window_s: float = WINDOW_S) -> None:
        super().__init__(config, ctx, reconnect_max_s=30.0)
        self.cfg = config
        self._factory = source_factory or default_source
        self._replay_start = replay_start
        self._window_s = window_s
        self._params: CounterParams | None = None
        self._aggregator: Aggregator | None = None
        self._grid_for: tuple[int, int] | None = None
        self._worker: CameraWorker | None = None
        self._process: Any = None  # multiprocessing.context.SpawnProcess
        self._conn: Connection | None = None
        self._child_stop: Any = None
        self._finished = False
        self._decoded = self._errors = 0
        self._fps_mark = (time.monotonic(), 0)
        self._processed = 0
        self._lock = threading.Lock()

    def describe(self) -> dict[str, str]:
        """Source, processing settings and lines."""
        cfg = self.cfg
        facts = {"source": f"{source_kind(cfg.source)} {redact(cfg.source)}",
                 "processing": f"{cfg.process_fps:g} fps at {cfg.process_width} px, {cfg.view}",
                 "lines": ",".join(line.name for line in cfg.lines) or "-",
                 "process": "child" if cfg.run_in_process else "thread"}
        if cfg.calibration:
            facts["calibration"] = cfg.calibration
        return facts

    def start(self) -> None:
        """Load the calibration (a bad one is a config error), then start reading."""
        self._params = CounterParams.from_config(self.cfg, homography_points(self.cfg))
        super().start()

    def stop(self) -> None:
        """Stop reading and emit the window still open (a partial window is better than a lost one)."""
        super().stop()
        self._flush()

    # ReaderDriver hooks ---------------------------------------------------------------------------------------

    def open(self) -> None:
        """Open the source (in this thread or a new child process)."""
        assert self._params is not None
        self._finished = False
        self._decoded = self._errors = 0
        self.ctx.monitor.details.pop("replay", None)
        if source_kind(self.cfg.source) == "file":
            self._flush()
            self._aggregator = None  # a file is replayed from its start: its windows are counted afresh
        if self.cfg.run_in_process:
            self._spawn()
        else:
            worker = CameraWorker(self.cfg, self._params, self._factory, self._replay_start)
            worker.open()
            self._worker = worker
        self._fps_mark = (time.monotonic(), self._processed)

    def read_once(self) -> None:
        """Process what the source has now and emit the windows that closed."""
        if self._finished:
            self._stop.wait(0.2)
            return
        messages = self._worker.step(self._stop) if self._worker is not None else self._receive()
        for message in messages:
            self._handle(message)
        self._report_fps()

    def close(self) -> None:
        """Release the source or end the child process."""
        worker, self._worker = self._worker, None
        if worker is not None:
            worker.close()
        self._end_child()

    # messages -----------------------------------------------------------------------------------------------

    def _handle(self, message: Message) -> None:
        if isinstance(message, Processed):
            self._processed += 1
            self._sync_counts(message.decoded, message.decode_errors)
            self.ctx.count("frames_processed")
            self._add(message.result, message.size)
        elif isinstance(message, Finished):
            self._finish(message)
        elif isinstance(message, Failed):
            raise DeviceUnavailable(message.reason)

    def _sync_counts(self, decoded: int, errors: int) -> None:
        if decoded > self._decoded:
            self.ctx.count("frames_decoded", decoded - self._decoded)
            self._decoded = decoded
        if errors > self._errors:
            self.ctx.count("decode_errors", errors - self._errors)
            self._errors = errors

    def _add(self, result: FrameResult, size: tuple[int, int]) -> None:
        aggregator = self._aggregator
        if aggregator is None or size != self._grid_for:
            # The heatmap grid depends on the source size: a new size (another stream) starts a new aggregator.
            assert self._params is not None
            self._flush()
            self._grid_for = size
            aggregator = self._aggregator = Aggregator(self.cfg.lines, self._window_s, self.cfg.closing_hm,
                                                       system_local_time, heatmap_grid(self._params, *size))
        with self._lock:
            closed = aggregator.add(result)
        self._emit(closed)

    def _finish(self, message: Finished) -> None:
        self._sync_counts(message.decoded, message.decode_errors)
        self._flush()
        self._finished = True
        self.ctx.monitor.details["replay"] = "finished"
        if message.truncated_at is not None:
            reason = (f"cannot decode {self.cfg.source} after frame {message.truncated_at} of {message.frame_count} "
                      "(truncated or corrupt); counted what was readable")
            self.ctx.monitor.set_state(HEALTH_DEGRADED, reason)
        logger.info("Camera %s finished replaying %s (%d frames)", self.cfg.name, self.cfg.source, message.decoded)

    def _flush(self) -> None:
        aggregator = self._aggregator
        if aggregator is None:
            return
        with self._lock:
            closed = aggregator.flush()
        self._emit(closed)

    def _emit(self, windows: list[WindowAggregate]) -> None:
        for window in windows:
            for event in window_events(self.cfg.name, window):
                self.ctx.emit(event, window.end)
            self.ctx.count("windows")

    def _report_fps(self) -> None:
        now = time.monotonic()
        mark, processed = self._fps_mark
        if now - mark >= FPS_REPORT_S:
            self.ctx.monitor.details["fps"] = f"{(self._processed - processed) / (now - mark):.1f}"
            self._fps_mark = (now, self._processed)

    # the child process --------------------------------------------------------------------------------------

    def _spawn(self) -> None:
        assert self._params is not None
        context = multiprocessing.get_context("spawn")
        parent, child = context.Pipe(duplex=False)
        self._child_stop = context.Event()
        process = context.Process(
            target=child_main, name=f"camera-{self.cfg.name}", daemon=True,
            args=(self.cfg, self._params, self._factory, self._replay_start, child, self._child_stop),
        )
        try:
            process.start()
        except (OSError, RuntimeError) as err:
            raise DeviceUnavailable(f"cannot start the camera process: {err}") from err
        finally:
            child.close()
        self._process, self._conn = process, parent
        deadline = time.monotonic() + CHILD_START_TIMEOUT_S
        while not self._stop.is_set():
            self.ctx.monitor.beat()
            if parent.poll(0.2):
                first = self._recv()
                if isinstance(first, Failed):
                    raise DeviceUnavailable(first.reason)
                if isinstance(first, Opened):
                    return
            if not process.is_alive() and not parent.poll(0):
                raise DeviceUnavailable(f"camera process exited with code {process.exitcode} while opening")
            if time.monotonic() > deadline:
                raise DeviceUnavailable(f"camera process did not open {redact(self.cfg.source)} within "
                                        f"{CHILD_START_TIMEOUT_S:.0f} s")

    def _recv(self) -> Message:
        assert self._conn is not None
        try:
            message: Message = self._conn.recv()
        except (EOFError, OSError) as err:
            code = self._process.exitcode if self._process is not None else None
            raise DeviceUnavailable(f"camera process ended unexpectedly (exit code {code})") from err
        return message

    def _receive(self) -> list[Message]:
        conn = self._conn
        if conn is None:
            self._stop.wait(0.2)
            return []
        messages: list[Message] = []
        if conn.poll(0.2):
            while len(messages) < 256:
                messages.append(self._recv())
                if not conn.poll(0):
                    break
        elif self._process is not None and not self._process.is_alive():
            raise DeviceUnavailable(f"camera process ended unexpectedly (exit code {self._process.exitcode})")
        return messages

    def _end_child(self) -> None:
        process, self._process = self._process, None
        if self._child_stop is not None:
            self._child_stop.set()
        if process is not None:
            process.join(5.0)
            if process.is_alive():
                logger.warning("Camera %s process did not stop in 5 s; terminating it", self.cfg.name)
                process.terminate()
                process.join(2.0)
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    # offline tools (used by `edge camera ...`; the CLI reaches them through the registry) ------------------------

    @staticmethod
    def count_video(config: CameraConfig, video: Path) -> VideoCount:
        """Count a whole video file with a camera config (lines, size, rate); ``DeviceUnavailable`` if unreadable.

        Frames are timed from 0 at the file's frame rate; processing runs as fast as the CPU allows.
        """
        params = CounterParams.from_config(config, homography_points(config))
        worker = CameraWorker(config, params, lambda cfg, start: VideoFileSource(video, start_ts=0.0), 0.0)
        stop = threading.Event()
        started = time.perf_counter()
        fps = worker.open().fps
        processed = 0
        finished: Finished | None = None
        try:
            while finished is None:
                for message in worker.step(stop):
                    if isinstance(message, Processed):
                        processed += 1
                    elif isinstance(message, Finished):
                        finished = message
        finally:
            worker.close()
        elapsed = time.perf_counter() - started
        counter = worker.counter
        assert counter is not None
        return VideoCount(
            video=str(video),
            lines=[LineTotal(line.name, counter.totals[line.name]["in"], counter.totals[line.name]["out"])
                   for line in config.lines],
            frames=finished.decoded, processed=processed, fps=round(fps, 3),
            duration_s=round(finished.decoded / fps, 3), elapsed_s=round(elapsed, 3),
            processed_fps=round(processed / elapsed, 1) if elapsed > 0 else 0.0, decode_errors=finished.decode_errors,
        )

    @staticmethod
    def snapshot(config: CameraConfig, seconds: float = 3.0) -> U8:
        """Read ``seconds`` of the camera (or file), then the last frame with lines, ROI and current tracks drawn."""
        params = CounterParams.from_config(config, homography_points(config))
        source = make_source(config.source, start_ts=0.0)
        counter = Counter(params)
        stop = threading.Event()
        source.open()
        last: U8 | None = None
        first_ts: float | None = None
        due: float | None = None
        try:
            deadline = time.monotonic() + max(seconds, 0.0) + 10.0
            while time.monotonic() < deadline and not source.finished:
                frame = source.read(stop, due)
                if frame is None:
                    continue
                first_ts = frame.ts if first_ts is None else first_ts
                due = frame.ts + 1.0 / config.process_fps
                counter.process(frame.image, frame.ts)
                last = frame.image
                if frame.ts - first_ts >= seconds:
                    break
        finally:
            source.close()
        if last is None:
            raise DeviceUnavailable(f"no frame could be read from {redact(config.source)}")
        return counter.snapshot_overlay(last)
