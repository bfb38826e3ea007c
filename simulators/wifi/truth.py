"""Ground truth: occupancy, visits, zone dwell and every device's MACs, per 60 s and 10 min window."""

from __future__ import annotations

import dataclasses
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from simulators.wifi.devices import Capture, Device, DeviceLog
from simulators.wifi.people import Person
from simulators.wifi.world import World

WINDOWS_S = (60, 600)
VISITOR_MIN_S = 300.0
SAMPLE_S = 1.0

DEFINITIONS = {
    "occupancy_avg": "time-averaged number of shoppers on the sales floor (staff excluded), sampled every second "
                     "at start_ts + k + 0.5 s; equals person_seconds / (end - start)",
    "person_seconds": "shopper-seconds on the floor in the window; the sum of zone_person_seconds",
    "people_present": "distinct shoppers on the floor at any sample in the window",
    "phones_present": "distinct phones carried by the people present",
    "visitor": "a shopper whose time inside, exit_ts - enter_ts, is at least 300 s (Meraki's 5-minute rule applied "
               "to true presence)",
    "passerby": "anyone who never entered the store, or entered for less than 300 s",
    "passersby_in_range": "people who never enter and are on the simulated street during the window",
    "zone_person_seconds": "shopper-seconds per zone by true position (the zone polygon containing the person)",
    "macs": "every MAC the device transmitted from during [start_ts, end_ts), captured by a sniffer or not",
    "stability": "universal: one globally administered MAC all along; randomizing: locally administered MACs that "
                 "rotate per burst or per scan",
    "receptions": "frames a device sent in the span times the sniffers that captured each (one frame heard by 3 "
                  "sniffers counts 3)",
    "macs_captured": "distinct transmitter MACs in the frames all sniffers captured in the window",
}


@dataclass(frozen=True, slots=True)
class WindowTruth:
    """What was true in one window [start, end)."""

    start: float
    end: float
    occupancy_avg: float
    person_seconds: float
    people_present: int
    phones_present: int
    randomizing_phones_present: int
    visitors_present: int
    passersby_in_range: int
    staff_present: int
    zone_person_seconds: dict[str, float]
    frames_captured: dict[str, int]
    macs_captured: int


@dataclass(frozen=True, slots=True)
class VisitTruth:
    """One shopper's or passerby's time around the store."""

    person: str
    kind: Literal["shopper", "passerby"]
    entered: bool
    appear_ts: float
    leave_ts: float
    enter_ts: float | None
    exit_ts: float | None
    dwell_s: float
    classification: Literal["visitor", "passerby"]
    device: str | None
    stability: Literal["universal", "randomizing"] | None


@dataclass(frozen=True, slots=True)
class DeviceTruth:
    """One device and everything it transmitted from."""

    device: str
    owner: str | None
    role: str
    model: str
    os: str
    stability: Literal["universal", "randomizing"]
    randomization: str
    seq_continue_p: float
    fingerprints: list[str]
    macs: list[str]
    bursts: int
    frames_sent: int
    receptions: int


@dataclass(frozen=True, slots=True)
class Truth:
    """The simulator's ground truth for a run; ``to_dict()`` is the JSON written by ``write_truth``."""

    seed: int
    start_ts: float
    end_ts: float
    knobs: dict[str, object]
    world: dict[str, object]
    definitions: dict[str, str]
    windows: dict[str, list[WindowTruth]]
    zone_totals: dict[str, float]
    visits: list[VisitTruth]
    devices: list[DeviceTruth]
    summary: dict[str, object]

    def to_dict(self) -> dict[str, object]:
        """A JSON-serialisable dict."""
        return dataclasses.asdict(self)

    def window_list(self, length_s: int) -> list[WindowTruth]:
        """The windows of ``length_s`` seconds (60 or 600)."""
        return self.windows[str(length_s)]

    def device(self, did: str) -> DeviceTruth:
        """The device with id ``did``."""
        for device in self.devices:
            if device.device == did:
                return device
        raise KeyError(did)

    def all_macs(self) -> set[str]:
        """Every MAC any simulated device used in the span."""
        return {mac for device in self.devices for mac in device.macs}


