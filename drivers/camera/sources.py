"""Where camera frames come from: a video file, an RTSP stream (FFMPEG) or a USB/V4L2 camera.

Every source opens, hands out ``Frame``s with their event time, and closes. OpenCV errors are translated into
``DeviceUnavailable`` here, at the boundary. Live sources (RTSP, V4L2) are read by a thread that keeps only the
newest frame, so processing always sees the present and never a growing backlog (``CAP_PROP_BUFFERSIZE`` cannot
be set on the FFMPEG backend); a live source that delivers nothing for ``max(2 frame intervals, 2 s)`` (Frigate's
stall rule) raises ``DeviceUnavailable`` and the driver reopens it with backoff.

Event time: a file's frame ``i`` happened at ``start_ts + i / fps`` (``start_ts`` defaults to the file's mtime
minus its duration: a recorded clip is written when the recording ends); a live frame happened when it was read.
"""

import contextlib
import logging
import math
import os
import queue
import threading
import time
from pathlib import Path
from typing import NamedTuple, Protocol

import cv2
import numpy as np
import numpy.typing as npt

from edge.errors import DeviceUnavailable

logger = logging.getLogger(__name__)

U8 = npt.NDArray[np.uint8]

OPEN_TIMEOUT_MS = 3000
READ_TIMEOUT_MS = 3000
MIN_STALL_S = 2.0
POLL_S = 0.2
# TCP for RTSP (UDP loses packets on busy store networks and smears frames); no input buffering.
FFMPEG_OPTIONS = "rtsp_transport;tcp|fflags;nobuffer|flags;low_delay"
FFMPEG_OPTIONS_ENV = "OPENCV_FFMPEG_CAPTURE_OPTIONS"
DEFAULT_FPS = 25.0
# A file whose decoding stops more than this many frames before its header's frame count is truncated/corrupt.
TRUNCATION_SLACK_FRAMES = 2
# A file is decoded this many frames ahead of processing, by a thread of its own.
DECODE_AHEAD = 4


SKIPPED: U8 = np.zeros((0, 0, 3), dtype=np.uint8)  # stands for a grabbed frame nobody will process


class Frame(NamedTuple):
    """One decoded frame at source resolution and its event time (epoch seconds)."""

    ts: float
    image: U8
    number: int


class FrameSource(Protocol):
    """A supplier of frames."""

    fps: float
    finished: bool
    decode_errors: int
    decoded: int

    def open(self) -> None:
        """Open; raise ``DeviceUnavailable`` with a clear reason when impossible."""

    def read(self, stop: threading.Event, due: float | None) -> Frame | None:
        """The next frame to process, or None when none is ready yet (waits at most a fraction of a second).

        ``due`` is the earliest event time worth processing (frames before it may be skipped cheaply); raise
        ``DeviceUnavailable`` when the source has gone away.
        """

    def close(self) -> None:
        """Release; never raises."""


def stall_after(fps: float) -> float:
    """Seconds without a frame after which a live source counts as stalled: max(2 frame intervals, 2 s)."""
    return max(2.0 / fps if fps > 0 else 0.0, MIN_STALL_S)


