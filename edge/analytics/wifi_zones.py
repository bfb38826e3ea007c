"""Zone dwell and a coarse WiFi heatmap: phones placed by strongest sniffer (median, hysteresis) or by position.

Pure and streaming: feed sightings in event-time order, ``close(until)`` emits per-window device-seconds per zone
and per grid cell. Rules:

* Per id, the RSSI samples of the last ``zone_window_s`` (calibrated by each sniffer's offset, only those at or
  above the presence gate) give a median per sniffer. The strongest median wins, but a new sniffer replaces the
  current one only if its median beats the current one's by ``zone_hysteresis_db`` (or the current one has no
  sample left in the window). A 2 dB wobble between two sniffers therefore does not move a phone.
* Zone by sniffer: the winning sniffer's configured ``zone``. That is what you get without a floor plan or
  sniffer positions, or with ``zone_by_position=False``.
* Zone by position (the default when the floor plan and sniffer positions are known): the medians give a
  posterior over floor cells under a log-distance path-loss model with a prior on the phone's power at 1 m (see
  ``_Locator``), and the phone's time is spread over zones and cells by that posterior; the share placed in a
  margin outside the walls (a passerby on the pavement) is credited to nothing. Why: zones rarely match the
  sniffers' Voronoi cells. On the simulated store (3 sniffers, 4 zones, one sniffer on a zone boundary) the
  strongest-sniffer zone missed the true zone shares by up to 25 percentage points (the entrance sniffer also
  hears most of the street and the front of two other zones); placement by position was within 1.4–3.6 points
  over three seeds.
* Heat cells (``cell_m``, 0.5 m): the same posterior, so the grid is a smoothed heat layer, not a track; RSSI
  shadowing is several dB.
* Staff: ids the staff filter knows (present more than ``staff_max_hours``, ignored OUIs) are credited nowhere;
  with the store's opening hours (``store_open``), so is a universal id heard at the presence gate while the store
  is closed — staff arrive before opening and a store's own devices (printers, handhelds) never leave, while no
  shopper is inside then. Without this, a printer by the checkout filled that zone for six hours a day before the
  staff filter knew it (on the simulated store day: checkout 7.1 % of the time against 3.1 % true).
* Time: the interval between two consecutive sightings of an id is credited to the zone (and cell) decided at the
  first of them, capped at ``cap_s``; after the last sighting the id is credited ``cap_s`` more, the same as any
  long silence. A phone that changes MAC per burst therefore adds ``cap_s`` per burst, so for randomizing phones
  device-seconds measure probing activity per zone: shares between zones are meaningful, absolute seconds are not
  person-seconds (``wifi_presence`` estimates people).
"""

import json
import math
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from edge.analytics.wifi_presence import SnifferSite, StaffFilter, calibrated_rssi, point_in_polygon, window_start
from edge.config.models import FloorPlan, WifiAnalytics
from edge.events import Sighting

UNZONED = "unzoned"
"""Zone name for time credited to a sniffer that has no zone and no position to fall back on."""
OUTSIDE = "outside"
"""Placement in the margin around the floor: that share of a phone's time is credited to no zone and no cell."""


@dataclass(frozen=True, slots=True)
class ZoneDwell:
    """Device-seconds and distinct ids in one zone in one window (a row of ``agg_zones``)."""

    zone: str
    device_seconds: float
    devices: int


@dataclass(frozen=True, slots=True)
class HeatCell:
    """Device-seconds in one grid cell in one window; ``x``/``y`` is the cell's centre in floor metres."""

    ix: int
    iy: int
    x: float
    y: float
    device_seconds: float


@dataclass(frozen=True, slots=True)
class ZoneWindow:
    """Zone dwell and heat cells of one event-time window."""

    window_start: float
    window_end: float
    zones: tuple[ZoneDwell, ...]
    cells: tuple[HeatCell, ...]

    def shares(self) -> dict[str, float]:
        """Each zone's share of the window's device-seconds."""
        total = sum(z.device_seconds for z in self.zones)
        return {z.zone: z.device_seconds / total for z in self.zones} if total > 0 else {}


