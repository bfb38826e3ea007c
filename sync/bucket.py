"""A token bucket with an injected clock: the throttle of backlog (historical) replay."""

from dataclasses import dataclass


@dataclass(slots=True)
class TokenBucket:
    """``rate`` tokens a second up to ``burst``; callers pass ``now`` (monotonic seconds), so it never sleeps."""

    rate: float
    burst: float
    tokens: float
    updated: float

    @classmethod
    def full(cls, rate: float, burst: float, now: float) -> "TokenBucket":
        """A bucket holding a whole burst."""
        return cls(rate=rate, burst=burst, tokens=burst, updated=now)

    def refill(self, now: float) -> float:
        """Add the tokens earned since the last call; returns the tokens available."""
        if now > self.updated:
            self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = max(self.updated, now)
        return self.tokens

    def take(self, now: float, count: float = 1.0) -> bool:
        """Take ``count`` tokens if they are there."""
        if self.refill(now) < count:
            return False
        self.tokens -= count
        return True

    def wait_s(self, now: float, count: float = 1.0) -> float:
        """Seconds until ``count`` tokens are available (0 when they already are)."""
        missing = count - self.refill(now)
        return 0.0 if missing <= 0 else missing / self.rate
