"""WiFi presence per event-time window: frames, devices above the gate, stable devices, clusters, persons.

Pure: sighting rows in, typed windows out; no DB, no I/O, no clock. Also holds what the visit and zone analytics
share: the sniffer sites (calibration offset, zone, position), event-time window alignment and the staff filter.

Why clusters, not MACs: a phone that randomizes its MAC shows a new id per probe burst (or per scan), so distinct
randomized ids count bursts, not people. Among randomized frames above the gate the estimator counts distinct
*(IE fingerprint, time slot)* clusters instead, with ``cluster_slot_s`` = 20 s slots: all the MACs one phone uses
in a burst share its fingerprint, so a burst is one cluster however many MACs it used, and a phone that bursts
twice within a slot (screen on) still counts once. Phones of one model share a fingerprint, so the count
saturates slowly in a crowd; within a slot that is rare at store scale. Universal (non-randomizing) phones are
counted directly as distinct ids, minus staff and infrastructure. Then::

    persons_estimate = persons_factor × (stable_devices + randomized_clusters)

``persons_factor`` absorbs what a count cannot know: clusters per phone per window (about 1–3 in 60 s), people
without a phone or with two, and phones outside the gate. It is fitted per store against a people counter
(``fit_persons_factor``) and should be refitted when the share of randomizing phones drifts.

Measured on the WiFi simulator (``default_world()``, 60% randomizing phones, gate −75 dBm, factor fitted on
another seed's two hours, staff filter warmed by six hours of the day; ``tests/edge/test_wifi_accuracy.py``): the
mean of the 60 s estimates over each 10-minute window is within 7.6–12.8% of the time-averaged number of shoppers
on the floor, on average over an hour, for five test seeds. In exploration, fitting the factor against the
distinct shoppers present in each 10 minutes instead gave about 12%; bursts counted by time gaps, or divided by
the stable phones' bursts per phone (a RateCount-style rate), did a little worse than the slot clusters. Most of
the residual is who carries which phone: a 10-minute window holds 10–30 shoppers.
"""

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from edge.config.models import FloorPlan, WifiAnalytics
from edge.events import Sighting

STAFF_SLOT_S = 300.0
"""The staff filter counts presence in slots of this many seconds (a slot with any sighting counts whole)."""


@dataclass(frozen=True, slots=True)
class SnifferSite:
    """Where one sniffer stands and how its RSSI is calibrated (from its ``WifiProbeConfig``).

    ``zone`` is the floor-plan zone the sniffer covers; ``position`` is ``(x, y)`` in floor metres;
    ``rssi_offset_db`` is added to every RSSI the sniffer reports before any gate or comparison.
    """

    name: str
    zone: str | None = None
    position: tuple[float, float] | None = None
    rssi_offset_db: float = 0.0


def site_map(sites: Iterable[SnifferSite], floor: FloorPlan | None = None) -> dict[str, SnifferSite]:
    """Sites by sniffer name; a site without a zone takes the floor-plan zone that contains its position."""
    out: dict[str, SnifferSite] = {}
    for site in sites:
        if site.zone is None and site.position is not None and floor is not None:
            for zone in floor.zones:
                if point_in_polygon(site.position, zone.polygon):
                    site = SnifferSite(site.name, zone.name, site.position, site.rssi_offset_db)  # noqa: PLW2901
                    break
        out[site.name] = site
    return out


def point_in_polygon(point: tuple[float, float], polygon: Sequence[tuple[float, float]]) -> bool:
    """Whether a point lies inside a polygon (even-odd rule)."""
    x, y = point
    inside = False
    j = len(polygon) - 1
    for i, (xi, yi) in enumerate(polygon):
        xj, yj = polygon[j]
        if (yi > y) != (yj > y) and x < (xj - xi) * (y - yi) / (yj - yi) + xi:
            inside = not inside
        j = i
    return inside


