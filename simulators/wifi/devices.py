"""One device's radio life: screen states, probe bursts, MAC rotation, sequence numbers, captured frames."""

from __future__ import annotations

import math
import random
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

from simulators.wifi import frames, ies
from simulators.wifi.phones import SSIDS, DeviceModel
from simulators.wifi.radio import FIVE_GHZ_EXTRA_LOSS_DB, RadioParams, antenna_signals, distance, mean_rssi
from simulators.wifi.world import Point, World

FIVE_GHZ_CHANNELS = (36, 40, 44, 48)
MAX_PHONE_BURST = 8


class Capture(NamedTuple):
    """One frame as a sniffer captured it: time, radiotap bytes, and what the simulator knows about it."""

    ts: float
    data: bytes
    mac: str
    rssi: int
    channel: int
    seq: int
    ssid_len: int
    fp: str
    device: str


@dataclass(slots=True)
class DeviceLog:
    """What a device did during the simulated span: MACs used (in order), frames sent and captured."""

    macs: list[str] = field(default_factory=list)
    fingerprints: set[str] = field(default_factory=set)
    bursts: int = 0
    frames_sent: int = 0
    receptions: int = 0


@dataclass(slots=True)
class Device:
    """A phone, staff handheld or fixed device, with its universal MAC and per-device radio traits."""

    did: str
    model: DeviceModel
    owner: str | None
    universal_mac: bytes
    tx_offset_db: float
    pnl: tuple[bytes, ...]  # preferred networks it may probe for by name
    uuid: bytes  # WPS UUID-E of the universal identity

    @property
    def randomizing(self) -> bool:
        """Whether the device probes from locally administered (randomized) MACs."""
        return self.model.randomization != "none"


class MacPool:
    """Hands out MACs never used before by any simulated device."""

    def __init__(self) -> None:
        self._used: set[bytes] = set()

    def universal(self, oui: bytes, rng: random.Random) -> bytes:
        """A fresh universal MAC under ``oui``."""
        return self._fresh(lambda: oui + rng.randbytes(3))

    def local(self, prefix: bytes, rng: random.Random) -> bytes:
        """A fresh locally administered unicast MAC, optionally under a fixed prefix."""
        def draw() -> bytes:
            """Random bytes under the prefix with the local bit set and the multicast bit clear."""
            raw = prefix + rng.randbytes(6 - len(prefix))
            return bytes(((raw[0] & 0xFC) | 0x02,)) + raw[1:]
        return self._fresh(draw)

    def _fresh(self, draw: Callable[[], bytes]) -> bytes:
        while True:
            mac = draw()
            if mac not in self._used:
                self._used.add(mac)
                return mac


@dataclass(frozen=True, slots=True)
class Span:
    """The simulated span and the knobs the device loop needs."""

    start: float
    end: float
    radio: RadioParams
    fcs: bool
    screen_on_mean_s: float
    screen_off_mean_s: float


def new_device(did: str, model: DeviceModel, owner: str | None, pool: MacPool, rng: random.Random,
               device_sigma_db: float) -> Device:
    """A device of ``model`` with a fresh universal MAC, transmit offset and preferred-network list."""
    return Device(did=did, model=model, owner=owner, universal_mac=pool.universal(model.oui, rng),
                  tx_offset_db=rng.gauss(0.0, device_sigma_db), pnl=tuple(rng.sample(SSIDS, rng.randint(1, 3))),
                  uuid=rng.randbytes(16))


