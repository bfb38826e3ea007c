"""One store-local day of fused traffic: per hour, totals, the occupancy curve, dwell, zones and the fused heatmap.

Closed hours come from the fusion job's tables (what HQ received); hours it has not closed yet are computed now
from the same inputs with the same code and marked provisional (``final = False``).
"""

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from edge.analytics import floormap, fusion
from edge.config.models import EdgeConfig
from edge.footfall import HOUR_S, HourFusion, Setup, hours_between, load_hours


@dataclass(frozen=True, slots=True)
class Line:
    """One row of the traffic table (an hour, or the day's totals): camera counts, then persons (see
    ``edge.analytics.fusion``): who came in, visitors (stayed at least the visitor minimum), quick visits,
    passersby."""

    label: str
    start: float
    entries: int | None
    exits: int | None
    peak_occupancy: int | None
    came_in: float
    visitors: float
    quick_visits: float | None
    passersby: float | None
    capture_rate: float | None
    transactions: int | None
    conversion: float | None
    persons_factor: float | None
    person_seconds: float
    final: bool

    def as_json(self) -> dict[str, object]:
        """The row as ``edge traffic --json`` prints it."""
        return {"hour": self.label, "start": self.start, "in": self.entries, "out": self.exits,
                "peak_occupancy": self.peak_occupancy, "came_in": round(self.came_in, 1),
                "visitors": round(self.visitors, 1), "quick_visits": _round(self.quick_visits),
                "passersby": _round(self.passersby),
                "capture_rate": self.capture_rate, "transactions": self.transactions, "conversion": self.conversion,
                "persons_factor": self.persons_factor, "person_seconds": round(self.person_seconds, 1),
                "final": self.final}


@dataclass(frozen=True, slots=True)
class ZoneLine:
    """A zone's person-seconds over the day, its share, and the people there on average over the open hours."""

    zone: str
    person_seconds: float
    share: float | None
    mean_people: float


@dataclass(frozen=True, slots=True)
class DayReport:
    """Everything the day's reports show."""

    store_id: str
    day: date
    timezone: str
    start: float
    end: float
    hours: tuple[Line, ...]
    totals: Line
    curve: tuple[tuple[float, float | None, int | None], ...]
    dwell_visits: dict[str, int]
    dwell_persons: dict[str, float]
    mean_dwell_s: float | None
    time_in_store_s: float | None
    zones: tuple[ZoneLine, ...]
    heat: floormap.F64
    grid: floormap.Grid
    final: bool

    @property
    def busiest(self) -> Line | None:
        """The hour in which the most people came in."""
        return max(self.hours, key=lambda h: h.came_in, default=None)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def day_bounds(day: date, setup: Setup) -> tuple[float, float]:
    """Epoch seconds of the store-local day's start and end."""
    start = datetime.combine(day, time(0), tzinfo=setup.tz)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=setup.tz)
    return start.timestamp(), end.timestamp()


def hour_label(ts: float, setup: Setup) -> str:
    """``'09:00'`` in store-local time."""
    return datetime.fromtimestamp(ts, setup.tz).strftime("%H:%M")


def _sum(values: Sequence[int | None]) -> int | None:
    present = [v for v in values if v is not None]
    return sum(present) if present else None


def _fsum(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return sum(present) if present else None


def _line(label: str, start: float, hours: Sequence[HourFusion], factor: float | None) -> Line:
    windows = [w for h in hours for w in h.footfall]
    entries = _sum([w.entries for w in windows])
    transactions = _sum([w.transactions for w in windows])
    came_in = sum(w.came_in for w in windows)
    passersby = _fsum([w.passersby for w in windows])
    peaks = [w.occupancy_max for w in windows if w.occupancy_max is not None]
    conversion = fusion.ratio(transactions, came_in) if transactions is not None else None
    capture = fusion.capture_rate(came_in, passersby)
    return Line(label, start, entries, _sum([w.exits for w in windows]), max(peaks) if peaks else None, came_in,
                sum(w.visitors for w in windows), _fsum([w.quick_visits for w in windows]),
                passersby, None if capture is None else round(capture, 4),
                transactions, None if conversion is None else round(conversion, 4), factor,
                sum(w.person_seconds for w in windows), all(h.final for h in hours))


def _active(hour: HourFusion) -> bool:
    return any((w.entries or 0) + (w.exits or 0) + (w.transactions or 0) + (w.wifi_visitors or 0)
               + (w.wifi_passersby or 0) > 0 or w.person_seconds > 0 for w in hour.footfall)


def build_day(setup: Setup, day: date, hours: Sequence[HourFusion]) -> DayReport:
    """Assemble the day from its hours (hours without any activity are left out of the table)."""
    start, end = day_bounds(day, setup)
    active = [h for h in hours if _active(h)]
    lines = tuple(_line(hour_label(h.hour_start, setup), h.hour_start, [h], h.persons_factor) for h in active)
    totals = _line("total", start, active, None)
    windows = [w for h in active for w in h.footfall]
    curve = tuple((w.window_start, w.occupancy_mean, w.occupancy_max) for w in windows)
    labels = fusion.dwell_bin_labels()
    visits = {label: sum(d.visits.get(label, 0) for h in active for d in h.dwell) for label in labels}
    persons = {label: round(sum(d.persons.get(label, 0.0) for h in active for d in h.dwell), 1) for label in labels}
    counted = sum(d.wifi_visits for h in active for d in h.dwell)
    weighted = sum((d.mean_dwell_s or 0.0) * d.wifi_visits for h in active for d in h.dwell)
    zone_seconds: dict[str, float] = dict.fromkeys(setup.zones, 0.0)
    for h in active:
        for z in h.zones:
            zone_seconds[z.zone] = zone_seconds.get(z.zone, 0.0) + z.person_seconds
    zone_total = sum(zone_seconds.values())
    seconds_open = max(HOUR_S, len(active) * HOUR_S)
    zones = tuple(ZoneLine(name, round(s, 1), None if zone_total <= 0 else round(s / zone_total, 4),
                           round(s / seconds_open, 2)) for name, s in zone_seconds.items())
    heat = setup.grid.zeros()
    for h in active:
        for w in h.heat:
            heat += floormap.dense(setup.grid, w.cells)
    time_in_store = fusion.ratio(totals.person_seconds, totals.came_in)
    return DayReport(setup.store_id, day, str(setup.tz), start, end, lines, totals, curve, visits, persons,
                     weighted / counted if counted else None, time_in_store, zones, heat, setup.grid,
                     all(h.final for h in active))


def load_day(conn: sqlite3.Connection, config: EdgeConfig, day: date) -> DayReport:
    """The store-local day ``day`` from the database (read-only)."""
    setup = Setup.from_config(config)
    start, end = day_bounds(day, setup)
    return build_day(setup, day, load_hours(conn, setup, hours_between(setup, start, end)))
