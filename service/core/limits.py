"""Per-key rate limits: one token bucket per (budget, API key), kept in this process's memory.

A bucket holds at most `burst` tokens and refills at `per_minute / 60` tokens a second; a request
takes one token or is refused with the whole seconds until one is there (`Retry-After`). Several
API processes each keep their own buckets, so a key gets each process's budget: the limit is
exact for one process (`docadapt serve` runs one) and a multiple of it behind a load balancer."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from service.core.config import Settings
from service.core.errors import TooManyRequests

# Past this many buckets, full ones (keys idle long enough to have refilled) are forgotten.
_PRUNE_AT = 10_000


@dataclass(frozen=True)
class Budget:
    """One kind of request's allowance per API key."""

    name: str
    per_minute: float
    burst: int
    what: str  # the requests it counts, as the refusal names them
    setting: str  # the setting that sets it, as the refusal names it


class RateLimiter:
    """Token buckets per (budget, key); thread-safe. A budget that is absent is unlimited."""

    def __init__(
        self, budgets: list[Budget] | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.budgets = {b.name: b for b in budgets or [] if b.per_minute > 0}
        self._clock = clock
        self._buckets: dict[tuple[str, str], tuple[float, float]] = {}  # -> (tokens, at)
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> RateLimiter:
        return cls(
            [
                Budget(
                    "queries",
                    settings.rate_limit_queries_per_minute or 0,
                    settings.rate_limit_queries_burst,
                    "queries (POST /v1/chat/completions, /v1/completions)",
                    "DOCADAPT_RATE_LIMIT_QUERIES_PER_MINUTE",
                ),
                Budget(
                    "jobs",
                    settings.rate_limit_jobs_per_minute or 0,
                    settings.rate_limit_jobs_burst,
                    "job-creating requests (augmentations, adapters, evaluations, eval set "
                    "generation)",
                    "DOCADAPT_RATE_LIMIT_JOBS_PER_MINUTE",
                ),
            ]
        )

    def take(self, budget_name: str, key_id: str) -> None:
        """Spend one of `key_id`'s tokens of the budget, or raise TooManyRequests (429) saying
        which limit it met and in how many seconds a token will be there."""
        budget = self.budgets.get(budget_name)
        if budget is None:
            return
        rate = budget.per_minute / 60.0
        now = self._clock()
        with self._lock:
            tokens, at = self._buckets.get((budget_name, key_id), (float(budget.burst), now))
            tokens = min(float(budget.burst), tokens + (now - at) * rate)
            if tokens >= 1.0:
                self._buckets[(budget_name, key_id)] = (tokens - 1.0, now)
                if len(self._buckets) > _PRUNE_AT:
                    self._prune(now)
                return
            self._buckets[(budget_name, key_id)] = (tokens, now)
        wait = max(1, math.ceil((1.0 - tokens) / rate))
        raise TooManyRequests(
            f"rate limit reached: an API key may make {budget.burst} {budget.what} at once and "
            f"{budget.per_minute:g} a minute after that ({budget.setting}); retry in {wait} s",
            retry_after_s=wait,
            details={"limit": budget.name, "retry_after_s": wait},
        )

    def _prune(self, now: float) -> None:
        for (name, key), (tokens, at) in list(self._buckets.items()):
            budget = self.budgets[name]
            if tokens + (now - at) * budget.per_minute / 60.0 >= budget.burst:
                del self._buckets[(name, key)]
