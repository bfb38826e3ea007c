"""The store writer: batched writes from other threads, tasks in the writer thread, bounds and shedding."""

import logging
import math
import sqlite3
import threading
import time
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import pytest

from edge.events import Scan
from edge.store.db import connect_readonly
from edge.store.writer import Writer

MakeWriter = Callable[..., Writer]
T0 = 1_700_000_000.0


def scan(i: int, device: str = "till-1") -> Scan:
    return Scan(ts=T0 + i, device=device, symbology="E0", text=f"{i:013d}", kind="gtin", gtin=f"{i:014d}",
                valid=True)


def count(path: Path, table: str = "scans") -> int:
    with closing(connect_readonly(path)) as conn:
        return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll ``condition`` until it holds; fail the test at the deadline."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met before the deadline"
        time.sleep(0.01)


def insert_agg(window_start: float) -> Callable[[sqlite3.Connection], int]:
    """A writer task that writes one aggregate row and returns the rows inserted."""

    def task(conn: sqlite3.Connection) -> int:
        cursor = conn.execute(
            "INSERT INTO agg_scans (window_start, window_end, device, scans, valid, invalid, distinct_gtins) "
            "VALUES (?, ?, 'till-1', 1, 1, 0, 1)", (window_start, window_start + 60))
        return cursor.rowcount

    return task


def test_writer__events_from_producer_threads_are_all_written_in_few_batches(
        fresh_db: Path, make_writer: MakeWriter) -> None:
    producers, per_producer, batch_size = 4, 2_500, 1_000
    total = producers * per_producer
    # A long flush interval: the writer drains what has queued up in full batches, not event by event.
    writer = make_writer(fresh_db, queue_size=total, batch_size=batch_size, flush_interval_s=0.5)

    def produce(offset: int) -> None:
        for i in range(per_producer):
            assert writer.submit(scan(offset + i, device=f"dev-{offset}"))

    threads = [threading.Thread(target=produce, args=(n * per_producer,)) for n in range(producers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wait_for(lambda: writer.stats.written == total)

    with closing(connect_readonly(fresh_db)) as conn:
        stored = [row[0] for row in conn.execute("SELECT ts FROM scans ORDER BY ts")]
    assert stored == [T0 + i for i in range(total)]
    # Every batch is one transaction; a couple of partial batches may fall on a flush tick.
    assert writer.stats.batches <= math.ceil(total / batch_size) + 2
    assert writer.stats.dropped_queue_full == 0


def test_writer__a_backlog_is_drained_in_one_transaction_per_full_batch(
        fresh_db: Path, make_writer: MakeWriter) -> None:
    writer = make_writer(fresh_db, batch_size=300, start=False)
    for i in range(1_000):
        assert writer.submit(scan(i))

    writer.start()
    wait_for(lambda: writer.stats.written == 1_000)

    assert writer.stats.batches == 4  # 300 + 300 + 300 + 100
    assert count(fresh_db) == 1_000


def test_writer__call_runs_in_the_writer_thread_and_returns_the_result(
        fresh_db: Path, make_writer: MakeWriter) -> None:
    writer = make_writer(fresh_db)

    name = writer.call(lambda conn: threading.current_thread().name)
    inserted = writer.call(insert_agg(T0))

    assert name == "store-writer"
    assert name != threading.current_thread().name
    assert inserted == 1
    assert count(fresh_db, "agg_scans") == 1


def test_writer__exception_in_a_task_reaches_the_caller_and_rolls_back_its_writes(
        fresh_db: Path, make_writer: MakeWriter) -> None:
    writer = make_writer(fresh_db)

    def half_done(conn: sqlite3.Connection) -> None:
        insert_agg(T0)(conn)
        raise ValueError("bad window")

    with pytest.raises(ValueError, match="bad window"):
        writer.call(half_done)

    assert count(fresh_db, "agg_scans") == 0
    # The writer carries on: later tasks and events are written.
    assert writer.call(insert_agg(T0 + 60)) == 1
    assert writer.submit(scan(1))
    wait_for(lambda: writer.stats.written == 1)
    assert count(fresh_db, "agg_scans") == 1
    assert count(fresh_db) == 1


def test_writer__full_queue_drops_are_counted_not_blocking(
        fresh_db: Path, make_writer: MakeWriter, caplog: pytest.LogCaptureFixture) -> None:
    writer = make_writer(fresh_db, queue_size=5, start=False)  # not started: nothing drains the queue
    results: list[bool] = []

    def flood() -> None:
        results.extend(writer.submit(scan(i)) for i in range(105))

    with caplog.at_level(logging.WARNING, logger="edge.store.writer"):
        producer = threading.Thread(target=flood, daemon=True)
        producer.start()
        producer.join(timeout=5.0)

    assert not producer.is_alive(), "submit() blocked on a full queue"
    assert results == [True] * 5 + [False] * 100
    assert writer.stats.dropped_queue_full == 100
    assert writer.queue_depth == 5
    full_warnings = [r for r in caplog.records if "queue full" in r.getMessage()]
    assert len(full_warnings) == 1, "a full-queue episode is logged once"

    writer.start()
    writer.stop()

    assert count(fresh_db) == 5


def test_writer__stop_flushes_everything_buffered_without_waiting_for_the_flush_tick(
        fresh_db: Path, make_writer: MakeWriter) -> None:
    # The flush interval is longer than stop()'s join timeout: only an explicit flush on stop writes in time.
    writer = make_writer(fresh_db, batch_size=400, flush_interval_s=30.0)
    writer.call(lambda conn: None)  # the writer is now idle, waiting on its flush tick
    for i in range(1_000):
        assert writer.submit(scan(i))

    writer.stop(timeout=5.0)

    assert count(fresh_db) == 1_000
    assert writer.stats.written == 1_000


def test_writer__stop_is_idempotent_and_safe_before_start(fresh_db: Path, make_writer: MakeWriter) -> None:
    never_started = make_writer(fresh_db, start=False)
    never_started.stop()

    writer = make_writer(fresh_db)
    writer.submit(scan(1))
    writer.stop()
    writer.stop()

    assert count(fresh_db) == 1


def test_writer__low_disk_sheds_raw_events_but_commits_tasks(
        fresh_db: Path, make_writer: MakeWriter, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="edge.store.writer"):
        writer = make_writer(fresh_db, min_free_disk_mb=10**9)  # a floor no disk can meet
    for i in range(50):
        assert writer.submit(scan(i))

    assert writer.call(insert_agg(T0)) == 1
    wait_for(lambda: writer.stats.shed_low_disk == 50)

    assert writer.stats.disk_low is True
    assert writer.stats.written == 0
    assert count(fresh_db) == 0
    assert count(fresh_db, "agg_scans") == 1
    assert any("shedding raw events" in r.getMessage() for r in caplog.records)


def test_writer__raw_events_are_written_again_when_the_disk_floor_is_met(
        fresh_db: Path, make_writer: MakeWriter) -> None:
    shedding = make_writer(fresh_db, min_free_disk_mb=10**9)
    shedding.submit(scan(0))
    shedding.stop()
    assert shedding.stats.shed_low_disk == 1

    normal = make_writer(fresh_db, min_free_disk_mb=0)
    for i in range(1, 51):
        normal.submit(scan(i))
    wait_for(lambda: normal.stats.written == 50)

    assert normal.stats.disk_low is False
    assert normal.stats.shed_low_disk == 0
    assert count(fresh_db) == 50