def run_device(device: Device, position: Callable[[float], Point], t_on: float, t_off: float, world: World,
               span: Span, pool: MacPool, rng: random.Random, out: dict[str, list[Capture]]) -> DeviceLog:
    """Simulate a device present over [t_on, t_off]; append its captured frames per sniffer to ``out``."""
    model = device.model
    log = DeviceLog()
    mac = device.universal_mac
    uuid = device.uuid
    seq = rng.randrange(4096)
    mac_bursts_left = 0
    on_fraction = span.screen_on_mean_s / (span.screen_on_mean_s + span.screen_off_mean_s)
    screen_on = model.screen and rng.random() < on_fraction
    state_end = t_on + _state_length(screen_on, span, rng) if model.screen else math.inf
    t = t_on + rng.uniform(0.0, _gap(model, screen_on, rng))
    tails: dict[tuple[int, bytes, int], bytes] = {}
    while True:
        while state_end <= t:  # screen transitions before the next burst; a phone scans when it wakes
            screen_on = not screen_on
            switch = state_end
            state_end = switch + _state_length(screen_on, span, rng)
            if screen_on:
                t = min(t, switch + rng.uniform(0.0, 2.0))
        if t >= t_off:
            return log
        # The MAC for this burst, and what happens to the sequence counter.
        if model.randomization == "none":
            seq += rng.randint(1, 40)  # other frames (data, nulls) advance the counter between bursts
        elif mac_bursts_left <= 0 or model.randomization == "per_burst":
            mac = pool.local(model.la_prefix, rng)
            uuid = rng.randbytes(16)  # randomizing Android derives the WPS UUID-E from the MAC
            mac_bursts_left = rng.randint(*model.scan_bursts)
            seq = seq + rng.randint(1, 3) if rng.random() < model.seq_continue_p else rng.randrange(4096)
        else:
            seq += rng.randint(1, 3)
        mac_bursts_left -= 1
        variant = rng.choices(range(len(model.variants)), model.variant_weights)[0]
        in_span = span.start <= t < span.end
        mac_str = frames.mac_text(mac)
        if in_span:
            log.bursts += 1
            if not log.macs or log.macs[-1] != mac_str:
                log.macs.append(mac_str)
            log.fingerprints.add(model.fingerprint(variant))
        plan = _burst_plan(model, rng, world)
        x, y = position(t)
        device_inside = world.inside(x, y)
        for offset, channel in plan:
            seq = (seq + 1) & 0x0FFF
            name = rng.choice(device.pnl) if rng.random() < model.directed_p else b""
            if not in_span:
                continue
            ts = t + offset
            if ts >= span.end:
                continue
            log.frames_sent += 1
            mpdu = b""
            for sniffer in world.sniffers:
                if sniffer.channel_at(ts) != channel:
                    continue
                walls = 0.0 if device_inside == world.inside(sniffer.x, sniffer.y) else world.wall_loss_db
                if channel > 14:
                    walls += FIVE_GHZ_EXTRA_LOSS_DB
                rssi = (mean_rssi(span.radio, distance(x, y, sniffer), walls) + device.tx_offset_db
                        + rng.gauss(0.0, span.radio.shadow_sigma_db) + sniffer.offset_db)
                dbm, chains = antenna_signals(rssi, sniffer.antennas, rng)
                if dbm < sniffer.sensitivity_dbm:
                    continue
                if not mpdu:
                    key = (channel, uuid, variant)
                    tail = tails.get(key)
                    if tail is None:
                        tail = tails[key] = _tail(model, variant, channel, uuid)
                    mpdu = frames.probe_request(mac, seq, ies.ssid(name) + tail)
                    if span.fcs:
                        mpdu = frames.with_fcs(mpdu)
                tsft = int(ts * 1e6) + (zlib.crc32(sniffer.name.encode()) & 0xFFFF) * 1_000_000_000
                data = frames.radiotap(tsft, channel, dbm, chains, span.fcs) + mpdu
                out[sniffer.name].append(Capture(ts, data, mac_str, dbm, channel, seq, len(name),
                                                 model.fingerprint(variant), device.did))
                log.receptions += 1
        t += _gap(model, screen_on, rng)


def _tail(model: DeviceModel, variant: int, channel: int, uuid: bytes) -> bytes:
    """Everything after the SSID element: rates (+DS on 2.4 GHz), the model's IE variant, and WPS if it sends it."""
    tail = ies.rates(channel, model.rates_24) + model.variants[variant]
    if model.wps:
        maker, name = model.wps.split("/", 1)
        tail += ies.wps(uuid, maker, name, name, category=3 if model.role == "infrastructure" else 10)
    return tail


def _state_length(screen_on: bool, span: Span, rng: random.Random) -> float:
    return rng.expovariate(1.0 / (span.screen_on_mean_s if screen_on else span.screen_off_mean_s))


def _gap(model: DeviceModel, screen_on: bool, rng: random.Random) -> float:
    median = model.active_gap_s if screen_on or not model.screen else model.idle_gap_s
    return max(2.0, rng.lognormvariate(math.log(median), model.gap_sigma))


def _burst_plan(model: DeviceModel, rng: random.Random, world: World) -> list[tuple[float, int]]:
    """(offset from burst start in s, channel) per probe: a pass over the scan channels, then 5 GHz if capable."""
    counts = [rng.randint(*model.per_channel) for _ in model.burst_channels]
    if model.role == "phone":
        while sum(counts) > MAX_PHONE_BURST:
            counts[counts.index(max(counts))] -= 1
    span_s = rng.uniform(*model.burst_span_ms) / 1000.0
    dwell = span_s / len(counts)
    plan: list[tuple[float, int]] = []
    for index, (channel, count) in enumerate(zip(model.burst_channels, counts, strict=True)):
        for k in range(count):
            plan.append((index * dwell + k * rng.uniform(0.0008, 0.003), channel))
    if model.five_ghz:
        for index, channel in enumerate(FIVE_GHZ_CHANNELS):
            plan.append((span_s + index * 0.012, channel))
    return plan
