"""``edge hq ...``: the HQ reference receiver's commands."""

import json
import logging
import signal
import socket
import sqlite3
import sys
import threading
import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

import click

from edge.errors import StoreError, SyncError
from sync.hq import store as hq_store
from sync.hq.receiver import DEFAULT_GROUP, Receiver, ReceiverSettings
from sync.topics import HqTopics

logger = logging.getLogger(__name__)


@click.group()
def hq() -> None:
    """HQ side: receive every store's aggregates into SQLite and show their state."""


@hq.command()
@click.option("--broker", required=True, help="Broker URL: mqtt://host:port or mqtts://host:port (TLS)")
@click.option("--db", "db_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="HQ database file (created and migrated when missing)")
@click.option("--group", default=DEFAULT_GROUP, show_default=True,
              help="Shared subscription group; receivers in one group split the messages between them; '' for a "
                   "single receiver with plain subscriptions (survives a mosquitto restart, see docs/hq.md)")
@click.option("--prefix", default=HqTopics().prefix_template, show_default=True,
              help="Store topic prefix template; {store_id} matches any store")
@click.option("--username", default=None, help="MQTT user name")
@click.option("--password-file", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="File holding the MQTT password, e.g. $CREDENTIALS_DIRECTORY/mqtt-password")
@click.option("--ca", "ca_file", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="CA bundle that signed the broker's certificate (mqtts:// only; default: system CAs)")
@click.option("--client-id", default=None,
              help="Fixed MQTT client id, unique per receiver (default: edge-hq-<hostname>); the broker keeps the "
                   "session under this id")
@click.option("--session-expiry", type=click.IntRange(min=0), default=86400, show_default=True,
              help="Seconds the broker keeps this receiver's session (and queues its messages) while it is away, "
                   "so a restart or crash loses nothing; 0 = a clean session that loses what arrives while away")
@click.option("--log-level", type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"]), default="INFO",
              show_default=True, help="Log level")
def run(broker: str, db_path: Path, group: str, prefix: str, username: str | None, password_file: Path | None,
        ca_file: Path | None, client_id: str | None, session_expiry: int, log_level: str) -> None:
    """Receive aggregates, command results and state of every store until SIGTERM or SIGINT."""
    logging.basicConfig(level=log_level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if client_id is None:
        client_id = f"edge-hq-{socket.gethostname()}"
    password = None
    if password_file is not None:
        password = password_file.read_text(encoding="utf-8").rstrip("\r\n")
    settings = ReceiverSettings(broker=broker, db_path=db_path, group=group, prefix_template=prefix,
                                username=username, password=password, ca_file=ca_file, client_id=client_id,
                                session_expiry_s=session_expiry)
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        logger.info("Received %s; stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    receiver = Receiver(settings)
    try:
        receiver.start()
        stop.wait()
    except (SyncError, StoreError) as err:
        click.echo(f"error: {err}", err=True)
        sys.exit(2)
    finally:
        receiver.stop()


@hq.command()
@click.option("--db", "db_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="HQ database file written by `edge hq run`")
@click.option("--store", default=None, help="Show only this store")
@click.option("--ranges", "max_ranges", type=click.IntRange(min=1), default=5, show_default=True,
              help="Missing seq ranges to show per store")
@click.option("--gap-grace", type=click.FloatRange(min=0), default=900.0, show_default=True,
              help="Seconds a missing seq may stay missing (in flight, backlog replay) before it counts as a problem")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text")
def status(db_path: Path, store: str | None, max_ranges: int, gap_grace: float, as_json: bool) -> None:
    """Per store: online, session, version, last seen, counts, seq gaps and lag; exits 1 when any store is
    offline, has seqs missing for longer than --gap-grace or conflicting seqs, 2 when the database cannot be
    read."""
    try:
        conn = hq_store.open_readonly(db_path)
    except StoreError as err:
        click.echo(f"error: {err}", err=True)
        sys.exit(2)
    now = time.time()
    try:
        statuses = hq_store.store_statuses(conn, now, store, max_ranges=max_ranges, gap_grace_s=gap_grace)
        invalid = hq_store.invalid_topics(conn, store)
    except sqlite3.Error as err:
        click.echo(f"error: {db_path} is not an HQ database: {err}", err=True)
        sys.exit(2)
    finally:
        conn.close()
    problems = [problem for s in statuses for problem in _problems(s)]
    if as_json:
        click.echo(json.dumps({
            "ok": not problems, "now": _iso(now), "problems": problems,
            "stores": [_store_json(s) for s in statuses],
            "invalid_topics": [asdict(topic) for topic in invalid],
        }, indent=2))
    else:
        _print_text(statuses, invalid, problems, now)
    sys.exit(1 if problems else 0)


def _problems(s: hq_store.StoreStatus) -> list[str]:
    problems = []
    if s.online is False:
        problems.append(f"{s.store}: offline since {_iso(s.state_changed_at)}")
    if s.missing_overdue:
        problems.append(f"{s.store}: {s.missing_overdue} seq(s) missing")
    if s.conflicts:
        problems.append(f"{s.store}: {s.conflicts} seq(s) re-used with another idem_key")
    return problems


def _store_json(s: hq_store.StoreStatus) -> dict[str, Any]:
    data = asdict(s)
    data["missing_ranges"] = [{"first": r.first, "last": r.last, "since": _iso(r.since)} for r in s.missing_ranges]
    for key in ("state_changed_at", "last_seen", "last_sent_at"):
        data[key] = _iso(data[key])
    return data


def _iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if abs(seconds) >= size:
            return f"{seconds / size:.0f}{unit}"
    return f"{seconds:.0f}s"


def _print_text(statuses: list[hq_store.StoreStatus], invalid: list[hq_store.InvalidTopic], problems: list[str],
                now: float) -> None:
    if not statuses:
        click.echo("no stores yet")
    for s in statuses:
        state = {True: "online", False: "OFFLINE", None: "unknown"}[s.online]
        click.echo(f"{s.store}: {state} session {s.session if s.session is not None else '-'} "
                   f"version {s.version or '-'}, last seen {_age(s.last_seen_age_s)} ago, lag {_age(s.lag_s)}")
        kinds = ", ".join(f"{kind} {count}" for kind, count in s.kinds.items()) or "-"
        click.echo(f"  received {s.received} ({kinds}), duplicates {s.duplicates}, max seq {s.max_seq or '-'}, "
                   f"missing {s.missing}" + (f" ({s.missing_overdue} overdue)" if s.missing_overdue else "")
                   + (" [" + ", ".join(_range(r) for r in s.missing_ranges) + "]" if s.missing_ranges else "")
                   + (f", invalid {s.invalid}" if s.invalid else "")
                   + (f", stale states {s.stale_states}" if s.stale_states else ""))
    for topic in invalid:
        click.echo(f"invalid: {topic.topic}: {topic.count}, last {_age(now - topic.last_at)} ago: {topic.last_error}")
    click.echo("DEGRADED" if problems else "OK")
    for problem in problems:
        click.echo(f"  {problem}")


def _range(r: hq_store.SeqRange) -> str:
    return str(r.first) if r.first == r.last else f"{r.first}-{r.last}"
