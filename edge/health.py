"""Per-device health and counters: the state a driver reports, logged once per transition."""

import logging
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

from edge.const import HEALTH_OK, HEALTH_UNAVAILABLE, HealthState

logger = logging.getLogger(__name__)


@dataclass(slots=True, frozen=True)
class DeviceStatus:
    """A snapshot of one device for the status table."""

    name: str
    kind: str
    state: HealthState
    reason: str | None
    since: float
    last_event_ts: float | None
    events: int
    reconnects: int
    counters: dict[str, int]
    details: dict[str, str]
    rate_per_s: float = 0.0


@dataclass(slots=True)
class DeviceMonitor:
    """Mutable health of one device, written by its driver thread and read by the heartbeat."""

    name: str
    kind: str
    details: dict[str, str] = field(default_factory=dict)
    state: HealthState = HEALTH_UNAVAILABLE
    reason: str | None = "starting"
    since: float = field(default_factory=time.time)
    last_event_ts: float | None = None
    events: int = 0
    reconnects: int = 0
    beat_at: float = field(default_factory=time.monotonic)
    counters: Counter[str] = field(default_factory=Counter)
    _ever_ok: bool = False
    _announced: bool = False
    _rate_mark: tuple[float, int] = (0.0, 0)  # the initial "unavailable: starting" is a placeholder, never logged
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def set_state(self, state: HealthState, reason: str | None = None) -> bool:
        """Record a health state; logs and returns True only when it changed."""
        with self._lock:
            if state == self.state and reason == self.reason:
                return False
            previous, self.state, self.reason = self.state, state, reason
            changed = previous != state or not self._announced
            if previous != state:
                self.since = time.time()
            if state == HEALTH_OK:
                if self._ever_ok:
                    self.reconnects += 1
                    logger.warning("Device %s recovered (was %s)", self.name, previous)
                else:
                    logger.info("Device %s is ok", self.name)
                self._ever_ok = True
            elif changed:
                logger.warning("Device %s is %s: %s", self.name, state, reason)
            self._announced = True
            return changed

    def event(self, ts: float) -> None:
        """Count one event at event time ``ts``."""
        self.events += 1
        self.last_event_ts = ts

    def beat(self) -> None:
        """Show the driver's thread is making progress (for the systemd watchdog)."""
        self.beat_at = time.monotonic()

    def snapshot(self) -> DeviceStatus:
        """A consistent copy for the status table; the event rate is measured since the previous snapshot."""
        now = time.monotonic()
        with self._lock:
            mark_at, mark_events = self._rate_mark
            rate = (self.events - mark_events) / (now - mark_at) if mark_at and now > mark_at else 0.0
            self._rate_mark = (now, self.events)
            return DeviceStatus(
                name=self.name, kind=self.kind, state=self.state, reason=self.reason, since=self.since,
                last_event_ts=self.last_event_ts, events=self.events, reconnects=self.reconnects,
                counters=dict(self.counters), details=dict(self.details), rate_per_s=round(rate, 2),
            )
