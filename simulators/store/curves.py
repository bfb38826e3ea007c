"""Time-of-day curves: parties arriving at the door and people walking past, as rates per local hour."""

from __future__ import annotations

import math
import random
from collections.abc import Callable

Peak = tuple[float, float, float]  # (local hour of the peak, height per hour, spread in hours)

# Parties (a shopper alone, or a group) reaching the door per hour: a floor all day plus a morning, a lunch and
# a larger after-work peak. Over 08:00-19:45 this gives about 760 parties, about 1,000 entries at 1.3 people each.
SHOPPER_BASE_PER_H = 35.0
SHOPPER_PEAKS: tuple[Peak, ...] = ((10.0, 35.0, 1.0), (12.5, 45.0, 0.8), (17.8, 65.0, 1.1))
# People walking past the window per hour: commuters morning and evening, lunch in between (about 5,000 a day).
PASSERBY_BASE_PER_H = 300.0
PASSERBY_PEAKS: tuple[Peak, ...] = ((8.5, 150.0, 0.7), (12.5, 200.0, 1.0), (18.0, 250.0, 1.2))


def rate(hour: float, base: float, peaks: tuple[Peak, ...]) -> float:
    """The rate per hour at a local hour of the day (a float: 17.5 is half past five)."""
    return base + sum(height * math.exp(-0.5 * ((hour - mu) / spread) ** 2) for mu, height, spread in peaks)


def shopper_rate(hour: float) -> float:
    """Parties reaching the door per hour at a local hour."""
    return rate(hour, SHOPPER_BASE_PER_H, SHOPPER_PEAKS)


def passerby_rate(hour: float) -> float:
    """People walking past the store per hour at a local hour."""
    return rate(hour, PASSERBY_BASE_PER_H, PASSERBY_PEAKS)


def arrivals(rng: random.Random, rate_at: Callable[[float], float], scale: float, t0: float, t1: float,
             midnight: float) -> list[float]:
    """Times in [t0, t1) of a Poisson process whose rate per hour is ``scale * rate_at(local hour)`` (thinning)."""
    top = scale * max(rate_at((t0 + k * (t1 - t0) / 200 - midnight) / 3600.0) for k in range(201)) * 1.05
    out: list[float] = []
    if top <= 0:
        return out
    t = t0
    while True:
        t += rng.expovariate(top / 3600.0)
        if t >= t1:
            return out
        if rng.random() * top < scale * rate_at((t - midnight) / 3600.0):
            out.append(t)