class VideoFileSource:
    """Decodes a video file once, as fast as possible or paced to its frame rate (``pace``).

    A decoder thread runs up to ``DECODE_AHEAD`` frames ahead of the consumer, so decoding the next frames
    overlaps with processing this one (on a second core) instead of adding to it. Frames the consumer has
    already said it will skip (event time before the last ``due`` it gave) are only grabbed, not converted.
    """

    def __init__(self, path: Path, *, start_ts: float | None = None, pace: bool = False) -> None:
        self.path = path
        self.pace = pace
        self.fps = DEFAULT_FPS
        self.finished = False
        self.decode_errors = 0
        self.decoded = 0
        self.frame_count = 0
        self.truncated_at: int | None = None
        self._start_ts = start_ts
        self._thread: threading.Thread | None = None
        self._closing = threading.Event()
        self._queue: queue.Queue[U8 | None] = queue.Queue(maxsize=DECODE_AHEAD)
        self._skip_before = -math.inf  # the consumer's last ``due``: frames before it need no BGR conversion
        self._index = 0
        self._started = 0.0

    @property
    def start_ts(self) -> float:
        """Event time of frame 0."""
        assert self._start_ts is not None
        return self._start_ts

    def open(self) -> None:
        if not self.path.is_file():
            raise DeviceUnavailable(f"video file {self.path} does not exist")
        try:
            capture = cv2.VideoCapture(str(self.path), cv2.CAP_FFMPEG)
            opened = capture.isOpened()
        except cv2.error as err:
            raise DeviceUnavailable(f"cannot decode {self.path}: {err}") from err
        if not opened:
            raise DeviceUnavailable(f"cannot decode {self.path}: not a video file OpenCV/FFMPEG can open")
        ok, first = capture.read()
        if not ok or first is None:
            capture.release()
            raise DeviceUnavailable(f"cannot decode {self.path}: no frame could be decoded (corrupt or empty file)")
        fps = float(capture.get(cv2.CAP_PROP_FPS) or 0.0)
        self.fps = fps if 0 < fps <= 240 else DEFAULT_FPS
        self.frame_count = max(0, int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0))
        if self._start_ts is None:
            duration = self.frame_count / self.fps if self.frame_count else 0.0
            self._start_ts = self.path.stat().st_mtime - duration
        single_threaded_opencv()
        self._closing.clear()
        self._queue = queue.Queue(maxsize=DECODE_AHEAD)
        self._queue.put(np.asarray(first, dtype=np.uint8))
        self._skip_before = -math.inf
        self._index, self.finished, self._started = 0, False, time.monotonic()
        self._thread = threading.Thread(target=self._decoder, args=(capture, self._queue),
                                        name=f"decode-{self.path.name}", daemon=True)
        self._thread.start()

    def _decoder(self, capture: cv2.VideoCapture, frames: "queue.Queue[U8 | None]") -> None:
        """Decode frames 1… into ``frames`` (``None`` marks the end); owns and finally releases the capture."""
        index = 1
        try:
            while not self._closing.is_set():
                image: U8 | None
                try:
                    if self.start_ts + index / self.fps >= self._skip_before - 1e-6:
                        ok, raw = capture.read()
                        image = np.asarray(raw, dtype=np.uint8) if ok and raw is not None else None
                    else:
                        # A frame that will not be processed is only grabbed: decoded but not converted to BGR.
                        image = SKIPPED if capture.grab() else None
                except cv2.error as err:
                    logger.warning("Decoding %s failed at frame %d: %s", self.path, index, err)
                    image = None
                while not self._closing.is_set():
                    try:
                        frames.put(image, timeout=POLL_S)
                        break
                    except queue.Full:
                        continue
                if image is None:
                    return
                index += 1
        finally:
            with contextlib.suppress(cv2.error):
                capture.release()

    def read(self, stop: threading.Event, due: float | None) -> Frame | None:
        if self._thread is None or self.finished:
            stop.wait(POLL_S)
            return None
        if due is not None:
            self._skip_before = due
        while not stop.is_set():
            index = self._index
            ts = self.start_ts + index / self.fps
            if self.pace:
                delay = self._started + index / self.fps - time.monotonic()
                if (delay > 0 and stop.wait(min(delay, POLL_S))) or delay > POLL_S:
                    return None
            try:
                image = self._queue.get(timeout=POLL_S)
            except queue.Empty:
                continue
            if image is None:
                self._end(index)
                return None
            self._index += 1
            self.decoded += 1
            if due is None or ts >= due - 1e-6:
                return Frame(ts, image, index)
        return None

    def _end(self, index: int) -> None:
        self.finished = True
        if self.frame_count and index < self.frame_count - TRUNCATION_SLACK_FRAMES:
            self.decode_errors += 1
            self.truncated_at = index
            logger.warning("Cannot decode %s after frame %d of %d (truncated or corrupt); counted what was readable",
                           self.path, index, self.frame_count)

    def close(self) -> None:
        self._closing.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(READ_TIMEOUT_MS / 1000 + 1.0)


