"""``simulate_day()``: one store day as ground truth — parties, their paths, tills, staff, passersby, phones.

Pure and seeded; no files. Order of construction, each step with its own random stream so one change does not
reshuffle everything else: party arrivals on the time-of-day curve (spaced at the door), each party's walk in and
browse, the till queue in order of arrival at the checkout, the door schedule out, then staff and passersby.
"""

from __future__ import annotations

import itertools
import math
import random
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any

import numpy as np

from simulators.camera.people import Look, random_look
from simulators.store.catalog import Product, catalog
from simulators.store.curves import arrivals, passerby_rate, shopper_rate
from simulators.store.model import DoorEvent, ItemScan, Knobs, Party, StoreDay, Transaction
from simulators.store.paths import (
    STREET_SPEED_M_S,
    StorePath,
    passerby,
    staff_member,
    stay,
    street_end,
    street_y,
)
from simulators.store.site import CHECKOUT, CUSTOMER_OFFSET_M, ENTRANCE, PROMOTION, Site
from simulators.wifi.people import Person, visit_length
from simulators.wifi.phones import RANDOMIZING_PHONES, STABLE_PHONES, STAFF_DEVICES, DeviceModel
from simulators.wifi.world import Point

SCAN_GAP_S = (1.5, 4.0)  # between items of one transaction
PAY_S = (15.0, 40.0)  # after the last scan
NEXT_CUSTOMER_S = (3.0, 8.0)  # a till stands idle this long between transactions at least


@dataclass(eq=False)
class _Plan:
    """A party while it is being built: the track its members follow side by side, and what it did."""

    index: int
    members: list[str]
    offsets: list[Point]
    looks: list[Look]
    speed: float
    street_speed: float
    path: StorePath
    buyer: bool
    zones: list[str]
    rng: random.Random
    txn: int | None = None
    items: list[Product] = field(default_factory=list)


def opening_hours(site: Site, day: date) -> tuple[float, float]:
    """The store's opening hours on ``day`` as local hours (8.0, 20.0), from the config's weekday entry."""
    span = site.config.opening_hours.minutes(day.weekday())
    if span is None:
        raise ValueError(f"the store is closed on {day:%A} {day}; pick another date or give hours")
    return span[0] / 60, span[1] / 60


def simulate_day(site: Site, day: date, seed: int, hours: tuple[float, float] | None = None,
                 **knobs: Any) -> StoreDay:
    """The store day on ``day`` within ``hours`` (local; default: opening hours). Same arguments, same day.

    Hours count from local midnight in plain hours (a day that changes clocks is not special-cased).
    """
    k = Knobs(**knobs)
    midnight = datetime.combine(day, time(0), site.tz).timestamp()
    open_h, close_h = hours if hours is not None else opening_hours(site, day)
    open_ts, close_ts = midnight + open_h * 3600.0, midnight + close_h * 3600.0
    out = StoreDay(site, day, seed, k, midnight, open_ts, close_ts, open_ts - k.margin_s, close_ts + k.margin_s)
    products = catalog(seed)
    times = arrivals(random.Random(f"{seed}:arrivals"), shopper_rate, k.traffic, open_ts,
                     close_ts - k.last_entry_before_close_s, midnight)
    plans: list[_Plan] = []
    last = -math.inf
    for i, t in enumerate(times):
        last = max(t, last + k.door_spacing_s)  # the party waits outside until the door lane is clear
        plans.append(_walk_in(i, last, site, k, seed, close_ts))
    _checkout(plans, site, products, random.Random(f"{seed}:checkout"), out)
    _walk_out(plans, site, k, out)
    for plan in plans:
        people = [plan.path.member(pid, "shopper", off, site.width, site.depth)
                  for pid, off in zip(plan.members, plan.offsets, strict=True)]
        out.shoppers.extend(people)
        for person, look in zip(people, plan.looks, strict=True):
            out.party_of[person.pid] = plan.index
            out.looks[person.pid] = look
            assert person.enter_ts is not None and person.exit_ts is not None
            out.door.append(DoorEvent(person.enter_ts, person.pid, plan.index, "in", _x_at(person, person.enter_ts),
                                      plan.speed))
            out.door.append(DoorEvent(person.exit_ts, person.pid, plan.index, "out", _x_at(person, person.exit_ts),
                                      plan.speed))
        out.parties.append(Party(plan.index, tuple(plan.members), plan.speed, plan.path.ts[2],
                                 _door_out(plan), tuple(plan.zones), plan.txn))
    out.door.sort(key=lambda e: (e.ts, e.person))
    out.transactions.sort(key=lambda t: t.start_ts)
    staff_rng = random.Random(f"{seed}:staff")
    tills = list(site.tills.values())
    out.staff = [staff_member(f"staff-{i + 1}", site, out.start_ts, out.end_ts, staff_rng,
                              tills[i] if i < len(tills) else None) for i in range(k.staff)]
    walk_rng = random.Random(f"{seed}:passersby")
    out.passersby = [passerby(f"passerby-{i + 1:05d}", t, site, walk_rng) for i, t in enumerate(
        arrivals(walk_rng, passerby_rate, k.passersby, out.start_ts - 90.0, out.end_ts, midnight))]
    _phones(out, seed, k)
    return out


