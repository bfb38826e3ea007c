"""The MQTT 5 uplink to HQ: the paho client (TLS, credentials, Last Will, session counter) and its publisher thread.

Threads and who does what::

    paho network thread      connects, reconnects with backoff; callbacks only set flags or enqueue, never block
                             on the publisher or take its state (on_pre_connect bumps the session in the store)
    uplink-publisher (ours)  the ONLY caller of publish()/subscribe(): reads the outbox in id order, keeps up to
                             ``inflight`` QoS1 messages out, marks rows sent from PUBACKs, runs on_command
    store-writer             every write (mark_sent, count_attempt, the session counter) through Writer.call

A row is *historical* when it was already in the outbox when the current connection came up: the backlog lane
replays those through a token bucket, flagged ``historical: true``; the live lane sends newer rows at once. A
row is marked sent only from its PUBACK; rows in flight at a disconnect are re-sent by paho (DUP) on reconnect,
rows the broker refuses are retried with backoff, and after a restart unsent rows are simply read again. HQ
de-duplicates on (store, seq).
"""

import dataclasses
import json
import logging
import queue
import sqlite3
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from edge import const
from edge.backoff import Backoff
from edge.config.models import Sync
from edge.errors import StoreError, SyncError
from edge.store import outbox, state
from edge.store.db import connect_readonly
from edge.store.outbox import OutboxRow
from edge.store.writer import Writer
from sync import wire
from sync.bucket import TokenBucket
from sync.client import broker_address, connect_properties, describe_connect_error, make_client, properties
from sync.publisher import Flight, Lane, last_seq, to_message, topic_for, utc
from sync.topics import Topics

logger = logging.getLogger(__name__)

SESSION_KEY = "mqtt_session"
IDLE_WAIT_S = 0.2  # longest pause of the publisher loop (new outbox rows are noticed within this)
STOP_WAIT_S = 2.0  # at stop, how long to wait for the offline state's and in-flight rows' PUBACKs
WRITE_TIMEOUT_S = 10.0
MAX_INBOUND = 1000  # commands waiting for the publisher thread
COMMANDS_PER_STEP = 20

CommandCallback = Callable[[str, bytes, str | None], object]


@dataclass(slots=True)
class UplinkStats:
    """Counters and state of the uplink, for ``edge status`` and the health message."""

    connected: bool = False
    session: int = 0
    connects: int = 0
    last_connect_at: float | None = None
    last_disconnect_at: float | None = None
    last_error: str | None = None
    published: int = 0
    acked: int = 0
    rejected_by_broker: int = 0
    inflight: int = 0
    historical_sent: int = 0
    live_sent: int = 0
    replay_tokens: float = 0.0
    commands_received: int = 0
    commands_dropped: int = 0
    command_errors: int = 0
    invalid_rows: int = 0


@dataclass(slots=True, frozen=True)
class _Ack:
    mid: int
    reason: ReasonCode


@dataclass(slots=True, frozen=True)
class _Inbound:
    topic: str
    payload: bytes
    content_type: str | None


def _bump_session(conn: sqlite3.Connection) -> int:
    row = conn.execute(f"SELECT value_json FROM {const.TABLE_DAEMON_STATE} WHERE key = ?", (SESSION_KEY,)).fetchone()
    try:
        current = int(json.loads(row[0])) if row else 0
    except (TypeError, ValueError):
        current = 0
    state.put_state(conn, {SESSION_KEY: current + 1})
    return current + 1


