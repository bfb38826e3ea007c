"""Fixtures for sync tests: a real mosquitto broker on free loopback ports."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.sync.broker import Broker


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    """An anonymous mosquitto broker."""
    instance = Broker(tmp_path / "broker")
    instance.start()
    yield instance
    instance.stop()


@pytest.fixture
def secure_broker(tmp_path: Path) -> Iterator[Broker]:
    """mosquitto with users store-s1/store-s2/hq, an ACL confining each store to its prefix, and TLS."""
    acl = "\n".join([
        "user hq",
        "topic readwrite retail/v1/#",
        "topic read $SYS/#",
        "",
        "pattern readwrite retail/v1/%u/#",
        "",
    ])
    users = {"s1": "pw-s1", "s2": "pw-s2", "hq": "pw-hq"}
    instance = Broker(tmp_path / "secure-broker", users=users, acl=acl, tls=True)
    instance.start()
    yield instance
    instance.stop()
