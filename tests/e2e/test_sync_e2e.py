"""End to end over a real broker: the daemon, a pty scanner and the HQ receiver, through outages and crashes."""

import json
import signal
import sqlite3
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from simulators.barcode.model import SimScan
from simulators.barcode.scanner import PtyScanner
from simulators.broker import Broker
from sync.hq.receiver import Receiver, ReceiverSettings
from tests.e2e.conftest import Daemon, edge_command, wait_for

STORE = "test-0001"
EAN13 = SimScan(aim="]E0", payload="5901234123457", valid=True, kind="gtin", gtin="05901234123457")


def _sections(link: Path, broker_url: str) -> str:
    return f"""
[sync]
enabled = true
broker = "{broker_url}"
batch_window_s = 5
health_every_s = 5
reconnect_min_s = 0.2
reconnect_max_s = 1.0
keepalive_s = 10

[[devices]]
type = "barcode"
name = "till-1"
port = "{link}"
reconnect_max_s = 0.5
"""


@pytest.fixture
def hq_broker(tmp_path: Path) -> Iterator[Broker]:
    """A broker that keeps sessions across restarts, as a production broker does."""
    broker = Broker(tmp_path / "broker", persistent=True)
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture
def receiver(tmp_path: Path, hq_broker: Broker) -> Iterator[Receiver]:
    """The HQ reference receiver with a persistent session and plain subscriptions (see docs/hq.md: mosquitto does
    not restore shared subscriptions after a restart)."""
    instance = Receiver(ReceiverSettings(broker=hq_broker.url, db_path=tmp_path / "hq.db", client_id="hq-test",
                                         session_expiry_s=600, group=""))
    instance.start()
    assert instance.wait_subscribed(10)
    yield instance
    instance.stop()


def _fast_windows(daemon: Daemon) -> None:
    text = daemon.config.read_text().replace("rollup_window_s = 10", "rollup_window_s = 5")
    daemon.config.write_text(text)


def _outbox(db: Path) -> list[tuple[int, str, float | None]]:
    if not db.exists():
        return []
    conn = sqlite3.connect(db)
    try:
        return conn.execute("SELECT id, kind, sent_at FROM outbox ORDER BY id").fetchall()
    except sqlite3.OperationalError:
        return []
    finally:
        conn.close()


def _hq(db: Path) -> dict[int, tuple[str, float | None, int, str]]:
    if not db.exists():
        return {}
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute(
            "SELECT seq, kind, window_start, duplicates, payload_json FROM messages WHERE store = ?", (STORE,)
        ).fetchall()
    except sqlite3.OperationalError:
        return {}
    finally:
        conn.close()
    return {seq: (kind, start, dups, payload) for seq, kind, start, dups, payload in rows}


def _all_delivered(edge: Daemon, hq_db: Path) -> bool:
    rows = _outbox(edge.db)
    return bool(rows) and all(sent is not None for *_, sent in rows) and set(_hq(hq_db)) >= {r[0] for r in rows}


def _assert_exactly_once_in_order(edge: Daemon, hq_db: Path) -> dict[int, tuple[str, float | None, int, str]]:
    outbox_ids = [row[0] for row in _outbox(edge.db)]
    received = _hq(hq_db)
    assert outbox_ids == list(range(1, len(outbox_ids) + 1)), "seq is the outbox id: 1, 2, 3, ..."
    assert set(received) == set(outbox_ids), "HQ holds every message the store queued, each once"
    for kind in {kind for kind, *_ in received.values()}:
        windows = [received[seq][1] for seq in sorted(received) if received[seq][0] == kind]
        assert windows == sorted(windows), f"{kind} windows follow seq order"
    return received


