"""The HQ receiver against a real mosquitto: dedup on (store, seq), gaps, invalid payloads, state, shared groups."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import zlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from pydantic import BaseModel

from sync import wire
from sync.hq import store as hq_store
from sync.hq.receiver import Receiver, ReceiverSettings, parse_broker_url
from sync.topics import Topics
from tests.sync.broker import Broker

PREFIX = "retail/v1/{store_id}"
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[2]


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    """Poll ``predicate`` until true or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)


# -- hand-built wire messages -------------------------------------------------------------------------------------


def scans(store: str, seq: int, *, historical: bool = False) -> wire.ScansMessage:
    start = T0 + timedelta(minutes=15 * seq)
    end = start + timedelta(minutes=15)
    row = wire.ScansRow(device="till-1", window_start=start, window_end=end, scans=seq, valid=seq, invalid=0,
                        distinct_gtins=1)
    return wire.ScansMessage(store=store, seq=seq, idem_key=f"{store}:scans:{start.isoformat()}",
                             window_start=start, window_end=end, historical=historical,
                             sent_at=datetime.now(UTC), rows=[row])


def health(store: str, seq: int) -> wire.HealthMessage:
    start = T0 + timedelta(minutes=15 * seq)
    gateway = wire.GatewayHealthRow(uptime_s=1.0, version="0.1.0", free_disk_bytes=10**9, disk_low=False,
                                    dropped_queue_full=0, shed_low_disk=0, outbox_backlog=0, outbox_shed=0)
    return wire.HealthMessage(store=store, seq=seq, idem_key=f"{store}:health:{start.isoformat()}",
                              window_start=start, window_end=start + timedelta(minutes=15), historical=False,
                              sent_at=datetime.now(UTC), gateway=gateway, rows=[])


def cmd_result(store: str, seq: int) -> wire.CommandResult:
    now = datetime.now(UTC)
    return wire.CommandResult(store=store, seq=seq, idem_key=f"{store}:cmd:c{seq}", id=f"c{seq}", name="ping",
                              status="ok", ts=now, sent_at=now)


def state(store: str, session: int, online: bool) -> wire.StateMessage:
    return wire.StateMessage(store=store, online=online, session=session, version="0.1.0", ts=datetime.now(UTC))


class Publisher:
    """A plain paho client standing in for stores (QoS1, waits for each PUBACK)."""

    def __init__(self, broker: Broker) -> None:
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="test-publisher", protocol=mqtt.MQTTv5)
        self.client.connect("127.0.0.1", broker.port)
        self.client.loop_start()

    def raw(self, topic: str, payload: bytes, content_type: str | None = None, retain: bool = False) -> None:
        properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        if content_type is not None:
            properties.ContentType = content_type
        info = self.client.publish(topic, payload, qos=1, retain=retain, properties=properties)
        info.wait_for_publish(timeout=5)
        assert info.is_published()

    def send(self, model: BaseModel, compress: bool = False, retain: bool = False) -> None:
        store = str(getattr(model, "store"))  # noqa: B009 - every wire model has one
        topics = Topics(PREFIX, store)
        if isinstance(model, wire.StateMessage):
            topic = topics.state
        elif isinstance(model, wire.CommandResult):
            topic = topics.cmd_result
        else:
            topic = topics.agg(str(getattr(model, "kind")))  # noqa: B009
        payload, content_type = wire.encode(model, compress_over=1 if compress else 0)
        assert (content_type == wire.CONTENT_TYPE_ZLIB) == compress
        self.raw(topic, payload, content_type, retain=retain)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def publisher(broker: Broker) -> Iterator[Publisher]:
    instance = Publisher(broker)
    yield instance
    instance.close()


MakeReceiver = Callable[..., Receiver]


@pytest.fixture
def make_receiver(broker: Broker, tmp_path: Path) -> Iterator[MakeReceiver]:
    """Start subscribed receivers on the test broker, one database each; stopped at teardown."""
    started: list[Receiver] = []

    def make(name: str = "hq", group: str = "hq") -> Receiver:
        receiver = Receiver(ReceiverSettings(broker=broker.url, db_path=tmp_path / f"{name}.db", group=group,
                                             prefix_template=PREFIX))
        receiver.start()
        started.append(receiver)
        assert receiver.wait_subscribed(5), "subscriptions not granted"
        return receiver

    yield make
    for receiver in started:
        receiver.stop()


