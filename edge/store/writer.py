"""The one thread that writes SQLite: events drained in batches, one transaction per batch.

Drivers call ``submit()`` from their own threads; it never blocks. When the buffer is full the event is dropped,
counted and logged once per episode. When free disk falls below the configured floor, raw events are shed
(counted, shown in status) while aggregates, device status and other tasks are still written; writing raw
events resumes by itself when space returns. Other threads run database work in this thread with ``call()``,
so every write happens on one connection and multi-row writes share one transaction.
"""

import functools
import logging
import operator
import shutil
import sqlite3
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from edge.events import Event
from edge.store.db import connect

logger = logging.getLogger(__name__)

T = TypeVar("T")
Task = Callable[[sqlite3.Connection], object]

DISK_CHECK_INTERVAL_S = 2.0


@dataclass(slots=True)
class WriterStats:
    """Counters of the writer, read by the heartbeat for ``edge status``."""

    written: int = 0
    batches: int = 0
    dropped_queue_full: int = 0
    shed_low_disk: int = 0
    failed_batches: int = 0
    disk_low: bool = False
    free_disk_bytes: int = -1
    last_commit_at: float = 0.0
    beat_at: float = 0.0


@functools.cache
def _insert_plan(event_type: type[Event]) -> tuple[str, Callable[[Event], tuple[object, ...]]]:
    """The INSERT statement of an event type and a C-level getter of its column values (faster than a method)."""
    columns = event_type.COLUMNS
    sql = f"INSERT INTO {event_type.TABLE} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
    return sql, operator.attrgetter(*columns)


