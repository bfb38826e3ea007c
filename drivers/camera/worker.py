"""The camera worker: a frame source plus a ``Counter``, run in the driver's thread or in a spawned child process.

It picks frames at the configured rate (the newest one for live sources), counts them, and reports small
messages (``Opened``, ``Processed``, ``Finished``, ``Failed``) that the driver turns into aggregates.
"""

import threading
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from drivers.camera.config import CameraConfig
from drivers.camera.protocol import Counter, CounterParams, FrameResult
from drivers.camera.sources import FrameSource, VideoFileSource
from edge.errors import DeviceUnavailable

SourceFactory = Callable[[CameraConfig, float | None], FrameSource]


@dataclass(frozen=True, slots=True)
class Opened:
    """The source is open, at this frame rate."""

    fps: float


@dataclass(frozen=True, slots=True)
class Processed:
    """One processed frame's result and source size (width, height), with the source's cumulative counters."""

    result: FrameResult
    size: tuple[int, int]
    decoded: int
    decode_errors: int


@dataclass(frozen=True, slots=True)
class Finished:
    """A video file ended; ``truncated_at`` is the frame where decoding stopped early, if it did."""

    decoded: int
    decode_errors: int
    frame_count: int
    truncated_at: int | None


@dataclass(frozen=True, slots=True)
class Failed:
    """The source failed (child process only; in a thread the ``DeviceUnavailable`` is raised directly)."""

    reason: str


Message = Opened | Processed | Finished | Failed


class CameraWorker:
    """Reads frames at the configured rate (newest frame for live sources) and runs them through a ``Counter``."""

    def __init__(self, config: CameraConfig, params: CounterParams, factory: SourceFactory,
                 start_ts: float | None) -> None:
        self.config = config
        self.params = params
        self.factory = factory
        self.start_ts = start_ts
        self.counter: Counter | None = None
        self.source: FrameSource | None = None
        self._due: float | None = None
        self._interval = 1.0 / config.process_fps
        self._finished_sent = False

    def open(self) -> Opened:
        """Open the source and start a fresh counter (a new stream may differ in size or scene)."""
        source = self.factory(self.config, self.start_ts)
        source.open()
        self.source, self._due, self._finished_sent = source, None, False
        self.counter = Counter(self.params)
        return Opened(source.fps)

    def step(self, stop: threading.Event) -> list[Message]:
        """Process the next due frame, if one is ready; raises ``DeviceUnavailable`` when the source fails."""
        source, counter = self.source, self.counter
        assert source is not None and counter is not None
        if source.finished:
            if self._finished_sent:
                stop.wait(0.2)
                return []
            self._finished_sent = True
            truncated = source.truncated_at if isinstance(source, VideoFileSource) else None
            count = source.frame_count if isinstance(source, VideoFileSource) else 0
            return [Finished(source.decoded, source.decode_errors, count, truncated)]
        frame = source.read(stop, self._due)
        if frame is None:
            return []
        due = self._due
        self._due = frame.ts + self._interval if due is None or due + self._interval < frame.ts else \
            due + self._interval
        result = counter.process(frame.image, frame.ts)
        size = (int(frame.image.shape[1]), int(frame.image.shape[0]))
        return [Processed(result, size, source.decoded, source.decode_errors)]

    def close(self) -> None:
        """Release the source."""
        source, self.source = self.source, None
        if source is not None:
            source.close()


def child_main(config: CameraConfig, params: CounterParams, factory: SourceFactory, start_ts: float | None,
                conn: Connection, stop: Any) -> None:
    """The camera process: open, then stream messages to the driver until stopped, finished or failed."""
    worker = CameraWorker(config, params, factory, start_ts)
    try:
        conn.send(worker.open())
        while not stop.is_set():
            messages = worker.step(stop)
            for message in messages:
                conn.send(message)
    except DeviceUnavailable as err:
        conn.send(Failed(str(err)))
    except (BrokenPipeError, EOFError):
        pass  # the driver went away
    finally:
        worker.close()
        conn.close()