def calibrated_rssi(sighting: Sighting, sites: Mapping[str, SnifferSite]) -> float | None:
    """The sighting's RSSI plus its sniffer's offset (an unknown sniffer has offset 0); ``None`` when unreported."""
    if sighting.rssi is None:
        return None
    site = sites.get(sighting.sniffer)
    return sighting.rssi + (site.rssi_offset_db if site is not None else 0.0)


def window_start(ts: float, window_s: float) -> float:
    """Start of the event-time window holding ``ts``: windows are aligned to multiples of ``window_s``."""
    return math.floor(ts / window_s) * window_s


def normalize_oui(oui: str) -> str:
    """``'AA:BB:CC'``, ``'aa-bb-cc'`` and ``'aabbcc'`` all become ``'aabbcc'``."""
    return "".join(ch for ch in oui.lower() if ch in "0123456789abcdef")


@dataclass(slots=True)
class StaffFilter:
    """Staff and infrastructure: ids present more than ``max_hours`` in the salt period so far, and ignored OUIs.

    Presence is counted in ``STAFF_SLOT_S`` slots that hold at least one sighting. An id is only known as staff
    once it has been present that long, so the first hours of a staff phone's day count as a customer's; the
    visit tracker avoids most of that because a staff phone's visit stays open until it leaves.
    ``slots`` is persisted state; call ``reset`` when the salt rotates (the ids change anyway).
    """

    max_hours: float
    ignore_ouis: frozenset[str] = frozenset()
    slots: dict[str, set[int]] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: WifiAnalytics) -> "StaffFilter":
        """A filter with the configured hours and ignored OUIs and no history."""
        return cls(settings.staff_max_hours, frozenset(normalize_oui(o) for o in settings.ignore_ouis))

    def ignored(self, sighting: Sighting) -> bool:
        """Whether the sighting's vendor prefix is on the ignore list."""
        return sighting.oui is not None and normalize_oui(sighting.oui) in self.ignore_ouis

    def observe(self, device: str, ts: float) -> None:
        """Count the slot of ``ts`` as one in which ``device`` was present."""
        self.slots.setdefault(device, set()).add(math.floor(ts / STAFF_SLOT_S))

    def is_staff(self, device: str, until: float | None = None) -> bool:
        """Whether ``device`` has been present more than ``max_hours`` in this salt period so far.

        With ``until``, only slots that ended by then count, so the answer does not depend on how far past
        ``until`` the caller has already fed rows.
        """
        slots = self.slots.get(device, ())
        if until is not None:
            last = math.floor(until / STAFF_SLOT_S)
            count = sum(1 for slot in slots if slot < last)
        else:
            count = len(slots)
        return count * STAFF_SLOT_S > self.max_hours * 3600.0

    def reset(self) -> None:
        """Forget all history (at salt rotation)."""
        self.slots.clear()

    def to_json(self) -> dict[str, list[int]]:
        """The persisted part, JSON-ready."""
        return {device: sorted(slots) for device, slots in self.slots.items()}

    def load_json(self, data: Mapping[str, Sequence[int]]) -> None:
        """Restore what ``to_json`` returned."""
        self.slots = {device: set(slots) for device, slots in data.items()}


@dataclass(frozen=True, slots=True)
class PresenceWindow:
    """Presence in one event-time window: the columns of ``agg_presence`` plus a breakdown for ``detail_json``.

    ``frames``: sightings in the window (a frame heard by two sniffers counts twice). ``devices``: distinct ids
    whose strongest calibrated RSSI is at or above the gate (randomized ids count bursts, not phones).
    ``stable_devices``: universal ids above the gate, minus staff and ignored OUIs. ``randomized_clusters``:
    distinct (fingerprint, ``cluster_slot_s`` slot) pairs among randomized frames above the gate.
    ``randomized_bursts``: the same frames grouped into bursts by time gaps. ``probe_rate``: frames per second.
    ``persons_estimate``: see the module docstring.
    """

    window_start: float
    window_end: float
    frames: int
    devices: int
    stable_devices: int
    randomized_clusters: int
    probe_rate: float
    persons_estimate: float
    randomized_devices: int
    randomized_bursts: int
    staff_devices: int
    ignored_devices: int
    sniffer_frames: tuple[tuple[str, int], ...]

    def detail(self) -> dict[str, object]:
        """The breakdown stored in ``agg_presence.detail_json``."""
        return {
            "randomized_devices": self.randomized_devices,
            "randomized_bursts": self.randomized_bursts,
            "staff_devices": self.staff_devices,
            "ignored_devices": self.ignored_devices,
            "sniffer_frames": dict(self.sniffer_frames),
        }


