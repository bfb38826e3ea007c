"""Writes of the daemon's own state (device status, daemon state, job runs) for the CLI to read."""

import json
import sqlite3
import time
from collections.abc import Iterable, Mapping

from edge import const
from edge.health import DeviceStatus


def upsert_devices(conn: sqlite3.Connection, statuses: Iterable[DeviceStatus]) -> None:
    """Replace each device's status row."""
    now = time.time()
    conn.executemany(
        f"""INSERT INTO {const.TABLE_DEVICE_STATUS}
            (name, kind, state, reason, since, last_event_ts, events, reconnects, counters_json, details_json,
             updated_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT(name) DO UPDATE SET kind=excluded.kind, state=excluded.state, reason=excluded.reason,
              since=excluded.since, last_event_ts=excluded.last_event_ts, events=excluded.events,
              reconnects=excluded.reconnects, counters_json=excluded.counters_json,
              details_json=excluded.details_json, updated_at=excluded.updated_at""",
        [
            (s.name, s.kind, s.state, s.reason, s.since, s.last_event_ts, s.events, s.reconnects,
             json.dumps(s.counters, sort_keys=True), json.dumps({**s.details, "rate_per_s": str(s.rate_per_s)},
                                                                sort_keys=True), now)
            for s in statuses
        ],
    )


def prune_devices(conn: sqlite3.Connection, keep: Iterable[str]) -> None:
    """Remove status rows of devices no longer in the config."""
    names = list(keep)
    marks = ", ".join("?" * len(names))
    where = f"WHERE name NOT IN ({marks})" if names else ""
    conn.execute(f"DELETE FROM {const.TABLE_DEVICE_STATUS} {where}", names)


def put_state(conn: sqlite3.Connection, values: Mapping[str, object]) -> None:
    """Set daemon state keys (values stored as JSON)."""
    now = time.time()
    conn.executemany(
        f"""INSERT INTO {const.TABLE_DAEMON_STATE} (key, value_json, updated_at) VALUES (?, ?, ?)
            ON CONFLICT(key) DO UPDATE SET value_json=excluded.value_json, updated_at=excluded.updated_at""",
        [(key, json.dumps(value), now) for key, value in values.items()],
    )


def record_job_run(conn: sqlite3.Connection, name: str, started: float, duration_s: float,
                   error: str | None) -> None:
    """Record one run of a scheduled job."""
    conn.execute(
        f"""INSERT INTO {const.TABLE_JOB_RUNS} (name, last_run, duration_s, ok, error, runs, failures)
            VALUES (?, ?, ?, ?, ?, 1, ?)
            ON CONFLICT(name) DO UPDATE SET last_run=excluded.last_run, duration_s=excluded.duration_s,
              ok=excluded.ok, error=excluded.error, runs=runs + 1, failures=failures + excluded.failures""",
        (name, started, duration_s, int(error is None), error, int(error is not None)),
    )
