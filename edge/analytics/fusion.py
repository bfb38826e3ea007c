"""Fusion of the store's sensors: camera entries calibrate WiFi, till scans give conversion, layers make one heatmap.

Pure: numbers and arrays in, typed results out; no DB, no I/O, no clock. ``edge.footfall`` feeds it from the
store's tables and the fusion job (``edge.fusion_rollup``) and the reports share it, so HQ and the manager's report
see the same numbers. The rules:

* **WiFi visits by dwell**: the visits of stable devices (``wifi_visits``) that *started* in a window are split by
  dwell: a span from first to last probe burst shorter than ``passerby_max_s`` (default 60 s) is a passerby walking
  past the front; the others are inside, and their *stay* decides between a quick visit (under the visitor
  minimum, ``wifi.visits.visitor_min_s``, 5 min) and a visitor. A phone is only heard when it probes, so the span
  of a visit misses the time before its first and after its last burst: ``n`` bursts spread evenly over a stay
  ``L`` span ``L·(n−1)/(n+1)`` on average, so the stay is estimated as ``span·(n+1)/(n−1)`` (``stay_estimate``;
  the span itself for one burst). Quick visits are split off because the camera counts them as entries: left
  among the passersby they would inflate both the factor and the passersby by the quick-visit share.
* **Persons factor** (persons per WiFi device inside, per store-local hour): the raw ratio of an hour is camera
  entries ÷ WiFi visits inside (visitors + quick visits, i.e. the WiFi visitors of the hour counted with the same
  ruler as the camera's entries). It is smoothed as a ratio of exponentially weighted sums over the last
  ``lookback_h`` hours, this one included, with a prior::

      factor_h = (Σ_j w_j·entries_j + W0·prior) / (Σ_j w_j·inside_j + W0),   w_j = 0.5 ** ((h − j) / halflife_h)

  An hour with fewer than ``min_visitors`` WiFi visits inside, or without camera data, is left out (a quiet hour
  cannot swing the factor), and with no usable hour the factor is the prior. It only looks back, so an hour's
  factor is final once the hour is, and a late row changes at most the ``lookback_h`` hours after it.
* **Passerby detection**: a passer is in earshot for seconds, so many passing phones never probe there; the factor,
  calibrated on shoppers who stay long enough to be heard, would count only the heard ones. The probe bursts of
  the heard passerby visits tell how many were missed: bursts in earshot are Poisson with mean ``μ``, and a heard
  visit has ``μ / (1 − e^−μ)`` of them on average (zero-truncated), so the mean bursts per heard passerby visit
  gives ``μ`` and the share heard ``p = 1 − e^−μ`` (``detection_share``, at least ``MIN_DETECTION``). Bursts and
  visits are pooled over the factor's look-back with its weights; with fewer than ``min_visitors`` passerby
  visits there, no correction (``p`` = 1).
* **Visitors, quick visits and passersby (persons)**: with a camera, its entries are split by the WiFi's
  *visitor share* (visitors ÷ visits inside, pooled over the factor's look-back with its weights: WiFi measures the
  proportion, the camera the count) into visitors and quick visits; without a camera (or with fewer than
  ``min_visitors`` visits inside in the look-back), each WiFi count × the factor. Passersby are the WiFi count ×
  the factor ÷ ``p`` (the passers' phones are assumed to be the same mix as the shoppers'). Without WiFi,
  visitors = camera entries and the rest is unknown.
  Capture rate = people who came in ÷ (people who came in + passersby), people who came in being the camera's
  entries (WiFi visits inside × factor without a camera).
* **Transactions**: on each till, a scan more than ``gap_s`` after the previous scan on that till starts a
  transaction; a transaction belongs to the window of its first scan. Conversion = transactions ÷ entries.
* **Person-seconds on the floor** (``T``): the stores' occupancy (Σ over entrance cameras of in − out) integrated
  over time, trapezoid between window ends. Without a camera, the WiFi presence estimate × window length.
* **Fused floor heatmap** (person-seconds per cell of the floor grid, origin at the floor's corner): where a
  camera sees (its grid's rectangle), the camera's person-seconds; elsewhere the WiFi layer's device-seconds,
  rescaled so the whole grid sums to ``T``: the rest ``max(0, T − camera seconds in view)`` is spread over the
  cells the camera does not see in proportion to WiFi. The camera is exact where it looks; WiFi says where the
  rest of the people were; the camera's occupancy says how many. Overlapping cameras: the larger value per cell.
* **Tills**: a till scanner with a ``position`` (where the customer pays) holds one person from each transaction's
  first scan until ``till_pay_s`` after its last, or until the next transaction's first scan if sooner
  (``till_seconds``). Those person-seconds are taken out of the WiFi-placed seconds of the zone holding the till
  (the WiFi layer saw the same customers, blurred around the checkout) and put on the till's cell (``place_tills``),
  so the zones' totals do not change and the till shows as the hot spot it is.
* **Zone dwell (persons)**: the fused grid summed over each zone (a cell belongs to the first zone containing its
  centre). Without WiFi cells (sniffers without positions), the WiFi zone device-seconds are scaled so that the
  zones sum to ``T``: the same shares, in person-seconds.
* **Dwell histogram**: WiFi visits inside (quick visits and visitors) by estimated stay in fixed bins,
  ``DWELL_BINS_MIN`` (minutes, lower edge inclusive): 0–5, 5–10, 10–15, 15–20, 20–30, 30–45, 45–60, 60–90,
  90–120, 120+; in persons = visits × factor.
"""