class ClipFolderSource:
    """A folder of recorded clips played in name order as one stream: what a camera or NVR leaves when it records
    only on motion and uploads each clip (FTP, SMB) named by its start time, e.g. ``20261122T091503.avi``.

    Each clip's event time follows file semantics (frame 0 at the clip's mtime minus its duration), so the gaps
    between clips are simply time in which nobody crossed. A clip that cannot be decoded is skipped, counted in
    ``decode_errors`` and logged; the stream finishes after the last clip.
    """

    SUFFIXES = frozenset({".avi", ".mp4", ".mkv", ".mov", ".webm"})

    def __init__(self, folder: Path) -> None:
        self.path = folder
        self.fps = DEFAULT_FPS
        self.finished = False
        self.decode_errors = 0
        self.decoded = 0
        self.clips_done = 0
        self._pending: list[Path] = []
        self._clip: VideoFileSource | None = None
        self._offset = 0  # frames of the clips before this one
        self._decoded_before = 0

    def open(self) -> None:
        if not self.path.is_dir():
            raise DeviceUnavailable(f"clip folder {self.path} does not exist")
        self._pending = sorted(p for p in self.path.iterdir() if p.suffix.lower() in self.SUFFIXES)
        if not self._pending:
            raise DeviceUnavailable(f"clip folder {self.path} holds no video clips")
        self.finished, self.decoded, self.decode_errors, self.clips_done = False, 0, 0, 0
        self._offset = self._decoded_before = 0
        self._next_clip()

    def _next_clip(self) -> None:
        """Open the next decodable clip, or finish."""
        while self._pending:
            clip = VideoFileSource(self._pending.pop(0))
            try:
                clip.open()
            except DeviceUnavailable as err:
                self.decode_errors += 1
                logger.warning("Skipping clip: %s", err)
                continue
            self._clip, self.fps = clip, clip.fps
            return
        self._clip, self.finished = None, True

    def read(self, stop: threading.Event, due: float | None) -> Frame | None:
        clip = self._clip
        if clip is None:
            stop.wait(POLL_S)
            return None
        frame = clip.read(stop, due)
        self.decoded = self._decoded_before + clip.decoded
        if frame is not None:
            return Frame(frame.ts, frame.image, self._offset + frame.number)
        if clip.finished:
            self.decode_errors += clip.decode_errors
            self._decoded_before = self.decoded
            self._offset += clip.frame_count or clip.decoded
            self.clips_done += 1
            clip.close()
            self._next_clip()
        return None

    def close(self) -> None:
        clip, self._clip = self._clip, None
        if clip is not None:
            clip.close()