def read_db(path: Path) -> sqlite3.Connection:
    """A read-only connection to a receiver's database (as ``edge hq status`` opens it)."""
    return hq_store.open_readonly(path)


def count(path: Path, sql: str = "SELECT count(*) FROM messages") -> int:
    conn = read_db(path)
    try:
        return int(conn.execute(sql).fetchone()[0])
    finally:
        conn.close()


# -- tests ---------------------------------------------------------------------------------------------------------


def test_parse_broker_url__accepts_mqtt_and_mqtts_only() -> None:
    assert parse_broker_url("mqtt://h").port == 1883
    assert parse_broker_url("mqtts://h:9").tls
    with pytest.raises(Exception, match="expected mqtt"):
        parse_broker_url("http://h")


def test_receiver__stores_each_seq_once_counts_duplicates_and_reports_gaps(
        publisher: Publisher, make_receiver: MakeReceiver, tmp_path: Path) -> None:
    receiver = make_receiver()
    sent: list[tuple[BaseModel, bool]] = [  # (message, compressed)
        (scans("s1", 1), False), (scans("s1", 3), True), (health("s1", 2), False), (scans("s1", 3), False),
        (cmd_result("s1", 5), False), (scans("s1", 4, historical=True), True), (scans("s1", 1), True),
        (health("s1", 9), True), (scans("s1", 12), False), (health("s1", 9), False), (scans("s2", 7), False),
    ]
    for model, compress in sent:
        publisher.send(model, compress=compress)
    wait_until(lambda: receiver.stats().acked == len(sent), what="every message committed and acked")

    stats = receiver.stats()
    assert (stats.stored, stats.duplicates, stats.invalid, stats.conflicts) == (8, 3, 0, 0)
    conn = read_db(tmp_path / "hq.db")
    rows = conn.execute("SELECT seq, kind, duplicates, historical FROM messages WHERE store = 's1' ORDER BY seq")
    assert [tuple(r) for r in rows] == [(1, "scans", 1, 0), (2, "health", 0, 0), (3, "scans", 1, 0),
                                        (4, "scans", 0, 1), (5, "cmd_result", 0, 0), (9, "health", 1, 0),
                                        (12, "scans", 0, 0)]
    compressed = conn.execute("SELECT payload_json FROM messages WHERE store = 's1' AND seq = 4").fetchone()[0]
    assert wire.ScansMessage.model_validate_json(compressed).rows[0].scans == 4

    gaps = hq_store.seq_gaps(conn)
    assert gaps["s1"].missing == 5
    assert [(r.first, r.last) for r in gaps["s1"].ranges] == [(6, 8), (10, 11)]
    assert gaps["s1"].overdue == 0  # no overdue_before given
    assert hq_store.seq_gaps(conn, "s1", overdue_before=time.time() + 1)["s1"].overdue == 5
    assert hq_store.seq_gaps(conn, "s1", overdue_before=time.time() - 3600)["s1"].overdue == 0
    assert gaps["s2"].missing == 0  # a store's first seq seen need not be 1

    [s1, s2] = hq_store.store_statuses(conn, now=time.time())
    assert (s1.received, s1.duplicates, s1.max_seq, s1.missing) == (7, 3, 12, 5)
    assert s1.kinds == {"cmd_result": 1, "health": 2, "scans": 4}
    assert s1.online is None  # no state seen yet
    assert s1.lag_s is not None and s1.lag_s > 0
    assert (s2.received, s2.max_seq) == (1, 7)


def test_receiver__reused_seq_with_another_idem_key_is_kept_once_and_counted_as_conflict(
        publisher: Publisher, make_receiver: MakeReceiver, tmp_path: Path) -> None:
    receiver = make_receiver()
    publisher.send(scans("s1", 1))
    publisher.send(health("s1", 1))  # the store's seq went backwards (e.g. its database was replaced)
    wait_until(lambda: receiver.stats().acked == 2)
    assert receiver.stats().conflicts == 1
    [status] = hq_store.store_statuses(read_db(tmp_path / "hq.db"), now=time.time())
    assert (status.received, status.duplicates, status.conflicts, status.kinds) == (1, 1, 1, {"scans": 1})


