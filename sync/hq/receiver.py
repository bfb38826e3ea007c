"""The HQ reference receiver: a shared-subscription MQTT 5 consumer that stores every message once in SQLite.

Threads: paho's network thread only enqueues deliveries (``on_message``); one worker thread validates them with
the wire models, writes each batch in one transaction, and only then sends the PUBACKs (``manual_ack=True``), so
a message the broker considers delivered is already committed. Delivery in is at-least-once; the primary key
(store, seq) makes storage exactly-once. See docs/hq.md.
"""

import logging
import queue
import sqlite3
import ssl
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions
from pydantic import TypeAdapter, ValidationError

from edge.errors import StoreError, SyncError
from sync import wire
from sync.hq import store as hq_store
from sync.topics import HqTopics, Topics

logger = logging.getLogger(__name__)

DEFAULT_GROUP = "edge-hq"
_AGGREGATE: TypeAdapter[wire.ScansMessage | wire.HealthMessage | wire.PresenceMessage | wire.VisitsMessage
                        | wire.ZonesMessage | wire.TrafficMessage | wire.HeatmapMessage
                        | wire.EslMessage | wire.FootfallMessage | wire.DwellMessage | wire.ZoneDwellMessage
                        | wire.FloorHeatmapMessage] = TypeAdapter(wire.AggregateMessage)


@dataclass(frozen=True, slots=True)
class ReceiverSettings:
    """How one receiver connects and what it subscribes to."""

    broker: str
    db_path: Path
    group: str = DEFAULT_GROUP
    prefix_template: str = HqTopics().prefix_template
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ca_file: Path | None = None
    client_id: str | None = None
    session_expiry_s: int = 0
    keepalive_s: int = 60
    receive_maximum: int = 100
    batch_max: int = 500
    busy_timeout_ms: int = 1000


@dataclass(frozen=True, slots=True)
class ReceiverStats:
    """Counters since ``start()``: deliveries taken off the wire and what became of them once committed."""

    received: int
    stored: int
    duplicates: int
    conflicts: int
    invalid: int
    states: int
    stale_states: int
    acked: int
    commits: int
    pending: int


@dataclass(frozen=True, slots=True)
class BrokerAddress:
    """A parsed ``mqtt://`` or ``mqtts://`` URL."""

    host: str
    port: int
    tls: bool


def parse_broker_url(url: str) -> BrokerAddress:
    """``mqtt://host[:1883]`` or ``mqtts://host[:8883]``; raises SyncError otherwise."""
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname or parts.path not in ("", "/"):
        raise SyncError(f"broker URL {url!r}: expected mqtt://host:port or mqtts://host:port")
    try:
        port = parts.port
    except ValueError as err:
        raise SyncError(f"broker URL {url!r}: {err}") from err
    tls = parts.scheme == "mqtts"
    return BrokerAddress(host=parts.hostname, port=port or (8883 if tls else 1883), tls=tls)


@dataclass(frozen=True, slots=True)
class _Delivery:
    topic: str
    payload: bytes
    content_type: str | None
    mid: int
    qos: int
    generation: int
    received_at: float


@dataclass(frozen=True, slots=True)
class _Invalid:
    topic: str
    store: str | None
    error: str


@dataclass(frozen=True, slots=True)
class _Ignored:
    topic: str


_Parsed = hq_store.StoredMessage | hq_store.StoreState | _Invalid | _Ignored


