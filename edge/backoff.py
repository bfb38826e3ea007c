"""Capped exponential backoff with jitter, for reconnecting to devices and brokers."""

import random
from dataclasses import dataclass, field


@dataclass(slots=True)
class Backoff:
    """Delays of ``initial * factor**n`` seconds, capped at ``cap``, each with ±``jitter`` spread."""

    initial: float = 0.5
    cap: float = 30.0
    factor: float = 2.0
    jitter: float = 0.1
    attempts: int = 0
    _rng: random.Random = field(default_factory=random.Random, repr=False)

    def next_delay(self) -> float:
        """The delay before the next attempt; each call lengthens the following one up to the cap."""
        # The exponent stops growing once the cap is reached, so a device away for days never overflows a float.
        if self.initial * self.factor**self.attempts < self.cap:
            self.attempts += 1
            delay = self.initial * self.factor ** (self.attempts - 1)
        else:
            delay = self.cap
        return max(0.0, delay * (1 + self._rng.uniform(-self.jitter, self.jitter)))

    def reset(self) -> None:
        """Start again from ``initial`` after a success."""
        self.attempts = 0
