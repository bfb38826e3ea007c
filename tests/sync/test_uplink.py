"""The uplink against a real mosquitto, a real migrated SQLite store and a real writer; a plain paho client is HQ."""

import json
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edge import const
from edge.config.base import SecretRef
from edge.config.models import Sync, Tls
from edge.errors import SyncError
from edge.store import outbox
from edge.store.writer import Writer
from sync import wire
from sync.uplink import Uplink
from tests.conftest import MakeWriter
from tests.sync.broker import Broker

STORE = "s1"
WINDOW_0 = 1_700_000_000.0
ROOT = Path(__file__).resolve().parents[2]


# -- helpers ----------------------------------------------------------------------------------------------------


def wait_for(condition: Callable[[], object], timeout: float = 5.0, what: str = "condition") -> None:
    """Poll until ``condition()`` is truthy; fail with ``what`` at the deadline."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.01)


@dataclass(frozen=True)
class Received:
    topic: str
    payload: bytes
    content_type: str | None
    retain: bool
    at: float

    def json(self) -> Any:
        return json.loads(wire.decode_bytes(self.payload, self.content_type))


class Hq:
    """A plain paho subscriber standing in for HQ."""

    def __init__(self, port: int, topic: str = "retail/v1/#", user: tuple[str, str] | None = None) -> None:
        self.messages: list[Received] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"hq-{port}-{id(self)}",
                                  protocol=mqtt.MQTTv5)
        if user:
            self.client.username_pw_set(*user)
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *args: self._subscribed.set()
        self.client.connect("127.0.0.1", port)
        self.client.subscribe(topic, qos=1)
        self.client.loop_start()
        assert self._subscribed.wait(5), "HQ subscriber got no SUBACK"

    def _on_message(self, client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        content_type = getattr(message.properties, "ContentType", None)
        item = Received(message.topic, bytes(message.payload), content_type, bool(message.retain), time.monotonic())
        with self._lock:
            self.messages.append(item)

    def on(self, suffix: str) -> list[Received]:
        with self._lock:
            return [m for m in self.messages if m.topic.endswith(suffix)]

    def states(self) -> list[dict[str, Any]]:
        return [m.json() for m in self.on("/state")]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def scans_body(rows: int = 1, window: float = WINDOW_0) -> str:
    return json.dumps({"rows": [
        {"device": f"till-{i}", "window_start": window, "window_end": window + 60, "scans": 10 + i, "valid": 9,
         "invalid": 1, "distinct_gtins": 5} for i in range(rows)
    ]})


def health_body() -> str:
    return json.dumps({"gateway": {"uptime_s": 60.0, "version": "test", "free_disk_bytes": 10**9, "disk_low": False,
                                   "dropped_queue_full": 0, "shed_low_disk": 0, "outbox_backlog": 0,
                                   "outbox_shed": 0},
                       "rows": [{"device": "till-0", "kind": "barcode", "state": "ok", "events": 3,
                                 "reconnects": 0}]})


def enqueue(writer: Writer, kind: str, body: str, index: int = 0) -> int:
    window = WINDOW_0 + index * 60
    return writer.call(lambda conn: outbox.enqueue(
        conn, kind=kind, shed_class=const.SHED_KEEP, idem_key=f"{STORE}:{kind}:{int(window)}:60", body=body,
        now=time.time(), window_start=None if kind == const.CMD_RESULT else window,
        window_end=None if kind == const.CMD_RESULT else window + 60,
    ))


def enqueue_scans(writer: Writer, count: int, first_index: int = 0) -> list[int]:
    return [enqueue(writer, const.AGG_SCANS, scans_body(window=WINDOW_0 + i * 60), i)
            for i in range(first_index, first_index + count)]


def unsent(db: Path) -> set[int]:
    with sqlite3.connect(db) as conn:
        return {row[0] for row in conn.execute(f"SELECT id FROM {const.TABLE_OUTBOX} WHERE sent_at IS NULL")}


def make_sync(url: str, **overrides: Any) -> Sync:
    settings: dict[str, Any] = {"enabled": True, "broker": url, "keepalive_s": 10, "reconnect_min_s": 0.2,
                                "reconnect_max_s": 0.5, "replay_rate_per_s": 1000.0, "replay_burst": 1000}
    return Sync(**{**settings, **overrides})


@pytest.fixture
def writer(fresh_db: Path, make_writer: MakeWriter) -> Writer:
    return make_writer(fresh_db)


@pytest.fixture
def make_uplink(fresh_db: Path, writer: Writer) -> Iterator[Callable[..., Uplink]]:
    uplinks: list[Uplink] = []

    def make(sync: Sync, on_command: Callable[[str, bytes, str | None], None] | None = None) -> Uplink:
        uplink = Uplink(sync, STORE, "9.9.9", writer, fresh_db, on_command=on_command)
        uplinks.append(uplink)
        return uplink

    yield make
    for uplink in uplinks:
        uplink.stop()


@pytest.fixture
def hq(broker: Broker) -> Iterator[Hq]:
    subscriber = Hq(broker.port)
    yield subscriber
    subscriber.close()


# -- delivery ---------------------------------------------------------------------------------------------------


def test_uplink__rows_arrive_on_their_topics_with_valid_payloads(
        broker: Broker, hq: Hq, writer: Writer, fresh_db: Path, make_uplink: Callable[..., Uplink]) -> None:
    small = enqueue(writer, const.AGG_SCANS, scans_body(rows=1), 0)
    big = enqueue(writer, const.AGG_SCANS, scans_body(rows=40), 1)
    health = enqueue(writer, const.AGG_HEALTH, health_body(), 2)
    result = enqueue(writer, const.CMD_RESULT, json.dumps({
        "id": "c-1", "name": "ping", "status": "ok", "reason": None, "result": {"pong": True},
        "ts": "2024-01-01T00:00:00Z"}))
    uplink = make_uplink(make_sync(broker.url))
    uplink.start()

    wait_for(lambda: len(hq.on("/agg/scans")) == 2 and hq.on("/agg/health") and hq.on("/cmd_result"),
             what="every row at HQ")
    scans = {m.json()["seq"]: m for m in hq.on(f"retail/v1/{STORE}/agg/scans")}
    assert set(scans) == {small, big}
    assert scans[small].content_type == wire.CONTENT_TYPE_JSON
    assert scans[big].content_type == wire.CONTENT_TYPE_ZLIB
    for message in scans.values():
        parsed = wire.ScansMessage.model_validate(message.json())
        assert parsed.store == STORE and parsed.historical is True
    assert len(wire.ScansMessage.model_validate(scans[big].json()).rows) == 40
    health_msg = wire.HealthMessage.model_validate(hq.on(f"retail/v1/{STORE}/agg/health")[0].json())
    assert health_msg.seq == health
    result_msg = wire.CommandResult.model_validate(hq.on(f"retail/v1/{STORE}/cmd_result")[0].json())
    assert (result_msg.seq, result_msg.id, result_msg.result) == (result, "c-1", {"pong": True})
    wait_for(lambda: not unsent(fresh_db), what="rows marked sent")
    assert uplink.stats.acked == 4 and uplink.stats.invalid_rows == 0


def test_uplink__invalid_row_is_counted_and_kept_while_others_are_sent(
        broker: Broker, hq: Hq, writer: Writer, fresh_db: Path, make_uplink: Callable[..., Uplink]) -> None:
    bad = enqueue(writer, const.AGG_SCANS, json.dumps({"rows": [{"device": "till-1"}]}), 0)
    good = enqueue(writer, const.AGG_SCANS, scans_body(), 1)
    uplink = make_uplink(make_sync(broker.url))
    uplink.start()
    wait_for(lambda: unsent(fresh_db) == {bad}, what="the good row marked sent")
    wait_for(lambda: hq.on("/agg/scans"), what="the good row at HQ")
    assert uplink.stats.invalid_rows == 1
    assert [m.json()["seq"] for m in hq.on("/agg/scans")] == [good]
    # Set aside as a dead letter: kept for diagnosis, out of the backlog so it never ages into an alarm.
    wait_for(lambda: dead_letters(fresh_db) == 1, what="the bad row set aside")
    with closing(sqlite3.connect(fresh_db)) as conn:
        assert outbox.stats(conn).backlog_rows == 0


def dead_letters(path: Path) -> int:
    with closing(sqlite3.connect(path)) as conn:
        return int(conn.execute("SELECT count(*) FROM outbox WHERE error IS NOT NULL").fetchone()[0])


def test_outbox__row_marked_sent_only_after_puback(
        broker: Broker, hq: Hq, writer: Writer, fresh_db: Path, make_uplink: Callable[..., Uplink]) -> None:
    uplink = make_uplink(make_sync(broker.url))
    uplink.start()
    wait_for(hq.states, what="online state")
    assert broker.process is not None
    broker.process.send_signal(signal.SIGSTOP)  # the connection stays up but nothing is acknowledged
    try:
        ids = enqueue_scans(writer, 5)
        wait_for(lambda: uplink.stats.published == 5, what="publishes")
        beat = uplink.beat_at
        wait_for(lambda: uplink.beat_at > beat + 0.3, what="publisher iterations")  # time to mark, if it would
        assert unsent(fresh_db) == set(ids)
        assert uplink.stats.acked == 0 and uplink.stats.inflight == 5
    finally:
        broker.process.send_signal(signal.SIGCONT)
    wait_for(lambda: not unsent(fresh_db), what="rows marked sent after PUBACK")
    wait_for(lambda: len(hq.on("/agg/scans")) == len(ids), what="rows at HQ")
    assert sorted(m.json()["seq"] for m in hq.on("/agg/scans")) == ids


def test_outbox__rows_in_flight_when_the_broker_dies_are_resent_by_paho_after_reconnect(
        broker: Broker, writer: Writer, fresh_db: Path, make_uplink: Callable[..., Uplink]) -> None:
    uplink = make_uplink(make_sync(broker.url))
    uplink.start()
    wait_for(lambda: uplink.stats.connected, what="connect")
    assert broker.process is not None
    broker.process.send_signal(signal.SIGSTOP)
    ids = enqueue_scans(writer, 5)
    wait_for(lambda: uplink.stats.inflight == 5, what="rows in flight")
    broker.process.kill()  # dies between publish and PUBACK
    broker.process.wait()
    broker.process = None
    broker.start()
    wait_for(lambda: not unsent(fresh_db), timeout=8, what="in-flight rows acknowledged after reconnect")
    stats = uplink.stats
    assert stats.connects == 2 and stats.acked == len(ids)
    assert stats.published == len(ids)  # paho re-sent them (DUP); the publisher did not publish them again


def test_uplink__broker_down_at_start__buffers_then_delivers(
        tmp_path: Path, writer: Writer, fresh_db: Path, make_uplink: Callable[..., Uplink]) -> None:
    broker = Broker(tmp_path / "late-broker")  # not started yet
    uplink = make_uplink(make_sync(broker.url))
    began = time.monotonic()
    uplink.start()
    assert time.monotonic() - began < 1.0
    ids = enqueue_scans(writer, 3)
    wait_for(lambda: uplink.stats.last_error, what="a connection error")
    assert "refused" in str(uplink.stats.last_error)
    assert not uplink.stats.connected and uplink.stats.published == 0
    assert unsent(fresh_db) == set(ids)
    broker.start()
    try:
        wait_for(lambda: not unsent(fresh_db), timeout=8, what="backlog delivered after the broker came up")
        stats = uplink.stats
        assert stats.connected and stats.historical_sent == 3 and stats.acked == 3 and stats.last_error is None
    finally:
        uplink.stop()
        broker.stop()


def test_backlog__historical_rows_are_throttled_and_live_rows_are_not_stuck_behind(
        broker: Broker, hq: Hq, writer: Writer, make_uplink: Callable[..., Uplink]) -> None:
    backlog = enqueue_scans(writer, 45)
    uplink = make_uplink(make_sync(broker.url, replay_rate_per_s=20.0, replay_burst=5))
    uplink.start()
    wait_for(lambda: hq.on("/agg/scans"), what="the first backlog message")
    live_at = time.monotonic()
    live = enqueue(writer, const.AGG_SCANS, scans_body(window=WINDOW_0 + 100 * 60), 100)
    wait_for(lambda: len(hq.on("/agg/scans")) == 46, timeout=8, what="backlog and live rows")

    by_seq = {m.json()["seq"]: m for m in hq.on("/agg/scans")}
    assert all(by_seq[seq].json()["historical"] is True for seq in backlog)
    assert by_seq[live].json()["historical"] is False
    backlog_times = sorted(by_seq[seq].at for seq in backlog)
    assert backlog_times[-1] - backlog_times[0] >= 1.5  # 5 at once, then 40 at 20/s ≈ 2 s
    assert by_seq[live].at < backlog_times[-1]
    assert by_seq[live].at - live_at < 1.0
    assert uplink.stats.historical_sent == 45 and uplink.stats.live_sent == 1


# -- state, Last Will, session counter -----------------------------------------------------------------------------


def test_state__retained_online_with_session_increments_across_reconnects(
        broker: Broker, fresh_db: Path, make_uplink: Callable[..., Uplink]) -> None:
    uplink = make_uplink(make_sync(broker.url))
    uplink.start()
    wait_for(lambda: uplink.stats.connected, what="connect")
    first = uplink.stats.session
    late = Hq(broker.port)  # subscribes after the fact: the state is retained
    try:
        wait_for(late.states, what="retained state")
        state = wire.StateMessage.model_validate(late.states()[0])
        assert (state.online, state.session, state.version, state.store) == (True, first, "9.9.9", STORE)
        assert late.on("/state")[0].retain
    finally:
        late.close()
    with sqlite3.connect(fresh_db) as conn:
        stored = conn.execute(f"SELECT value_json FROM {const.TABLE_DAEMON_STATE} WHERE key = 'mqtt_session'")
        assert json.loads(stored.fetchone()[0]) == first

    broker.restart()
    wait_for(lambda: uplink.stats.connects == 2, timeout=8, what="reconnect")
    assert uplink.stats.session > first
    again = Hq(broker.port)
    try:
        wait_for(lambda: any(s["session"] == uplink.stats.session for s in again.states()), what="new state")
        assert again.states()[-1]["online"] is True
    finally:
        again.close()


def test_state__clean_stop_publishes_offline_and_no_will(
        broker: Broker, hq: Hq, make_uplink: Callable[..., Uplink]) -> None:
    uplink = make_uplink(make_sync(broker.url))
    uplink.start()
    wait_for(hq.states, what="online state")
    session = uplink.stats.session
    uplink.stop()
    wait_for(lambda: len(hq.states()) >= 2, what="offline state")
    assert [(s["online"], s["session"]) for s in hq.states()] == [(True, session), (False, session)]
    uplink.stop()  # idempotent


UNCLEAN_EXIT = textwrap.dedent("""
    import os, sys, time
    from pathlib import Path
    from edge.config.models import Sync
    from edge.store.writer import Writer
    from sync.uplink import Uplink

    url, db = sys.argv[1], Path(sys.argv[2])
    writer = Writer(db, queue_size=100, batch_size=100, flush_interval_s=0.05, min_free_disk_mb=0)
    writer.start()
    uplink = Uplink(Sync(enabled=True, broker=url, keepalive_s=10), "s1", "9.9.9", writer, db)
    uplink.start()
    deadline = time.monotonic() + 5
    while not uplink.stats.connected and time.monotonic() < deadline:
        time.sleep(0.01)
    print(uplink.stats.session, flush=True)
    sys.stdin.readline()
    os._exit(1)