import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]
Mask = npt.NDArray[np.bool_]
Polygon = Sequence[tuple[float, float]]

DWELL_BINS_MIN: tuple[int, ...] = (0, 5, 10, 15, 20, 30, 45, 60, 90, 120)
"""Lower edges of the dwell histogram's bins in minutes; the last bin is open-ended."""


def dwell_bin_labels() -> tuple[str, ...]:
    """``('0-5', '5-10', ..., '90-120', '120+')``."""
    edges = DWELL_BINS_MIN
    return (*(f"{lo}-{hi}" for lo, hi in itertools.pairwise(edges)), f"{edges[-1]}+")


def dwell_histogram(dwells_s: Iterable[float]) -> dict[str, int]:
    """Visits per dwell bin (every bin present, zeros included)."""
    labels = dwell_bin_labels()
    counts = dict.fromkeys(labels, 0)
    for dwell in dwells_s:
        minutes = max(0.0, dwell) / 60.0
        index = next(i for i in range(len(DWELL_BINS_MIN) - 1, -1, -1) if minutes >= DWELL_BINS_MIN[i])
        counts[labels[index]] += 1
    return counts


# -- the persons factor ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HourCounts:
    """What one hour gives the factor: camera entries (``None`` without camera data), WiFi visits inside, and the
    hour's WiFi passerby visits with their probe bursts (for the passerby detection share)."""

    hour_start: float
    entries: int | None
    wifi_inside: int | None
    passers: int = 0
    passer_bursts: int = 0
    wifi_visitors: int = 0


@dataclass(frozen=True, slots=True)
class FactorEstimate:
    """The factor of one hour: ``raw`` = entries ÷ WiFi visits inside of the hour alone (``None`` when not usable),
    ``factor`` the smoothed value, ``weight`` the weighted WiFi visits behind it (the prior not counted), and
    ``detection`` the share of passing phones heard (``None``: too few passerby visits to tell)."""

    hour_start: float
    raw: float | None
    factor: float
    weight: float
    detection: float | None = None
    visitor_share: float | None = None


@dataclass(frozen=True, slots=True)
class FactorSettings:
    """The smoother's knobs (``TrafficAnalytics``'s ``factor_*`` fields)."""

    prior: float = 2.0
    prior_weight: float = 10.0
    halflife_h: float = 3.0
    lookback_h: int = 12
    min_visitors: int = 5


def _usable(hour: HourCounts, min_visitors: int) -> bool:
    return hour.entries is not None and hour.wifi_inside is not None and hour.wifi_inside >= min_visitors


