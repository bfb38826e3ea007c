"""Device health transitions are logged once each way and counted; backoff grows, caps and resets."""

import logging
import random

import pytest

from edge.backoff import Backoff
from edge.const import HEALTH_DEGRADED, HEALTH_OK, HEALTH_UNAVAILABLE
from edge.health import DeviceMonitor


def messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.name == "edge.health"]


def test_monitor__unavailable_and_recovered_are_logged_once_each(caplog: pytest.LogCaptureFixture) -> None:
    monitor = DeviceMonitor(name="till-1", kind="barcode")
    monitor.set_state(HEALTH_OK)
    caplog.clear()

    with caplog.at_level(logging.INFO, logger="edge.health"):
        assert monitor.set_state(HEALTH_UNAVAILABLE, "port vanished") is True
        assert monitor.set_state(HEALTH_UNAVAILABLE, "port vanished") is False
        assert monitor.set_state(HEALTH_UNAVAILABLE, "cannot open /dev/ttyACM0") is False
        assert monitor.set_state(HEALTH_OK) is True
        assert monitor.set_state(HEALTH_OK) is False

    assert messages(caplog) == [
        "Device till-1 is unavailable: port vanished",
        "Device till-1 recovered (was unavailable)",
    ]
    assert [r.levelno for r in caplog.records] == [logging.WARNING, logging.WARNING]


def test_monitor__latest_reason_is_kept_without_a_new_log_line() -> None:
    monitor = DeviceMonitor(name="till-1", kind="barcode")
    monitor.set_state(HEALTH_OK)
    monitor.set_state(HEALTH_UNAVAILABLE, "port vanished")
    monitor.set_state(HEALTH_UNAVAILABLE, "cannot open /dev/ttyACM0")

    assert monitor.snapshot().reason == "cannot open /dev/ttyACM0"
    assert monitor.snapshot().state == HEALTH_UNAVAILABLE


def test_monitor__first_ok_is_not_a_reconnect_later_ones_are(caplog: pytest.LogCaptureFixture) -> None:
    monitor = DeviceMonitor(name="till-1", kind="barcode")

    with caplog.at_level(logging.INFO, logger="edge.health"):
        monitor.set_state(HEALTH_OK)
    assert monitor.reconnects == 0
    assert messages(caplog) == ["Device till-1 is ok"]

    for _ in range(3):
        monitor.set_state(HEALTH_UNAVAILABLE, "port vanished")
        monitor.set_state(HEALTH_OK)

    assert monitor.reconnects == 3
    assert monitor.snapshot().reconnects == 3


def test_monitor__degraded_is_logged_with_its_reason(caplog: pytest.LogCaptureFixture) -> None:
    monitor = DeviceMonitor(name="cam-1", kind="camera")
    monitor.set_state(HEALTH_OK)

    with caplog.at_level(logging.INFO, logger="edge.health"):
        monitor.set_state(HEALTH_DEGRADED, "frame rate 2/s")

    assert messages(caplog) == ["Device cam-1 is degraded: frame rate 2/s"]


def test_monitor__device_missing_at_start_is_logged_unavailable_once(
        caplog: pytest.LogCaptureFixture) -> None:
    monitor = DeviceMonitor(name="till-1", kind="barcode")

    with caplog.at_level(logging.INFO, logger="edge.health"):
        monitor.set_state(HEALTH_UNAVAILABLE, "cannot open /dev/ttyACM0")
        monitor.set_state(HEALTH_UNAVAILABLE, "cannot open /dev/ttyACM0")

    assert messages(caplog) == ["Device till-1 is unavailable: cannot open /dev/ttyACM0"]


def test_monitor__events_are_counted_with_their_event_time() -> None:
    monitor = DeviceMonitor(name="till-1", kind="barcode")
    monitor.event(1_700_000_000.0)
    monitor.event(1_700_000_005.5)
    monitor.counters["frames_too_long"] += 2

    snapshot = monitor.snapshot()
    monitor.counters["frames_too_long"] += 1

    assert snapshot.events == 2
    assert snapshot.last_event_ts == 1_700_000_005.5
    assert snapshot.counters == {"frames_too_long": 2}, "a snapshot is a copy"


# -- backoff -----------------------------------------------------------------------------------------------


def test_backoff__grows_exponentially_then_caps() -> None:
    backoff = Backoff(initial=0.5, cap=10.0, factor=2.0, jitter=0.0)

    delays = [backoff.next_delay() for _ in range(8)]

    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0, 10.0]


def test_backoff__reset_starts_again_from_initial() -> None:
    backoff = Backoff(initial=0.25, cap=5.0, jitter=0.0)
    for _ in range(5):
        backoff.next_delay()

    backoff.reset()

    assert backoff.next_delay() == 0.25
    assert backoff.next_delay() == 0.5


def test_backoff__jitter_stays_within_its_spread() -> None:
    backoff = Backoff(initial=1.0, cap=1.0, jitter=0.1, _rng=random.Random(1))

    delays = [backoff.next_delay() for _ in range(500)]

    assert all(0.9 <= delay <= 1.1 for delay in delays)
    assert len(set(delays)) > 1, "jitter spreads the delays"


def test_backoff__stays_capped_however_long_the_device_stays_away() -> None:
    # Regression: factor**attempts overflowed a float (OverflowError) after 1,024 attempts.
    backoff = Backoff(initial=0.25, cap=2.0, jitter=0.0)

    delays = [backoff.next_delay() for _ in range(2_000)]
    backoff.reset()

    assert delays[:5] == [0.25, 0.5, 1.0, 2.0, 2.0]
    assert max(delays) == 2.0
    assert backoff.next_delay() == 0.25