def test_sync__broker_outage_during_live_traffic_loses_nothing(
    tmp_path: Path, daemon: Callable[[str], Daemon], hq_broker: Broker, receiver: Receiver
) -> None:
    link = tmp_path / "scanner"
    scanner = PtyScanner(link)
    scanner.start()
    edge = daemon(_sections(link, hq_broker.url))
    _fast_windows(edge)
    edge.start()
    stop = threading.Event()
    typing = threading.Thread(target=scanner.run, args=((EAN13 for _ in range(10_000)), 20, stop),
                              kwargs={"reader_timeout_s": 20})
    typing.start()
    try:
        wait_for(lambda: len(_hq(tmp_path / "hq.db")) >= 2, 30, "aggregates at HQ before the outage")
        hq_broker.stop()
        time.sleep(6)  # the outage: more than one batch window of aggregates queue up in the outbox
        queued_during_outage = sum(sent is None for *_, sent in _outbox(edge.db))
        hq_broker.start()
        time.sleep(3)
        stop.set()
        typing.join(timeout=10)
        typed = len(scanner.ground_truth)
        wait_for(lambda: _hq_scans(tmp_path / "hq.db") >= typed and _all_delivered(edge, tmp_path / "hq.db"), 40,
                 "every aggregate at HQ")
    finally:
        stop.set()
        assert edge.stop() == 0
        scanner.stop()
    assert queued_during_outage >= 1
    _assert_exactly_once_in_order(edge, tmp_path / "hq.db")
    assert _hq_scans(tmp_path / "hq.db") == typed, "every scan counted at HQ exactly once"


def _hq_scans(hq_db: Path) -> int:
    return sum(row["scans"] for kind, _, _, payload in _hq(hq_db).values() if kind == "scans"
               for row in json.loads(payload)["rows"])


def test_sync__sigkill_between_publish_and_puback_repeatedly_loses_nothing(
    tmp_path: Path, daemon: Callable[[str], Daemon], hq_broker: Broker, receiver: Receiver
) -> None:
    link = tmp_path / "scanner"
    scanner = PtyScanner(link)
    scanner.start()
    edge = daemon(_sections(link, hq_broker.url))
    _fast_windows(edge)
    edge.start()
    try:
        assert scanner.wait_for_reader(timeout=20)
        scanner.send(EAN13)
        for _ in range(3):
            wait_for(lambda: bool(_outbox(edge.db)) and _all_delivered(edge, tmp_path / "hq.db"), 30, "delivery")
            known = len(_outbox(edge.db))
            # Freeze the broker: the daemon publishes but no PUBACK can come back.
            hq_broker.pause()
            wait_for(lambda known=known: len(_outbox(edge.db)) > known, 15,  # type: ignore[misc]
                     "a new message queued while the broker is frozen")
            time.sleep(1.0)  # the publisher writes it to the socket within its 0.2 s loop
            edge.stop(signal.SIGKILL)
            hq_broker.resume()
            unacked = [row for row in _outbox(edge.db) if row[2] is None]
            assert unacked, "the kill came between publish and PUBACK"
            scanner.unplug(drain_timeout=0.5)
            scanner.replug()
            edge.start()
            assert scanner.wait_for_reader(timeout=20)
        wait_for(lambda: _all_delivered(edge, tmp_path / "hq.db"), 40, "every message delivered after the kills")
    finally:
        if edge.process is not None:
            assert edge.stop() == 0
        scanner.stop()
    received = _assert_exactly_once_in_order(edge, tmp_path / "hq.db")
    # Re-sent copies reached HQ and were recognised as duplicates, not stored twice.
    assert sum(dups for _, _, dups, _ in received.values()) >= 1
    assert receiver.stats().duplicates >= 1


def _publish_command(broker: Broker, name: str, payload: bytes) -> None:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"hq-cmd-{uuid.uuid4().hex[:8]}",
                         protocol=mqtt.MQTTv5)
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    client.publish(f"retail/v1/{STORE}/cmd/{name}", payload, qos=1).wait_for_publish(5)
    client.disconnect()
    client.loop_stop()


def _command(command_id: str, name: str = "ping", store: str = STORE, **extra: object) -> bytes:
    body = {"v": 1, "id": command_id, "name": name, "store": store,
            "issued_at": datetime.now(UTC).isoformat(), **extra}
    return json.dumps(body).encode()


