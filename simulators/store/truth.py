"""The day's ground truth as the gateway should report it: ``truth.json``.

Time is sampled once a second at ``start_ts + k + 0.5``; a shopper is inside at ``t`` when ``enter_ts <= t <
exit_ts`` (door-line crossings). Staff are never counted (they come and go by the back door). Top-level keys:

* ``store_id``, ``date``, ``timezone``, ``seed``, ``open_ts``/``close_ts`` (opening hours) and ``start_ts``/
  ``end_ts`` (the simulated span: half an hour either side), ``entrances`` (count-line names), ``definitions``.
* ``summary``: day totals (entries, exits, parties, transactions, conversion, visitors, passersby, peak occupancy,
  person-seconds, median dwell).
* ``traffic_15min``: ``[{start_ts, end_ts, local, entrance, in, out}]`` per quarter hour (local clock).
* ``occupancy_per_minute``: ``{start_ts, step_s, at_start, avg, max}``, three columns over the span's minutes.
* ``hourly``: per local hour ``{start_ts, end_ts, local, entries, exits, peak_occupancy, visitors,
  visitors_with_phone, shoppers_with_phone, quick_visits, passersby, passersby_with_phone, capture_rate,
  transactions, conversion, person_seconds, zone_person_seconds}``.
* ``zones``: ``{names, person_seconds}`` for the day; ``heatmap``: ``{cell_m, origin_m, nx, ny, index, day,
  hourly}`` with sparse ``[[cell, seconds], ...]`` lists, cell = ``iy * nx + ix`` (the gateway's grid).
* ``visits`` (per shopper), ``parties``, ``transactions`` (with their scans' first and last times), ``door_events``
  (every crossing, in time order), ``staff``.
"""

from __future__ import annotations

import math
import statistics
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt

from simulators.store.model import StoreDay
from simulators.wifi.people import Person

CELL_M = 0.5  # the gateway's heatmap cell (drivers/camera CameraConfig.heatmap_cell_m, wifi_zones cell_m)
VISITOR_MIN_S = 300.0  # WifiAnalytics.visits.visitor_min_s

DEFINITIONS = {
    "inside": "a shopper is inside from crossing the door line inwards (enter_ts) to crossing it outwards "
              "(exit_ts); staff are never counted",
    "entries/exits": "door-line crossings by shoppers in the window (each member of a group counts)",
    "occupancy.at_start": "shoppers inside at the instant the minute starts (= entries - exits before it)",
    "occupancy.avg": "time-averaged shoppers inside over the minute (person-seconds / 60)",
    "occupancy.max / peak_occupancy": "most shoppers inside at any instant of the minute / hour",
    "person_seconds": "shopper-seconds inside, sampled each second at start_ts + k + 0.5",
    "zone_person_seconds": "person_seconds by the zone polygon holding the shopper's true position",
    "heatmap": "person_seconds by floor cell; cell = iy * nx + ix with ix = floor(x / cell_m), origin (0, 0)",
    "visitor": "a shopper inside at least 300 s (WifiAnalytics.visits.visitor_min_s), counted in the hour of entry",
    "visitors_with_phone": "visitors carrying a phone: the people a WiFi visit count can see",
    "quick_visits": "shoppers inside less than 300 s (a WiFi visit count calls them passersby)",
    "passersby": "people walking past the store front who never enter, counted in the hour they pass the door",
    "capture_rate": "entries / (entries + passersby)",
    "transactions": "till transactions, counted in the hour of their first scan; one per paying party",
    "conversion": "transactions / entries",
}