def persons_factors(hours: Sequence[HourCounts], settings: FactorSettings) -> list[FactorEstimate]:
    """The smoothed factor of every hour (see the module docstring), in the order given (hour starts ascending)."""
    out: list[FactorEstimate] = []
    for i, hour in enumerate(hours):
        num = den = passers = bursts = visitors = inside = 0.0
        for past in hours[: i + 1]:
            age_h = (hour.hour_start - past.hour_start) / 3600.0
            if age_h >= settings.lookback_h:
                continue
            weight = 0.5 ** (age_h / settings.halflife_h)
            passers += weight * past.passers
            bursts += weight * past.passer_bursts
            visitors += weight * past.wifi_visitors
            inside += weight * (past.wifi_inside or 0)
            if not _usable(past, settings.min_visitors):
                continue
            num += weight * float(past.entries or 0)
            den += weight * float(past.wifi_inside or 0)
        total = den + settings.prior_weight
        factor = (num + settings.prior_weight * settings.prior) / total if total > 0 else settings.prior
        raw = (hour.entries or 0) / hour.wifi_inside if _usable(hour, settings.min_visitors) and hour.wifi_inside \
            else None
        detection = detection_share(bursts / passers) if passers >= settings.min_visitors else None
        share = visitors / inside if inside >= settings.min_visitors else None
        out.append(FactorEstimate(hour.hour_start, raw, factor, den, detection, share))
    return out


MIN_DETECTION = 0.05
"""The passerby detection share is not taken below this (a mean of barely one burst per visit says little)."""


def detection_share(mean_bursts: float) -> float:
    """Share of passing phones heard at least once, from the mean probe bursts per heard visit (zero-truncated
    Poisson: ``mean = μ / (1 − e^−μ)``, solved for ``μ`` by bisection; ``p = 1 − e^−μ``)."""
    if mean_bursts <= 1.0:
        return MIN_DETECTION
    lo, hi = 1e-9, 100.0
    for _ in range(100):
        mu = (lo + hi) / 2.0
        if mu / -math.expm1(-mu) < mean_bursts:
            lo = mu
        else:
            hi = mu
    return max(MIN_DETECTION, -math.expm1(-lo))


def stay_estimate(span_s: float, bursts: int) -> float:
    """A visit's stay from the span between its first and last of ``bursts`` probe bursts (see the docstring)."""
    return span_s * (bursts + 1) / (bursts - 1) if bursts >= 2 else span_s


# -- visitors, passersby, conversion -----------------------------------------------------------------------------


def ratio(numerator: float, denominator: float | None) -> float | None:
    """``numerator ÷ denominator``, ``None`` when the denominator is missing or not positive."""
    return numerator / denominator if denominator is not None and denominator > 0 else None


def capture_rate(came_in: float, passersby: float | None) -> float | None:
    """Came in ÷ (came in + passersby); ``None`` without passersby data or when both are 0."""
    return None if passersby is None else ratio(came_in, came_in + passersby)


@dataclass(frozen=True, slots=True)
class WifiVisits:
    """WiFi visits of stable devices that started in a window, split by dwell (see the module docstring)."""

    visitors: int
    quick: int
    passersby: int

    @classmethod
    def split(cls, visits: Iterable[tuple[float, int]], passerby_max_s: float, visitor_min_s: float) -> "WifiVisits":
        """Count visits ``(span_s, bursts)``: span < ``passerby_max_s`` passersby; else by ``stay_estimate``,
        < ``visitor_min_s`` quick, else visitors."""
        counts = [0, 0, 0]
        for span, bursts in visits:
            counts[2 if span < passerby_max_s else 0 if stay_estimate(span, bursts) >= visitor_min_s else 1] += 1
        return cls(*counts)

    @property
    def inside(self) -> int:
        """Visits inside the store: visitors and quick visits."""
        return self.visitors + self.quick


@dataclass(frozen=True, slots=True)
class Persons:
    """One window in persons: who came in, visitors, quick visits, passersby, and the capture rate."""

    came_in: float
    visitors: float
    quick: float | None
    passersby: float | None
    capture_rate: float | None


