"""One entry point for the job framework: run a strategy over units.

    result = await run_strategy("local", units, teacher, params,
                                on_unit_done=record, skip_unit_ids=finished)

Units are sentences or passages for "local" and "decomposed", whole documents for "global"
(see `types.Unit`). `on_unit_done(result)` receives each unit's examples and counts as soon as
the unit finishes (a failed unit arrives with `failed=True` and the error); a resumed job passes
the ids it already recorded as `skip_unit_ids`. The returned `StrategyResult.stats` holds the
totals: units, requests (failed, retried), tokens, and the yield per stage.
"""

from __future__ import annotations

from collections.abc import Awaitable, Collection, Sequence

from service.augment.filters.verify import verify
from service.augment.params import STRATEGIES, AugmentParams
from service.augment.strategies import decomposed, global_, linked, local, qa
from service.augment.teacher import Teacher
from service.augment.types import OnUnitDone, StrategyName, StrategyResult, Unit, UnitResult

_RUNNERS = {
    "local": local.run,
    "decomposed": decomposed.run,
    "global": global_.run,
    "linked": linked.run,
    "qa": qa.run,
}
assert set(_RUNNERS) == set(STRATEGIES)


async def run_strategy(
    strategy: StrategyName,
    units: Sequence[Unit],
    teacher: Teacher,
    params: AugmentParams,
    on_unit_done: OnUnitDone | None = None,
    skip_unit_ids: Collection[str] = (),
) -> StrategyResult:
    """Run one strategy; failed teacher requests become failed units, never exceptions.

    Raises ValueError for an unknown strategy or invalid parameters (check `params.validate()`
    before a job starts to answer 422 instead).
    """
    if strategy not in _RUNNERS:
        raise ValueError(f"unknown strategy {strategy!r}; one of {', '.join(STRATEGIES)}")
    errors = params.validate()
    if errors:
        raise ValueError("; ".join(errors))

    def verified(result: UnitResult) -> Awaitable[None] | None:
        # Every kept statement gets its verification score before anyone sees it.
        for example in result.examples:
            verify(example)
        return on_unit_done(result) if on_unit_done is not None else None

    return await _RUNNERS[strategy](units, teacher, params, verified, frozenset(skip_unit_ids))
