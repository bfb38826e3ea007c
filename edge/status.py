"""The status report the CLI shows, read from the store (no IPC with the daemon), and what counts as degraded."""

import json
import os
import shutil
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path

from edge import const
from edge.store import outbox

# The daemon is considered down when its heartbeat is older than this many heartbeat periods.
STALE_HEARTBEATS = 3


@dataclass(slots=True)
class DeviceReport:
    """One device as ``edge status`` and ``edge devices`` show it."""

    name: str
    kind: str
    state: str
    reason: str | None
    since: float
    last_event_age_s: float | None
    events: int
    reconnects: int
    counters: dict[str, int]
    details: dict[str, str]


@dataclass(slots=True)
class JobReport:
    """The last run of one scheduled job."""

    name: str
    last_run_age_s: float
    duration_s: float
    ok: bool
    error: str | None
    runs: int
    failures: int


@dataclass(slots=True)
class StatusReport:
    """Everything ``edge status`` prints."""

    store_id: str | None
    daemon: dict[str, object]
    devices: list[DeviceReport]
    storage: dict[str, object]
    scheduler: list[JobReport]
    sync: dict[str, object] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def degraded(self) -> bool:
        """True when anything needs a technician's attention."""
        return bool(self.problems)


def _state(conn: sqlite3.Connection) -> dict[str, object]:
    rows = conn.execute(f"SELECT key, value_json FROM {const.TABLE_DAEMON_STATE}").fetchall()
    return {key: json.loads(value) for key, value in rows}


def _devices(conn: sqlite3.Connection, now: float) -> list[DeviceReport]:
    rows = conn.execute(
        f"""SELECT name, kind, state, reason, since, last_event_ts, events, reconnects, counters_json,
                   details_json FROM {const.TABLE_DEVICE_STATUS} ORDER BY name"""
    ).fetchall()
    return [
        DeviceReport(
            name=r[0], kind=r[1], state=r[2], reason=r[3], since=r[4],
            last_event_age_s=None if r[5] is None else round(now - r[5], 1), events=r[6], reconnects=r[7],
            counters=json.loads(r[8]), details=json.loads(r[9]),
        )
        for r in rows
    ]


def _jobs(conn: sqlite3.Connection, now: float) -> list[JobReport]:
    rows = conn.execute(
        f"SELECT name, last_run, duration_s, ok, error, runs, failures FROM {const.TABLE_JOB_RUNS} ORDER BY name"
    ).fetchall()
    return [JobReport(r[0], round(now - r[1], 1), round(r[2], 3), bool(r[3]), r[4], r[5], r[6]) for r in rows]


def _table_rows(conn: sqlite3.Connection) -> dict[str, int]:
    tables = (*const.RAW_TABLES, *const.AGGREGATE_TABLES)
    return {table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] for table in tables}


def _db_bytes(path: Path) -> int:
    total = 0
    for suffix in ("", "-wal", "-shm"):
        candidate = path.with_name(path.name + suffix)
        if candidate.exists():
            total += candidate.stat().st_size
    return total


def _pid_alive(pid: object) -> bool:
    if not isinstance(pid, int):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # running as another user (the service account)
    return True