def persons(entries: int | None, wifi: WifiVisits | None, factor: float, detection: float | None = None,
            visitor_share: float | None = None) -> Persons:
    """People who came in (the camera's entries when there is a camera), split by the visitor share when known,
    else each WiFi count × factor; passersby × factor ÷ the detection share (see the module docstring)."""
    if wifi is None:
        came_in = float(entries or 0)
        return Persons(came_in, came_in, None, None, None)
    came_in = float(entries) if entries is not None else wifi.inside * factor
    passersby = wifi.passersby * factor / (detection or 1.0)
    if entries is not None and visitor_share is not None:
        visitors, quick = came_in * visitor_share, came_in * (1.0 - visitor_share)
    else:
        visitors, quick = wifi.visitors * factor, wifi.quick * factor
    return Persons(came_in, visitors, quick, passersby, capture_rate(came_in, passersby))


def count_transactions(times: Sequence[float], gap_s: float, start: float, end: float) -> int:
    """Transactions starting in ``[start, end)`` on one till, from its scan times (ascending; include the scans of
    the ``gap_s`` before ``start`` so a burst running over the window's start is not counted twice)."""
    count = 0
    previous: float | None = None
    for ts in times:
        if start <= ts < end and (previous is None or ts - previous > gap_s):
            count += 1
        previous = ts
    return count


# -- occupancy ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OccupancySample:
    """One camera window: running occupancy at its end, its peak within, and whether it reset (closing time)."""

    window_start: float
    window_end: float
    occupancy: int
    occupancy_max: int
    resets: int = 0


@dataclass(frozen=True, slots=True)
class Occupancy:
    """Store occupancy over a period: at its end, mean, peak, and person-seconds (the integral)."""

    end: int
    mean: float
    peak: int
    person_seconds: float


def store_occupancy(cameras: Mapping[str, Sequence[OccupancySample]],
                    before: Mapping[str, OccupancySample], start: float, end: float) -> Occupancy | None:
    """Σ over cameras of occupancy in ``[start, end)`` (``None`` when no camera has a window there).

    Each camera window adds the trapezoid between the occupancy at its start (the previous contiguous window's
    end; ``before`` holds each camera's window just before ``start``) and at its end. The peak is the largest
    Σ of the cameras' per-window peaks (exact for one entrance camera, an upper bound for several).
    """
    person_seconds = 0.0
    by_slot: dict[float, list[int]] = {}
    last_end: dict[str, tuple[float, int]] = {}
    seen = False
    for name, samples in cameras.items():
        previous = before.get(name)
        for sample in samples:
            if not start <= sample.window_start < end:
                previous = sample
                continue
            seen = True
            contiguous = previous is not None and abs(previous.window_end - sample.window_start) < 1e-6
            at_start = previous.occupancy if contiguous and previous is not None and not sample.resets \
                else sample.occupancy
            person_seconds += (at_start + sample.occupancy) / 2.0 * (sample.window_end - sample.window_start)
            slot = by_slot.setdefault(sample.window_start, [0, 0])
            slot[0] += sample.occupancy
            slot[1] += sample.occupancy_max
            if name not in last_end or sample.window_end > last_end[name][0]:
                last_end[name] = (sample.window_end, sample.occupancy)
            previous = sample
    if not seen:
        return None
    peak = max(slot[1] for slot in by_slot.values())
    return Occupancy(end=sum(occ for _, occ in last_end.values()), mean=person_seconds / (end - start),
                     peak=peak, person_seconds=person_seconds)


# -- floor grids and heatmaps -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Grid:
    """The shared floor grid: ``nx`` × ``ny`` cells of ``cell_m`` from the floor's corner (0, 0).

    Arrays on it have shape ``(ny, nx)`` (row = y); a flat index is ``iy * nx + ix``.
    """

    cell_m: float
    nx: int
    ny: int

    @classmethod
    def for_floor(cls, width_m: float, depth_m: float, cell_m: float) -> "Grid":
        """The grid covering a ``width_m`` × ``depth_m`` floor."""
        return cls(cell_m, max(1, math.ceil(width_m / cell_m - 1e-9)), max(1, math.ceil(depth_m / cell_m - 1e-9)))

    def zeros(self) -> F64:
        """An empty layer."""
        return np.zeros((self.ny, self.nx), dtype=np.float64)

    def centres(self) -> tuple[F64, F64]:
        """x and y of every cell's centre, as two ``(ny, nx)`` arrays."""
        xs = (np.arange(self.nx) + 0.5) * self.cell_m
        ys = (np.arange(self.ny) + 0.5) * self.cell_m
        gx, gy = np.meshgrid(xs, ys)
        return gx, gy