""")


def test_state__unclean_exit_lets_the_broker_publish_the_will(broker: Broker, hq: Hq, fresh_db: Path) -> None:
    process = subprocess.Popen([sys.executable, "-c", UNCLEAN_EXIT, broker.url, str(fresh_db)], cwd=ROOT,
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None and process.stdin is not None
        session = int(process.stdout.readline())
        wait_for(hq.states, what="online state")
        process.stdin.write("go\n")
        process.stdin.flush()
        assert process.wait(5) == 1
        wait_for(lambda: len(hq.states()) >= 2, what="the Last Will")
        assert [(s["online"], s["session"]) for s in hq.states()] == [(True, session), (False, session)]
    finally:
        process.kill()
        process.wait()


# -- TLS, credentials, ACL ----------------------------------------------------------------------------------------


def _secret(tmp_path: Path, name: str, value: str) -> SecretRef:
    path = tmp_path / name
    path.write_text(value + "\n", encoding="utf-8")
    path.chmod(0o600)
    return SecretRef(file=path)


def test_tls__right_ca_and_client_cert_connects_and_delivers(
        secure_broker: Broker, tmp_path: Path, writer: Writer, fresh_db: Path,
        make_uplink: Callable[..., Uplink]) -> None:
    certs = secure_broker.certs
    assert certs is not None
    hq = Hq(secure_broker.auth_port, user=("hq", "pw-hq"))
    try:
        ids = enqueue_scans(writer, 2)
        tls = Tls(ca_file=certs.ca, client_cert=certs.client_cert, client_key=SecretRef(file=certs.client_key))
        uplink = make_uplink(make_sync(secure_broker.tls_url, username="s1",
                                       password=_secret(tmp_path, "mqtt-password", "pw-s1"), tls=tls))
        uplink.start()
        wait_for(lambda: not unsent(fresh_db), what="rows acknowledged over TLS")
        wait_for(lambda: len(hq.on("/agg/scans")) == 2, what="rows at HQ")
        assert sorted(m.json()["seq"] for m in hq.on("/agg/scans")) == ids
    finally:
        hq.close()


def test_tls__wrong_ca_never_connects_and_never_falls_back_to_plaintext(
        secure_broker: Broker, tmp_path: Path, writer: Writer, fresh_db: Path,
        make_uplink: Callable[..., Uplink]) -> None:
    certs = secure_broker.certs
    assert certs is not None
    plain = Hq(secure_broker.port, topic="#")  # the anonymous plain listener sees everything sent in the clear
    try:
        ids = enqueue_scans(writer, 2)
        uplink = make_uplink(make_sync(secure_broker.tls_url, username="s1",
                                       password=_secret(tmp_path, "mqtt-password", "pw-s1"),
                                       tls=Tls(ca_file=certs.other_ca)))
        uplink.start()
        wait_for(lambda: uplink.stats.session >= 3, what="several connection attempts")
        stats = uplink.stats
        assert not stats.connected and stats.connects == 0
        assert "certificate verify failed" in str(stats.last_error).lower()
        assert unsent(fresh_db) == set(ids)
        assert plain.messages == []
    finally:
        plain.close()


def test_tls__mqtts_without_a_usable_ca_is_a_sync_error_at_start(
        tmp_path: Path, make_uplink: Callable[..., Uplink]) -> None:
    with pytest.raises(SyncError, match="ca_file"):
        make_uplink(make_sync("mqtts://127.0.0.1:8883", tls=Tls(ca_file=tmp_path / "missing.pem"))).start()
    not_a_ca = tmp_path / "not-a-ca.pem"
    not_a_ca.write_text("not a certificate\n", encoding="ascii")
    with pytest.raises(SyncError, match="ca_file"):
        make_uplink(make_sync("mqtts://127.0.0.1:8883", tls=Tls(ca_file=not_a_ca))).start()


def test_auth__wrong_password_is_never_connected_with_a_clear_error(
        secure_broker: Broker, tmp_path: Path, make_uplink: Callable[..., Uplink]) -> None:
    uplink = make_uplink(make_sync(secure_broker.auth_url, username="s1",
                                   password=_secret(tmp_path, "mqtt-password", "wrong")))
    uplink.start()
    wait_for(lambda: uplink.stats.last_error, what="refusal")
    stats = uplink.stats
    assert not stats.connected and stats.connects == 0
    assert "refused" in str(stats.last_error) and "authorized" in str(stats.last_error).lower()


def test_acl__publishing_outside_own_prefix_is_rejected_and_kept_unsent(
        secure_broker: Broker, tmp_path: Path, writer: Writer, fresh_db: Path,
        make_uplink: Callable[..., Uplink]) -> None:
    ids = enqueue_scans(writer, 2)
    uplink = make_uplink(make_sync(secure_broker.auth_url, username="s1", topic_prefix="retail/v1/s2",
                                   password=_secret(tmp_path, "mqtt-password", "pw-s1")))
    uplink.start()
    wait_for(lambda: uplink.stats.rejected_by_broker >= 2, what="PUBACKs with a failure reason")
    stats = uplink.stats
    assert stats.connected and stats.acked == 0
    assert "not authorized" in str(stats.last_error).lower()
    assert unsent(fresh_db) == set(ids)


# -- commands ---------------------------------------------------------------------------------------------------


def test_commands__reach_on_command_in_the_publisher_thread(
        broker: Broker, hq: Hq, make_uplink: Callable[..., Uplink]) -> None:
    calls: list[tuple[str, bytes, str | None, str]] = []

    def on_command(topic: str, payload: bytes, content_type: str | None) -> None:
        calls.append((topic, payload, content_type, threading.current_thread().name))
        if payload == b"boom":
            raise RuntimeError("handler bug")

    uplink = make_uplink(make_sync(broker.url), on_command=on_command)
    uplink.start()
    wait_for(hq.states, what="online state (subscribed before it)")
    props = Properties(PacketTypes.PUBLISH)
    props.ContentType = wire.CONTENT_TYPE_JSON
    hq.client.publish(f"retail/v1/{STORE}/cmd/ping", b"boom", qos=1, properties=props)
    hq.client.publish(f"retail/v1/{STORE}/cmd/ping", b'{"id": "c-1"}', qos=1, properties=props)
    wait_for(lambda: len(calls) == 2, what="commands")
    assert calls[1] == (f"retail/v1/{STORE}/cmd/ping", b'{"id": "c-1"}', wire.CONTENT_TYPE_JSON, "uplink-publisher")
    stats = uplink.stats
    assert stats.commands_received == 2 and stats.command_errors == 1