class Writer:
    """Owns the read-write SQLite connection and the thread that uses it."""

    def __init__(
        self,
        path: Path,
        *,
        queue_size: int,
        batch_size: int,
        flush_interval_s: float,
        min_free_disk_mb: int,
    ) -> None:
        self._path = path
        self._queue_size = queue_size
        self._batch_size = batch_size
        self._flush_interval_s = flush_interval_s
        self._min_free_bytes = min_free_disk_mb * 1024 * 1024
        # A deque is used instead of queue.Queue: append/popleft are atomic under the GIL and cost a fraction
        # of a locked put/get, which matters at 100k events/s. The bound is enforced in submit().
        self._events: deque[Event] = deque()
        self._tasks: deque[tuple[Task, Future[object], bool]] = deque()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._conn: sqlite3.Connection | None = None
        self._full_episode = False
        self._next_disk_check = 0.0
        self.stats = WriterStats()

    @property
    def queue_depth(self) -> int:
        """Events waiting to be written."""
        return len(self._events)

    def has_room(self) -> bool:
        """Whether the queue is below half its size: replays that can wait pause above that (``wait_for_room``)."""
        return len(self._events) < self._queue_size // 2

    def start(self) -> None:
        """Open the connection and start the writer thread."""
        if self._thread is not None:
            return
        self._conn = connect(self._path)
        self._check_disk(time.monotonic())
        self._thread = threading.Thread(target=self._run, name="store-writer", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Write everything still buffered, then close; safe to call twice."""
        thread = self._thread
        if thread is None:
            return
        self._stop.set()
        self._wake.set()
        thread.join(timeout)
        if thread.is_alive():
            logger.error("Store writer did not finish within %.1f s; %d events unwritten", timeout, self.queue_depth)
            return
        self._thread = None
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def submit(self, event: Event) -> bool:
        """Queue an event for writing; never blocks. False when it was dropped because the buffer is full."""
        if len(self._events) >= self._queue_size:
            self.stats.dropped_queue_full += 1
            if not self._full_episode:
                self._full_episode = True
                logger.warning("Store writer queue full (%d events); dropping new events", self._queue_size)
            return False
        self._events.append(event)
        return True

    def call(self, task: Callable[[sqlite3.Connection], T], timeout: float | None = 30.0,
             transaction: bool = True) -> T:
        """Run ``task(conn)`` in the writer thread inside one transaction (or none, for PRAGMAs such as a WAL
        checkpoint) and return its result."""
        return self.post(task, transaction).result(timeout)

    def post(self, task: Callable[[sqlite3.Connection], T], transaction: bool = True) -> "Future[T]":
        """Queue ``task(conn)`` for the writer thread without waiting; tasks run in the order they were posted."""
        future: Future[T] = Future()
        self._tasks.append((task, future, transaction))  # type: ignore[arg-type]
        self._wake.set()
        return future

    def _run(self) -> None:
        assert self._conn is not None
        conn = self._conn
        while True:
            try:
                if self._step(conn):
                    return
            except Exception:  # a bug must not end the only writer: log it, count it, keep writing
                self.stats.failed_batches += 1
                logger.exception("Store writer step failed; carrying on")
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                self._stop.wait(0.1)

    def _step(self, conn: sqlite3.Connection) -> bool:
        """One turn of the writer loop; True when it is time to exit."""
        while True:
            stopping = self._stop.is_set()
            now = time.monotonic()
            self.stats.beat_at = now
            if now >= self._next_disk_check:
                self._check_disk(now)
            self._run_tasks(conn)
            if self._events:
                self._write_batch(conn)
                if len(self._events) >= self._batch_size:
                    continue  # keep draining a backlog without waiting
            elif stopping:
                self._run_tasks(conn)
                return True
            if not stopping:
                self._wake.wait(self._flush_interval_s)
                self._wake.clear()
            return False

    def _run_tasks(self, conn: sqlite3.Connection) -> None:
        while self._tasks:
            task, future, transaction = self._tasks.popleft()
            if not future.set_running_or_notify_cancel():
                continue
            try:
                if transaction:
                    conn.execute("BEGIN IMMEDIATE")
                result = task(conn)
                if transaction:
                    conn.execute("COMMIT")
            except Exception as err:  # the caller gets the error; the writer carries on
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                future.set_exception(err)
            else:
                future.set_result(result)

    def _write_batch(self, conn: sqlite3.Connection) -> None:
        events = self._events
        count = min(len(events), self._batch_size)
        popleft = events.popleft
        drained = [popleft() for _ in range(count)]
        kinds = set(map(type, drained))  # C-level: usually one type per batch (a busy sniffer, a replay)
        by_type: dict[type[Event], list[Event]]
        if len(kinds) == 1:
            by_type = {kinds.pop(): drained}
        else:
            by_type = defaultdict(list)
            for event in drained:
                by_type[type(event)].append(event)
        if self._full_episode and len(events) < self._queue_size // 2:
            self._full_episode = False
            logger.info("Store writer queue drained; accepting events again (%d dropped so far)",
                        self.stats.dropped_queue_full)
        written = 0
        try:
            conn.execute("BEGIN")
            for event_type, batch in by_type.items():
                if self.stats.disk_low and event_type.RAW:
                    self.stats.shed_low_disk += len(batch)
                    continue
                sql, values = _insert_plan(event_type)
                conn.executemany(sql, map(values, batch))
                written += len(batch)
            conn.execute("COMMIT")
        except sqlite3.Error as err:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            self.stats.failed_batches += 1
            logger.error("Store write of %d events failed: %s", count, err)
            return
        self.stats.written += written
        self.stats.batches += 1
        self.stats.last_commit_at = time.time()

    def _check_disk(self, now: float) -> None:
        self._next_disk_check = now + DISK_CHECK_INTERVAL_S
        try:
            free = shutil.disk_usage(self._path.parent).free
        except OSError as err:
            logger.error("Cannot read free disk space at %s: %s", self._path.parent, err)
            return
        self.stats.free_disk_bytes = free
        low = free < self._min_free_bytes
        if low and not self.stats.disk_low:
            logger.error("Free disk %d MB is below the floor of %d MB; shedding raw events, keeping aggregates",
                         free // 2**20, self._min_free_bytes // 2**20)
        elif self.stats.disk_low and not low:
            logger.warning("Free disk %d MB is above the floor again; writing raw events", free // 2**20)
        self.stats.disk_low = low
