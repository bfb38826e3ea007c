"""Fusion of the store's sensors: camera entries calibrate WiFi, till scans give conversion (the floor heatmap and
zone dwell are ``edge.analytics.floormap``).

Pure: numbers in, typed results out; no DB, no I/O, no clock. ``edge.footfall`` feeds it from the
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
* **Dwell histogram**: WiFi visits inside (quick visits and visitors) by estimated stay in fixed bins,
  ``DWELL_BINS_MIN`` (minutes, lower edge inclusive): 0–5, 5–10, 10–15, 15–20, 20–30, 30–45, 45–60, 60–90,
  90–120, 120+; in persons = visits × factor.
"""

import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

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


def transactions(times: Sequence[float], gap_s: float) -> list[tuple[float, float]]:
    """One till's scan times (ascending) as transactions ``(first scan, last scan)``: a scan more than ``gap_s``
    after the previous one starts the next."""
    bursts: list[tuple[float, float]] = []
    for ts in times:
        if bursts and ts - bursts[-1][1] <= gap_s:
            bursts[-1] = (bursts[-1][0], ts)
        else:
            bursts.append((ts, ts))
    return bursts


def count_transactions(times: Sequence[float], gap_s: float, start: float, end: float) -> int:
    """Transactions starting in ``[start, end)`` on one till, from its scan times (ascending; include the scans of
    the ``gap_s`` before ``start`` so a burst running over the window's start is not counted twice)."""
    return sum(1 for first, _ in transactions(times, gap_s) if start <= first < end)


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
