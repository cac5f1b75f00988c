"""An augmentation's time left when its units cost very different amounts.

A global unit puts the whole corpus in context and writes longer inferences: on the 2-core CPU
the last four global units of a 49-unit run took two minutes after 45 sentence units had taken
seconds, so a rate counted in units said "3 s left". The clock times each strategy on its own
(units done per second of that strategy's wall time) and prices a strategy it has not timed yet
from a prior cost ratio, saying so: such an estimate is rough.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

# Cost of one unit relative to a sentence unit, before the strategy has been timed. Global units
# carry the corpus (~1.5k tokens, cached after the first) and write up to global_max_tokens per
# output; measured ~40x a sentence unit on the 2-core CPU. Rule-based strategies cost little.
PRIOR_UNIT_COST = {"global": 40.0}
DEFAULT_UNIT_COST = 1.0
MIN_TIMED_UNITS = 3  # fewer timed units than this (run concurrently) give a rough rate


@dataclass
class StrategyClock:
    units: int
    done: int = 0  # finished in this attempt
    skipped: int = 0  # finished by an earlier attempt
    seconds: float = 0.0  # wall time spent on this strategy in this attempt


@dataclass
class UnitClock:
    """Call `start(strategy)` as a strategy begins and `unit_done(strategy)` per unit."""

    plan: dict[str, tuple[int, int]]  # strategy -> (units, already done)
    _clocks: dict[str, StrategyClock] = field(default_factory=dict)
    _current: str | None = None
    _since: float = 0.0

    def __post_init__(self) -> None:
        self._clocks = {s: StrategyClock(units, skipped=d) for s, (units, d) in self.plan.items()}

    def start(self, strategy: str) -> None:
        self._tick()
        self._current, self._since = strategy, time.monotonic()

    def unit_done(self, strategy: str) -> None:
        self._tick()
        self._clocks[strategy].done += 1

    def _tick(self) -> None:
        if self._current is not None:
            now = time.monotonic()
            self._clocks[self._current].seconds += now - self._since
            self._since = now

    def estimate(self) -> tuple[float | None, str | None]:
        """(seconds left, note): the note says why the estimate is rough, None when every
        strategy with units left has been timed. (None, note) before anything was timed."""
        self._tick()
        timed = {s: c for s, c in self._clocks.items() if c.done > 0 and c.seconds > 0}
        if not timed:
            return None, "no unit has finished yet"
        # Seconds per unit of cost, from what was timed: prices the strategies not timed yet.
        per_cost = sum(c.seconds for c in timed.values()) / sum(
            c.done * _prior(s) for s, c in timed.items()
        )
        left, untimed, few = 0.0, [], []
        for strategy, clock in self._clocks.items():
            remaining = clock.units - clock.skipped - clock.done
            if remaining <= 0:
                continue
            if strategy in timed:
                left += remaining * clock.seconds / clock.done
                if clock.done < MIN_TIMED_UNITS:
                    few.append(strategy)
            else:
                # Time already spent on its first (concurrent) units counts against the prior.
                left += max(remaining * _prior(strategy) * per_cost - clock.seconds, 0.0)
                untimed.append(strategy)
        if untimed:
            return left, f"rough: {', '.join(untimed)} units not timed yet"
        if few:
            return left, f"rough: few {', '.join(few)} units timed yet"
        return left, None


def _prior(strategy: str) -> float:
    return PRIOR_UNIT_COST.get(strategy, DEFAULT_UNIT_COST)
