"""Token buckets per API key (service.core.limits), on a clock the test moves."""

from __future__ import annotations

import pytest

from service.core.config import Settings
from service.core.errors import TooManyRequests
from service.core.limits import Budget, RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def limiter(clock: Clock, per_minute: float = 60, burst: int = 3) -> RateLimiter:
    return RateLimiter([Budget("jobs", per_minute, burst, "job requests", "SETTING")], clock)


def test_a_burst_then_one_token_per_refill_interval() -> None:
    clock = Clock()
    rl = limiter(clock, per_minute=30, burst=3)  # a token every 2 s
    for _ in range(3):
        rl.take("jobs", "key_a")
    with pytest.raises(TooManyRequests) as refused:
        rl.take("jobs", "key_a")
    assert refused.value.status_code == 429 and refused.value.code == "rate_limited"
    assert refused.value.headers == {"Retry-After": "2"}
    assert "3 job requests at once and 30 a minute" in refused.value.message
    assert "SETTING" in refused.value.message and "retry in 2 s" in refused.value.message
    clock.now += 1.5  # not yet a whole token: the wait left is rounded up
    with pytest.raises(TooManyRequests) as again:
        rl.take("jobs", "key_a")
    assert again.value.retry_after_s == 1
    clock.now += 0.5
    rl.take("jobs", "key_a")
    with pytest.raises(TooManyRequests):
        rl.take("jobs", "key_a")


def test_refill_stops_at_the_burst() -> None:
    clock = Clock()
    rl = limiter(clock, per_minute=60, burst=2)
    clock.now += 3600  # an hour idle is still only the burst
    rl.take("jobs", "k")
    rl.take("jobs", "k")
    with pytest.raises(TooManyRequests):
        rl.take("jobs", "k")


def test_keys_and_budgets_are_independent() -> None:
    clock = Clock()
    rl = RateLimiter(
        [Budget("jobs", 60, 1, "jobs", "S"), Budget("queries", 60, 1, "queries", "S")], clock
    )
    rl.take("jobs", "key_a")
    with pytest.raises(TooManyRequests):
        rl.take("jobs", "key_a")
    rl.take("jobs", "key_b")
    rl.take("queries", "key_a")


def test_zero_or_none_turns_a_limit_off() -> None:
    rl = RateLimiter.from_settings(
        Settings(rate_limit_queries_per_minute=0, rate_limit_jobs_per_minute=None)
    )
    assert rl.budgets == {}
    for _ in range(1000):
        rl.take("queries", "k")
        rl.take("jobs", "k")
    defaults = RateLimiter.from_settings(Settings())
    assert {n: (b.per_minute, b.burst) for n, b in defaults.budgets.items()} == {
        "queries": (600, 100),
        "jobs": (60, 200),
    }
