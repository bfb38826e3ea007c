"""Visits of stable WiFi ids with Meraki-compatible rules, dwell buckets, capture rate and repeat visits.

Pure and streaming: feed sightings in event-time order, get closed visits back. Honest scope: a visit needs an id
that lasts, so only *stable* ids are measured — universal (non-randomizing) MACs, and randomized ids that live at
least ``long_lived_s`` (a phone associated to a network with a fixed private address, say). Phones that
randomize per scan never make a visit. The visit figures (capture rate, dwell buckets, repeats) therefore describe
a measured subset of devices, not all shoppers; people counts come from ``wifi_presence``.

Rules (``VisitRules``; RSSI is calibrated by the sniffer's offset, and a frame heard by several sniffers counts
at each): a visit starts at a sighting ≥ ``enter_dbm``; sightings ≥ ``stay_dbm`` extend it; a silence longer
than ``gap_s`` (no sighting ≥ ``stay_dbm``) ends it at its last such sighting. ``dwell = end − start``; a visit
with ``dwell ≥ visitor_min_s`` is a visitor, else a passerby. A visit is known to be over at ``end + gap_s``,
which is its event time ``ts`` (what ``agg_visits`` windows bucket on). ``bursts`` counts the probe bursts that
made the visit (sightings more than ``BURST_S`` after the previous one; a frame heard by several sniffers, or the
frames of one scan, are one burst): the fusion uses it to estimate the stay beyond the first and last burst and
how many passing phones were never heard at all (``edge.analytics.fusion``).
"""

import itertools
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from edge.analytics.wifi_presence import SnifferSite, StaffFilter, calibrated_rssi
from edge.config.models import VisitRules, WifiAnalytics
from edge.events import Sighting

BURST_S = 2.0
"""Sightings of one id closer than this belong to one probe burst (a scan's frames, several sniffers)."""


@dataclass(frozen=True, slots=True)
class Visit:
    """One closed visit of one stable id: the columns of ``wifi_visits`` plus ``repeat``.

    ``repeat``: a visitor visit of an id that already made a visitor visit in this salt period.
    """

    device: str
    start: float
    end: float
    ts: float
    dwell_s: float
    max_rssi: int | None
    visitor: bool
    randomized: bool
    repeat: bool
    bursts: int = 1

    def row(self) -> tuple[object, ...]:
        """Values for ``wifi_visits (device, start, end, ts, dwell_s, max_rssi, visitor, randomized, bursts)``."""
        return (self.device, self.start, self.end, self.ts, self.dwell_s, self.max_rssi, int(self.visitor),
                int(self.randomized), self.bursts)


@dataclass(slots=True)
class _Open:
    start: float
    last: float
    max_rssi: float
    randomized: bool
    bursts: int = 1


@dataclass(slots=True)
class VisitState:
    """What ``VisitTracker`` carries between rollups; persist it with ``to_json``.

    ``open``: visits not yet closed, by id. ``seen``: first and last sighting of each id this salt period (how
    long-lived a randomized id is). ``visitor_visits``: visitor visits per id this period (for repeats).
    ``staff``: the staff filter's presence slots.
    """

    staff: StaffFilter
    open: dict[str, _Open] = field(default_factory=dict)
    seen: dict[str, tuple[float, float]] = field(default_factory=dict)
    visitor_visits: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> str:
        """Serialise for the caller's state table."""
        return json.dumps({
            "staff": self.staff.to_json(),
            "open": {d: [o.start, o.last, o.max_rssi, o.randomized, o.bursts] for d, o in self.open.items()},
            "seen": {d: list(v) for d, v in self.seen.items()},
            "visitor_visits": self.visitor_visits,
        })

    @classmethod
    def from_json(cls, text: str, settings: WifiAnalytics) -> "VisitState":
        """Restore what ``to_json`` wrote (hours and OUIs come from the current settings)."""
        data = json.loads(text)
        staff = StaffFilter.from_settings(settings)
        staff.load_json(data["staff"])
        return cls(
            staff,
            {d: _Open(float(o[0]), float(o[1]), float(o[2]), bool(o[3]), int(o[4]) if len(o) > 4 else 1)
             for d, o in data["open"].items()},
            {d: (float(a), float(b)) for d, (a, b) in data["seen"].items()},
            {d: int(n) for d, n in data["visitor_visits"].items()},
        )