def test_sync__bad_commands_are_answered_and_the_daemon_carries_on(
    tmp_path: Path, daemon: Callable[[str], Daemon], hq_broker: Broker, receiver: Receiver
) -> None:
    edge = daemon(_sections(tmp_path / "no-scanner", hq_broker.url))
    _fast_windows(edge)
    edge.start()
    hq_db = tmp_path / "hq.db"
    try:
        wait_for(lambda: edge.status().get("sync", {}).get("connected") is True, 20, "the uplink to connect")
        sent = [
            ("ping", _command("c-1")),
            ("ping", b"{not json"),
            ("ping", _command("c-2", store="other-store")),
            ("ping", _command("c-3", args={"pad": "x" * 70_000})),
            ("ping", _command("c-1")),  # replayed
            ("ping", _command("c-4", expires_at="2020-01-01T00:00:00+00:00")),
            ("no/such", _command("c-5", name="no/such")),
        ]
        for name, payload in sent:
            _publish_command(hq_broker, name, payload)

        def results() -> list[dict[str, object]]:
            return [json.loads(p) for kind, _, _, p in _hq(hq_db).values() if kind == "cmd_result"]

        wait_for(lambda: len(results()) >= len(sent), 20, "a result for every command")
        status = subprocess.run(edge_command("status", "--config", str(edge.config), "--json"), capture_output=True,
                                text=True, check=False)
    finally:
        assert edge.stop() == 0
    by_order = sorted(results(), key=lambda r: int(str(r["seq"])))
    statuses = [(r["id"], r["status"]) for r in by_order]
    assert statuses[0] == ("c-1", "ok")
    assert statuses[1] == (None, "rejected")
    assert statuses[2] == ("c-2", "rejected") and "other-store" in str(by_order[2]["reason"])
    assert statuses[3][1] == "rejected" and "oversized" in str(by_order[3]["reason"])
    assert statuses[4] == ("c-1", "duplicate")
    assert statuses[5] == ("c-4", "rejected") and "expired" in str(by_order[5]["reason"])
    assert statuses[6] == ("c-5", "rejected") and "unknown command" in str(by_order[6]["reason"])
    assert json.loads(status.stdout)["daemon"]["running"] is True


def test_sync__status_is_degraded_when_the_backlog_is_too_old(tmp_path: Path, daemon: Callable[[str], Daemon]) -> None:
    dead = Broker(tmp_path / "never-started")  # its port is free: nothing listens there
    edge = daemon(_sections(tmp_path / "no-scanner", dead.url).replace("keepalive_s = 10",
                                                                       "keepalive_s = 10\nbacklog_alarm_s = 1"))
    _fast_windows(edge)
    edge.start()
    try:
        wait_for(lambda: any("HQ backlog" in p for p in edge.status().get("problems", [])), 20, "the backlog alarm")
        result = subprocess.run(edge_command("outbox", "--config", str(edge.config), "--json"), capture_output=True,
                                text=True, check=True)
        code = subprocess.run(edge_command("status", "--config", str(edge.config)), capture_output=True, text=True,
                              check=False).returncode
    finally:
        assert edge.stop() == 0
    outbox = json.loads(result.stdout)
    assert outbox["connected"] is False
    assert outbox["backlog_rows"] >= 1
    assert code == 1


def test_sync__config_reload_command_starts_a_new_device(
    tmp_path: Path, daemon: Callable[[str], Daemon], hq_broker: Broker, receiver: Receiver
) -> None:
    edge = daemon(_sections(tmp_path / "no-scanner", hq_broker.url))
    _fast_windows(edge)
    edge.start()
    hq_db = tmp_path / "hq.db"
    try:
        wait_for(lambda: edge.status().get("sync", {}).get("connected") is True, 20, "the uplink to connect")
        edge.config.write_text(edge.config.read_text() + f"""
[[devices]]
type = "barcode"
name = "aisle-1"
port = "{tmp_path / 'aisle-scanner'}"
""")

        def results() -> dict[object, dict[str, object]]:
            found = [json.loads(p) for kind, _, _, p in _hq(hq_db).values() if kind == "cmd_result"]
            return {r["id"]: r for r in found}

        _publish_command(hq_broker, "config/reload", _command("r-1", name="config/reload"))
        wait_for(lambda: "r-1" in results(), 20, "the first reload's result")
        wait_for(lambda: bool(edge.device("aisle-1")), 10, "the new device in status")
        edge.config.write_text(edge.config.read_text() + "\nbogus = 1\n")
        _publish_command(hq_broker, "config/reload", _command("r-2", name="config/reload"))
        wait_for(lambda: "r-2" in results(), 20, "the second reload's result")
    finally:
        assert edge.stop() == 0
    applied, refused = results()["r-1"], results()["r-2"]
    assert applied["status"] == "ok"
    assert applied["result"] == {"devices_started": ["aisle-1"], "devices_stopped": [], "restart_required_for": []}
    assert refused["status"] == "rejected" and "bogus: unknown key" in str(refused["reason"])
