"""The replay token bucket, driven by an injected clock."""

import pytest

from sync.bucket import TokenBucket


def test_bucket__starts_full_and_allows_a_burst() -> None:
    bucket = TokenBucket.full(rate=20.0, burst=5, now=100.0)
    assert [bucket.take(100.0) for _ in range(6)] == [True] * 5 + [False]


def test_bucket__refills_at_the_rate_up_to_the_burst() -> None:
    bucket = TokenBucket.full(rate=20.0, burst=5, now=0.0)
    for _ in range(5):
        bucket.take(0.0)
    assert bucket.wait_s(0.0) == 0.05
    assert bucket.take(0.05) and not bucket.take(0.05)
    assert bucket.refill(60.0) == 5


def test_bucket__a_clock_going_backwards_adds_nothing() -> None:
    bucket = TokenBucket.full(rate=10.0, burst=2, now=50.0)
    bucket.take(50.0)
    bucket.take(50.0)
    assert bucket.refill(40.0) == 0
    assert bucket.refill(50.1) == pytest.approx(1.0)