@dataclass(slots=True)
class PresenceState:
    """What ``PresenceEstimator`` carries from one rollup to the next; persist it with ``to_json``.

    ``staff``: the staff filter's presence slots this salt period. ``closed_until``: the end of the last window
    emitted; rows before it are late and ignored.
    """

    staff: StaffFilter
    closed_until: float | None = None

    def to_json(self) -> str:
        """Serialise for the caller's state table."""
        return json.dumps({"staff": self.staff.to_json(), "closed_until": self.closed_until})

    @classmethod
    def from_json(cls, text: str, settings: WifiAnalytics) -> "PresenceState":
        """Restore what ``to_json`` wrote (hours and OUIs come from the current settings)."""
        data = json.loads(text)
        staff = StaffFilter.from_settings(settings)
        staff.load_json(data["staff"])
        closed = data["closed_until"]
        return cls(staff, None if closed is None else float(closed))


def count_bursts(frames: Iterable[tuple[float, str]], burst_gap_s: float) -> int:
    """Bursts among ``(ts, fingerprint)`` frames: frames of one fingerprint less than ``burst_gap_s`` apart join."""
    last: dict[str, float] = {}
    bursts = 0
    for ts, fp in sorted(frames):
        previous = last.get(fp)
        if previous is None or ts - previous > burst_gap_s:
            bursts += 1
        last[fp] = ts
    return bursts


