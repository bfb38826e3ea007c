"""The driver contract: what every device family implements, and the context the daemon hands it.

Constructors only assign; ``start()`` does I/O; ``stop()`` is idempotent. ``ReaderDriver`` is the common shape of
a device with one reader thread: it opens the device, reads until it fails, reports health, and reopens with
capped exponential backoff until stopped. A device that cannot be opened never stops the daemon.
"""

import logging
import sqlite3
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar, runtime_checkable

from edge.backoff import Backoff
from edge.config.base import DeviceConfig
from edge.const import HEALTH_OK, HEALTH_UNAVAILABLE
from edge.errors import DeviceUnavailable
from edge.events import Event
from edge.health import DeviceMonitor

if TYPE_CHECKING:
    from edge.privacy import Hasher

logger = logging.getLogger(__name__)

T = TypeVar("T")


class EventSink(ABC):
    """Where events go (the store writer); ``submit`` never blocks."""

    @abstractmethod
    def submit(self, event: Event) -> bool:
        """Queue an event; False when it was dropped."""

    def has_room(self) -> bool:
        """Whether the queue is below its high-water mark (a source that can wait should, while it is not)."""
        return True


class StoreAccess(Protocol):
    """The store writer as a stateful driver sees it (ESL keeps its labels and update queue in SQLite): tasks run
    in the writer thread, one transaction each, in the order they were posted."""

    def call(self, task: Callable[[sqlite3.Connection], T], timeout: float | None = 30.0,
             transaction: bool = True) -> T:
        """Run a task and wait for its result."""
        ...

    def post(self, task: Callable[[sqlite3.Connection], T], transaction: bool = True) -> "Future[T]":
        """Queue a task without waiting."""
        ...


class DriverContext:
    """What a driver may touch: its monitor (health, counters, progress), the event sink, the daemon's
    device-id hasher (drivers that see MACs must hash them at once; see ``edge.privacy``) and, for drivers that
    keep state, the store writer."""

    def __init__(self, monitor: DeviceMonitor, sink: EventSink, hasher: "Hasher | None" = None,
                 store: StoreAccess | None = None, clock: Callable[[], float] = time.time) -> None:
        self.monitor = monitor
        self._sink = sink
        self.hasher = hasher
        self.store = store
        self.clock = clock  # event time of live input (``runtime.simulated_clock`` accelerates it in a demo day)

    def emit(self, event: Event, ts: float) -> None:
        """Hand one event (with its event time) to the store; a full queue is counted, never blocks."""
        self.monitor.event(ts)
        if not self._sink.submit(event):
            self.monitor.counters["dropped_queue_full"] += 1

    def wait_for_room(self, stop: threading.Event) -> None:
        """Back-pressure for sources that can wait without losing anything (a file replayed as fast as possible):
        block while the store's queue is past its high-water mark, so a replay never fills it to dropping."""
        while not self._sink.has_room() and not stop.wait(0.05):
            pass

    def count(self, name: str, amount: int = 1) -> None:
        """Add to a named counter shown in ``edge status``."""
        self.monitor.counters[name] += amount


@runtime_checkable
class Commandable(Protocol):
    """A driver that takes commands from HQ (e.g. ESL price updates) implements this."""

    def command_names(self) -> frozenset[str]:
        """Command names it handles, e.g. ``{"esl/update"}``."""
        ...

    def handle_command(self, name: str, args: dict[str, Any], command_id: str) -> dict[str, Any]:
        """Apply one command (``command_id`` is HQ's id, for tracing its effects) and return its result; raise
        ``CommandRejected``/``CommandError`` with a reason."""
        ...


class Driver(ABC):
    """A device family's driver. Subclasses set ``type_key`` to their registry key."""

    type_key: ClassVar[str]

    def __init__(self, config: DeviceConfig, ctx: DriverContext) -> None:
        self.config = config
        self.ctx = ctx

    @abstractmethod
    def start(self) -> None:
        """Start reading the device in the background; must not block on the device."""

    @abstractmethod
    def stop(self) -> None:
        """Stop and release the device; safe to call more than once."""

    @abstractmethod
    def describe(self) -> dict[str, str]:
        """Short facts for ``edge devices`` (port, settings); never secrets or raw identifiers."""


class ReaderDriver(Driver):
    """A driver with one reader thread that opens, reads and reopens its device with backoff."""

    reconnect_initial_s: ClassVar[float] = 0.25

    def __init__(self, config: DeviceConfig, ctx: DriverContext, reconnect_max_s: float = 30.0) -> None:
        super().__init__(config, ctx)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._backoff = Backoff(initial=self.reconnect_initial_s, cap=reconnect_max_s)

    def start(self) -> None:
        """Start the reader thread."""
        if self._thread is not None:
            return
        self._stop.clear()
        self.ctx.monitor.details.update(self.describe())
        self._thread = threading.Thread(target=self._run, name=f"driver-{self.config.name}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the reader thread and close the device."""
        thread = self._thread
        if thread is None:
            return
        self._stop.set()
        thread.join(timeout=5.0)
        if thread.is_alive():
            logger.error("Device %s reader did not stop within 5 s", self.config.name)
        self._thread = None

    @abstractmethod
    def open(self) -> None:
        """Open the device; raise ``DeviceUnavailable`` when it cannot be opened."""

    @abstractmethod
    def read_once(self) -> None:
        """Read what is available (waiting at most a fraction of a second) and emit events.

        Raise ``DeviceUnavailable`` when the device has gone away.
        """

    @abstractmethod
    def close(self) -> None:
        """Release the device; must not raise."""

    def _run(self) -> None:
        monitor = self.ctx.monitor
        while not self._stop.is_set():
            monitor.beat()
            try:
                self.open()
            except DeviceUnavailable as err:
                monitor.set_state(HEALTH_UNAVAILABLE, str(err))
                self._wait_backoff()
                continue
            monitor.set_state(HEALTH_OK)
            self._backoff.reset()
            try:
                while not self._stop.is_set():
                    monitor.beat()
                    self.read_once()
            except DeviceUnavailable as err:
                monitor.set_state(HEALTH_UNAVAILABLE, str(err))
            except Exception:
                # A bug in a driver must not kill its thread silently: report it and reopen.
                logger.exception("Device %s reader failed", self.config.name)
                monitor.set_state(HEALTH_UNAVAILABLE, "reader error (see log)")
            finally:
                self.close()
            self._wait_backoff()

    def _wait_backoff(self) -> None:
        delay = self._backoff.next_delay()
        # Wake in short steps so the watchdog sees progress while a device stays away.
        deadline_steps = max(1, int(delay / 0.5))
        for _ in range(deadline_steps):
            self.ctx.monitor.beat()
            if self._stop.wait(delay / deadline_steps):
                return