Weights = tuple[tuple[str, float], ...]
"""A device's current placement over zones: (zone, share of its time), shares summing to 1."""


@dataclass(slots=True)
class _Device:
    last_ts: float
    credited_until: float
    samples: deque[tuple[float, str, float]] = field(default_factory=deque)
    sniffer: str | None = None
    zones: Weights = ()
    cells: dict[int, float] = field(default_factory=dict)
    decided_at: float = -math.inf


@dataclass(slots=True)
class _Acc:
    seconds: dict[str, float] = field(default_factory=dict)
    devices: dict[str, set[str]] = field(default_factory=dict)
    cells: dict[int, float] = field(default_factory=dict)


class _Locator:
    """Where on the floor a phone probably is, from per-sniffer median RSSI and a log-distance path-loss model.

    Received = P − 10·n·log10(d), so each sniffer implies a transmit power P = received + loss(cell); in the right
    cell they agree. The spread of the implied powers scores each cell, ``exp(−k·var / 2σ²)`` over the ``k``
    sniffers heard turns the scores into a posterior over the floor, and a phone's time is spread over cells and
    zones by that posterior. Spreading (rather than picking the best cell) keeps a 5 dB shadowing error from
    moving whole minutes into the wrong zone; with sniffers nearly in a line, a single best cell is often the
    mirror image of the true one.
    """

    def __init__(self, sites: Mapping[str, SnifferSite], floor: FloorPlan, cell_m: float, exponent: float,
                 height_m: float, sigma_db: float, ref_dbm: float, ref_sigma_db: float, margin_m: float) -> None:
        self.cell_m = cell_m
        self.sigma_db = sigma_db
        self.ref_dbm = ref_dbm
        self.ref_weight = (sigma_db / ref_sigma_db) ** 2
        # The grid covers the floor plus a margin of ``margin`` cells on every side: a phone on the pavement in
        # front of the window is placed out there (and credited to no zone) instead of on the nearest floor cell.
        self.margin = math.ceil(margin_m / cell_m)
        self.fx = max(1, math.ceil(floor.width_m / cell_m))
        self.fy = max(1, math.ceil(floor.depth_m / cell_m))
        self.nx, self.ny = self.fx + 2 * self.margin, self.fy + 2 * self.margin
        xs = (np.arange(self.nx) - self.margin + 0.5) * cell_m
        ys = (np.arange(self.ny) - self.margin + 0.5) * cell_m
        gx, gy = np.meshgrid(xs, ys, indexing="ij")
        self.loss: dict[str, npt.NDArray[np.float64]] = {}
        for name, site in sites.items():
            if site.position is not None:
                px, py = site.position
                d = np.sqrt((gx - px) ** 2 + (gy - py) ** 2 + height_m**2)
                self.loss[name] = (10.0 * exponent * np.log10(d)).ravel()
        self.positions = {n: s.position for n, s in sites.items() if s.position is not None}
        self.zone_names = [z.name for z in floor.zones]
        def zone_index(cell: int) -> int:
            ix, iy = cell // self.ny - self.margin, cell % self.ny - self.margin
            if not (0 <= ix < self.fx and 0 <= iy < self.fy):
                return -1
            centre = self.centre(cell)
            return next((k for k, z in enumerate(floor.zones) if point_in_polygon(centre, z.polygon)),
                        len(floor.zones))

        self.zone_of_cell = np.array([zone_index(c) for c in range(self.nx * self.ny)], dtype=np.int64)
        self._cache: dict[tuple[tuple[str, int], ...], tuple[Weights, dict[int, float]]] = {}

    def place(self, medians: Mapping[str, float], strongest: str) -> tuple[Weights, dict[int, float]] | None:
        """Zone and cell weights for a phone, or ``None`` when no heard sniffer has a position."""
        heard = sorted((n, round(m)) for n, m in medians.items() if n in self.loss)
        if not heard:
            return None
        key = tuple(heard)
        cached = self._cache.get(key)
        if cached is None:
            implied = np.stack([m + self.loss[n] for n, m in heard])
            # The transmit power is unknown but not free: a prior around ``ref_dbm`` (RSSI at 1 m) lets the level,
            # not only the differences, say how far away the phone is — one sniffer is enough for a ring.
            k, lam = len(heard), self.ref_weight
            power = (implied.sum(axis=0) + lam * self.ref_dbm) / (k + lam)
            cost = ((implied - power) ** 2).sum(axis=0) + lam * (power - self.ref_dbm) ** 2
            score = -cost / (2.0 * self.sigma_db**2)
            weights = np.exp(score - score.max())
            weights /= weights.sum()
            # Cells holding less than 0.1% of the time are dropped so the heat layer stays small.
            keep = np.flatnonzero(weights >= 1e-3)
            cells = dict(zip(keep.tolist(), (weights[keep] / weights[keep].sum()).tolist(), strict=True))
            cached = (self._zones_of(cells), {c: w for c, w in cells.items() if self.zone_of_cell[c] >= 0})
            if len(self._cache) >= 256:  # an entry holds up to 1,000 cells: 4,096 of them took ~300 MB
                self._cache.clear()
            self._cache[key] = cached
        return cached

    def _zones_of(self, cells: Mapping[int, float]) -> Weights:
        totals: dict[str, float] = {}
        for cell, weight in cells.items():
            k = int(self.zone_of_cell[cell])
            name = OUTSIDE if k < 0 else self.zone_names[k] if k < len(self.zone_names) else UNZONED
            totals[name] = totals.get(name, 0.0) + weight
        return tuple(sorted(totals.items()))

    def centre(self, cell: int) -> tuple[float, float]:
        """The centre of a cell in floor metres."""
        return ((cell // self.ny - self.margin + 0.5) * self.cell_m, (cell % self.ny - self.margin + 0.5) * self.cell_m)

    def floor_index(self, cell: int) -> tuple[int, int]:
        """A cell's column and row counted from the floor's origin."""
        return cell // self.ny - self.margin, cell % self.ny - self.margin


class ZoneTracker:
    """Streaming zone dwell per window (see the module docstring for the rules).

    Windows are aligned to multiples of ``window_s`` in event time; ``close(until)`` emits every window ending by
    ``until`` (empty windows included once the first sighting has been seen), so results do not depend on how the
    rows were chunked as long as every row before ``until`` was fed first. The state to persist between rollups
    is ``to_json()`` (open windows' accumulators and the per-id sample windows); restore with ``load_json``.
    ``floor`` (with sniffer positions) enables placement: heat cells, and zones by position. With
    ``zone_by_position=False`` zones come from the strongest sniffer's configured zone whenever it has one and
    positions only feed the heat cells. The locator's knobs are calibration: ``path_loss_exponent`` (2 in line of
    sight, 2.7–4 indoors), ``ref_dbm`` (a phone's RSSI at 1 m, about −40 to −50), ``sigma_db`` (RSSI noise of a
    median), ``margin_m`` (how far outside the walls a phone may be placed).
    """

    def __init__(self, settings: WifiAnalytics, sites: Mapping[str, SnifferSite], *, floor: FloorPlan | None = None,
                 window_s: float | None = None, cap_s: float = 60.0, cell_m: float = 0.5,
                 path_loss_exponent: float = 2.7, height_m: float = 1.3, sigma_db: float = 4.0,
                 ref_dbm: float = -40.0, ref_sigma_db: float = 6.0, margin_m: float = 4.0,
                 zone_by_position: bool = True, store_open: Callable[[float], bool] | None = None) -> None:
        self.settings = settings
        self.sites = sites
        self.window_s = float(window_s if window_s is not None else settings.window_s)
        self.cap_s = cap_s
        self.staff = StaffFilter.from_settings(settings)
        self.locator = (_Locator(sites, floor, cell_m, path_loss_exponent, height_m, sigma_db, ref_dbm,
                                 ref_sigma_db, margin_m) if floor is not None else None)
        self.zone_by_position = zone_by_position
        self.store_open = store_open
        self.heard_closed: set[str] = set()  # universal ids heard inside while the store was closed: staff
        self._open_minute: tuple[int, bool] = (-1, True)
        self.closed_until: float | None = None
        self.late = 0
        self._devices: dict[str, _Device] = {}
        self._acc: dict[float, _Acc] = {}

    def feed(self, sightings: Iterable[Sighting]) -> None:
        """Process sightings in event-time order."""
        gate = self.settings.rssi_gate_dbm
        horizon = self.settings.zone_window_s
        for s in sightings:
            if self.closed_until is not None and s.ts < self.closed_until:
                self.late += 1
                continue
            if self.staff.ignored(s):
                continue
            if not s.randomized:
                self.staff.observe(s.device, s.ts)
            rssi = calibrated_rssi(s, self.sites)
            if rssi is None or rssi < gate:
                continue
            if not s.randomized and s.device not in self.heard_closed and not self._open(s.ts):
                self.heard_closed.add(s.device)
            device = self._devices.get(s.device)
            if device is None:
                device = self._devices[s.device] = _Device(s.ts, s.ts)
                if self.closed_until is None:
                    self.closed_until = window_start(s.ts, self.window_s)
            elif s.ts < device.last_ts:
                self.late += 1
                continue
            elif s.ts > device.last_ts:
                self._decide(device)
                self._credit(s.device, device, min(s.ts, device.last_ts + self.cap_s))
                device.last_ts = device.credited_until = s.ts
            device.samples.append((s.ts, s.sniffer, rssi))
            while device.samples[0][0] < s.ts - horizon:
                device.samples.popleft()

    def _open(self, ts: float) -> bool:
        """Whether the store is open at ``ts`` (always, without opening hours); looked up once a minute."""
        if self.store_open is None:
            return True
        minute = int(ts // 60)
        if self._open_minute[0] != minute:
            self._open_minute = (minute, self.store_open(ts))
        return self._open_minute[1]

    def close(self, until: float) -> list[ZoneWindow]:
        """Emit the windows ending at or before ``until``, oldest first."""
        if self.closed_until is None:
            return []
        end = window_start(until, self.window_s)
        for device_id, device in list(self._devices.items()):
            self._decide(device)
            self._credit(device_id, device, min(end, device.last_ts + self.cap_s))
            if device.last_ts + max(self.cap_s, self.settings.zone_window_s) <= end:
                del self._devices[device_id]
        out: list[ZoneWindow] = []
        start = self.closed_until
        while start + self.window_s <= end:
            out.append(self._emit(start, self._acc.pop(start, _Acc())))
            start += self.window_s
        self.closed_until = max(start, self.closed_until)
        return out

    def start_period(self) -> None:
        """At salt rotation: forget the staff filter's history (the ids change with the salt)."""
        self.staff.reset()
        self.heard_closed.clear()

    def _decide(self, device: _Device) -> None:
        """Update the id's sniffer and placement from its samples up to ``last_ts`` (once per sample time)."""
        if device.decided_at >= device.last_ts or not device.samples:
            return
        device.decided_at = device.last_ts
        by_sniffer: dict[str, list[float]] = {}
        for _, name, rssi in device.samples:
            by_sniffer.setdefault(name, []).append(rssi)
        medians = {n: _median(v) for n, v in by_sniffer.items()}
        best = max(medians, key=lambda n: (medians[n], n))
        current = device.sniffer
        sniffer = best
        if current is not None and current in medians \
                and medians[best] < medians[current] + self.settings.zone_hysteresis_db:
            sniffer = current
        device.sniffer = sniffer
        placed = self.locator.place(medians, sniffer) if self.locator is not None else None
        device.cells = placed[1] if placed is not None else {}
        site = self.sites.get(sniffer)
        zone = site.zone if site is not None else None
        if placed is not None and (self.zone_by_position or zone is None):
            device.zones = placed[0]
        else:
            device.zones = ((zone if zone is not None else UNZONED, 1.0),)

    def _credit(self, device_id: str, device: _Device, upto: float) -> None:
        """Credit ``[credited_until, upto)`` to the id's zones and cells, split at window edges."""
        t = device.credited_until
        if upto <= t or not device.zones or device_id in self.heard_closed \
                or self.staff.is_staff(device_id, until=t):
            device.credited_until = max(t, upto)
            return
        # distinct ids count in their most likely zone on the floor
        inside = [zw for zw in device.zones if zw[0] != OUTSIDE]
        main = max(inside, key=lambda zw: zw[1])[0] if inside else OUTSIDE
        while t < upto:
            ws = window_start(t, self.window_s)
            part_end = min(upto, ws + self.window_s)
            acc = self._acc.setdefault(ws, _Acc())
            dt = part_end - t
            for zone, weight in device.zones:
                if zone != OUTSIDE:
                    acc.seconds[zone] = acc.seconds.get(zone, 0.0) + weight * dt
            if main != OUTSIDE:
                acc.devices.setdefault(main, set()).add(device_id)
            for cell, weight in device.cells.items():
                acc.cells[cell] = acc.cells.get(cell, 0.0) + weight * dt
            t = part_end
        device.credited_until = upto

    def _emit(self, start: float, acc: _Acc) -> ZoneWindow:
        zones = tuple(ZoneDwell(z, round(acc.seconds[z], 3), len(acc.devices.get(z, ()))) for z in sorted(acc.seconds))
        cells: tuple[HeatCell, ...] = ()
        if self.locator is not None:
            locator = self.locator
            cells = tuple(HeatCell(*locator.floor_index(c), *locator.centre(c), round(s, 3))
                          for c, s in sorted(acc.cells.items()) if s >= 0.01)
        return ZoneWindow(start, start + self.window_s, zones, cells)

    def to_json(self) -> str:
        """Everything needed to carry on after a restart, JSON-encoded."""
        return json.dumps({
            "closed_until": self.closed_until,
            "staff": self.staff.to_json(),
            "heard_closed": sorted(self.heard_closed),
            "devices": {d: [v.last_ts, v.credited_until, [list(x) for x in v.samples], v.sniffer,
                            [list(z) for z in v.zones], [[c, w] for c, w in v.cells.items()],
                            v.decided_at if v.decided_at > -math.inf else None] for d, v in self._devices.items()},
            "acc": {repr(ws): {"seconds": a.seconds, "devices": {z: sorted(ids) for z, ids in a.devices.items()},
                               "cells": [[c, s] for c, s in a.cells.items()]} for ws, a in self._acc.items()},
        })

    def load_json(self, text: str) -> None:
        """Restore what ``to_json`` wrote."""
        data = json.loads(text)
        self.closed_until = data["closed_until"]
        self.staff.load_json(data["staff"])
        self.heard_closed = set(data.get("heard_closed", ()))
        self._devices = {}
        for d, (last, credited, samples, sniffer, zones, cells, decided) in data["devices"].items():
            self._devices[d] = _Device(
                float(last), float(credited), deque((float(t), str(n), float(r)) for t, n, r in samples), sniffer,
                tuple((str(z), float(w)) for z, w in zones), {int(c): float(w) for c, w in cells},
                -math.inf if decided is None else float(decided),
            )
        self._acc = {
            float(ws): _Acc(
                {z: float(s) for z, s in a["seconds"].items()},
                {z: set(ids) for z, ids in a["devices"].items()},
                {int(c): float(s) for c, s in a["cells"]},
            )
            for ws, a in data["acc"].items()
        }


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2.0