class LiveSource:
    """An RTSP stream or a V4L2 camera, read by a thread that keeps only the newest frame."""

    def __init__(self, target: str, *, kind: str) -> None:
        self.target = target
        self.kind = kind
        self.fps = DEFAULT_FPS
        self.finished = False
        self.decode_errors = 0
        self.decoded = 0
        self._capture: cv2.VideoCapture | None = None
        self._thread: threading.Thread | None = None
        self._closing = threading.Event()
        self._cond = threading.Condition()
        self._latest: Frame | None = None
        self._served = -1
        self._last_frame_at = 0.0
        self._failure: str | None = None

    def _open_capture(self) -> cv2.VideoCapture:
        if self.kind == "rtsp":
            # Read by OpenCV's FFMPEG backend when the capture is created; an operator's own setting wins.
            os.environ.setdefault(FFMPEG_OPTIONS_ENV, FFMPEG_OPTIONS)
            return cv2.VideoCapture(self.target, cv2.CAP_FFMPEG, [
                cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, OPEN_TIMEOUT_MS, cv2.CAP_PROP_READ_TIMEOUT_MSEC, READ_TIMEOUT_MS,
            ])
        device: int | str = int(self.target) if self.target.isdigit() else self.target
        capture = cv2.VideoCapture(device, cv2.CAP_V4L2)
        if capture.isOpened():
            capture.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter.fourcc(*"MJPG"))  # USB 2 bandwidth: MJPG, not YUYV
            capture.set(cv2.CAP_PROP_BUFFERSIZE, 1)
        return capture

    def open(self) -> None:
        what = redact(self.target)
        try:
            capture = self._open_capture()
            opened = capture.isOpened()
        except cv2.error as err:
            raise DeviceUnavailable(f"cannot open {self.kind} {what}: {err}") from err
        if not opened:
            hint = "unreachable, wrong URL or credentials" if self.kind == "rtsp" else "unplugged or busy"
            raise DeviceUnavailable(f"cannot open {self.kind} {what} ({hint})")
        fps = float(capture.get(cv2.CAP_PROP_FPS) or 0.0)
        self.fps = fps if 0 < fps <= 240 else DEFAULT_FPS
        single_threaded_opencv()
        self._capture = capture
        self._closing.clear()
        self._failure, self._latest, self._served = None, None, -1
        self._last_frame_at = time.monotonic()
        self._thread = threading.Thread(target=self._reader, args=(capture,), name=f"camera-{what}", daemon=True)
        self._thread.start()

    def _reader(self, capture: cv2.VideoCapture) -> None:
        index = 0
        try:
            while not self._closing.is_set():
                try:
                    ok, raw = capture.read()
                except cv2.error as err:
                    self._fail(f"{self.kind} {redact(self.target)}: decoding failed: {err}")
                    return
                if not ok or raw is None:
                    self.decode_errors += 1
                    if not capture.isOpened():
                        self._fail(f"{self.kind} {redact(self.target)} closed the stream")
                        return
                    self._closing.wait(0.05)  # a failed read with the device still open: let the stall rule decide
                    continue
                frame = Frame(time.time(), np.asarray(raw, dtype=np.uint8), index)
                index += 1
                with self._cond:
                    self.decoded += 1
                    self._latest = frame
                    self._last_frame_at = time.monotonic()
                    self._cond.notify_all()
        finally:
            # The reader owns the capture: releasing it from another thread while read() blocks is unsafe.
            with contextlib.suppress(cv2.error):
                capture.release()

    def _fail(self, reason: str) -> None:
        with self._cond:
            self._failure = reason
            self._cond.notify_all()

    def read(self, stop: threading.Event, due: float | None) -> Frame | None:
        with self._cond:
            if self._latest is None or self._latest.number <= self._served:
                self._cond.wait(POLL_S)
            if self._failure is not None:
                raise DeviceUnavailable(self._failure)
            latest = self._latest
            if latest is not None and latest.number > self._served:
                if due is not None and latest.ts < due - 1e-6:
                    return None  # the newest frame is not due yet; the next call may see a newer one
                self._served = latest.number
                return latest
            silent = time.monotonic() - self._last_frame_at
        if silent > stall_after(self.fps):
            raise DeviceUnavailable(f"{self.kind} {redact(self.target)} stalled: no frame for {silent:.1f} s")
        return None

    def close(self) -> None:
        self._closing.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(READ_TIMEOUT_MS / 1000 + 1.0)
            if thread.is_alive():
                logger.warning("Camera reader of %s still blocked in a read; it releases the device when it returns",
                               redact(self.target))
        self._capture = None


def single_threaded_opencv() -> None:
    """Run OpenCV's own functions on the calling thread only.

    A camera decodes on a reader thread of its own; OpenCV's worker pool (one thread per core) would then fight
    it for the same cores, and on a small box a resize split across a busy core takes longer than on one core.
    """
    cv2.setNumThreads(1)


def redact(target: str) -> str:
    """A source for logs and status: an RTSP URL without its user and password."""
    if "://" in target and "@" in target:
        scheme, _, rest = target.partition("://")
        return f"{scheme}://***@{rest.rpartition('@')[2]}"
    return target


def source_kind(target: str) -> str:
    """'rtsp' for a network stream URL, 'v4l2' for /dev/videoN or a bare index, 'file' otherwise (a video file or a
    folder of clips: both are replayed, with event times from the files)."""
    lowered = target.lower()
    if lowered.startswith(("rtsp://", "rtsps://", "rtmp://", "http://", "https://")):
        return "rtsp"
    if target.isdigit() or target.startswith("/dev/video"):
        return "v4l2"
    return "file"


def make_source(target: str, *, start_ts: float | None = None, pace: bool = False) -> FrameSource:
    """The source for a config's ``source`` string."""
    kind = source_kind(target)
    if kind == "file" and Path(target).is_dir():
        return ClipFolderSource(Path(target))
    if kind == "file":
        return VideoFileSource(Path(target), start_ts=start_ts, pace=pace)
    return LiveSource(target, kind=kind)
