"""Technician reports read from the store: ``status``, ``devices``, ``scans``."""

import sys
import time
from datetime import datetime
from pathlib import Path

import click

from edge.cli import common
from edge.status import StatusReport, build_status
from edge.store import queries


def register(cli: click.Group) -> None:
    """Add the report commands to the ``edge`` group."""
    cli.add_command(status)
    cli.add_command(devices)
    cli.add_command(scans)
    cli.add_command(outbox_command)


@click.command()
@common.config_option
@common.db_option
@common.json_option
def status(config_path: Path | None, db_path: Path | None, as_json: bool) -> None:
    """Daemon, devices, storage and jobs at a glance; exits 1 when anything is degraded."""
    conn, path = common.open_db(config_path, db_path)
    report = build_status(conn, path)
    if as_json:
        payload = {**_as_dict(report), "degraded": report.degraded}
        common.print_json(payload)
    else:
        _print_status(report)
    sys.exit(1 if report.degraded else 0)


def _as_dict(report: StatusReport) -> dict[str, object]:
    import dataclasses

    return dataclasses.asdict(report)


def _print_status(report: StatusReport) -> None:
    daemon = report.daemon
    state = "running" if daemon["running"] else "NOT RUNNING"
    click.echo(f"store {report.store_id}  daemon {state}  pid {daemon['pid']}  version {daemon['version']}  "
               f"uptime {common.age(daemon['uptime_s'])}  heartbeat {common.age(daemon['heartbeat_age_s'])} ago")
    click.echo("")
    _print_devices(report)
    storage = report.storage
    rows = storage["rows"] if isinstance(storage["rows"], dict) else {}
    click.echo("")
    disk_low = "  DISK LOW: shedding raw events" if storage["disk_low"] else ""
    click.echo(f"storage  {storage['path']}  {_mb(storage['db_bytes'])} MB  "
               f"free disk {_mb(storage['free_disk_bytes'])} MB{disk_low}")
    click.echo(f"  queue {storage['queue_depth']}  written {storage['written']}  dropped (queue full) "
               f"{storage['dropped_queue_full']}  shed (disk low) {storage['shed_low_disk']}")
    click.echo("  rows: " + ", ".join(f"{table} {count}" for table, count in rows.items()))
    _print_sync(report.sync)
    click.echo("")
    click.echo("jobs")
    for job in report.scheduler:
        result = "ok" if job.ok else f"FAILED: {job.error}"
        click.echo(f"  {job.name:<16} last run {common.age(job.last_run_age_s)} ago  {result}  "
                   f"runs {job.runs}  failures {job.failures}")
    click.echo("")
    if report.problems:
        click.echo("DEGRADED")
        for problem in report.problems:
            click.echo(f"  - {problem}")
    else:
        click.echo("OK")


def _print_sync(sync: dict[str, object]) -> None:
    click.echo("")
    if not sync.get("enabled"):
        click.echo("sync     disabled")
        return
    link = "connected" if sync.get("connected") else f"NOT CONNECTED ({sync.get('last_error') or 'connecting'})"
    click.echo(f"sync     {sync.get('broker')}  {link}  session {sync.get('session')}")
    click.echo(f"  backlog {sync.get('backlog_rows')} messages, {_mb(sync.get('backlog_bytes'))} MB, oldest "
               f"{common.age(sync.get('oldest_age_s'))}  last PUBACK {common.age(sync.get('last_puback_age_s'))} ago  "
               f"last seq {sync.get('last_seq')}")


def _mb(value: object) -> str:
    return f"{value / 2**20:.1f}" if isinstance(value, int) and value >= 0 else "?"


def _print_devices(report: StatusReport) -> None:
    click.echo(f"{'device':<16} {'kind':<10} {'state':<12} {'last event':>10} {'events':>8} {'per s':>7} "
               f"{'reconnects':>10}  notes")
    for d in report.devices:
        notes = ", ".join(f"{k} {v}" for k, v in sorted(d.counters.items()) if v)
        if d.state != "ok" and d.reason:
            notes = f"{d.reason}; {notes}" if notes else d.reason
        channel = f"channel {d.details['channel']}; " if "channel" in d.details else ""
        click.echo(f"{d.name:<16} {d.kind:<10} {d.state:<12} {common.age(d.last_event_age_s):>10} "
                   f"{d.events:>8} {d.details.get('rate_per_s', '-'):>7} {d.reconnects:>10}  {channel}{notes}")
    if not report.devices:
        click.echo("(no devices configured)")


