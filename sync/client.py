"""The paho MQTT 5 client as the uplink needs it: broker address, TLS context, credentials, limits, error texts.

Library errors (``ssl.SSLError``, ``OSError``, ``ConfigError`` from secrets) become ``SyncError`` here, at start,
so a daemon with an unusable TLS or credential setup says why before it ever connects.
"""

import socket
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edge.config.models import Sync, Tls
from edge.errors import ConfigError, SyncError

DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}


@dataclass(frozen=True, slots=True)
class BrokerAddress:
    """Where the broker is and whether the link is TLS."""

    host: str
    port: int
    tls: bool


def broker_address(sync: Sync) -> BrokerAddress:
    """The broker URL of the config, checked: ``mqtt://`` is plain, ``mqtts://`` is TLS and never falls back."""
    url = urlsplit(sync.broker)
    if url.scheme not in DEFAULT_PORTS or not url.hostname:
        raise SyncError(f"sync.broker {sync.broker!r}: expected mqtt://host:port or mqtts://host:port")
    if url.scheme == "mqtt" and sync.tls is not None:
        raise SyncError("sync.tls is set but sync.broker is mqtt:// (plain); use mqtts:// for TLS")
    return BrokerAddress(url.hostname, url.port or DEFAULT_PORTS[url.scheme], url.scheme == "mqtts")


def properties(packet_type: int, content_type: str | None = None) -> Properties:
    """MQTT 5 properties of one packet type, with a content type when given."""
    props = Properties(packet_type)  # type: ignore[no-untyped-call]
    if content_type is not None:
        props.ContentType = content_type
    return props


def connect_properties(sync: Sync) -> Properties:
    """CONNECT properties: the session expiry, so the broker keeps subscriptions and in-flight QoS1 state."""
    props = properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = sync.session_expiry_s
    return props


def tls_context(tls: Tls | None) -> ssl.SSLContext:
    """A verifying TLS client context from the config; ``SyncError`` when the CA or client files are unusable."""
    if tls is None:
        raise SyncError("mqtts:// needs a [sync.tls] section (at least ca_file)")
    try:
        context = ssl.create_default_context(cafile=tls.ca_file)
    except (OSError, ssl.SSLError) as err:
        raise SyncError(f"sync.tls.ca_file {tls.ca_file}: not a usable CA file ({err})") from err
    if not context.cert_store_stats().get("x509_ca"):
        raise SyncError("no CA certificate to verify the broker with: set sync.tls.ca_file")
    if tls.client_cert is not None and tls.client_key is not None:
        try:
            # The key is loaded from its credential file in place, so it is never copied anywhere.
            context.load_cert_chain(tls.client_cert, keyfile=tls.client_key.path())
        except ConfigError as err:
            raise SyncError(f"sync.tls.client_key: {err}") from err
        except (OSError, ssl.SSLError) as err:
            raise SyncError(f"sync.tls client certificate {tls.client_cert} or its key: {err}") from err
    return context


def make_client(sync: Sync, store_id: str, address: BrokerAddress) -> mqtt.Client:
    """A configured MQTT 5 client (TLS, credentials, backoff, bounded queues); callbacks are the caller's."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=sync.client_id or store_id, protocol=mqtt.MQTTv5)
    if address.tls:
        client.tls_set_context(tls_context(sync.tls))
    if sync.password is not None and sync.username is None:
        raise SyncError("sync.password is set without sync.username")
    if sync.username is not None:
        try:
            password = sync.password.read() if sync.password is not None else None
        except ConfigError as err:
            raise SyncError(f"sync.password: {err}") from err
        client.username_pw_set(sync.username, password)
    # paho computes with these as plain numbers; fractions of a second work despite its int hints.
    client.reconnect_delay_set(sync.reconnect_min_s, sync.reconnect_max_s)  # type: ignore[arg-type]
    client.max_inflight_messages_set(sync.inflight)
    # Bounded: the publisher keeps at most `inflight` rows plus a few state messages in paho's memory.
    client.max_queued_messages_set(2 * sync.inflight + 10)
    return client


def describe_connect_error(err: BaseException | None) -> str:
    """An operator-readable reason why a connection attempt failed."""
    if isinstance(err, ssl.SSLCertVerificationError):
        return f"TLS certificate verify failed: {err.verify_message}"
    if isinstance(err, ssl.SSLError):
        return f"TLS handshake failed: {err.reason or err}"
    if isinstance(err, ConnectionRefusedError):
        return "connection refused (is the broker running?)"
    if isinstance(err, TimeoutError):
        return "connection timed out"
    if isinstance(err, socket.gaierror):
        return f"cannot resolve the broker's host name: {err.strerror}"
    if isinstance(err, OSError):
        return f"connection failed: {err.strerror or err}"
    return "connection failed"