class PresenceEstimator:
    """Streaming presence: ``feed`` sightings in any chunks, ``close(until)`` emits every window ending by then.

    Windows are aligned to multiples of ``window_s`` in event time, so results do not depend on how the rows were
    chunked. Rows older than the last closed window are late: counted in ``late`` and ignored. Between rollups,
    persist ``state`` (``PresenceState.to_json``); rows of windows not yet closed are buffered here, so a caller
    that restarts should feed again the rows from ``state.closed_until`` on.
    """

    def __init__(self, settings: WifiAnalytics, sites: Mapping[str, SnifferSite], *,
                 state: PresenceState | None = None, window_s: float | None = None,
                 cluster_slot_s: float = 20.0, burst_gap_s: float = 2.0) -> None:
        self.settings = settings
        self.sites = sites
        self.state = state if state is not None else PresenceState(StaffFilter.from_settings(settings))
        self.window_s = float(window_s if window_s is not None else settings.window_s)
        self.cluster_slot_s = cluster_slot_s
        self.burst_gap_s = burst_gap_s
        self.late = 0
        self._pending: dict[float, list[Sighting]] = {}

    def feed(self, sightings: Iterable[Sighting]) -> None:
        """Buffer sightings into their windows."""
        closed = self.state.closed_until
        for s in sightings:
            if closed is not None and s.ts < closed:
                self.late += 1
                continue
            self._pending.setdefault(window_start(s.ts, self.window_s), []).append(s)

    def close(self, until: float) -> list[PresenceWindow]:
        """Emit the windows that end at or before ``until``, oldest first, with empty windows in between."""
        end = window_start(until, self.window_s)
        first = self.state.closed_until
        if first is None:
            if not self._pending:
                return []
            first = min(self._pending)
        if end <= first:
            return []
        out = [self._window(ws, self._pending.pop(ws, [])) for ws in _range(first, end - self.window_s, self.window_s)]
        self.state.closed_until = end
        return out

    def start_period(self) -> None:
        """At salt rotation: forget the staff filter's history (the ids change with the salt)."""
        self.state.staff.reset()

    def _window(self, start: float, rows: list[Sighting]) -> PresenceWindow:
        settings, staff = self.settings, self.state.staff
        gate = settings.rssi_gate_dbm
        strongest: dict[str, float] = {}
        per_sniffer: dict[str, int] = {}
        for s in rows:
            per_sniffer[s.sniffer] = per_sniffer.get(s.sniffer, 0) + 1
            rssi = calibrated_rssi(s, self.sites)
            if rssi is not None and rssi > strongest.get(s.device, -math.inf):
                strongest[s.device] = rssi
        above = {d for d, r in strongest.items() if r >= gate}
        ignored: set[str] = set()
        universal: set[str] = set()
        random_frames: list[tuple[float, str]] = []
        for s in rows:
            if staff.ignored(s):
                ignored.add(s.device)
                continue
            if not s.randomized:
                staff.observe(s.device, s.ts)
            if s.device not in above:
                continue
            if s.randomized:
                random_frames.append((s.ts, s.fp or s.device))
            else:
                universal.add(s.device)
        staff_ids = {d for d in universal if staff.is_staff(d)}
        stable = universal - staff_ids
        clusters = len({(fp, math.floor(ts / self.cluster_slot_s)) for ts, fp in random_frames})
        randomized_ids = {s.device for s in rows if s.randomized and s.device in above}
        return PresenceWindow(
            window_start=start, window_end=start + self.window_s, frames=len(rows),
            devices=len(above - ignored), stable_devices=len(stable), randomized_clusters=clusters,
            probe_rate=len(rows) / self.window_s,
            persons_estimate=settings.persons_factor * (len(stable) + clusters),
            randomized_devices=len(randomized_ids),
            randomized_bursts=count_bursts(random_frames, self.burst_gap_s),
            staff_devices=len(staff_ids), ignored_devices=len(ignored),
            sniffer_frames=tuple(sorted(per_sniffer.items())),
        )


def _range(first: float, last: float, step: float) -> list[float]:
    """Window starts from ``first`` to ``last`` inclusive."""
    count = round((last - first) / step)
    return [first + i * step for i in range(count + 1)]


def fit_persons_factor(estimates: Sequence[float], entries: Sequence[float], *, prior: float = 1.0,
                       prior_weight: float = 0.0) -> float:
    """Fit ``persons_factor`` so that ``factor × estimate`` matches a people counter: ``Σ e·c / Σ e²``.

    The hook for the camera side. Per matched period ``i`` (an hour, say), ``estimates[i]`` is the mean
    ``persons_estimate`` of the period's windows *divided by the factor it was computed with* (i.e. the raw
    ``stable_devices + randomized_clusters``), and ``entries[i]`` is the camera's figure for the same quantity,
    people on the floor on average: the camera's own occupancy (entries − exits, time-averaged) if it tracks one,
    else by Little's law ``entries_per_hour × mean_dwell_h`` (mean dwell from ``wifi_visits`` visitors, or
    configured). Periods the camera did not cover are left out. ``prior_weight`` adds that many pseudo-periods
    pulling the fit towards ``prior`` (the factor in use) so a few quiet hours cannot swing it. The camera
    job then writes the result to ``wifi.persons_factor``; it is clamped to that field's range (0, 10].
    """
    if len(estimates) != len(entries):
        raise ValueError("estimates and entries must have the same length")
    sxx = sum(e * e for e in estimates)
    sxy = sum(e * c for e, c in zip(estimates, entries, strict=True))
    if sxx <= 0:
        return prior
    pseudo = prior_weight * sxx / len(estimates)
    factor = (sxy + pseudo * prior) / (sxx + pseudo)
    return min(10.0, max(1e-3, factor))
