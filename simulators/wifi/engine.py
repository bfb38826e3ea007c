"""``simulate()``: people, their devices and the sniffers for a span of time, deterministic for a seed."""

from __future__ import annotations

import dataclasses
import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from simulators.wifi import people as ppl
from simulators.wifi.devices import Capture, Device, DeviceLog, MacPool, Span, new_device, run_device
from simulators.wifi.phones import INFRASTRUCTURE, RANDOMIZING_PHONES, STABLE_PHONES, STAFF_DEVICES, DeviceModel
from simulators.wifi.radio import RadioParams
from simulators.wifi.truth import Truth, build_truth
from simulators.wifi.world import Point, World


@dataclass(frozen=True, slots=True)
class Knobs:
    """Scenario settings; every field can be passed to ``simulate()`` as a keyword."""

    arrivals_per_h: float = 60.0  # shoppers reaching the door (Poisson)
    passersby_per_h: float = 240.0  # people walking past without entering (Poisson)
    phone_share: float = 0.9  # share of people carrying a phone with Wi-Fi on
    randomizing: float = 0.85  # share of phones that randomize their MAC (the scenario uses 0.6)
    staff: int = 4  # staff on shift, each with a handheld (universal MAC)
    infrastructure: int = 3  # fixed devices (printer, sensors) at the world's infrastructure points
    quick_share: float = 0.15  # 2–4 minute quick trips
    long_share: float = 0.07  # 30–60 minute visits
    median_visit_s: float = 870.0  # median of the regular visits' lognormal
    screen_on_mean_s: float = 60.0
    screen_off_mean_s: float = 180.0
    ref_dbm: float = -40.0
    path_loss_exponent: float = 3.0
    shadow_sigma_db: float = 5.0
    device_sigma_db: float = 2.0  # per-device transmit power spread
    fcs: bool = False  # append the FCS and set the radiotap Flags FCS bit
    warmup_s: float = 4200.0  # shoppers arriving this long before the start are already in the store

    def __post_init__(self) -> None:
        for name in ("phone_share", "randomizing", "quick_share", "long_share"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be within [0, 1]")
        if self.quick_share + self.long_share > 1.0:
            raise ValueError("quick_share + long_share must not exceed 1")
        if min(self.arrivals_per_h, self.passersby_per_h, self.staff, self.infrastructure) < 0:
            raise ValueError("rates and counts must not be negative")


@dataclass(frozen=True, slots=True)
class Simulation:
    """The result of ``simulate()``: captures per sniffer (time-ordered) and the ground truth."""

    world: World
    knobs: Knobs
    seed: int
    start_ts: float
    end_ts: float
    captures: dict[str, list[Capture]]
    truth: Truth
    people: dict[str, ppl.Person]  # shoppers, passersby and staff by person id: their true paths
    devices: dict[str, Device]
    fixed_positions: dict[str, Point]  # infrastructure devices by device id

    @property
    def frames(self) -> dict[str, list[tuple[float, bytes]]]:
        """Per sniffer, ``(ts, radiotap_bytes)`` in time order, ready for ``write_pcap``."""
        return {name: [(c.ts, c.data) for c in caps] for name, caps in self.captures.items()}

    def device_position(self, did: str, ts: float) -> Point:
        """Where device ``did`` truly was at ``ts``."""
        device = self.devices[did]
        if device.owner is None:
            return self.fixed_positions[did]
        return self.people[device.owner].position(ts)

    def write_truth(self, path: Path) -> None:
        """Write the ground truth as JSON."""
        path.write_text(json.dumps(self.truth.to_dict(), indent=1, sort_keys=False), encoding="utf-8")


def simulate(world: World, start_ts: float, duration_s: float, seed: int, **knobs: Any) -> Simulation:
    """Simulate ``duration_s`` of probe traffic from ``start_ts``; the same arguments give the same bytes."""
    if duration_s <= 0:
        raise ValueError("duration_s must be positive")
    k = Knobs(**knobs)
    end_ts = start_ts + duration_s
    rng = random.Random(f"{seed}:people")
    people: list[ppl.Person] = []
    for i, t in enumerate(ppl.poisson_times(rng, k.arrivals_per_h, start_ts - k.warmup_s, end_ts), 1):
        planned = ppl.visit_length(rng, k.quick_share, k.long_share, k.median_visit_s)
        person = ppl.shopper(f"shopper-{i:04d}", t, world, rng, planned)
        if person.leave_ts > start_ts:
            people.append(person)
    for i, t in enumerate(ppl.poisson_times(rng, k.passersby_per_h, start_ts - 300.0, end_ts), 1):
        people.append(ppl.passerby(f"passerby-{i:04d}", t, world, rng))
    staff = [ppl.staff_member(f"staff-{i}", world, start_ts - 120.0, end_ts + 120.0, rng)
             for i in range(1, k.staff + 1)]

    pool = MacPool()
    span = Span(start_ts, end_ts, RadioParams(k.ref_dbm, k.path_loss_exponent, k.shadow_sigma_db), k.fcs,
                k.screen_on_mean_s, k.screen_off_mean_s)
    captures: dict[str, list[Capture]] = {s.name: [] for s in world.sniffers}
    devices: list[Device] = []
    logs: dict[str, DeviceLog] = {}
    fixed: dict[str, Point] = {}

    def add(model: DeviceModel, owner: str | None, dev_rng: random.Random) -> Device:
        """Create the next device and register it."""
        device = new_device(f"dev-{len(devices) + 1:04d}", model, owner, pool, dev_rng, k.device_sigma_db)
        devices.append(device)
        return device

    for person in [*people, *staff]:
        dev_rng = random.Random(f"{seed}:device:{person.pid}")
        if person.kind == "staff":
            model = _pick(STAFF_DEVICES, dev_rng)
        elif dev_rng.random() < k.phone_share:
            model = _pick(RANDOMIZING_PHONES if dev_rng.random() < k.randomizing else STABLE_PHONES, dev_rng)
        else:
            continue
        device = add(model, person.pid, dev_rng)
        logs[device.did] = run_device(device, person.position, person.appear_ts, person.leave_ts, world, span, pool,
                                      dev_rng, captures)
    for i in range(k.infrastructure):
        dev_rng = random.Random(f"{seed}:infrastructure:{i}")
        device = add(INFRASTRUCTURE[0] if i == 0 else INFRASTRUCTURE[1 + (i - 1) % (len(INFRASTRUCTURE) - 1)],
                     None, dev_rng)
        where = fixed[device.did] = world.infrastructure[i % len(world.infrastructure)]
        logs[device.did] = run_device(device, _fixed(where), start_ts - 600.0, end_ts, world, span, pool,
                                      dev_rng, captures)
    for caps in captures.values():
        caps.sort(key=lambda c: c.ts)
    truth = build_truth(world, seed, start_ts, end_ts, dataclasses.asdict(k), people, staff, devices, logs, captures)
    return Simulation(world, k, seed, start_ts, end_ts, captures, truth, {p.pid: p for p in [*people, *staff]},
                      {d.did: d for d in devices}, fixed)


def _fixed(where: Point) -> Callable[[float], Point]:
    """A position function for a device that never moves."""
    return lambda _t: where


def _pick(models: tuple[DeviceModel, ...], rng: random.Random) -> DeviceModel:
    return rng.choices(models, [m.weight for m in models])[0]