def bin_points(grid: Grid, xs: npt.ArrayLike, ys: npt.ArrayLike, values: npt.ArrayLike) -> F64:
    """Add each value at the cell holding its point; points off the floor are dropped."""
    x = np.asarray(xs, dtype=np.float64).ravel()
    y = np.asarray(ys, dtype=np.float64).ravel()
    v = np.asarray(values, dtype=np.float64).ravel()
    ix = np.floor(x / grid.cell_m).astype(np.int64)
    iy = np.floor(y / grid.cell_m).astype(np.int64)
    keep = (ix >= 0) & (ix < grid.nx) & (iy >= 0) & (iy < grid.ny)
    out = grid.zeros()
    np.add.at(out, (iy[keep], ix[keep]), v[keep])
    return out


def rect_mask(grid: Grid, x0: float, y0: float, x1: float, y1: float) -> Mask:
    """Cells whose centre lies in the rectangle ``[x0, x1) × [y0, y1)``."""
    gx, gy = grid.centres()
    return np.asarray((gx >= x0) & (gx < x1) & (gy >= y0) & (gy < y1), dtype=np.bool_)


def points_in_polygon(xs: F64, ys: F64, polygon: Polygon) -> Mask:
    """Element-wise even-odd point-in-polygon test."""
    inside = np.zeros(np.shape(xs), dtype=np.bool_)
    for (xi, yi), (xj, yj) in zip(polygon, [*polygon[-1:], *polygon[:-1]], strict=True):
        straddles = (yi > ys) != (yj > ys)
        with np.errstate(divide="ignore", invalid="ignore"):
            crossing = (xj - xi) * (ys - yi) / (yj - yi) + xi
        inside ^= straddles & (xs < crossing)
    return inside


def zone_masks(grid: Grid, zones: Sequence[tuple[str, Polygon]]) -> dict[str, Mask]:
    """Each zone's cells: a cell belongs to the first zone that contains its centre."""
    gx, gy = grid.centres()
    taken = np.zeros((grid.ny, grid.nx), dtype=np.bool_)
    masks: dict[str, Mask] = {}
    for name, polygon in zones:
        mask = points_in_polygon(gx, gy, polygon) & ~taken
        taken |= mask
        masks[name] = mask
    return masks


@dataclass(frozen=True, slots=True)
class FusedHeat:
    """The fused layer and where its person-seconds came from: ``camera`` seconds in view, ``wifi`` seconds
    placed by the WiFi layer, ``unplaced`` seconds of the total that had no WiFi cell to go to."""

    values: F64
    camera: float
    wifi: float
    unplaced: float


def fuse_heat(camera: F64, coverage: Mask, wifi: F64, total: float) -> FusedHeat:
    """Camera where it sees; elsewhere WiFi, rescaled so the grid sums to ``total`` person-seconds."""
    seen = np.where(coverage, camera, 0.0)
    in_view = float(seen.sum())
    rest = max(0.0, total - in_view)
    elsewhere = np.where(coverage, 0.0, np.clip(wifi, 0.0, None))
    weight = float(elsewhere.sum())
    if weight <= 0.0 or rest <= 0.0:
        return FusedHeat(seen, in_view, 0.0, rest)
    return FusedHeat(seen + elsewhere * (rest / weight), in_view, rest, 0.0)


def till_seconds(times: Sequence[float], gap_s: float, pay_s: float, start: float, end: float) -> float:
    """Person-seconds at one till in ``[start, end)`` from its scan times (ascending; include the scans of the
    ``gap_s`` before ``start``): each transaction from its first scan to ``pay_s`` after its last, cut at the next
    transaction's first scan."""
    bursts: list[list[float]] = []
    for ts in times:
        if bursts and ts - bursts[-1][1] <= gap_s:
            bursts[-1][1] = ts
        else:
            bursts.append([ts, ts])
    total = 0.0
    for i, (first, last) in enumerate(bursts):
        stop = last + pay_s if i + 1 == len(bursts) else min(last + pay_s, bursts[i + 1][0])
        total += max(0.0, min(stop, end) - max(first, start))
    return total


