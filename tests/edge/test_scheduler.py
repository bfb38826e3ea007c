"""The scheduler: a failing job is recorded in the store and stops neither the scheduler nor other jobs."""

import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path

import pytest

from edge.scheduler import Job, Scheduler
from edge.store.db import connect_readonly
from edge.store.writer import Writer

MakeWriter = Callable[..., Writer]
JobRun = tuple[int, str | None, int, int]


def job_runs(path: Path) -> dict[str, JobRun]:
    with closing(connect_readonly(path)) as conn:
        return {row[0]: (row[1], row[2], row[3], row[4])
                for row in conn.execute("SELECT name, ok, error, runs, failures FROM job_runs")}


def wait_for_runs(path: Path, names: tuple[str, ...], runs: int, timeout: float = 10.0) -> dict[str, JobRun]:
    """Poll the store until every named job has run ``runs`` times; fail at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        seen = job_runs(path)
        if all(name in seen and seen[name][2] >= runs for name in names):
            return seen
        assert time.monotonic() < deadline, f"jobs did not each run {runs} times: {seen}"
        time.sleep(0.02)


@pytest.fixture
def scheduled(fresh_db: Path, make_writer: MakeWriter) -> Iterator[Callable[[list[Job]], Scheduler]]:
    """Start a Scheduler over a real Writer; stopped (before the writer) at teardown."""
    writer = make_writer(fresh_db)
    schedulers: list[Scheduler] = []

    def start(jobs: list[Job]) -> Scheduler:
        scheduler = Scheduler(jobs, writer)
        schedulers.append(scheduler)
        scheduler.start()
        return scheduler

    yield start
    for scheduler in schedulers:
        scheduler.stop()


def test_scheduler__failing_job_is_recorded_and_does_not_stop_other_jobs(
        fresh_db: Path, scheduled: Callable[[list[Job]], Scheduler],
        caplog: pytest.LogCaptureFixture) -> None:
    ticks = 0

    def tick() -> None:
        nonlocal ticks
        ticks += 1

    def boom() -> None:
        raise RuntimeError("sensor on fire")

    with caplog.at_level(logging.ERROR, logger="edge.scheduler"):
        scheduled([Job("boom", 0.1, boom), Job("tick", 0.1, tick)])
        runs = wait_for_runs(fresh_db, ("boom", "tick"), runs=3)

    ok, error, boom_runs, failures = runs["boom"]
    assert ok == 0
    assert error == "RuntimeError: sensor on fire"
    assert failures == boom_runs >= 3, "the failing job keeps being scheduled after failing"
    assert runs["tick"][0] == 1
    assert runs["tick"][1] is None
    assert runs["tick"][3] == 0
    assert ticks >= 3
    assert any("Job boom failed" in record.getMessage() for record in caplog.records)


def test_scheduler__every_job_runs_once_right_away(
        fresh_db: Path, scheduled: Callable[[list[Job]], Scheduler]) -> None:
    ran = threading.Event()

    scheduled([Job("hourly", 3_600, ran.set)])

    assert ran.wait(timeout=5.0), "a job with a long period did not run at start"
    wait_for_runs(fresh_db, ("hourly",), runs=1)


def test_scheduler__job_recovering_after_a_failure_is_recorded_ok_with_its_failure_count(
        fresh_db: Path, scheduled: Callable[[list[Job]], Scheduler]) -> None:
    calls = 0

    def flaky() -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise sqlite3.OperationalError("database is locked")

    scheduled([Job("flaky", 0.1, flaky)])
    runs = wait_for_runs(fresh_db, ("flaky",), runs=2)

    ok, error, job_runs_count, failures = runs["flaky"]
    assert (ok, error, failures) == (1, None, 1)
    assert job_runs_count >= 2


def test_scheduler__stop_is_idempotent(scheduled: Callable[[list[Job]], Scheduler]) -> None:
    scheduler = scheduled([Job("noop", 60, lambda: None)])

    scheduler.stop()
    scheduler.stop()
