"""Probe traffic of the store day: every carried device run through the WiFi simulator's radio, one pcap per sniffer."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from simulators.store.model import StoreDay
from simulators.store.truth import device_id
from simulators.wifi.devices import Capture, Device, DeviceLog, MacPool, Span, new_device, run_device
from simulators.wifi.pcapio import write_pcap
from simulators.wifi.phones import INFRASTRUCTURE
from simulators.wifi.radio import RadioParams
from simulators.wifi.world import Point

RADIO = RadioParams(ref_dbm=-40.0, exponent=3.0, shadow_sigma_db=5.0)  # the WiFi simulator's defaults
SCREEN_ON_MEAN_S = 60.0
SCREEN_OFF_MEAN_S = 180.0
DEVICE_SIGMA_DB = 2.0


@dataclass(frozen=True, eq=False)
class ProbeDay:
    """Captured frames per sniffer (time order) and each device with what it transmitted."""

    captures: dict[str, list[Capture]]
    devices: dict[str, Device]
    logs: dict[str, DeviceLog]

    def device_truth(self) -> list[dict[str, object]]:
        """Per device: owner, model, OS, whether it randomizes, every MAC it used, frames sent and receptions."""
        return [{"device": did, "owner": d.owner, "role": d.model.role, "model": d.model.key, "os": d.model.os,
                 "randomizing": d.randomizing, "macs": self.logs[did].macs, "frames_sent": self.logs[did].frames_sent,
                 "receptions": self.logs[did].receptions} for did, d in self.devices.items()]


def probe_day(day: StoreDay, *, infrastructure: int = 2) -> ProbeDay:
    """Run every phone, staff handheld and fixed device of the day over the simulated span."""
    world = day.site.world
    span = Span(day.start_ts, day.end_ts, RADIO, False, SCREEN_ON_MEAN_S, SCREEN_OFF_MEAN_S)
    pool = MacPool()
    captures: dict[str, list[Capture]] = {s.name: [] for s in world.sniffers}
    devices: dict[str, Device] = {}
    logs: dict[str, DeviceLog] = {}
    for person in (*day.shoppers, *day.staff, *day.passersby):
        model = day.phones.get(person.pid)
        if model is None:
            continue
        rng = random.Random(f"{day.seed}:device:{person.pid}")
        device = devices[device_id(person.pid)] = new_device(device_id(person.pid), model, person.pid, pool, rng,
                                                             DEVICE_SIGMA_DB)
        logs[device.did] = run_device(device, person.position, person.appear_ts, person.leave_ts, world, span, pool,
                                      rng, captures)
    for i in range(infrastructure):
        rng = random.Random(f"{day.seed}:infrastructure:{i}")
        did = f"dev-fixed-{i + 1}"
        device = devices[did] = new_device(did, INFRASTRUCTURE[i % len(INFRASTRUCTURE)], None, pool, rng,
                                           DEVICE_SIGMA_DB)
        logs[did] = run_device(device, _fixed(world.infrastructure[i % len(world.infrastructure)]),
                               day.start_ts - 600.0, day.end_ts, world, span, pool, rng, captures)
    for caps in captures.values():
        caps.sort(key=lambda c: c.ts)
    return ProbeDay(captures, devices, logs)


def write_probe_day(probes: ProbeDay, folder: Path) -> dict[str, Path]:
    """One ``<sniffer>.pcap`` per sniffer (radiotap, microsecond stamps) and ``devices.json``; returns the pcaps."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, caps in probes.captures.items():
        paths[name] = folder / f"{name}.pcap"
        write_pcap(paths[name], ((c.ts, c.data) for c in caps))
    (folder / "devices.json").write_text(json.dumps(probes.device_truth(), separators=(",", ":")), encoding="utf-8")
    return paths


def _fixed(where: Point) -> Callable[[float], Point]:
    """A position function for a device that never moves."""
    return lambda _t: where