def build_truth(day: StoreDay) -> dict[str, Any]:
    """The whole ground truth document of a simulated day."""
    site = day.site
    zones = list(site.world.zone_names)
    nx, ny = math.ceil(site.width / CELL_M - 1e-9), math.ceil(site.depth / CELL_M - 1e-9)
    hour0 = math.floor((day.start_ts - day.midnight) / 3600)
    hours = math.ceil((day.end_ts - day.midnight) / 3600) - hour0
    n_s = round(day.end_ts - day.start_ts)
    inside = np.zeros(n_s, dtype=np.int64)
    zone_s = np.zeros((hours, len(zones)), dtype=np.int64)
    cell_s = np.zeros((hours, nx * ny), dtype=np.int64)
    visits = []
    for person in day.shoppers:
        k, ts = _samples(day, person)
        inside[k] += 1
        xs, ys = np.interp(ts, person.ts, person.xs), np.interp(ts, person.ts, person.ys)
        zone = site.world.zone_indices(xs, ys)
        if (zone < 0).any():
            raise ValueError(f"{person.pid} is off the floor while inside")
        hour = ((ts - day.midnight) // 3600).astype(np.int64) - hour0
        np.add.at(zone_s, (hour, zone), 1)
        cell = (np.clip((ys / CELL_M).astype(np.int64), 0, ny - 1) * nx
                + np.clip((xs / CELL_M).astype(np.int64), 0, nx - 1))
        np.add.at(cell_s, (hour, cell), 1)
        visits.append(_visit(day, person, np.bincount(zone, minlength=len(zones)), zones))
    occupancy = _occupancy(day, inside)
    hourly = _hourly(day, hour0, hours, zone_s, zones, occupancy["max"], visits)
    total = int(inside.sum())
    return {
        "version": 1,
        "store_id": site.config.store_id, "date": day.date.isoformat(), "timezone": site.config.timezone,
        "seed": day.seed, "open_ts": day.open_ts, "close_ts": day.close_ts,
        "start_ts": day.start_ts, "end_ts": day.end_ts, "entrances": [site.camera.line.name],
        "definitions": DEFINITIONS,
        "summary": {
            "entries": sum(e.direction == "in" for e in day.door),
            "exits": sum(e.direction == "out" for e in day.door),
            "parties": len(day.parties),
            "groups": sum(len(p.members) > 1 for p in day.parties),
            "transactions": len(day.transactions),
            "conversion": round(len(day.transactions) / max(1, len(day.shoppers)), 4),
            "visitors": sum(v["visitor"] for v in visits),
            "visitors_with_phone": sum(v["visitor"] and v["phone"] is not None for v in visits),
            "passersby": len(day.passersby),
            "passersby_with_phone": sum(p.pid in day.phones for p in day.passersby),
            "staff": len(day.staff),
            "peak_occupancy": max(occupancy["max"], default=0),
            "person_seconds": total,
            "median_dwell_s": round(statistics.median(v["dwell_s"] for v in visits), 1) if visits else None,
        },
        "traffic_15min": _traffic(day),
        "occupancy_per_minute": occupancy,
        "hourly": hourly,
        "zones": {"names": zones, "person_seconds": dict(zip(zones, zone_s.sum(axis=0).tolist(), strict=True))},
        "heatmap": {
            "cell_m": CELL_M, "origin_m": [0.0, 0.0], "nx": nx, "ny": ny, "index": "iy * nx + ix",
            "day": _sparse(cell_s.sum(axis=0)),
            "hourly": [{"start_ts": h["start_ts"], "cells": _sparse(cell_s[i])} for i, h in enumerate(hourly)],
        },
        "visits": visits,
        "parties": [{"party": p.party, "members": list(p.members), "enter_ts": round(p.enter_ts, 3),
                     "exit_ts": round(p.exit_ts, 3), "zones": list(p.zones), "txn": p.txn} for p in day.parties],
        "transactions": [{"txn": t.txn, "till": t.till, "party": t.party, "payer": t.payer,
                          "start_ts": round(t.start_ts, 3), "end_ts": round(t.end_ts, 3), "items": len(t.scans),
                          "first_scan_ts": t.scans[0].ts, "last_scan_ts": t.scans[-1].ts} for t in day.transactions],
        "door_events": [{"ts": round(e.ts, 3), "entrance": site.camera.line.name, "direction": e.direction,
                         "person": e.person, "party": e.party} for e in day.door],
        "staff": [{"person": p.pid, "device": device_id(p.pid), "from_ts": p.appear_ts, "to_ts": p.leave_ts}
                  for p in day.staff],
    }


def device_id(pid: str) -> str:
    """The simulated device a person carries (the WiFi truth's ``device``)."""
    return f"dev-{pid}"


def _samples(day: StoreDay, person: Person) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """Indices and times of the once-a-second samples while the shopper is inside."""
    assert person.enter_ts is not None and person.exit_ts is not None
    lo = math.ceil(person.enter_ts - day.start_ts - 0.5)
    hi = math.ceil(person.exit_ts - day.start_ts - 0.5)
    k = np.arange(lo, hi, dtype=np.int64)
    return k, (day.start_ts + k + 0.5).astype(np.float64)


def _visit(day: StoreDay, person: Person, seconds: npt.NDArray[np.int64], zones: list[str]) -> dict[str, Any]:
    assert person.enter_ts is not None and person.exit_ts is not None
    model = day.phones.get(person.pid)
    dwell = person.exit_ts - person.enter_ts
    party = day.parties[day.party_of[person.pid]]
    return {
        "person": person.pid, "party": party.party, "enter_ts": round(person.enter_ts, 3),
        "exit_ts": round(person.exit_ts, 3), "dwell_s": round(dwell, 3), "visitor": dwell >= VISITOR_MIN_S,
        "phone": None if model is None else {"device": device_id(person.pid), "model": model.key,
                                             "randomizing": model.randomization != "none"},
        "txn": party.txn,
        "zone_person_seconds": {z: int(s) for z, s in zip(zones, seconds, strict=True) if s},
    }


def _occupancy(day: StoreDay, inside: npt.NDArray[np.int64]) -> dict[str, Any]:
    """Per minute: shoppers inside at its start, on average, and at most at any instant."""
    minutes = len(inside) // 60
    starts = day.start_ts + 60.0 * np.arange(minutes)
    events = sorted((e.ts, -1 if e.direction == "out" else 1) for e in day.door)  # exits first on a tie
    times = np.array([t for t, _ in events])
    level = np.cumsum([d for _, d in events]) if events else np.zeros(0, dtype=np.int64)
    at_start = [int(level[i - 1]) if i else 0 for i in np.searchsorted(times, starts, side="left")]
    peaks = []
    for m, start in enumerate(starts):
        lo, hi = np.searchsorted(times, [start, start + 60.0], side="left")
        peaks.append(max([at_start[m], *level[lo:hi].tolist()]))
    avg = inside[:minutes * 60].reshape(minutes, 60).sum(axis=1) / 60.0
    return {"start_ts": day.start_ts, "step_s": 60, "at_start": at_start, "avg": np.round(avg, 4).tolist(),
            "max": peaks}


def _traffic(day: StoreDay) -> list[dict[str, Any]]:
    """Entries and exits per local quarter hour over the span."""
    first = day.midnight + math.floor((day.start_ts - day.midnight) / 900) * 900
    n = math.ceil((day.end_ts - first) / 900)
    counts = np.zeros((n, 2), dtype=np.int64)
    for e in day.door:
        counts[int((e.ts - first) // 900), 0 if e.direction == "in" else 1] += 1
    return [{"start_ts": first + 900 * i, "end_ts": first + 900 * (i + 1), "local": _local(day, first + 900 * i),
             "entrance": day.site.camera.line.name, "in": int(c[0]), "out": int(c[1])} for i, c in enumerate(counts)]


def _hourly(day: StoreDay, hour0: int, hours: int, zone_s: npt.NDArray[np.int64], zones: list[str],
            minute_max: list[int], visits: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    passes = [(_passes_door(p, day.site.door_x), p.pid in day.phones) for p in day.passersby]
    for i in range(hours):
        lo = day.midnight + (hour0 + i) * 3600.0
        hi = lo + 3600.0

        def within(ts: float, lo: float = lo, hi: float = hi) -> bool:
            return lo <= ts < hi

        entered = [v for v in visits if within(v["enter_ts"])]
        passed = [phone for ts, phone in passes if within(ts)]
        entries = len(entered)
        m_lo, m_hi = max(0, int((lo - day.start_ts) // 60)), max(0, int((hi - day.start_ts) // 60))
        transactions = sum(within(t.scans[0].ts) for t in day.transactions)
        out.append({
            "start_ts": lo, "end_ts": hi, "local": _local(day, lo),
            "entries": entries, "exits": sum(e.direction == "out" and within(e.ts) for e in day.door),
            "peak_occupancy": max(minute_max[m_lo:m_hi], default=0),
            "visitors": sum(v["visitor"] for v in entered),
            "visitors_with_phone": sum(v["visitor"] and v["phone"] is not None for v in entered),
            "shoppers_with_phone": sum(v["phone"] is not None for v in entered),
            "quick_visits": sum(not v["visitor"] for v in entered),
            "passersby": len(passed), "passersby_with_phone": sum(passed),
            "capture_rate": round(entries / (entries + len(passed)), 4) if entries + len(passed) else None,
            "transactions": transactions,
            "conversion": round(transactions / entries, 4) if entries else None,
            "person_seconds": int(zone_s[i].sum()),
            "zone_person_seconds": dict(zip(zones, zone_s[i].tolist(), strict=True)),
        })
    return out


def _passes_door(person: Person, door_x: float) -> float:
    """When a passerby first walks past the door's x (their time 'at the store')."""
    for i in range(1, len(person.ts)):
        x0, x1 = person.xs[i - 1] - door_x, person.xs[i] - door_x
        if x0 == 0 or x0 * x1 < 0:
            return person.ts[i - 1] + (0 - x0) / (x1 - x0) * (person.ts[i] - person.ts[i - 1]) if x1 != x0 else \
                person.ts[i - 1]
    return person.ts[0]


def _sparse(grid: npt.NDArray[np.int64]) -> list[list[int]]:
    return [[int(i), int(grid[i])] for i in np.flatnonzero(grid)]


def _local(day: StoreDay, ts: float) -> str:
    return datetime.fromtimestamp(ts, day.site.tz).strftime("%H:%M")