def build_status(conn: sqlite3.Connection, db_path: Path, now: float | None = None) -> StatusReport:
    """Read the daemon's state from the store and judge it."""
    now = time.time() if now is None else now
    values = _state(conn)
    heartbeat_at = values.get("heartbeat_at")
    heartbeat_s = values.get("heartbeat_s")
    started_at = values.get("started_at")
    stopped_at = values.get("stopped_at")
    age = now - heartbeat_at if isinstance(heartbeat_at, float | int) else None
    period = float(heartbeat_s) if isinstance(heartbeat_s, float | int) else 5.0
    running = age is not None and age < STALE_HEARTBEATS * period and stopped_at is None
    daemon: dict[str, object] = {
        "running": running,
        "pid": values.get("pid"),
        "pid_alive": _pid_alive(values.get("pid")),
        "version": values.get("version"),
        "uptime_s": round(now - started_at, 1) if running and isinstance(started_at, float | int) else None,
        "heartbeat_age_s": None if age is None else round(age, 1),
        "stopped_at": stopped_at,
    }
    writer = values.get("writer")
    writer_stats = writer if isinstance(writer, dict) else {}
    try:
        free = shutil.disk_usage(db_path.parent).free
    except OSError:
        free = -1
    storage: dict[str, object] = {
        "path": str(db_path),
        "db_bytes": _db_bytes(db_path),
        "free_disk_bytes": free,
        "disk_low": bool(writer_stats.get("disk_low", False)),
        "queue_depth": writer_stats.get("queue_depth", 0),
        "written": writer_stats.get("written", 0),
        "dropped_queue_full": writer_stats.get("dropped_queue_full", 0),
        "shed_low_disk": writer_stats.get("shed_low_disk", 0),
        "failed_batches": writer_stats.get("failed_batches", 0),
        "rows": _table_rows(conn),
    }
    store_id = values.get("store_id")
    report = StatusReport(
        store_id=store_id if isinstance(store_id, str) else None,
        daemon=daemon, devices=_devices(conn, now), storage=storage, scheduler=_jobs(conn, now),
        sync=_sync(conn, values, now),
    )
    report.problems.extend(_problems(report))
    return report


def _sync(conn: sqlite3.Connection, values: dict[str, object], now: float) -> dict[str, object]:
    settings = values.get("sync")
    settings = settings if isinstance(settings, dict) else {}
    uplink = values.get("uplink")
    uplink = uplink if isinstance(uplink, dict) else {}
    backlog = outbox.stats(conn)
    return {
        "enabled": bool(settings.get("enabled", False)),
        "broker": settings.get("broker"),
        "connected": bool(uplink.get("connected", False)),
        "session": uplink.get("session"),
        "last_error": uplink.get("last_error"),
        "backlog_rows": backlog.backlog_rows,
        "backlog_bytes": backlog.backlog_bytes,
        "oldest_age_s": None if backlog.oldest_created_at is None else round(now - backlog.oldest_created_at, 1),
        "last_puback_age_s": None if backlog.last_sent_at is None else round(now - backlog.last_sent_at, 1),
        "last_seq": backlog.last_seq,
        "replay_rate_per_s": settings.get("replay_rate_per_s"),
        "historical_sent": uplink.get("historical_sent", 0),
        "live_sent": uplink.get("live_sent", 0),
        "rejected_by_broker": uplink.get("rejected_by_broker", 0),
        "shed": backlog.shed,
        "dead_letters": backlog.dead_letters,
        "over_bound": bool(values.get("outbox_over_bound", False)),
        "backlog_alarm_s": settings.get("backlog_alarm_s"),
    }


def _problems(report: StatusReport) -> list[str]:
    problems: list[str] = []
    if not report.daemon["running"]:
        problems.append("daemon is not running (no recent heartbeat)")
        return problems
    for device in report.devices:
        if device.state != const.HEALTH_OK:
            problems.append(f"device {device.name} is {device.state}: {device.reason}")
    if report.storage["disk_low"]:
        problems.append("free disk below the floor: raw events are being shed")
    failed = report.storage.get("failed_batches")
    if isinstance(failed, int) and failed:
        problems.append(f"{failed} store write(s) failed since the daemon started (see the log)")
    for job in report.scheduler:
        if not job.ok:
            problems.append(f"job {job.name} failed: {job.error}")
    sync = report.sync
    if sync.get("enabled"):
        oldest, alarm = sync.get("oldest_age_s"), sync.get("backlog_alarm_s")
        if isinstance(oldest, float | int) and isinstance(alarm, float | int) and oldest > alarm:
            problems.append(f"HQ backlog: oldest unsent message is {oldest:.0f} s old (limit {alarm:.0f} s); "
                            f"uplink {'connected' if sync.get('connected') else 'not connected'}: "
                            f"{sync.get('last_error') or 'no error recorded'}")
        if sync.get("over_bound"):
            problems.append("outbox over its bounds with only never-shed messages left")
    return problems