class VisitTracker:
    """Streaming visit detection for stable ids (see the module docstring for the rules and their scope).

    ``feed`` returns the visits that the fed sightings closed (an id heard again after a gap); ``flush(now)``
    closes visits silent for more than ``gap_s`` at event time ``now`` — call it at each rollup with the
    rollup's watermark, after feeding every sighting before it. Call ``start_period`` when the salt rotates.
    Staff (ids present more than ``staff_max_hours`` this period, and ignored OUIs) make no visits; a staff
    phone's visit stays open while it is in the store, so it is usually known as staff before it closes.
    """

    def __init__(self, settings: WifiAnalytics, sites: Mapping[str, SnifferSite], *,
                 state: VisitState | None = None, long_lived_s: float = 600.0) -> None:
        self.rules: VisitRules = settings.visits
        self.sites = sites
        self.state = state if state is not None else VisitState(StaffFilter.from_settings(settings))
        self.long_lived_s = long_lived_s

    def feed(self, sightings: Iterable[Sighting]) -> list[Visit]:
        """Process sightings in event-time order; returns the visits they closed."""
        rules, state = self.rules, self.state
        closed: list[Visit] = []
        for s in sightings:
            if state.staff.ignored(s):
                continue
            state.staff.observe(s.device, s.ts)
            first, last = state.seen.get(s.device, (s.ts, s.ts))
            if s.ts - last > self.rules.gap_s and last - first < self.long_lived_s:
                first = s.ts  # a short-lived id heard again after a silence starts its life again (as in flush)
            state.seen[s.device] = (min(first, s.ts), s.ts)
            rssi = calibrated_rssi(s, self.sites)
            current = state.open.get(s.device)
            if current is not None and s.ts - current.last > rules.gap_s:
                visit = self._close(s.device, state.open.pop(s.device))
                if visit is not None:
                    closed.append(visit)
                current = None
            if rssi is None:
                continue
            if current is None:
                if rssi >= rules.enter_dbm:
                    state.open[s.device] = _Open(s.ts, s.ts, rssi, s.randomized)
            elif rssi >= rules.stay_dbm:
                if s.ts - current.last > BURST_S:
                    current.bursts += 1
                current.last = max(current.last, s.ts)
                current.max_rssi = max(current.max_rssi, rssi)
        return closed

    def flush(self, now: float) -> list[Visit]:
        """Close the visits silent for more than ``gap_s`` at event time ``now``; forget short-lived ids."""
        state = self.state
        done = [d for d, o in state.open.items() if now - o.last > self.rules.gap_s]
        closed = [v for v in (self._close(d, state.open.pop(d)) for d in done) if v is not None]
        # A randomized id silent past the gap and too young to be long-lived is a burst: forget it so the state
        # stays the size of the stable population, not of every MAC a phone ever used.
        for device, (first, last) in list(state.seen.items()):
            if now - last > self.rules.gap_s and device not in state.open and last - first < self.long_lived_s \
                    and device not in state.visitor_visits:
                del state.seen[device]
        return sorted(closed, key=lambda v: (v.ts, v.device))

    def start_period(self, period_start: float) -> list[Visit]:
        """At salt rotation: close every open visit and forget all ids (they change with the salt)."""
        state = self.state
        closed = [v for v in (self._close(d, o) for d, o in state.open.items()) if v is not None]
        state.open.clear()
        state.seen.clear()
        state.visitor_visits.clear()
        state.staff.reset()
        return sorted(closed, key=lambda v: (v.ts, v.device))

    def _close(self, device: str, visit: _Open) -> Visit | None:
        state = self.state
        if state.staff.is_staff(device, until=visit.last + self.rules.gap_s):
            return None
        if visit.randomized:
            first, last = state.seen.get(device, (visit.start, visit.last))
            if last - first < self.long_lived_s:
                return None
        dwell = visit.last - visit.start
        visitor = dwell >= self.rules.visitor_min_s
        repeat = False
        if visitor:
            count = state.visitor_visits.get(device, 0)
            repeat = count > 0
            state.visitor_visits[device] = count + 1
        return Visit(device=device, start=visit.start, end=visit.last, ts=visit.last + self.rules.gap_s,
                     dwell_s=dwell, max_rssi=round(visit.max_rssi), visitor=visitor, randomized=visit.randomized,
                     repeat=repeat, bursts=visit.bursts)


def dwell_bucket_labels(edges_min: Sequence[int]) -> list[str]:
    """Labels of the dwell buckets: ``[5, 20, 60, 360]`` → ``['5-20', '20-60', '60-360', '360+']``."""
    return [f"{lo}-{hi}" for lo, hi in itertools.pairwise(edges_min)] + [f"{edges_min[-1]}+"]


def dwell_bucket(dwell_s: float, edges_min: Sequence[int]) -> str | None:
    """The bucket label for a dwell, or ``None`` below the first edge."""
    minutes = dwell_s / 60.0
    labels = dwell_bucket_labels(edges_min)
    for index in range(len(edges_min) - 1, -1, -1):
        if minutes >= edges_min[index]:
            return labels[index]
    return None


@dataclass(frozen=True, slots=True)
class VisitSummary:
    """Visits whose ``ts`` falls in one window: the columns of ``agg_visits``.

    ``capture_rate`` = visitors ÷ (visitors + passersby), ``None`` with no visits. ``dwell_buckets`` counts
    visitor visits by dwell bucket (every label present, zeros included).
    """

    window_start: float
    window_end: float
    visitors: int
    passersby: int
    capture_rate: float | None
    repeat_visitors: int
    dwell_buckets: dict[str, int]

    def dwell_buckets_json(self) -> str:
        """The value of ``agg_visits.dwell_buckets_json``."""
        return json.dumps(self.dwell_buckets)


def summarize_visits(visits: Iterable[Visit], window_start: float, window_end: float,
                     dwell_buckets_min: Sequence[int]) -> VisitSummary:
    """Aggregate the visits with ``window_start <= ts < window_end``."""
    buckets = dict.fromkeys(dwell_bucket_labels(dwell_buckets_min), 0)
    visitors = passersby = repeats = 0
    for visit in visits:
        if not window_start <= visit.ts < window_end:
            continue
        if visit.visitor:
            visitors += 1
            repeats += visit.repeat
            label = dwell_bucket(visit.dwell_s, dwell_buckets_min)
            if label is not None:
                buckets[label] += 1
        else:
            passersby += 1
    total = visitors + passersby
    return VisitSummary(window_start, window_end, visitors, passersby, visitors / total if total else None,
                        repeats, buckets)


def capture_rate(visits: Iterable[Visit]) -> float | None:
    """Visitors ÷ (visitors + passersby) over any set of visits; ``None`` when there are none."""
    counts = [0, 0]
    for visit in visits:
        counts[visit.visitor] += 1
    total = counts[0] + counts[1]
    return counts[1] / total if total else None