def build_truth(world: World, seed: int, start: float, end: float, knobs: dict[str, object], people: list[Person],
                staff: list[Person], devices: list[Device], logs: dict[str, DeviceLog],
                captures: dict[str, list[Capture]]) -> Truth:
    """Compute the ground truth from the people's paths, the devices' logs and the captures."""
    phone_of = {d.owner: d for d in devices if d.owner is not None}
    zones = world.zone_names
    samples = start + SAMPLE_S / 2 + np.arange(math.floor((end - start) / SAMPLE_S)) * SAMPLE_S
    windows: dict[str, list[WindowTruth]] = {}
    visits = [_visit(p, phone_of.get(p.pid)) for p in people]
    for length in WINDOWS_S:
        first = math.floor(start / length) * length
        n = math.ceil((end - first) / length)
        seconds = np.zeros((n, len(zones)))
        present: list[set[str]] = [set() for _ in range(n)]
        for person in people:
            if person.enter_ts is None or person.exit_ts is None:
                continue
            lo, hi = np.searchsorted(samples, [person.enter_ts, person.exit_ts], side="left")
            ts = samples[lo:hi]
            if ts.size == 0:
                continue
            zone = world.zone_indices(np.interp(ts, person.ts, person.xs), np.interp(ts, person.ts, person.ys))
            win = ((ts - first) // length).astype(np.int64)
            on_floor = zone >= 0
            np.add.at(seconds, (win[on_floor], zone[on_floor]), SAMPLE_S)
            for w in np.unique(win[on_floor]):
                present[int(w)].add(person.pid)
        visit_of = {v.person: v for v in visits}
        frames_in = [dict.fromkeys((s.name for s in world.sniffers), 0) for _ in range(n)]
        macs_in: list[set[str]] = [set() for _ in range(n)]
        for name, caps in captures.items():
            for cap in caps:
                w = int((cap.ts - first) // length)
                frames_in[w][name] += 1
                macs_in[w].add(cap.mac)
        out: list[WindowTruth] = []
        for w in range(n):
            w_start, w_end = float(max(start, first + w * length)), float(min(end, first + (w + 1) * length))
            phones = [phone_of[pid] for pid in present[w] if pid in phone_of]
            person_s = float(seconds[w].sum())
            out.append(WindowTruth(
                start=w_start, end=w_end,
                occupancy_avg=round(person_s / (w_end - w_start), 6),
                person_seconds=person_s,
                people_present=len(present[w]),
                phones_present=len(phones),
                randomizing_phones_present=sum(1 for d in phones if d.randomizing),
                visitors_present=sum(1 for pid in present[w] if visit_of[pid].classification == "visitor"),
                passersby_in_range=sum(1 for p in people if p.enter_ts is None
                                       and p.appear_ts < w_end and p.leave_ts > w_start),
                staff_present=sum(1 for p in staff if p.appear_ts < w_end and p.leave_ts > w_start),
                zone_person_seconds={z: float(seconds[w, i]) for i, z in enumerate(zones)},
                frames_captured=frames_in[w],
                macs_captured=len(macs_in[w]),
            ))
        windows[str(length)] = out
    zone_totals = {z: sum(w.zone_person_seconds[z] for w in windows["60"]) for z in zones}
    device_truths = [_device(d, logs[d.did]) for d in devices]
    return Truth(seed=seed, start_ts=start, end_ts=end, knobs=knobs, world=_world(world), definitions=DEFINITIONS,
                 windows=windows, zone_totals=zone_totals, visits=visits, devices=device_truths,
                 summary=_summary(visits, device_truths, captures, start, end))


def _visit(person: Person, device: Device | None) -> VisitTruth:
    entered = person.enter_ts is not None and person.exit_ts is not None
    dwell = (person.exit_ts - person.enter_ts) if person.enter_ts is not None and person.exit_ts is not None else 0.0
    return VisitTruth(
        person=person.pid, kind="shopper" if person.kind == "shopper" else "passerby", entered=entered,
        appear_ts=person.appear_ts, leave_ts=person.leave_ts, enter_ts=person.enter_ts, exit_ts=person.exit_ts,
        dwell_s=round(dwell, 3), classification="visitor" if dwell >= VISITOR_MIN_S else "passerby",
        device=device.did if device else None,
        stability=None if device is None else "randomizing" if device.randomizing else "universal",
    )


def _device(device: Device, log: DeviceLog) -> DeviceTruth:
    model = device.model
    return DeviceTruth(
        device=device.did, owner=device.owner, role=model.role, model=model.key, os=model.os,
        stability="randomizing" if device.randomizing else "universal", randomization=model.randomization,
        seq_continue_p=model.seq_continue_p, fingerprints=sorted(log.fingerprints), macs=list(log.macs),
        bursts=log.bursts, frames_sent=log.frames_sent, receptions=log.receptions,
    )


def _world(world: World) -> dict[str, object]:
    return {
        "width_m": world.floor.width_m, "depth_m": world.floor.depth_m,
        "zones": {z.name: [list(p) for p in z.polygon] for z in world.floor.zones},
        "door": list(world.door), "street": dataclasses.asdict(world.street), "wall_loss_db": world.wall_loss_db,
        "sniffers": [dataclasses.asdict(s) for s in world.sniffers],
    }


def _summary(visits: Sequence[VisitTruth], devices: Sequence[DeviceTruth], captures: dict[str, list[Capture]],
             start: float, end: float) -> dict[str, object]:
    shoppers = [v for v in visits if v.entered and v.exit_ts is not None and v.enter_ts is not None
                and v.exit_ts > start and v.enter_ts < end]
    phones = [d for d in devices if d.role == "phone"]
    return {
        "shoppers": len(shoppers),
        "visitors": sum(1 for v in shoppers if v.classification == "visitor"),
        "quick_trips": sum(1 for v in shoppers if v.classification == "passerby"),
        "passersby_never_entered": sum(1 for v in visits if not v.entered),
        "median_dwell_s": statistics.median(v.dwell_s for v in shoppers) if shoppers else None,
        "phones": len(phones),
        "randomizing_phones": sum(1 for d in phones if d.stability == "randomizing"),
        "staff_devices": sum(1 for d in devices if d.role == "staff"),
        "infrastructure_devices": sum(1 for d in devices if d.role == "infrastructure"),
        "frames_captured": {name: len(caps) for name, caps in captures.items()},
        "distinct_macs_captured": len({c.mac for caps in captures.values() for c in caps}),
        "distinct_macs_used": len({m for d in devices for m in d.macs}),
    }
