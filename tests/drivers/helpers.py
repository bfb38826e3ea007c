"""Small helpers shared by the driver tests: an event sink that keeps what it gets, and polling with a deadline."""

import time
from collections.abc import Callable
from typing import TypeVar

from edge.driver import EventSink
from edge.events import Event

E = TypeVar("E")


class Collect(EventSink):
    """Keeps every event the driver emits."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def submit(self, event: Event) -> bool:
        self.events.append(event)
        return True

    def of(self, kind: type[E]) -> list[E]:
        """The events of one type, in order."""
        return [e for e in self.events if isinstance(e, kind)]


def wait_for(predicate: Callable[[], bool], timeout: float = 30.0) -> float:
    """Poll until true; return the seconds it took, or fail the test."""
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(0.01)
    return time.monotonic() - started
