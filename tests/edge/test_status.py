"""`edge status` judgement: healthy only with a fresh heartbeat, devices ok, disk above floor, jobs ok."""

import os
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path

import pytest

from edge.const import HEALTH_OK, HEALTH_UNAVAILABLE, HealthState
from edge.health import DeviceStatus
from edge.status import StatusReport, build_status
from edge.store import state
from edge.store.db import connect, connect_readonly

NOW = 1_700_000_000.0
HEARTBEAT_S = 5.0


@pytest.fixture
def conn(fresh_db: Path) -> Iterator[sqlite3.Connection]:
    """A writable connection to a fresh store, for writing the rows the daemon would write."""
    with closing(connect(fresh_db)) as connection:
        yield connection


def device(name: str, status: HealthState = HEALTH_OK, reason: str | None = None) -> DeviceStatus:
    return DeviceStatus(name=name, kind="barcode", state=status, reason=reason, since=NOW - 600,
                        last_event_ts=NOW - 3, events=42, reconnects=0, counters={}, details={})


def write_healthy_daemon(conn: sqlite3.Connection) -> None:
    state.put_state(conn, {
        "started_at": NOW - 3_600, "pid": os.getpid(), "version": "0.1.0", "store_id": "cn-sh-0042",
        "heartbeat_s": HEARTBEAT_S, "stopped_at": None, "heartbeat_at": NOW - 2,
        "writer": {"disk_low": False, "queue_depth": 0, "written": 1_000, "dropped_queue_full": 0,
                   "shed_low_disk": 0, "failed_batches": 0},
    })
    state.upsert_devices(conn, [device("till-1"), device("aisle-3")])
    state.record_job_run(conn, "heartbeat", NOW - 2, 0.01, None)
    state.record_job_run(conn, "rollup_scans", NOW - 10, 0.05, None)


def status_of(path: Path) -> StatusReport:
    with closing(connect_readonly(path)) as reader:
        return build_status(reader, path, now=NOW)


def test_status__healthy_daemon_has_no_problems(fresh_db: Path, conn: sqlite3.Connection) -> None:
    write_healthy_daemon(conn)

    report = status_of(fresh_db)

    assert report.problems == []
    assert report.degraded is False
    assert report.store_id == "cn-sh-0042"
    assert report.daemon["running"] is True
    assert report.daemon["uptime_s"] == 3_600.0
    assert report.daemon["heartbeat_age_s"] == 2.0
    assert [d.name for d in report.devices] == ["aisle-3", "till-1"]
    assert report.devices[0].last_event_age_s == 3.0
    assert report.storage["written"] == 1_000


def stale_heartbeat(conn: sqlite3.Connection) -> None:
    state.put_state(conn, {"heartbeat_at": NOW - 3 * HEARTBEAT_S - 0.1})


def stopped(conn: sqlite3.Connection) -> None:
    state.put_state(conn, {"stopped_at": NOW - 1})


def device_unavailable(conn: sqlite3.Connection) -> None:
    state.upsert_devices(conn, [device("till-1", HEALTH_UNAVAILABLE, "cannot open /dev/ttyACM0")])


def disk_low(conn: sqlite3.Connection) -> None:
    state.put_state(conn, {"writer": {"disk_low": True, "shed_low_disk": 12}})


def job_failed(conn: sqlite3.Connection) -> None:
    state.record_job_run(conn, "rollup_scans", NOW - 1, 0.01, "OperationalError: database is locked")


@pytest.mark.parametrize(("spoil", "expected"), [
    (stale_heartbeat, "daemon is not running"),
    (stopped, "daemon is not running"),
    (device_unavailable, "device till-1 is unavailable: cannot open /dev/ttyACM0"),
    (disk_low, "free disk below the floor"),
    (job_failed, "job rollup_scans failed: OperationalError: database is locked"),
], ids=["stale-heartbeat", "stopped", "device-unavailable", "disk-low", "job-failed"])
def test_status__degraded_names_the_problem(
        fresh_db: Path, conn: sqlite3.Connection, spoil: Callable[[sqlite3.Connection], None],
        expected: str) -> None:
    write_healthy_daemon(conn)
    spoil(conn)

    report = status_of(fresh_db)

    assert report.degraded is True
    assert len(report.problems) == 1, report.problems
    assert report.problems[0].startswith(expected)


def test_status__heartbeat_just_inside_three_periods_is_still_running(
        fresh_db: Path, conn: sqlite3.Connection) -> None:
    write_healthy_daemon(conn)
    state.put_state(conn, {"heartbeat_at": NOW - 3 * HEARTBEAT_S + 0.1})

    assert status_of(fresh_db).problems == []


def test_status__job_that_failed_then_succeeded_is_healthy_but_keeps_its_failure_count(
        fresh_db: Path, conn: sqlite3.Connection) -> None:
    write_healthy_daemon(conn)
    job_failed(conn)
    state.record_job_run(conn, "rollup_scans", NOW, 0.01, None)

    report = status_of(fresh_db)

    assert report.problems == []
    [rollup] = [job for job in report.scheduler if job.name == "rollup_scans"]
    assert (rollup.ok, rollup.runs, rollup.failures, rollup.error) == (True, 3, 1, None)


def test_status__empty_store_means_the_daemon_never_ran(fresh_db: Path) -> None:
    report = status_of(fresh_db)

    assert report.degraded is True
    assert report.daemon["running"] is False
    assert report.daemon["heartbeat_age_s"] is None
    rows = report.storage["rows"]
    assert isinstance(rows, dict) and rows and set(rows.values()) == {0}
    assert {"scans", "agg_scans", "sightings"} <= set(rows)
