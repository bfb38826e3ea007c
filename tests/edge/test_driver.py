"""ReaderDriver: a device that cannot be opened is retried with backoff and reported, never fatal."""

import threading
import time
from collections.abc import Callable, Iterator

import pytest

from edge.config.base import DeviceConfig
from edge.const import HEALTH_OK, HEALTH_UNAVAILABLE
from edge.driver import DriverContext, EventSink, ReaderDriver
from edge.errors import DeviceUnavailable
from edge.events import Event
from edge.health import DeviceMonitor


class ListSink(EventSink):
    """An event sink that keeps what it is given."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def submit(self, event: Event) -> bool:
        self.events.append(event)
        return True


class FlakyDevice(ReaderDriver):
    """A device that fails to open ``failures`` times, then opens and idles."""

    type_key = "flaky"

    def __init__(self, ctx: DriverContext, failures: int, reconnect_max_s: float) -> None:
        super().__init__(DeviceConfig(type="flaky", name="till-1"), ctx, reconnect_max_s=reconnect_max_s)
        self.failures = failures
        self.opens = 0
        self.opened = threading.Event()

    def describe(self) -> dict[str, str]:
        return {"port": "/dev/ttyFLAKY"}

    def open(self) -> None:
        self.opens += 1
        if self.opens <= self.failures:
            raise DeviceUnavailable("cannot open /dev/ttyFLAKY")
        self.opened.set()

    def read_once(self) -> None:
        self._stop.wait(0.01)

    def close(self) -> None:
        pass


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met before the deadline"
        time.sleep(0.01)


@pytest.fixture
def make_device() -> Iterator[Callable[[int, float], FlakyDevice]]:
    devices: list[FlakyDevice] = []

    def make(failures: int, reconnect_max_s: float) -> FlakyDevice:
        device = FlakyDevice(DriverContext(DeviceMonitor(name="till-1", kind="flaky"), ListSink()), failures,
                             reconnect_max_s)
        devices.append(device)
        return device

    yield make
    for device in devices:
        device.stop()


def reader_alive(name: str = "driver-till-1") -> bool:
    return any(thread.name == name and thread.is_alive() for thread in threading.enumerate())


def test_reader_driver__retries_until_the_device_opens(
        make_device: Callable[[int, float], FlakyDevice]) -> None:
    device = make_device(3, 0.01)

    device.start()

    assert device.opened.wait(timeout=5.0)
    wait_for(lambda: device.ctx.monitor.state == HEALTH_OK)
    assert device.opens == 4
    assert device.ctx.monitor.details == {"port": "/dev/ttyFLAKY"}
    device.stop()
    device.stop()
    assert not reader_alive()


def test_reader_driver__keeps_retrying_a_device_that_stays_away(
        make_device: Callable[[int, float], FlakyDevice]) -> None:
    # Regression: Backoff computed factor**attempts before capping, so attempt 1,024 raised OverflowError
    # out of _wait_backoff and killed the reader thread (about 35 min of a missing scanner at 0.25..2 s).
    # A microsecond cap makes 1,100 reconnect attempts take milliseconds instead of hours.
    device = make_device(1_100, 1e-6)

    device.start()

    wait_for(lambda: device.opened.is_set() or not reader_alive())
    assert device.opened.is_set(), f"reader thread died after {device.opens} attempts"
    assert device.ctx.monitor.state == HEALTH_OK


def test_reader_driver__unavailable_device_is_reported_with_its_reason(
        make_device: Callable[[int, float], FlakyDevice]) -> None:
    device = make_device(10**6, 0.05)

    device.start()

    wait_for(lambda: device.opens >= 2)
    assert device.ctx.monitor.state == HEALTH_UNAVAILABLE
    assert device.ctx.monitor.reason == "cannot open /dev/ttyFLAKY"