class Uplink:
    """Publishes the outbox to the broker over MQTT 5 QoS1 and hands commands from HQ to ``on_command``."""

    def __init__(self, sync: Sync, store_id: str, version: str, writer: Writer, db_path: Path,
                 on_command: CommandCallback | None = None, clock: Callable[[], float] = time.time) -> None:
        self._sync = sync
        self._store_id = store_id
        self._version = version
        self._writer = writer
        self._db_path = db_path
        self._on_command = on_command
        self._clock = clock
        self._topics = Topics(sync.topic_prefix, store_id)
        self._stats = UplinkStats()
        self.beat_at = 0.0
        self._client: mqtt.Client | None = None
        self._conn: sqlite3.Connection | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        # Filled by paho callbacks, drained by the publisher thread.
        self._acks: queue.SimpleQueue[_Ack] = queue.SimpleQueue()
        self._inbound: deque[_Inbound] = deque()
        self._connected = False
        self._generation = 0
        self._attempt_session = 0
        self._live_session = 0
        self._down_reason: str | None = None
        self._inbound_full = False
        # Owned by the publisher thread.
        self._flight = Flight()
        self._attempted: list[int] = []
        self._invalid: set[int] = set()
        self._state_mids: set[int] = set()
        self._seen_generation = 0
        self._boundary = 0
        self._backlog = Lane("backlog")
        self._live = Lane("live")
        self._bucket = TokenBucket.full(sync.replay_rate_per_s, sync.replay_burst, 0.0)
        self._retry = Backoff(initial=sync.reconnect_min_s, cap=sync.reconnect_max_s)
        self._rejecting = False
        self._write_failing = False
        self._props = {ct: properties(PacketTypes.PUBLISH, ct) for ct in (wire.CONTENT_TYPE_JSON,
                                                                           wire.CONTENT_TYPE_ZLIB)}

    # -- lifecycle -------------------------------------------------------------------------------------------

    @property
    def stats(self) -> UplinkStats:
        """A snapshot of the counters."""
        return dataclasses.replace(self._stats)

    def start(self) -> None:
        """Set up the client and start connecting in the background; returns at once, broker or not."""
        if self._thread is not None:
            return
        self._stop.clear()
        address = broker_address(self._sync)
        client = make_client(self._sync, self._store_id, address)
        self._bind(client)
        try:
            self._conn = connect_readonly(self._db_path)
        except StoreError as err:
            raise SyncError(f"uplink cannot read the outbox: {err}") from err
        self._client = client
        now = time.monotonic()
        self.beat_at = now
        self._bucket = TokenBucket.full(self._sync.replay_rate_per_s, self._sync.replay_burst, now)
        self._thread = threading.Thread(target=self._run, name="uplink-publisher", daemon=True)
        self._thread.start()
        # clean_start=False: a restarted daemon resumes its broker session, so commands queued while it was
        # down are still delivered (the command router de-duplicates by id).
        client.connect_async(address.host, address.port, keepalive=self._sync.keepalive_s, clean_start=False,
                             properties=connect_properties(self._sync))
        client.loop_start()
        logger.info("Uplink to %s started (client id %s)", self._sync.broker, self._sync.client_id or self._store_id)

    def stop(self) -> None:
        """Publish offline state, wait briefly for PUBACKs, disconnect cleanly (no Will); safe to call twice."""
        thread, client = self._thread, self._client
        if thread is None or client is None:
            return
        self._stop.set()
        self._wake.set()
        thread.join(STOP_WAIT_S + WRITE_TIMEOUT_S)
        client.disconnect()  # a normal DISCONNECT: the broker discards the Will
        client.loop_stop()
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        self._thread = None
        self._stats.connected = False
        logger.info("Uplink stopped")

    # -- the paho client and its callbacks (paho's thread: flags and queues only) -------------------------

    def _bind(self, client: mqtt.Client) -> None:
        client.on_pre_connect = self._on_pre_connect
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe

    def _on_pre_connect(self, client: mqtt.Client, userdata: Any) -> None:
        # Every attempt gets a new session number and a Will that carries it, so HQ can tell a late Will of an
        # old session from the state of the current one. Waiting on the writer here cannot deadlock: no packets
        # flow between connections, and the writer thread never calls paho.
        try:
            session = self._writer.call(_bump_session, timeout=WRITE_TIMEOUT_S)
        except Exception as err:
            session = self._attempt_session + 1
            logger.error("Cannot store the MQTT session counter (%s); using %d", err, session)
        self._attempt_session = session
        self._stats.session = session
        client.will_set(self._topics.state, self._state_payload(online=False, session=session), qos=1, retain=True,
                        properties=properties(PacketTypes.WILLMESSAGE, wire.CONTENT_TYPE_JSON))

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: mqtt.ConnectFlags, reason_code: ReasonCode,
                    props: Properties | None) -> None:
        if reason_code.is_failure:
            self._connection_failed(f"broker refused the connection: {reason_code.getName()}")
            return
        self._live_session = self._attempt_session
        self._stats.connects += 1
        self._stats.last_connect_at = self._clock()
        self._stats.last_error = None
        self._stats.connected = True
        logger.info("Connected to MQTT broker %s (session %d%s)", self._sync.broker, self._live_session,
                    ", after: " + self._down_reason if self._down_reason else "")
        self._down_reason = None
        self._generation += 1
        self._connected = True
        self._wake.set()

    def _on_connect_fail(self, client: mqtt.Client, userdata: Any) -> None:
        # paho calls this inside its `except OSError:` block, so the exception is still the one being handled.
        self._connection_failed(describe_connect_error(sys.exc_info()[1]))

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: mqtt.DisconnectFlags,
                       reason_code: ReasonCode, props: Properties | None) -> None:
        was_connected = self._connected
        self._connected = False
        self._stats.connected = False
        if not was_connected:
            return
        self._stats.last_disconnect_at = self._clock()
        if not self._stop.is_set():
            self._connection_failed(f"connection lost ({reason_code.getName()}); buffering in the outbox")
        self._wake.set()

    def _connection_failed(self, reason: str) -> None:
        self._stats.last_error = reason
        if reason != self._down_reason:  # once per episode (and again only if the reason changes)
            logger.warning("MQTT broker %s: %s", self._sync.broker, reason)
            self._down_reason = reason

    def _on_publish(self, client: mqtt.Client, userdata: Any, mid: int, reason_code: ReasonCode,
                    props: Properties) -> None:
        # May run before publish() has returned in the publisher thread: only enqueue.
        self._acks.put(_Ack(mid, reason_code))
        self._wake.set()

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int, reason_codes: list[ReasonCode],
                      props: Properties | None) -> None:
        refused = [code.getName() for code in reason_codes if code.is_failure]
        if refused:  # commands from HQ will not arrive; an ACL or prefix mistake, worth saying each connect
            logger.warning("Broker refused the command subscription %s: %s", self._topics.cmd_filter,
                           ", ".join(refused))

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        if len(self._inbound) >= MAX_INBOUND:
            self._stats.commands_dropped += 1
            if not self._inbound_full:
                self._inbound_full = True
                logger.warning("Command queue full (%d); dropping commands from HQ", MAX_INBOUND)
            return
        self._inbound_full = False
        content_type = getattr(message.properties, "ContentType", None) if message.properties else None
        self._inbound.append(_Inbound(message.topic, bytes(message.payload), content_type))
        self._wake.set()

    # -- the publisher thread ----------------------------------------------------------------------------------

    def _run(self) -> None:
        conn = self._conn
        assert conn is not None
        failing = False
        while not self._stop.is_set():
            self.beat_at = time.monotonic()
            self._wake.clear()
            try:
                wait = self._step(conn)
                failing = False
            except Exception:
                if not failing:  # a bug: log it once, keep the thread alive, retry after a pause
                    logger.exception("Uplink publisher step failed")
                failing = True
                wait = 1.0
            self._wake.wait(wait)
        self._finish(conn)

    def _step(self, conn: sqlite3.Connection) -> float:
        """One round of work; returns how long to wait for the next one (unless woken earlier)."""
        now = time.monotonic()
        self._check_connection(conn)
        self._drain_acks(now)
        self._flush()
        self._run_commands()
        for row_id in self._flight.due(now):
            (self._backlog if self._backlog.covers(row_id) else self._live).rewind(row_id)
        wait = IDLE_WAIT_S
        if self._connected:
            self._publish_lane(conn, self._live, historical=False)
            wait = min(wait, self._publish_backlog(conn, now))
        self._stats.inflight = len(self._flight.awaiting)
        self._stats.replay_tokens = round(self._bucket.refill(now), 2)
        return wait

    def _check_connection(self, conn: sqlite3.Connection) -> None:
        generation = self._generation
        if not self._connected or generation == self._seen_generation:
            return
        # A new connection: everything in the outbox now is backlog; rows after it are live.
        self._seen_generation = generation
        self._boundary = last_seq(conn)
        self._backlog.reset(after=0, upper=self._boundary)
        self._live.reset(after=self._boundary, upper=None)
        client = self._client
        assert client is not None
        client.subscribe(self._topics.cmd_filter, qos=1)
        self._publish_state(online=True, session=self._live_session)

    def _publish_lane(self, conn: sqlite3.Connection, lane: Lane, historical: bool) -> None:
        while len(self._flight.awaiting) < self._sync.inflight:
            row = lane.next(conn, self._skip, self._sync.inflight)
            if row is None:
                return
            self._publish_row(row, historical)

    def _publish_backlog(self, conn: sqlite3.Connection, now: float) -> float:
        """Replay backlog rows as tokens allow; returns the wait until the next token when tokens ran out."""
        while len(self._flight.awaiting) < self._sync.inflight:
            wait = self._bucket.wait_s(now)
            if wait > 0:
                return wait
            row = self._backlog.next(conn, self._skip, self._sync.inflight)
            if row is None:
                break
            self._bucket.take(now)
            self._publish_row(row, historical=True)
        return IDLE_WAIT_S

    def _skip(self, row_id: int) -> bool:
        return self._flight.busy(row_id) or row_id in self._invalid

    def _publish_row(self, row: OutboxRow, historical: bool) -> None:
        client = self._client
        assert client is not None
        try:
            message = to_message(row, self._store_id, historical, self._clock())
            payload, content_type = wire.encode(message, self._sync.compress_over_bytes)
            info = client.publish(topic_for(self._topics, row.kind), payload, qos=1,
                                  properties=self._props[content_type])
        except ValueError as err:
            self._invalid.add(row.id)
            self._stats.invalid_rows += 1
            reason = str(err)[:500]
            logger.error("Outbox row seq %d (%s) is not a valid wire message; set aside as a dead letter: %s",
                         row.id, row.kind, err)
            try:
                self._writer.call(lambda conn: outbox.mark_dead(conn, row.id, reason))
            except Exception as mark_err:  # still skipped for this session through _invalid
                logger.error("Cannot set aside seq %d: %s", row.id, mark_err)
            return
        if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
            # paho did not keep the message (its queue is full): send the row again a little later.
            logger.warning("paho refused seq %d (%s); retrying", row.id, mqtt.error_string(info.rc))
            self._flight.hold(row.id, time.monotonic() + self._sync.reconnect_min_s)
            return
        # Recorded before the ack queue is drained again, so an ack that beat publish() is still matched.
        self._flight.sent(info.mid, row.id)
        self._attempted.append(row.id)
        self._stats.published += 1
        if historical:
            self._stats.historical_sent += 1
        else:
            self._stats.live_sent += 1

    def _drain_acks(self, now: float) -> None:
        while True:
            try:
                ack = self._acks.get_nowait()
            except queue.Empty:
                return
            if ack.mid in self._state_mids:
                self._state_mids.discard(ack.mid)
                if ack.reason.is_failure:
                    logger.warning("Broker refused the state message: %s", ack.reason.getName())
                continue
            ok = not ack.reason.is_failure
            row_id = self._flight.ack(ack.mid, ok)
            if row_id is None:
                continue
            if ok:
                self._stats.acked += 1
                if self._rejecting:
                    self._rejecting = False
                    self._retry.reset()
                    logger.info("Broker accepts publishes again")
            else:
                self._rejected(row_id, ack.reason, now)

    def _rejected(self, row_id: int, reason: ReasonCode, now: float) -> None:
        self._stats.rejected_by_broker += 1
        self._stats.last_error = f"broker rejected a publish: {reason.getName()}"
        if not self._rejecting:
            self._rejecting = True
            logger.warning("Broker rejected seq %d: %s; kept in the outbox and retried with backoff", row_id,
                           reason.getName())
        self._flight.hold(row_id, now + self._retry.next_delay())

    def _flush(self) -> None:
        """Mark acknowledged rows sent and count attempts, in one transaction."""
        acked, attempted = list(self._flight.acked), self._attempted
        if not acked and not attempted:
            return
        now = self._clock()

        def write(conn: sqlite3.Connection) -> None:
            if acked:
                outbox.mark_sent(conn, acked, now)
            if attempted:
                outbox.count_attempt(conn, attempted)

        try:
            self._writer.call(write, timeout=WRITE_TIMEOUT_S)
        except Exception as err:
            if not self._write_failing:
                self._write_failing = True
                logger.error("Cannot mark %d acknowledged rows sent (will retry): %s", len(acked), err)
            return
        self._write_failing = False
        self._attempted = []
        self._flight.marked(acked)

    def _run_commands(self) -> None:
        for _ in range(COMMANDS_PER_STEP):
            try:
                item = self._inbound.popleft()
            except IndexError:
                return
            self._stats.commands_received += 1
            if self._on_command is None:
                continue
            try:
                self._on_command(item.topic, item.payload, item.content_type)
            except Exception:
                self._stats.command_errors += 1
                logger.exception("Command handler failed on %s", item.topic)

    def _publish_state(self, online: bool, session: int) -> int | None:
        client = self._client
        assert client is not None
        info = client.publish(self._topics.state, self._state_payload(online, session), qos=1, retain=True,
                              properties=self._props[wire.CONTENT_TYPE_JSON])
        if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
            logger.warning("Cannot publish state online=%s: %s", online, mqtt.error_string(info.rc))
            return None
        self._state_mids.add(info.mid)
        return info.mid

    def _state_payload(self, online: bool, session: int) -> bytes:
        message = wire.StateMessage(store=self._store_id, online=online, session=session, version=self._version,
                                    ts=utc(self._clock()))
        return wire.encode(message, 0)[0]

    def _finish(self, conn: sqlite3.Connection) -> None:
        """At stop: offline state, then a short wait for it and the rows in flight to be acknowledged."""
        offline = self._publish_state(online=False, session=self._live_session) if self._connected else None
        deadline = time.monotonic() + STOP_WAIT_S
        while self._connected and time.monotonic() < deadline:
            self._drain_acks(time.monotonic())
            if offline not in self._state_mids and not self._flight.awaiting:
                break
            self._wake.wait(0.05)
            self._wake.clear()
        self._flush()
