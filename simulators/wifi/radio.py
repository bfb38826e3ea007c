"""Radio model: log-distance path loss with shadowing, wall loss at the store front, per-sniffer bias."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from simulators.wifi.world import DEVICE_HEIGHT_M, Sniffer

FIVE_GHZ_EXTRA_LOSS_DB = 6.0  # free-space loss at 1 m is ~6 dB higher at 5.2 GHz than at 2.4 GHz


@dataclass(frozen=True, slots=True)
class RadioParams:
    """Path-loss parameters: RSSI(d) = ref − 10·n·log10(d) − walls + N(0, σ) + device and sniffer offsets."""

    ref_dbm: float = -40.0  # at 1 m
    exponent: float = 3.0
    shadow_sigma_db: float = 5.0  # per frame and sniffer


def distance(x: float, y: float, sniffer: Sniffer) -> float:
    """3-D distance from a device at (x, y) and hand height to a sniffer, never below 1 m."""
    dz = sniffer.height_m - DEVICE_HEIGHT_M
    return max(1.0, math.sqrt((x - sniffer.x) ** 2 + (y - sniffer.y) ** 2 + dz * dz))


def mean_rssi(params: RadioParams, d: float, extra_loss_db: float) -> float:
    """The expected RSSI in dBm at distance ``d`` before shadowing and offsets."""
    return params.ref_dbm - 10.0 * params.exponent * math.log10(d) - extra_loss_db


def antenna_signals(rssi: float, antennas: int, rng: random.Random) -> tuple[int, tuple[int, ...]]:
    """The combined dBm and, for two antennas, each chain's dBm (chains differ by a few dB; combined is their sum)."""
    if antennas == 1:
        return clamp_dbm(rssi), ()
    a = rssi - 3.0 + rng.gauss(0.0, 1.5)
    b = rssi - 4.0 + rng.gauss(0.0, 2.5)
    combined = 10.0 * math.log10(10 ** (a / 10.0) + 10 ** (b / 10.0))
    return clamp_dbm(combined), (clamp_dbm(a), clamp_dbm(b))


def clamp_dbm(value: float) -> int:
    """Round to a signed-byte dBm value as radiotap carries it."""
    return max(-127, min(-1, round(value)))