def place_tills(fused: FusedHeat, coverage: Mask, masks: Mapping[str, Mask],
                tills: Sequence[tuple[tuple[int, int], float]]) -> tuple[FusedHeat, float]:
    """Move the tills' person-seconds (``((iy, ix), seconds)`` each) out of the WiFi-placed cells of their zone,
    in proportion, onto the tills' cells; returns the new layer and the seconds placed at tills. A zone gives at
    most what WiFi placed in it (its tills then share that in proportion to their seconds)."""
    values = fused.values.copy()
    wanted: dict[str, list[tuple[tuple[int, int], float]]] = {}
    for (iy, ix), seconds in tills:
        zone = next((name for name, mask in masks.items() if mask[iy, ix]), None)
        if zone is not None and seconds > 0.0 and not coverage[iy, ix]:
            wanted.setdefault(zone, []).append(((iy, ix), seconds))
    placed = 0.0
    for zone, spots in wanted.items():
        cells = masks[zone] & ~coverage
        available = float(values[cells].sum())
        want = sum(seconds for _, seconds in spots)
        moved = min(want, available)
        if moved <= 0.0:
            continue
        values[cells] *= (available - moved) / available
        for (iy, ix), seconds in spots:
            values[iy, ix] += moved * seconds / want
        placed += moved
    return FusedHeat(values, fused.camera, fused.wifi - placed, fused.unplaced), placed


def zone_seconds(values: F64, masks: Mapping[str, Mask]) -> dict[str, float]:
    """A layer summed over each zone."""
    return {name: float(values[mask].sum()) for name, mask in masks.items()}


def scaled_shares(device_seconds: Mapping[str, float], zones: Sequence[str], total: float) -> dict[str, float]:
    """The zones' WiFi device-seconds rescaled so they sum to ``total`` (0 everywhere when WiFi saw nobody)."""
    known = {zone: max(0.0, device_seconds.get(zone, 0.0)) for zone in zones}
    weight = sum(known.values())
    return {zone: (seconds / weight * total if weight > 0 else 0.0) for zone, seconds in known.items()}


def sparse(values: F64, min_value: float = 0.05, digits: int = 1) -> tuple[tuple[int, float], ...]:
    """Non-negligible cells as ``(flat index, value rounded)`` pairs."""
    flat = values.ravel()
    keep = np.flatnonzero(flat >= min_value)
    return tuple((int(i), round(float(flat[i]), digits)) for i in keep)


def dense(grid: Grid, cells: Iterable[Sequence[float]]) -> F64:
    """A layer from ``[[flat index, value], ...]``."""
    out = grid.zeros().ravel()
    for index, value in cells:
        out[int(index)] += float(value)
    return out.reshape(grid.ny, grid.nx)


def block_sum(values: F64, factor: int) -> F64:
    """Coarsen a layer by summing ``factor`` × ``factor`` blocks (edges padded with zeros)."""
    if factor <= 1:
        return values
    ny, nx = values.shape
    padded = np.zeros((math.ceil(ny / factor) * factor, math.ceil(nx / factor) * factor), dtype=np.float64)
    padded[:ny, :nx] = values
    blocks = padded.reshape(padded.shape[0] // factor, factor, padded.shape[1] // factor, factor)
    return np.asarray(blocks.sum(axis=(1, 3)), dtype=np.float64)


def heatmap_correlation(estimate: npt.ArrayLike, truth: npt.ArrayLike, mask: npt.ArrayLike | None = None) -> float:
    """Pearson correlation of two layers on the same grid (optionally only the cells in ``mask``).

    0.0 when either layer is constant (nothing to correlate). Compare on a grid as coarse as the question: WiFi
    placement is smooth at the 0.5 m scale, so ``block_sum`` both layers to 1–2 m cells for a floor-level
    comparison.
    """
    a = np.asarray(estimate, dtype=np.float64)
    b = np.asarray(truth, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"layers differ in shape: {a.shape} vs {b.shape}")
    if mask is not None:
        keep = np.asarray(mask, dtype=np.bool_)
        a, b = a[keep], b[keep]
    a, b = a.ravel(), b.ravel()
    if a.size < 2 or float(a.std()) == 0.0 or float(b.std()) == 0.0:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])