def _walk_in(index: int, t_in: float, site: Site, k: Knobs, seed: int, close_ts: float) -> _Plan:
    """A party crossing the door at ``t_in``, then browsing: entrance, a few zones (the promotion area often)."""
    rng = random.Random(f"{seed}:party:{index}")
    size = 1 if rng.random() >= k.group_share else 2 if rng.random() < 0.7 else 3
    looks = [random_look(site.camera.scenario("look", 1, 0), np.random.default_rng([seed, 11, index, m]))
             for m in range(size)]
    offsets = _side_by_side(looks, rng)
    speed = rng.uniform(0.9, 1.4) if size == 1 else rng.uniform(0.8, 1.3)
    street_speed = rng.uniform(*STREET_SPEED_M_S)
    start = street_end(rng)
    lane = site.lane_in
    t_kerb = t_in - abs(start[1]) / speed
    path = StorePath(t_kerb - abs(start[0] - lane) / street_speed, start)
    path.at(t_kerb, (lane, start[1]))
    path.at(t_in, (lane, 0.0))
    path.walk((lane, site.inner_y), speed)
    planned = visit_length(rng, k.quick_share, k.long_share, k.median_visit_s)
    buyer = rng.random() < k.buy_share
    quick = planned < 300
    entrance_s = rng.uniform(5, 15) if quick else rng.uniform(8, 25)
    latest = close_ts - (420.0 if buyer else 180.0)
    browse = max(20.0, min(planned - entrance_s - (90.0 if buyer else 0.0), latest - path.t - entrance_s))
    aisles = [z for z in site.shopping_zones if z != PROMOTION]
    stops = 1 if quick else max(1, min(6, round(browse / rng.uniform(150, 360))))
    zones: list[str] = []
    for _ in range(stops):
        zones.append(rng.choice([z for z in aisles if not zones or z != zones[-1]] or aisles))
    if PROMOTION in site.shopping_zones and rng.random() < k.promotion_share:
        if quick:
            zones = [PROMOTION]
        else:
            zones.insert(rng.randrange(len(zones) + 1), PROMOTION)
    shares = [rng.gammavariate(2.0, 1.0) for _ in zones]
    stay(path, site, ENTRANCE, entrance_s, rng, speed)
    for zone, share in zip(zones, shares, strict=True):
        stay(path, site, zone, browse * share / sum(shares), rng, speed)
    members = [f"shopper-{index + 1:04d}" + ("" if size == 1 else "abc"[m]) for m in range(size)]
    return _Plan(index, members, offsets, looks, speed, street_speed, path, buyer, [ENTRANCE, *zones], rng)


def _side_by_side(looks: list[Look], rng: random.Random) -> list[Point]:
    """Offsets across the walking line of people side by side, shoulders touching or nearly, a little staggered."""
    across = [0.0]
    for left, right in itertools.pairwise(looks):
        across.append(across[-1] + 0.5 * (left.width_m + right.width_m) * rng.uniform(0.9, 1.05))
    centre = across[-1] / 2
    return [(a - centre, rng.uniform(-0.1, 0.1) if len(looks) > 1 else 0.0) for a in across]