class Receiver:
    """Consumes every store's aggregates, command results and state into the HQ database."""

    def __init__(self, settings: ReceiverSettings, clock: Callable[[], float] = time.time) -> None:
        self._settings = settings
        self._clock = clock
        self._topics = HqTopics(settings.prefix_template)
        # An empty group means one receiver with plain subscriptions: mosquitto (2.0.11, measured) does not restore
        # shared subscriptions from its persistence file after a restart, so only a plain subscription in a
        # persistent session keeps queueing for this receiver across a broker restart.
        share = (lambda f: self._topics.shared(settings.group, f)) if settings.group else (lambda f: f)
        self._filters = [
            share(self._topics.agg_filter),
            share(self._topics.cmd_result_filter),
            # Not shared: retained messages are never sent to shared subscriptions (MQTT 5 §4.8.2), and each
            # receiver keeps its own view of every store's state.
            self._topics.state_filter,
        ]
        self._client_id = settings.client_id or f"{settings.group or 'edge-hq'}-{uuid.uuid4().hex[:8]}"
        self._queue: queue.SimpleQueue[_Delivery | None] = queue.SimpleQueue()
        self._client: mqtt.Client | None = None
        self._conn: sqlite3.Connection | None = None
        self._worker: threading.Thread | None = None
        self._abort = threading.Event()
        self._subscribed = threading.Event()
        self._unsubscribed = threading.Event()
        self._generation = 0
        self._connected = False
        self._refused_logged = False
        self._db_failing = False
        self._stopped = False
        self._invalid_episodes: dict[str, int] = {}
        self._counts = dict.fromkeys(ReceiverStats.__dataclass_fields__, 0)

    # -- lifecycle -----------------------------------------------------------------------------------------------

    @property
    def client_id(self) -> str:
        """The MQTT client id (unique per receiver unless set in the settings)."""
        return self._client_id

    @property
    def filters(self) -> list[str]:
        """The subscriptions: shared aggregates and command results, non-shared state."""
        return list(self._filters)

    def start(self) -> None:
        """Open the database, start the worker, connect in the background (retrying) and subscribe."""
        if self._client is not None:
            return
        settings = self._settings
        address = parse_broker_url(settings.broker)
        if settings.ca_file is not None and not address.tls:
            raise SyncError("a CA file needs an mqtts:// broker URL")
        self._conn = hq_store.open_db(settings.db_path)
        self._conn.execute(f"PRAGMA busy_timeout = {int(settings.busy_timeout_ms)}")
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=self._client_id,
                             protocol=mqtt.MQTTv5, manual_ack=True)
        if settings.username is not None:
            client.username_pw_set(settings.username, settings.password)
        if address.tls:
            try:
                client.tls_set(ca_certs=str(settings.ca_file) if settings.ca_file else None)
            except (OSError, ssl.SSLError) as err:
                raise SyncError(f"cannot load CA file {settings.ca_file}: {err}") from err
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_unsubscribe = self._on_unsubscribe
        client.on_message = self._on_message
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        properties.ReceiveMaximum = settings.receive_maximum
        if settings.session_expiry_s > 0:
            properties.SessionExpiryInterval = settings.session_expiry_s
        self._client = client
        self._worker = threading.Thread(target=self._run_worker, name="hq-receiver-writer", daemon=True)
        self._worker.start()
        # A persistent session must be resumed even on the first connect, or the messages a crashed receiver
        # held unacknowledged would be thrown away with the old session.
        client.connect_async(address.host, address.port, keepalive=settings.keepalive_s,
                             clean_start=settings.session_expiry_s == 0, properties=properties)
        client.loop_start()
        logger.info("HQ receiver %s connecting to %s (group %s, database %s)", self._client_id,
                    settings.broker, settings.group, settings.db_path)

    def wait_subscribed(self, timeout: float) -> bool:
        """Wait until the broker has granted every subscription; False on timeout."""
        return self._subscribed.wait(timeout)

    def stats(self) -> ReceiverStats:
        """A snapshot of the counters."""
        return ReceiverStats(**{**self._counts, "pending": self._queue.qsize()})

    def stop(self, timeout: float = 10.0) -> None:
        """Stop taking messages, commit and acknowledge what was received, disconnect; safe to call twice."""
        if self._stopped:
            return
        self._stopped = True
        client = self._client
        if client is not None and self._subscribed.is_set() and self._settings.session_expiry_s == 0:
            # Without a persistent session, anything in flight when we disconnect is lost to this group: drain
            # it first. Messages sent before the UNSUBACK arrive before it, so the queue then holds them all.
            client.unsubscribe(self._filters)
            if not self._unsubscribed.wait(timeout / 4):
                logger.warning("Broker did not confirm unsubscribe; stopping anyway")
        if self._worker is not None:
            self._queue.put(None)
            self._worker.join(timeout)
            if self._worker.is_alive():
                logger.warning("Writer did not finish within %.0f s; %d messages stay unacknowledged",
                               timeout, self._queue.qsize())
                self._abort.set()
                self._worker.join()
        if client is not None:
            client.disconnect()
            client.loop_stop()
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if client is not None:
            logger.info("HQ receiver %s stopped: %s", self._client_id, self.stats())

    # -- paho callbacks (network thread: set flags, enqueue, never block) ----------------------------------------

    def _on_connect(self, client: mqtt.Client, _userdata: Any, _flags: mqtt.ConnectFlags,
                    reason_code: ReasonCode, _properties: Properties | None) -> None:
        self._generation += 1
        if reason_code.is_failure:
            if not self._refused_logged:
                logger.error("Broker %s refused the connection: %s", self._settings.broker, reason_code)
                self._refused_logged = True
            return
        self._refused_logged = False
        if not self._connected:
            logger.info("Connected to %s as %s", self._settings.broker, self._client_id)
            self._connected = True
        client.subscribe([(f, SubscribeOptions(qos=1)) for f in self._filters])

    def _on_disconnect(self, _client: mqtt.Client, _userdata: Any, _flags: mqtt.DisconnectFlags,
                       reason_code: ReasonCode, _properties: Properties | None) -> None:
        self._generation += 1
        self._subscribed.clear()
        if self._connected and not self._stopped:
            logger.warning("Disconnected from %s: %s; reconnecting", self._settings.broker, reason_code)
        self._connected = False

    def _on_subscribe(self, _client: mqtt.Client, _userdata: Any, _mid: int, reason_codes: list[ReasonCode],
                      _properties: Properties | None) -> None:
        refused = [f"{f}: {rc}" for f, rc in zip(self._filters, reason_codes, strict=False) if rc.is_failure]
        if refused:
            logger.error("Broker refused subscriptions: %s", "; ".join(refused))
            return
        logger.info("Subscribed to %s", ", ".join(self._filters))
        self._subscribed.set()

    def _on_unsubscribe(self, _client: mqtt.Client, _userdata: Any, _mid: int, _reason_codes: list[ReasonCode],
                        _properties: Properties | None) -> None:
        self._unsubscribed.set()

    def _on_message(self, _client: mqtt.Client, _userdata: Any, message: mqtt.MQTTMessage) -> None:
        try:
            topic = message.topic
        except UnicodeDecodeError:
            topic = "<topic not UTF-8>"
        content_type = getattr(message.properties, "ContentType", None) if message.properties else None
        self._counts["received"] += 1
        self._queue.put(_Delivery(topic=topic, payload=bytes(message.payload), content_type=content_type,
                                  mid=message.mid, qos=message.qos, generation=self._generation,
                                  received_at=self._clock()))

    # -- worker --------------------------------------------------------------------------------------------------

    def _run_worker(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch, stopping = [first], False
            while len(batch) < self._settings.batch_max:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stopping = True
                    break
                batch.append(item)
            if not self._commit(batch):
                return
            self._ack(batch)
            if stopping:
                return

    def _commit(self, batch: list[_Delivery]) -> bool:
        """Write one batch in one transaction, retrying while the database fails; False when aborted."""
        parsed = [self._parse(d) for d in batch]
        delay = 0.1
        while True:
            try:
                outcomes = self._write(parsed)
                break
            except (sqlite3.Error, StoreError) as err:
                if not self._db_failing:
                    logger.error("Cannot write to %s: %s; holding %d messages unacknowledged, retrying",
                                 self._settings.db_path, err, len(batch))
                    self._db_failing = True
                if self._abort.wait(delay):
                    return False
                delay = min(delay * 2, 5.0)
        if self._db_failing:
            logger.info("Writing to %s again", self._settings.db_path)
            self._db_failing = False
        self._counts["commits"] += 1
        for delivery, item, outcome in zip(batch, parsed, outcomes, strict=True):
            self._after_commit(delivery.topic, item, outcome)
        return True

    def _write(self, parsed: list[_Parsed]) -> list[hq_store.InsertOutcome | hq_store.StateOutcome | None]:
        conn = self._conn
        if conn is None:
            raise StoreError("the HQ database is closed")
        outcomes: list[hq_store.InsertOutcome | hq_store.StateOutcome | None] = []
        with hq_store.transaction(conn):
            for item in parsed:
                if isinstance(item, hq_store.StoredMessage):
                    outcomes.append(hq_store.insert_message(conn, item))
                elif isinstance(item, hq_store.StoreState):
                    outcomes.append(hq_store.apply_state(conn, item))
                elif isinstance(item, _Invalid):
                    hq_store.record_invalid(conn, item.topic, item.store, item.error, self._clock())
                    outcomes.append(None)
                else:
                    outcomes.append(None)
        return outcomes

    def _after_commit(self, topic: str, item: _Parsed,
                      outcome: hq_store.InsertOutcome | hq_store.StateOutcome | None) -> None:
        if isinstance(item, _Invalid):
            # Logged once per episode: the first invalid payload on a topic, then the recovery with the count.
            self._counts["invalid"] += 1
            episode = self._invalid_episodes.get(topic, 0)
            if episode == 0:
                logger.warning("Invalid payload on %s (counted; logged again when the topic recovers): %s",
                               topic, item.error)
            self._invalid_episodes[topic] = episode + 1
            return
        if isinstance(item, _Ignored):
            return
        previous = self._invalid_episodes.pop(topic, 0)
        if previous:
            logger.info("Valid payloads on %s again after %d invalid", topic, previous)
        if isinstance(outcome, hq_store.InsertOutcome):
            if outcome.new:
                self._counts["stored"] += 1
            else:
                self._counts["duplicates"] += 1
            if outcome.conflict:
                self._counts["conflicts"] += 1
                assert isinstance(item, hq_store.StoredMessage)
                logger.warning("Store %s sent seq %d again with another idem_key (its seq went backwards?); "
                               "kept the first copy", item.store, item.seq)
        elif isinstance(outcome, hq_store.StateOutcome) and isinstance(item, hq_store.StoreState):
            self._counts["states"] += 1
            if outcome.stale:
                self._counts["stale_states"] += 1
                logger.info("Ignored stale state of store %s: session %d is older than %s", item.store,
                            item.session, outcome.previous_session)
            elif outcome.previous_online != outcome.online:
                logger.info("Store %s is %s (session %d, version %s)", item.store,
                            "online" if item.online else "offline", item.session, item.version)

    def _ack(self, batch: list[_Delivery]) -> None:
        client = self._client
        if client is None:
            return
        for delivery in batch:
            # A PUBACK only means something on the connection the PUBLISH came in on: after a reconnect the same
            # packet id may name another message. Unacknowledged ones are re-sent by the broker (and de-duplicated).
            if delivery.qos > 0 and delivery.generation == self._generation:
                client.ack(delivery.mid, delivery.qos)
                self._counts["acked"] += 1

    def _parse(self, delivery: _Delivery) -> _Parsed:
        """Validate one delivery with the wire models; never raises."""
        topic = delivery.topic
        store = self._topics.store_of(topic)
        if store is None:
            return _Invalid(topic, None, "topic outside the prefix")
        topics = Topics(self._settings.prefix_template, store)
        if topic == topics.state and not delivery.payload:
            return _Ignored(topic)  # a cleared retained state
        try:
            raw = wire.decode_bytes(delivery.payload, delivery.content_type)
            text = raw.decode("utf-8")
            if topic == topics.state:
                state = wire.StateMessage.model_validate_json(text)
                _check_store(state.store, store)
                return hq_store.StoreState(store=store, online=state.online, session=state.session,
                                           version=state.version, ts=state.ts.timestamp(),
                                           received_at=delivery.received_at)
            if topic == topics.cmd_result:
                result = wire.CommandResult.model_validate_json(text)
                _check_store(result.store, store)
                return hq_store.StoredMessage(
                    store=store, seq=result.seq, kind=hq_store.KIND_CMD_RESULT, idem_key=result.idem_key,
                    window_start=None, window_end=None, historical=False, sent_at=result.sent_at.timestamp(),
                    received_at=delivery.received_at, payload_json=text)
            kind = topic.removeprefix(f"{topics.prefix}/agg/")
            if kind == topic:
                return _Invalid(topic, store, "not an aggregate, state or cmd_result topic")
            message = _AGGREGATE.validate_json(text)
            _check_store(message.store, store)
            if message.kind != kind:
                raise ValueError(f"payload kind {message.kind!r} differs from the topic's {kind!r}")
            return hq_store.StoredMessage(
                store=store, seq=message.seq, kind=message.kind, idem_key=message.idem_key,
                window_start=message.window_start.timestamp(), window_end=message.window_end.timestamp(),
                historical=message.historical, sent_at=message.sent_at.timestamp(),
                received_at=delivery.received_at, payload_json=text)
        except ValidationError as err:
            return _Invalid(topic, store, _short(err))
        except (ValueError, UnicodeDecodeError) as err:  # zlib.error is not a ValueError: caught below
            return _Invalid(topic, store, str(err))
        except Exception as err:  # zlib.error and anything unforeseen must not kill the worker
            return _Invalid(topic, store, f"{type(err).__name__}: {err}")


def _check_store(payload_store: str, topic_store: str) -> None:
    # The broker's ACL confines a store to its own topics; the payload must not claim another store.
    if payload_store != topic_store:
        raise ValueError(f"payload store {payload_store!r} differs from the topic's {topic_store!r}")


def _short(err: ValidationError) -> str:
    first = err.errors()[0]
    location = ".".join(str(part) for part in first["loc"])
    return f"{err.error_count()} validation error(s), first at {location or '<root>'}: {first['msg']}"