@click.command()
@common.config_option
@common.db_option
@common.json_option
def devices(config_path: Path | None, db_path: Path | None, as_json: bool) -> None:
    """Each device: kind, state, port and settings, counters."""
    conn, path = common.open_db(config_path, db_path)
    report = build_status(conn, path)
    if as_json:
        common.print_json({"devices": report.devices})
        return
    _print_devices(report)
    for d in report.devices:
        details = "  ".join(f"{k}={v}" for k, v in sorted(d.details.items()))
        click.echo(f"  {d.name}: {details}  (state since {datetime.fromtimestamp(d.since):%Y-%m-%d %H:%M:%S})")


@click.command()
@common.config_option
@common.db_option
@click.option("--since", default="1h", show_default=True, help="How far back: 30m, 2h, 7d or an ISO date")
@click.option("--device", default=None, help="Only this scanner")
@click.option("--limit", default=50, show_default=True, help="Most scans listed")
@click.option("--summary", is_flag=True, help="Totals per scanner instead of a list")
@common.json_option
def scans(config_path: Path | None, db_path: Path | None, since: str, device: str | None, limit: int,
          summary: bool, as_json: bool) -> None:
    """Recent barcode scans, or per-scanner totals with --summary."""
    conn, _ = common.open_db(config_path, db_path)
    start = common.since_ts(since)
    if summary:
        rows = queries.scan_summary(conn, start)
        if as_json:
            common.print_json({"since": start, "scanners": [
                {**_summary_dict(r), "invalid_rate": round(r.invalid_rate, 4)} for r in rows]})
            return
        click.echo(f"{'scanner':<16} {'scans':>7} {'valid':>7} {'invalid':>8} {'invalid %':>9} {'GTINs':>6}  kinds")
        for r in rows:
            kinds = ", ".join(f"{k} {v}" for k, v in sorted(r.by_kind.items()))
            click.echo(f"{r.device:<16} {r.scans:>7} {r.valid:>7} {r.invalid:>8} {100 * r.invalid_rate:>8.1f}% "
                       f"{r.distinct_gtins:>6}  {kinds}")
        if not rows:
            click.echo(f"no scans since {datetime.fromtimestamp(start):%Y-%m-%d %H:%M}")
        return
    listed = queries.scans(conn, start, device, limit)
    if as_json:
        common.print_json({"since": start, "scans": listed})
        return
    for scan in listed:
        click.echo(_scan_line(scan))


def _scan_line(scan: queries.ScanRow) -> str:
    extra = ""
    if scan.price_minor is not None:
        extra += f" price {scan.price_minor}"
    if scan.weight_g is not None:
        extra += f" weight {scan.weight_g} g"
    if scan.error:
        extra += f"  ({scan.error})"
    flag = "ok " if scan.valid else "BAD"
    when = time.strftime("%H:%M:%S", time.localtime(scan.ts))
    text = scan.text.replace("\x1d", "<GS>")
    return (f"{when} {scan.device:<12} {flag} {scan.symbology or '-':<4} {scan.kind:<10} {scan.gtin or '-':<14} "
            f"{text}{extra}")


def _summary_dict(row: queries.ScanSummary) -> dict[str, object]:
    import dataclasses

    return dataclasses.asdict(row)


@click.command(name="outbox")
@common.config_option
@common.db_option
@common.json_option
def outbox_command(config_path: Path | None, db_path: Path | None, as_json: bool) -> None:
    """Messages waiting for HQ: backlog, oldest age, last PUBACK, replay rate, shed counts."""
    conn, path = common.open_db(config_path, db_path)
    report = build_status(conn, path)
    by_kind = queries.outbox_backlog_by_kind(conn)
    if as_json:
        common.print_json({**report.sync, "backlog_by_kind": by_kind})
        return
    _print_sync(report.sync)
    sync = report.sync
    click.echo(f"  replay rate {sync.get('replay_rate_per_s')} msg/s  sent: live {sync.get('live_sent')}, "
               f"historical {sync.get('historical_sent')}  rejected by broker {sync.get('rejected_by_broker')}")
    click.echo("  backlog by kind: " + (", ".join(f"{k} {n}" for k, n in by_kind.items()) or "empty"))
    click.echo(f"  dead letters (invalid messages set aside, see the log): {sync.get('dead_letters', 0)}")
    shed = sync.get("shed")
    click.echo("  shed: " + (", ".join(f"{k} {n}" for k, n in shed.items()) if isinstance(shed, dict) and shed
                             else "nothing"))