def test_receiver__invalid_payloads_are_counted_and_do_not_stop_it(
        publisher: Publisher, make_receiver: MakeReceiver, tmp_path: Path) -> None:
    receiver = make_receiver()
    topics = Topics(PREFIX, "s1")
    unknown_kind = scans("s1", 2).model_dump(mode="json") | {"kind": "traffic"}
    publisher.raw(topics.agg("scans"), b"\xff not json")
    publisher.raw(topics.agg("traffic"), json.dumps(unknown_kind).encode())
    publisher.raw(topics.agg("scans"), b"not zlib at all", content_type=wire.CONTENT_TYPE_ZLIB)
    publisher.raw(topics.agg("scans"), zlib.compress(b"[1, 2]"), content_type=wire.CONTENT_TYPE_ZLIB)
    publisher.send(scans("s1", 3))
    publisher.raw(Topics(PREFIX, "s2").agg("scans"), scans("s1", 4).model_dump_json().encode())  # foreign store
    publisher.raw(topics.agg("health"), scans("s1", 5).model_dump_json().encode())  # kind differs from topic
    publisher.raw(topics.state, b'{"online": "maybe"}')
    publisher.send(scans("s1", 6), compress=True)
    wait_until(lambda: receiver.stats().acked == 9)

    stats = receiver.stats()
    assert (stats.invalid, stats.stored) == (7, 2)
    conn = read_db(tmp_path / "hq.db")
    assert [r[0] for r in conn.execute("SELECT seq FROM messages ORDER BY seq")] == [3, 6]
    invalid = {t.topic: t.count for t in hq_store.invalid_topics(conn)}
    assert invalid == {topics.agg("scans"): 3, topics.agg("traffic"): 1, topics.agg("health"): 1,
                       topics.state: 1, Topics(PREFIX, "s2").agg("scans"): 1}
    [s1] = hq_store.store_statuses(conn, now=time.time())  # invalid payloads create no store
    assert (s1.invalid, s1.received) == (6, 2)


def test_receiver__stale_will_does_not_flip_a_store_offline(
        publisher: Publisher, make_receiver: MakeReceiver, tmp_path: Path) -> None:
    receiver = make_receiver()
    publisher.send(state("s1", session=2, online=True), retain=True)
    publisher.send(state("s1", session=1, online=False), retain=True)  # the Will of the previous session, late
    wait_until(lambda: receiver.stats().states == 2)
    [status] = hq_store.store_statuses(read_db(tmp_path / "hq.db"), now=time.time())
    assert (status.online, status.session, status.stale_states) == (True, 2, 1)

    publisher.send(state("s1", session=2, online=False), retain=True)  # this session's Will: really offline
    wait_until(lambda: receiver.stats().states == 3)
    [status] = hq_store.store_statuses(read_db(tmp_path / "hq.db"), now=time.time())
    assert (status.online, status.session) == (False, 2)

    # State is a non-shared subscription: a receiver started later gets the retained state too.
    late = make_receiver("late")
    wait_until(lambda: late.stats().states == 1, what="retained state delivered to a new receiver")
    [status] = hq_store.store_statuses(read_db(tmp_path / "late.db"), now=time.time())
    assert (status.online, status.session) == (False, 2)


def test_two_receivers_on_one_shared_group__store_each_message_exactly_once_in_total(
        publisher: Publisher, make_receiver: MakeReceiver, tmp_path: Path) -> None:
    first, second = make_receiver("a"), make_receiver("b")
    for seq in range(1, 101):
        publisher.send(scans("s1", seq), compress=seq % 3 == 0)
        publisher.send(health("s2", seq))
    wait_until(lambda: first.stats().acked + second.stats().acked == 200, what="200 messages acked")

    union: list[tuple[str, int]] = []
    for name in ("a", "b"):
        union += [(r[0], r[1]) for r in read_db(tmp_path / f"{name}.db").execute("SELECT store, seq FROM messages")]
    assert sorted(union) == sorted([("s1", seq) for seq in range(1, 101)] + [("s2", seq) for seq in range(1, 101)])
    # mosquitto dispatches a shared subscription's messages round-robin over the group's subscribers
    assert first.stats().stored > 0
    assert second.stats().stored > 0
    assert first.stats().duplicates == second.stats().duplicates == 0


