"""Fused footfall per store-local hour, from the store's aggregate tables: read the inputs, run the fusion, read back.

``compute_hours`` only reads (camera windows, WiFi windows and visits, till scans) and returns typed results built
by ``edge.analytics.fusion`` and ``edge.analytics.floormap``; the fusion job (``edge.fusion_rollup``) stores them for
HQ and ``stored_hours`` reads them back, so the CLI reports show what HQ received for closed hours and the same
computation for the rest.
Hours are store-local (a half-hour time zone has hours starting at :30 UTC); windows of ``traffic.window_s`` tile
each hour; an input window belongs to the fused window holding its start.
"""

import json
import math
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from edge import const
from edge.analytics import floormap, fusion
from edge.config.models import EdgeConfig
from edge.footfall_rows import HOUR_S, DwellWindow, FootfallWindow, HeatWindow, HourFusion, ZoneWindow

__all__ = ["HOUR_S", "DwellWindow", "FootfallWindow", "HeatWindow", "HourFusion", "Setup", "ZoneWindow",
           "compute_hours", "hours_between", "load_hours", "stored_hours"]


@dataclass(frozen=True, slots=True)
class Setup:
    """What the fusion needs from the config, resolved once."""

    store_id: str
    tz: ZoneInfo
    window_s: int
    cameras: tuple[str, ...]
    inner_lines: frozenset[tuple[str, str]]
    wifi: bool
    tills: tuple[str, ...]
    gap_s: float
    passerby_max_s: float
    visitor_min_s: float
    factor: fusion.FactorSettings
    grid: floormap.Grid
    zones: tuple[str, ...]
    masks: dict[str, floormap.Mask] = field(repr=False)
    till_cells: dict[str, tuple[int, int]] = field(default_factory=dict)  # till → (iy, ix) where customers pay
    till_pay_s: float = 30.0

    @classmethod
    def from_config(cls, config: EdgeConfig) -> "Setup":
        """Resolve the config: devices by kind, entrance lines, the floor grid and its zone masks."""
        traffic, plan = config.traffic, config.floor_plan
        devices = config.enabled_devices()
        cameras = tuple(d.name for d in devices if d.type == "camera")
        inner = frozenset((d.name, str(getattr(line, "name", ""))) for d in devices if d.type == "camera"
                          for line in getattr(d, "lines", ()) if not getattr(line, "entrance", True))
        grid = floormap.Grid.for_floor(plan.width_m, plan.depth_m, traffic.heatmap_cell_m)
        factor = fusion.FactorSettings(traffic.factor_prior, traffic.factor_prior_weight, traffic.factor_halflife_h,
                                       traffic.factor_lookback_h, traffic.factor_min_visitors)
        paying = {d.name: getattr(d, "position", None) for d in devices if d.name in traffic.tills}
        till_cells = {name: (int(p[1] // grid.cell_m), int(p[0] // grid.cell_m)) for name, p in paying.items()
                      if p is not None and 0 <= p[0] < grid.nx * grid.cell_m and 0 <= p[1] < grid.ny * grid.cell_m}
        return cls(config.store_id, ZoneInfo(config.timezone), traffic.window_s, cameras, inner,
                   any(d.type == "wifi_probe" for d in devices), tuple(traffic.tills), traffic.transaction_gap_s,
                   traffic.passerby_max_s, config.wifi.visits.visitor_min_s, factor, grid,
                   tuple(z.name for z in plan.zones),
                   floormap.zone_masks(grid, [(z.name, z.polygon) for z in plan.zones]), till_cells, traffic.till_pay_s)

    def hour_start(self, ts: float) -> float:
        """Start (epoch seconds) of the store-local hour holding ``ts``."""
        offset = datetime.fromtimestamp(ts, UTC).astimezone(self.tz).utcoffset()
        off = offset.total_seconds() if offset is not None else 0.0
        return math.floor((ts + off) / HOUR_S) * HOUR_S - off

    def windows(self, hour: float) -> list[float]:
        """Starts of the fused windows of one hour."""
        return [hour + i * self.window_s for i in range(int(HOUR_S // self.window_s))]


# -- reading inputs ----------------------------------------------------------------------------------------------


def _r(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(float(value), digits)


def _sum_or_none(values: Iterable[int | None]) -> int | None:
    present = [v for v in values if v is not None]
    return sum(present) if present else None


def hour_counts(conn: sqlite3.Connection, setup: Setup, first: float, last: float) -> list[fusion.HourCounts]:
    """Camera entries and WiFi visits inside of every hour from ``first`` to ``last`` (hour starts, inclusive)."""
    end = last + HOUR_S
    entries: dict[float, int] = {}
    for start, count in conn.execute(
            f"SELECT window_start, sum(entries) FROM {const.TABLE_AGG_OCCUPANCY} WHERE window_start >= ? "
            "AND window_start < ? GROUP BY window_start", (first, end)):
        hour = setup.hour_start(float(start))
        entries[hour] = entries.get(hour, 0) + int(count)
    inside: dict[float, int] = {}
    visitors: dict[float, int] = {}
    passers: dict[float, list[int]] = {}
    for start, dwell, bursts in conn.execute(f"SELECT start, dwell_s, bursts FROM {const.TABLE_WIFI_VISITS} "
                                             "WHERE start >= ? AND start < ?", (first, end)):
        hour = setup.hour_start(float(start))
        if float(dwell) < setup.passerby_max_s:
            passers.setdefault(hour, []).append(int(bursts))
            continue
        inside[hour] = inside.get(hour, 0) + 1
        if fusion.stay_estimate(float(dwell), int(bursts)) >= setup.visitor_min_s:
            visitors[hour] = visitors.get(hour, 0) + 1
    hours = [first + i * HOUR_S for i in range(round((last - first) / HOUR_S) + 1)]
    return [fusion.HourCounts(h, entries.get(h), inside.get(h, 0) if setup.wifi else None,
                              len(passers.get(h, ())), sum(passers.get(h, ())), visitors.get(h, 0)) for h in hours]


@dataclass(slots=True)
class _Inputs:
    """One hour's input rows, by window start (fused window) where it matters."""

    occupancy: dict[str, list[fusion.OccupancySample]]
    before: dict[str, fusion.OccupancySample]
    flows: dict[float, list[tuple[int, int]]]
    lines: dict[float, set[str]]
    visits: list[tuple[float, float, int]]
    zones: dict[float, dict[str, float]]
    wifi_cells: dict[float, list[tuple[float, float, float]]]
    camera_rows: list[tuple[float, str, float, float, float, int, int, str]]
    presence: dict[float, float]
    scans: dict[str, list[float]]


def _load(conn: sqlite3.Connection, setup: Setup, hour: float) -> _Inputs:
    end = hour + HOUR_S
    window = setup.window_s

    def slot(ts: float) -> float:
        return hour + math.floor((ts - hour) / window) * window

    occupancy: dict[str, list[fusion.OccupancySample]] = {}
    before: dict[str, fusion.OccupancySample] = {}
    flows: dict[float, list[tuple[int, int]]] = {}
    for camera, start, stop, occ, occ_max, resets, entries, exits in conn.execute(
            f"""SELECT camera, window_start, window_end, occupancy, occupancy_max, occupancy_resets, entries, exits
                FROM {const.TABLE_AGG_OCCUPANCY} WHERE window_start >= ? AND window_start < ?
                ORDER BY camera, window_start""", (hour - 600.0, end)):
        sample = fusion.OccupancySample(float(start), float(stop), int(occ), int(occ_max), int(resets))
        if sample.window_start < hour:
            before[camera] = sample
        else:
            occupancy.setdefault(camera, []).append(sample)
            flows.setdefault(slot(sample.window_start), []).append((int(entries), int(exits)))
    lines: dict[float, set[str]] = {}
    for start, camera, line in conn.execute(
            f"SELECT window_start, camera, line FROM {const.TABLE_AGG_TRAFFIC} WHERE window_start >= ? "
            "AND window_start < ?", (hour, end)):
        if (camera, line) not in setup.inner_lines:
            lines.setdefault(slot(float(start)), set()).add(f"{camera}/{line}")
    visits = [(float(s), float(d), int(b)) for s, d, b in conn.execute(
        f"SELECT start, dwell_s, bursts FROM {const.TABLE_WIFI_VISITS} WHERE start >= ? AND start < ?", (hour, end))]
    zones: dict[float, dict[str, float]] = {}
    for start, zone, seconds in conn.execute(
            f"SELECT window_start, zone, device_seconds FROM {const.TABLE_AGG_ZONES} WHERE window_start >= ? "
            "AND window_start < ?", (hour, end)):
        per = zones.setdefault(slot(float(start)), {})
        per[zone] = per.get(zone, 0.0) + float(seconds)
    cells: dict[float, list[tuple[float, float, float]]] = {}
    for start, x, y, seconds in conn.execute(
            f"SELECT window_start, x, y, device_seconds FROM {const.TABLE_AGG_WIFI_CELLS} WHERE window_start >= ? "
            "AND window_start < ?", (hour, end)):
        cells.setdefault(slot(float(start)), []).append((float(x), float(y), float(seconds)))
    camera_rows = [(float(r[0]), str(r[1]), float(r[2]), float(r[3]), float(r[4]), int(r[5]), int(r[6]), str(r[7]))
                   for r in conn.execute(
                       f"""SELECT window_start, camera, origin_x, origin_y, cell_m, nx, ny, cells_json
                           FROM {const.TABLE_AGG_CAMERA_HEATMAP} WHERE window_start >= ? AND window_start < ?""",
                       (hour, end))]
    presence: dict[float, float] = {}
    for start, stop, persons in conn.execute(
            f"SELECT window_start, window_end, persons_estimate FROM {const.TABLE_AGG_PRESENCE} "
            "WHERE window_start >= ? AND window_start < ?", (hour, end)):
        key = slot(float(start))
        presence[key] = presence.get(key, 0.0) + float(persons) * (float(stop) - float(start))
    scans: dict[str, list[float]] = {till: [] for till in setup.tills}
    if setup.tills:
        marks = ", ".join("?" * len(setup.tills))
        for device, ts in conn.execute(
                f"SELECT device, ts FROM {const.TABLE_SCANS} WHERE device IN ({marks}) AND ts >= ? AND ts < ? "
                "ORDER BY device, ts", (*setup.tills, hour - setup.gap_s, end)):
            scans[device].append(float(ts))
    return _Inputs(occupancy, before, flows, lines, visits, zones, cells, camera_rows, presence, scans)


def _camera_layer(setup: Setup, rows: Iterable[tuple[float, str, float, float, float, int, int, str]],
                  ) -> tuple[floormap.F64, floormap.Mask]:
    """Camera person-seconds on the floor grid (the larger per cell where cameras overlap) and their coverage."""
    grid = setup.grid
    per_camera: dict[str, floormap.F64] = {}
    coverage = grid.zeros().astype(bool)
    for _start, camera, ox, oy, cell_m, nx, ny, cells_json in rows:
        coverage |= floormap.rect_mask(grid, ox, oy, ox + nx * cell_m, oy + ny * cell_m)
        cells = json.loads(cells_json)
        if not cells:
            continue
        index = [int(c[0]) for c in cells]
        xs = [ox + (i % nx + 0.5) * cell_m for i in index]
        ys = [oy + (i // nx + 0.5) * cell_m for i in index]
        layer = floormap.bin_points(grid, xs, ys, [float(c[1]) for c in cells])
        per_camera[camera] = per_camera[camera] + layer if camera in per_camera else layer
    out = grid.zeros()
    for layer in per_camera.values():
        out = np.maximum(out, layer)
    return out, coverage


def wifi_layer(conn: sqlite3.Connection, setup: Setup, start: float, end: float) -> floormap.F64:
    """WiFi device-seconds summed over ``[start, end)`` on the floor grid."""
    rows = conn.execute(
        f"SELECT x, y, sum(device_seconds) FROM {const.TABLE_AGG_WIFI_CELLS} WHERE window_start >= ? "
        "AND window_start < ? GROUP BY ix, iy", (start, end)).fetchall()
    if not rows:
        return setup.grid.zeros()
    xs, ys, seconds = zip(*rows, strict=True)
    return floormap.bin_points(setup.grid, xs, ys, seconds)


# -- the computation ---------------------------------------------------------------------------------------------


def _window(setup: Setup, inputs: _Inputs, start: float, estimate: fusion.FactorEstimate, coverage: floormap.Mask,
            ) -> tuple[FootfallWindow, DwellWindow, tuple[ZoneWindow, ...], HeatWindow]:
    end = start + setup.window_s
    occ = fusion.store_occupancy(inputs.occupancy, inputs.before, start, end)
    flows = inputs.flows.get(start)
    entries = sum(f[0] for f in flows) if flows is not None else None
    exits = sum(f[1] for f in flows) if flows is not None else None
    total = occ.person_seconds if occ is not None else inputs.presence.get(start, 0.0)
    factor = estimate.factor
    visits = [(span, bursts) for begin, span, bursts in inputs.visits if start <= begin < end]
    wifi = fusion.WifiVisits.split(visits, setup.passerby_max_s, setup.visitor_min_s) if setup.wifi else None
    people = fusion.persons(entries, wifi, factor, estimate.detection, estimate.visitor_share)
    transactions = sum(fusion.count_transactions(times, setup.gap_s, start, end)
                       for times in inputs.scans.values()) if setup.tills else None
    footfall = FootfallWindow(
        start, end, entries, exits, occ.end if occ else None, _r(occ.mean) if occ else None,
        occ.peak if occ else None, round(total, 1), wifi.visitors if wifi else None, wifi.quick if wifi else None,
        wifi.passersby if wifi else None, round(factor, 4), round(people.came_in, 2), round(people.visitors, 2),
        _r(people.quick, 2), _r(people.passersby, 2), _r(people.capture_rate, 4), transactions,
        _r(fusion.ratio(transactions, people.came_in), 4) if transactions is not None else None,
        tuple(sorted(inputs.lines.get(start, ()))))
    inside = [fusion.stay_estimate(span, bursts) for span, bursts in visits if span >= setup.passerby_max_s]
    bins = fusion.dwell_histogram(inside)
    dwell = DwellWindow(start, end, len(inside), _r(sum(inside) / len(inside), 1) if inside else None, bins,
                        {label: round(count * factor, 2) for label, count in bins.items()})
    camera, _ = _camera_layer(setup, (r for r in inputs.camera_rows if start <= r[0] < end))
    cells = inputs.wifi_cells.get(start, [])
    placed = floormap.bin_points(setup.grid, [c[0] for c in cells], [c[1] for c in cells], [c[2] for c in cells]) \
        if cells else setup.grid.zeros()
    fused = floormap.fuse_heat(camera, coverage, placed, total)
    at_tills = [(cell, floormap.till_seconds(inputs.scans.get(till, []), setup.gap_s, setup.till_pay_s, start, end))
                for till, cell in setup.till_cells.items()]
    fused, till_seconds = floormap.place_tills(fused, coverage, setup.masks, at_tills)
    device_seconds = inputs.zones.get(start)
    if cells or not device_seconds:
        by_zone = floormap.zone_seconds(fused.values, setup.masks)
    else:
        by_zone = floormap.scaled_shares(device_seconds, setup.zones, total)
    zone_total = sum(by_zone.values())
    zones = tuple(ZoneWindow(start, end, zone, round(seconds, 1), _r(fusion.ratio(seconds, zone_total), 4),
                             _r(device_seconds.get(zone, 0.0), 1) if device_seconds is not None else None)
                  for zone, seconds in by_zone.items())
    sparse = floormap.sparse(fused.values)
    heat = HeatWindow(start, end, setup.grid.cell_m, setup.grid.nx, setup.grid.ny, sparse,
                      round(sum(s for _, s in sparse), 1), round(fused.camera, 1), round(fused.wifi, 1),
                      round(till_seconds, 1))
    return footfall, dwell, zones, heat


def compute_hours(conn: sqlite3.Connection, setup: Setup, hours: Sequence[float]) -> list[HourFusion]:
    """Fuse each hour (store-local hour starts) from the input tables; read-only."""
    if not hours:
        return []
    ordered = sorted(set(hours))
    lookback = (setup.factor.lookback_h - 1) * HOUR_S
    counts = hour_counts(conn, setup, ordered[0] - lookback, ordered[-1])
    factors = {estimate.hour_start: estimate for estimate in fusion.persons_factors(counts, setup.factor)}
    by_hour = {c.hour_start: c for c in counts}
    out = []
    for hour in ordered:
        estimate = factors[hour]
        inputs = _load(conn, setup, hour)
        _, coverage = _camera_layer(setup, inputs.camera_rows)
        windows = [_window(setup, inputs, start, estimate, coverage) for start in setup.windows(hour)]
        footfall = tuple(w[0] for w in windows)
        transactions = _sum_or_none(f.transactions for f in footfall)
        entries = by_hour[hour].entries
        came_in = sum(f.came_in for f in footfall)
        out.append(HourFusion(
            hour, entries, by_hour[hour].wifi_inside, _r(estimate.raw, 4), round(estimate.factor, 4),
            round(estimate.weight, 3), transactions,
            _r(fusion.ratio(transactions, came_in), 4) if transactions is not None else None,
            footfall, tuple(w[1] for w in windows), tuple(z for w in windows for z in w[2]),
            tuple(w[3] for w in windows)))
    return out


# -- reading back what the job stored ----------------------------------------------------------------------------


def _rows(conn: sqlite3.Connection, table: str, columns: Sequence[str], hour: float,
          order: str = "window_start") -> list[tuple[Any, ...]]:
    return [tuple(r) for r in conn.execute(
        f"SELECT {', '.join(columns)} FROM {table} WHERE window_start >= ? AND window_start < ? ORDER BY {order}",
        (hour, hour + HOUR_S))]


def stored_hours(conn: sqlite3.Connection, setup: Setup, hours: Sequence[float]) -> dict[float, HourFusion]:
    """The hours the fusion job has stored, complete (every window present), by hour start."""
    out: dict[float, HourFusion] = {}
    per_hour = int(HOUR_S // setup.window_s)
    for hour in hours:
        head = conn.execute(f"SELECT {', '.join(HourFusion.COLUMNS)} FROM {const.TABLE_AGG_STORE_HOURS} "
                            "WHERE window_start = ?", (hour,)).fetchone()
        if head is None:
            continue
        footfall = tuple(FootfallWindow.from_row(r)
                         for r in _rows(conn, const.TABLE_AGG_FOOTFALL, FootfallWindow.COLUMNS, hour))
        if len(footfall) != per_hour:
            continue
        _, _, entries, inside, raw, factor, weight, transactions, conversion = tuple(head)
        out[hour] = HourFusion(
            hour, entries, inside, raw, float(factor), float(weight), transactions, conversion, footfall,
            tuple(DwellWindow.from_row(r) for r in _rows(conn, const.TABLE_AGG_DWELL, DwellWindow.COLUMNS, hour)),
            tuple(ZoneWindow(*r) for r in _rows(conn, const.TABLE_AGG_ZONE_DWELL, ZoneWindow.COLUMNS, hour,
                                                "window_start, zone")),
            tuple(HeatWindow.from_row(r) for r in _rows(conn, const.TABLE_AGG_FLOOR_HEAT, HeatWindow.COLUMNS, hour)))
    return out


def has_inputs(conn: sqlite3.Connection, start: float, end: float) -> bool:
    """Whether any camera or WiFi window lies in ``[start, end)``."""
    return any(conn.execute(f"SELECT 1 FROM {table} WHERE window_start >= ? AND window_start < ? LIMIT 1",
                            (start, end)).fetchone() is not None
               for table in (const.TABLE_AGG_OCCUPANCY, const.TABLE_AGG_PRESENCE))


def hours_between(setup: Setup, start: float, end: float) -> list[float]:
    """Store-local hour starts in ``[start, end)``."""
    hour = setup.hour_start(start)
    out = []
    while hour < end:
        if hour >= start:
            out.append(hour)
        hour += HOUR_S
    return out


def load_hours(conn: sqlite3.Connection, setup: Setup, hours: Sequence[float]) -> list[HourFusion]:
    """Each hour as stored by the fusion job when it has closed it, else computed now (``final=False``);
    hours with no camera or WiFi data at all are left out."""
    stored = stored_hours(conn, setup, hours)
    missing = [h for h in hours if h not in stored and has_inputs(conn, h, h + HOUR_S)]
    live = {h.hour_start: h for h in compute_hours(conn, setup, missing)}
    out = []
    for hour in hours:
        if hour in stored:
            out.append(stored[hour])
        elif hour in live:
            h = live[hour]
            out.append(HourFusion(h.hour_start, h.entries, h.wifi_inside, h.factor_raw, h.persons_factor,
                                  h.factor_weight, h.transactions, h.conversion, h.footfall, h.dwell, h.zones,
                                  h.heat, final=False))
    return out