def _checkout(plans: list[_Plan], site: Site, products: list[Product], rng: random.Random, out: StoreDay) -> None:
    """Buyers in order of reaching the checkout: queue for the first free till, step up, get scanned, pay."""
    free = dict.fromkeys(site.tills, -math.inf)
    promo = [p for p in products if p.promotion]
    regular = [p for p in products if not p.promotion]
    for plan in sorted((p for p in plans if p.buyer), key=lambda p: (p.path.t, p.index)):
        till = min(free, key=lambda name: (free[name], name))
        tx, ty = site.tills[till]
        plan.path.go(site, (tx + rng.uniform(-0.3, 0.3), ty + 1.6), plan.speed)
        start = plan.path.wait_until(max(plan.path.t, free[till]))
        plan.path.walk((tx, ty + CUSTOMER_OFFSET_M), plan.speed)
        count = min(15, max(1, round(rng.lognormvariate(math.log(4.5), 0.6))))
        picks = rng.sample(promo, min(len(promo), rng.randint(1, 2))) if PROMOTION in plan.zones and promo else []
        items = [*picks, *rng.choices(regular, k=max(0, count - len(picks)))][:count]
        ts = plan.path.t + rng.uniform(3.0, 8.0)
        txn = len(out.transactions) + 1
        scans = []
        for item in items:
            scans.append(ItemScan(round(ts, 3), till, item.aim, item.payload, item.gtin, txn))
            ts += rng.uniform(*SCAN_GAP_S)
        end = plan.path.wait_until(scans[-1].ts + rng.uniform(*PAY_S))
        free[till] = end + rng.uniform(*NEXT_CUSTOMER_S)
        plan.txn = txn
        plan.zones.append(CHECKOUT)
        out.transactions.append(Transaction(txn, till, plan.index, plan.members[0], start, end, tuple(scans)))


def _walk_out(plans: list[_Plan], site: Site, k: Knobs, out: StoreDay) -> None:
    """Every party to the exit lane, out through the door when the lane is clear, and away along the street."""
    exit_point = (site.lane_out, site.inner_y)
    for plan in plans:
        plan.path.go(site, exit_point, plan.speed)
    last = -math.inf
    for plan in sorted(plans, key=lambda p: (p.path.t + site.inner_y / p.speed, p.index)):
        door = max(plan.path.t + site.inner_y / plan.speed, last + k.door_spacing_s)
        last = door
        plan.path.wait_until(door - site.inner_y / plan.speed)
        plan.path.walk((site.lane_out, 0.0), plan.speed)
        y = street_y(plan.rng)
        plan.path.walk((site.lane_out, y), plan.speed)
        plan.path.walk((street_end(plan.rng)[0], y), plan.street_speed)
    if plans and max(_door_out(p) for p in plans) >= out.end_ts:
        raise ValueError("a party leaves after the simulated span ends; lengthen margin_s")


def _door_out(plan: _Plan) -> float:
    """When the party's own track crosses the door outwards (the third waypoint from the end)."""
    return plan.path.ts[-3]


def _x_at(person: Person, ts: float) -> float:
    return float(person.position(ts)[0])


def _phones(out: StoreDay, seed: int, k: Knobs) -> None:
    """Who carries which device: most shoppers and passersby a phone (OS mix as in the WiFi simulator), staff one."""
    for person in (*out.shoppers, *out.passersby, *out.staff):
        rng = random.Random(f"{seed}:phone:{person.pid}")
        if person.kind == "staff":
            out.phones[person.pid] = _pick(STAFF_DEVICES, rng)
        elif rng.random() < (k.phone_share if person.kind == "shopper" else k.passerby_phone_share):
            out.phones[person.pid] = _pick(RANDOMIZING_PHONES if rng.random() < k.randomizing else STABLE_PHONES, rng)


def _pick(models: tuple[DeviceModel, ...], rng: random.Random) -> DeviceModel:
    return rng.choices(models, [m.weight for m in models])[0]
