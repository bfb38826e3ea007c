"""A serial barcode scanner on a pty pair, reachable through a stable by-id style symlink."""

import dataclasses
import fcntl
import json
import os
import struct
import termios
import threading
import time
import tty
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from simulators.barcode.model import SimScan

# How often unplug() looks at the slave's input queue and a blocked send() retries; short enough that a
# draining reader is noticed within a few milliseconds, long enough not to spin.
_POLL_S = 0.01


class ScannerUnpluggedError(RuntimeError):
    """The simulated scanner is unplugged (or stopped), so it cannot type a scan."""


@dataclass(slots=True, frozen=True)
class TypedScan:
    """Ground truth for one scan the simulator fully wrote to the pty while plugged."""

    seq: int
    wall_time: float
    aim: str
    payload: str
    valid: bool
    kind: str
    gtin: str | None
    price_minor: int | None
    weight_g: int | None


class PtyScanner:
    """A USB-serial (CDC-ACM) barcode scanner simulated on a pty pair.

    The daemon opens ``link`` exactly as it would open ``/dev/serial/by-id/...``. ``unplug()`` closes the
    pty so an open reader gets EIO and the link vanishes; ``replug()`` brings up a fresh pty behind the same
    link. pyserial flushes a port's input queue when it opens it, so a scan typed before the reader opened
    the port would be lost yet counted in the ground truth; ``run()`` therefore waits for a reader after each
    plug, as a CDC-ACM scanner holds its data until the host opens the port. A reader that closes and
    reopens without an unplug is not noticed.
    """

    def __init__(self, link: Path, terminator: bytes = b"\r") -> None:
        self.link = link
        self.terminator = terminator
        self._master_fd: int | None = None
        self._slave_fd: int | None = None
        self._slave_path: str | None = None
        self._started = False
        self._reader_seen = False
        # Set by stop(), so run() ends; cleared by start().
        self._halt = threading.Event()
        # Set by stop() and unplug(), so a send() blocked on a full pty gives up instead of holding _io_lock.
        self._interrupt = threading.Event()
        self._io_lock = threading.Lock()
        self._truth_lock = threading.Lock()
        self._truth: list[TypedScan] = []

    @property
    def plugged(self) -> bool:
        """Whether the pty exists, i.e. a reader could open ``link`` now."""
        return self._master_fd is not None

    @property
    def slave_path(self) -> str | None:
        """The current ``/dev/pts/N`` behind ``link``, or ``None`` while unplugged."""
        return self._slave_path

    @property
    def ground_truth(self) -> tuple[TypedScan, ...]:
        """Every scan fully written while plugged, in order."""
        with self._truth_lock:
            return tuple(self._truth)

    def start(self) -> None:
        """Create the pty pair and point ``link`` at it."""
        if self._started:
            raise RuntimeError("PtyScanner already started")
        self._halt.clear()
        self._started = True
        self._plug()

    def stop(self) -> None:
        """Close the pty and remove ``link``; safe to call more than once."""
        self._halt.set()
        self._interrupt.set()
        with self._io_lock:
            self._close_fds()
            self._remove_link()
        self._started = False

    def send(self, scan: SimScan) -> None:
        """Type one scan as a single frame and record its ground truth."""
        frame = scan.frame(self.terminator)
        with self._io_lock:
            if self._master_fd is None:
                raise ScannerUnpluggedError(f"scanner at {self.link} is unplugged; cannot send a scan")
            self._write_all(self._master_fd, frame)
            with self._truth_lock:
                self._truth.append(
                    TypedScan(
                        seq=len(self._truth) + 1,
                        wall_time=time.time(),
                        aim=scan.aim,
                        payload=scan.payload,
                        valid=scan.valid,
                        kind=scan.kind,
                        gtin=scan.gtin,
                        price_minor=scan.price_minor,
                        weight_g=scan.weight_g,
                    )
                )

    def send_raw(self, data: bytes) -> None:
        """Type arbitrary bytes (line noise, half a scan); not part of the ground truth."""
        with self._io_lock:
            if self._master_fd is None:
                raise ScannerUnpluggedError(f"scanner at {self.link} is unplugged; cannot send bytes")
            self._write_all(self._master_fd, data)

    def pending_bytes(self) -> int:
        """Bytes sent but not yet read by whoever has the port open (0 while unplugged)."""
        with self._io_lock:
            return self._pending_locked()

    def reader_opened(self) -> bool:
        """Whether a reader has opened the port since the last plug (seen by the flush pyserial does)."""
        with self._io_lock:
            if self._master_fd is not None and not self._reader_seen:
                self._reader_seen = self._flush_seen(self._master_fd)
            return self._reader_seen

    def wait_for_reader(self, timeout: float | None = None, stop: threading.Event | None = None) -> bool:
        """Wait for a reader to open the port, until ``timeout`` or ``stop``; return whether one did."""
        halt = stop if stop is not None else self._halt
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.reader_opened():
            pause = _POLL_S if deadline is None else min(_POLL_S, deadline - time.monotonic())
            if pause <= 0 or halt.wait(pause) or self._halt.is_set():
                return self.reader_opened()
        return True

    def unplug(self, drain_timeout: float = 5.0) -> None:
        """Pull the cable once the reader has drained (or ``drain_timeout`` passed): drop the pty and link."""
        self._wait_drained(drain_timeout)
        self._interrupt.set()
        with self._io_lock:
            self._close_fds()
            self._remove_link()

    def replug(self) -> None:
        """Plug back in: a fresh pty pair behind the same ``link``."""
        if not self._started:
            raise RuntimeError("PtyScanner not started")
        if self.plugged:
            return
        self._plug()

    def run(
        self,
        scans: Iterable[SimScan],
        rate_per_s: float,
        stop: threading.Event | None = None,
        *,
        unplug_at: int | None = None,
        unplugged_s: float = 2.0,
        reader_timeout_s: float | None = None,
    ) -> int:
        """Type ``scans`` at ``rate_per_s``, unplugged once after ``unplug_at`` of them; return the count."""
        if rate_per_s <= 0:
            raise ValueError("rate_per_s must be positive")
        halt = stop if stop is not None else self._halt
        # ``reader_timeout_s`` bounds each wait for a reader (before the first scan and after the replug);
        # None waits until stopped. On timeout the scanner types anyway, into a port nobody has open.
        self.wait_for_reader(reader_timeout_s, halt)
        interval = 1.0 / rate_per_s
        # Pace against a fixed schedule rather than sleeping interval after each send, so time spent writing
        # or unplugged does not make the rate drift.
        next_at = time.monotonic()
        sent = 0
        for scan in scans:
            if halt.wait(max(0.0, next_at - time.monotonic())) or self._halt.is_set():
                break
            try:
                self.send(scan)
            except ScannerUnpluggedError:
                if self._halt.is_set():
                    break  # stop() from another thread raced this send
                raise
            sent += 1
            next_at += interval
            if unplug_at is not None and sent == unplug_at:
                self.unplug()
                if halt.wait(unplugged_s) or self._halt.is_set():
                    break
                self.replug()
                self.wait_for_reader(reader_timeout_s, halt)
                next_at = time.monotonic()
        return sent

    def write_ground_truth(self, path: Path) -> None:
        """Write the ground truth as JSON lines, one scan per line."""
        lines = [json.dumps(dataclasses.asdict(record), sort_keys=True) for record in self.ground_truth]
        path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")

    def _plug(self) -> None:
        master_fd, slave_fd = os.openpty()
        tty.setraw(master_fd)
        tty.setraw(slave_fd)
        # Packet mode (after setraw, whose own flush would look like a reader) reports the slave's input
        # flush to the master: that is how we see a reader open the port while we hold the slave ourselves.
        fcntl.ioctl(master_fd, termios.TIOCPKT, struct.pack("i", 1))
        # Non-blocking so a full pty (nobody reading) cannot wedge send() while holding _io_lock.
        os.set_blocking(master_fd, False)
        slave_path = os.ttyname(slave_fd)
        with self._io_lock:
            self._master_fd = master_fd
            # Held open so the pty does not hang up between readers, as a real device stays present.
            self._slave_fd = slave_fd
            self._slave_path = slave_path
            self._reader_seen = False
            self._interrupt.clear()
            try:
                self._point_link(slave_path)
            except OSError:
                self._close_fds()
                raise

    def _point_link(self, target: str) -> None:
        # Build the link beside its final name and rename it over, so a reader never sees it missing or
        # half-made (udev does the same for /dev/serial/by-id).
        self.link.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.link.with_name(f".{self.link.name}.{os.getpid()}.tmp")
        tmp.unlink(missing_ok=True)
        os.symlink(target, tmp)
        os.replace(tmp, self.link)

    def _remove_link(self) -> None:
        if self.link.is_symlink():
            self.link.unlink(missing_ok=True)

    def _close_fds(self) -> None:
        # Master first: that is the cable being pulled, which hangs up every open slave with EIO.
        for fd in (self._master_fd, self._slave_fd):
            if fd is not None:
                os.close(fd)
        self._master_fd = None
        self._slave_fd = None
        self._slave_path = None

    @staticmethod
    def _flush_seen(master_fd: int) -> bool:
        # In packet mode every master read starts with a status byte: TIOCPKT_DATA (0) before bytes the
        # host wrote to the scanner (ignored, as a scanner ignores unknown commands), flags otherwise.
        seen = False
        while True:
            try:
                chunk = os.read(master_fd, 4096)
            except (BlockingIOError, InterruptedError):
                return seen
            if not chunk:
                return seen
            if chunk[0] != termios.TIOCPKT_DATA and chunk[0] & termios.TIOCPKT_FLUSHREAD:
                seen = True

    def _write_all(self, fd: int, frame: bytes) -> None:
        view = memoryview(frame)
        while view:
            try:
                written = os.write(fd, view)
            except BlockingIOError:
                written = 0
            view = view[written:]
            if view and self._interrupt.wait(_POLL_S):
                raise ScannerUnpluggedError(f"scanner at {self.link} unplugged mid-scan")

    def _pending_locked(self) -> int:
        if self._slave_fd is None:
            return 0
        raw = fcntl.ioctl(self._slave_fd, termios.FIONREAD, b"\0" * 4)
        count: int = struct.unpack("i", raw)[0]
        return count

    def _wait_drained(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        # The kernel moves written bytes into the slave's input queue asynchronously, so an empty queue right
        # after a write can be a lie: see it empty on two polls in a row before calling it drained.
        empty_polls = 0
        while True:
            # A send() stuck on a full pty holds the lock; count that as "not drained" rather than block on
            # it, so the drain timeout still ends the wait (and unplug() then interrupts the send).
            if self._io_lock.acquire(timeout=_POLL_S):
                try:
                    drained = self._pending_locked() == 0
                finally:
                    self._io_lock.release()
            else:
                drained = False
            empty_polls = empty_polls + 1 if drained else 0
            remaining = deadline - time.monotonic()
            if empty_polls >= 2 or remaining <= 0:
                return
            if self._halt.wait(min(_POLL_S, remaining)):
                return