def test_status_json__reports_stores_gaps_and_exits_1_when_degraded(
        publisher: Publisher, make_receiver: MakeReceiver, tmp_path: Path) -> None:
    receiver = make_receiver()
    publisher.send(state("s1", session=3, online=True), retain=True)
    publisher.send(state("s2", session=1, online=False), retain=True)
    for seq in (1, 2, 5):
        publisher.send(scans("s1", seq))
    publisher.send(scans("s1", 2))
    publisher.send(scans("s2", 1))
    wait_until(lambda: receiver.stats().acked == 7)

    def status(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "edge", "hq", "status", "--db", str(tmp_path / "hq.db"),
                               *args], check=False, capture_output=True, text=True, timeout=30, cwd=ROOT)

    done = status("--json", "--gap-grace", "0")
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    assert report["ok"] is False
    by_store = {s["store"]: s for s in report["stores"]}
    s1 = by_store["s1"]
    assert (s1["online"], s1["session"], s1["received"], s1["duplicates"], s1["max_seq"]) == (True, 3, 3, 1, 5)
    assert (s1["missing"], s1["missing_overdue"], s1["kinds"]) == (2, 2, {"scans": 3})
    assert [(r["first"], r["last"]) for r in s1["missing_ranges"]] == [(3, 4)]
    assert s1["last_seen_age_s"] >= 0 and s1["lag_s"] > 0
    assert by_store["s2"]["online"] is False
    gap_problem, offline_problem = report["problems"]
    assert gap_problem == "s1: 2 seq(s) missing"
    assert offline_problem.startswith("s2: offline since")

    done = status("--json")  # the default grace: a gap just seen may still be in flight
    assert json.loads(done.stdout)["stores"][0]["missing_overdue"] == 0
    assert [p.split(":")[0] for p in json.loads(done.stdout)["problems"]] == ["s2"]

    done = status("--store", "s2")
    assert done.returncode == 1 and "OFFLINE" in done.stdout and "s1" not in done.stdout

    publisher.send(state("s2", session=2, online=True), retain=True)
    wait_until(lambda: receiver.stats().states == 3)
    done = status("--store", "s2", "--json")
    assert done.returncode == 0 and json.loads(done.stdout)["ok"] is True

    assert status("--db", str(tmp_path / "missing.db")).returncode == 2


def _wait_for_line(stream: IO[str], needle: str, timeout: float, seen: list[str]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = stream.readline()
        if not line:
            break
        seen.append(line)
        if needle in line:
            return
    pytest.fail(f"{needle!r} not logged; log so far:\n{''.join(seen)}")


def test_hq_run__acks_only_after_commit_so_a_killed_receiver_loses_nothing(
        secure_broker: Broker, tmp_path: Path) -> None:
    """TLS + password + ACL; the database is locked so nothing commits, the receiver is SIGKILLed holding the
    messages, and a new receiver with the same client id and a persistent session gets them all."""
    assert secure_broker.certs is not None
    db = tmp_path / "hq.db"
    (tmp_path / "pw").write_text("pw-hq\n", encoding="utf-8")
    command = [sys.executable, "-m", "edge", "hq", "run", "--broker", secure_broker.tls_url, "--db", str(db),
               "--ca", str(secure_broker.certs.ca), "--username", "hq", "--password-file", str(tmp_path / "pw"),
               "--client-id", "hq-test-1", "--session-expiry", "300"]

    def spawn() -> subprocess.Popen[str]:
        return subprocess.Popen(command, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})

    store = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="s1", protocol=mqtt.MQTTv5)
    store.username_pw_set("s1", "pw-s1")
    store.connect("127.0.0.1", secure_broker.auth_port)
    store.loop_start()
    log: list[str] = []
    first = spawn()
    try:
        assert first.stderr is not None
        _wait_for_line(first.stderr, "Subscribed to", 15, log)
        locker = sqlite3.connect(db, isolation_level=None)
        locker.execute("BEGIN IMMEDIATE")  # the receiver can read but never commit
        for seq in range(1, 6):
            info = store.publish(Topics(PREFIX, "s1").agg("scans"), scans("s1", seq).model_dump_json(), qos=1)
            info.wait_for_publish(timeout=5)
        _wait_for_line(first.stderr, "holding", 15, log)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=5)
        locker.execute("ROLLBACK")
        locker.close()
        assert count(db) == 0

        second = spawn()
        try:
            wait_until(lambda: count(db) == 5, timeout=15, what="redelivered messages committed")
            assert [r[0] for r in read_db(db).execute("SELECT seq FROM messages ORDER BY seq")] == [1, 2, 3, 4, 5]
            second.send_signal(signal.SIGTERM)
            assert second.wait(timeout=15) == 0
        finally:
            if second.poll() is None:
                second.kill()
                second.wait()
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
        store.disconnect()
        store.loop_stop()
