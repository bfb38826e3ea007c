"""The fused tables' rows as typed values: one dataclass per table, with its columns, ``row()`` and ``from_row``.

Built by ``edge.footfall`` (the computation), stored by ``edge.fusion_rollup`` and read back for the reports.
"""

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

HOUR_S = 3600.0


@dataclass(frozen=True, slots=True)
class FootfallWindow:
    """A row of ``agg_footfall``: store traffic, occupancy, visitors and passersby, conversion in one window.

    ``came_in`` is the people who came in (camera entries); ``visitors``/``quick_visits``/``passersby`` are persons
    (WiFi counts × ``persons_factor``), see ``edge.analytics.fusion``.
    """

    window_start: float
    window_end: float
    entries: int | None
    exits: int | None
    occupancy: int | None
    occupancy_mean: float | None
    occupancy_max: int | None
    person_seconds: float
    wifi_visitors: int | None
    wifi_quick: int | None
    wifi_passersby: int | None
    persons_factor: float
    came_in: float
    visitors: float
    quick_visits: float | None
    passersby: float | None
    capture_rate: float | None
    transactions: int | None
    conversion: float | None
    entrances: tuple[str, ...]

    COLUMNS: ClassVar[tuple[str, ...]] = (
        "window_start", "window_end", "entries", "exits", "occupancy", "occupancy_mean", "occupancy_max",
        "person_seconds", "wifi_visitors", "wifi_quick", "wifi_passersby", "persons_factor", "came_in", "visitors",
        "quick_visits", "passersby", "capture_rate", "transactions", "conversion", "entrances_json")

    def row(self) -> tuple[object, ...]:
        """Values in ``COLUMNS`` order."""
        return (self.window_start, self.window_end, self.entries, self.exits, self.occupancy, self.occupancy_mean,
                self.occupancy_max, self.person_seconds, self.wifi_visitors, self.wifi_quick, self.wifi_passersby,
                self.persons_factor, self.came_in, self.visitors, self.quick_visits, self.passersby,
                self.capture_rate, self.transactions, self.conversion, json.dumps(list(self.entrances)))

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> "FootfallWindow":
        """The inverse of ``row``."""
        values = list(row)
        values[-1] = tuple(json.loads(values[-1]))
        return cls(*values)


@dataclass(frozen=True, slots=True)
class DwellWindow:
    """A row of ``agg_dwell``: WiFi visits inside that started in the window, by dwell bin, and in persons."""

    window_start: float
    window_end: float
    wifi_visits: int
    mean_dwell_s: float | None
    visits: dict[str, int]
    persons: dict[str, float]

    COLUMNS: ClassVar[tuple[str, ...]] = (
        "window_start", "window_end", "wifi_visits", "mean_dwell_s", "visits_json", "persons_json")

    def row(self) -> tuple[object, ...]:
        """Values in ``COLUMNS`` order."""
        return (self.window_start, self.window_end, self.wifi_visits, self.mean_dwell_s, json.dumps(self.visits),
                json.dumps(self.persons))

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> "DwellWindow":
        """The inverse of ``row``."""
        start, end, count, mean, visits, persons = row
        return cls(start, end, count, mean, json.loads(visits), json.loads(persons))


@dataclass(frozen=True, slots=True)
class ZoneWindow:
    """A row of ``agg_zone_dwell``: person-seconds in one zone in one window, its share, and the WiFi input."""

    window_start: float
    window_end: float
    zone: str
    person_seconds: float
    share: float | None
    device_seconds: float | None

    COLUMNS: ClassVar[tuple[str, ...]] = (
        "window_start", "window_end", "zone", "person_seconds", "share", "device_seconds")

    def row(self) -> tuple[object, ...]:
        """Values in ``COLUMNS`` order."""
        return (self.window_start, self.window_end, self.zone, self.person_seconds, self.share, self.device_seconds)


@dataclass(frozen=True, slots=True)
class HeatWindow:
    """A row of ``agg_floor_heat``: the fused floor heatmap of one window, sparse, with its sources' shares."""

    window_start: float
    window_end: float
    cell_m: float
    nx: int
    ny: int
    cells: tuple[tuple[int, float], ...]
    person_seconds: float
    camera_seconds: float
    wifi_seconds: float
    till_seconds: float

    COLUMNS: ClassVar[tuple[str, ...]] = (
        "window_start", "window_end", "cell_m", "nx", "ny", "cells_json", "person_seconds", "camera_seconds",
        "wifi_seconds", "till_seconds")

    def row(self) -> tuple[object, ...]:
        """Values in ``COLUMNS`` order."""
        return (self.window_start, self.window_end, self.cell_m, self.nx, self.ny,
                json.dumps([list(c) for c in self.cells], separators=(",", ":")), self.person_seconds,
                self.camera_seconds, self.wifi_seconds, self.till_seconds)

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> "HeatWindow":
        """The inverse of ``row``."""
        start, end, cell_m, nx, ny, cells, total, camera, wifi, tills = row
        return cls(start, end, cell_m, nx, ny, tuple((int(i), float(v)) for i, v in json.loads(cells)), total,
                   camera, wifi, tills)


@dataclass(frozen=True, slots=True)
class HourFusion:
    """One store-local hour: its factor and conversion (a row of ``agg_store_hours``) and its windows."""

    hour_start: float
    entries: int | None
    wifi_inside: int | None
    factor_raw: float | None
    persons_factor: float
    factor_weight: float
    transactions: int | None
    conversion: float | None
    footfall: tuple[FootfallWindow, ...]
    dwell: tuple[DwellWindow, ...]
    zones: tuple[ZoneWindow, ...]
    heat: tuple[HeatWindow, ...]
    final: bool = True

    COLUMNS: ClassVar[tuple[str, ...]] = (
        "window_start", "window_end", "entries", "wifi_inside", "factor_raw", "persons_factor", "factor_weight",
        "transactions", "conversion")

    def row(self) -> tuple[object, ...]:
        """Values in ``COLUMNS`` order."""
        return (self.hour_start, self.hour_start + HOUR_S, self.entries, self.wifi_inside, self.factor_raw,
                self.persons_factor, self.factor_weight, self.transactions, self.conversion)
