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
from dataclasses import replace

from service.augment.filters.verify import verify
from service.augment.params import STRATEGIES, AugmentParams
from service.augment.runner import run_units
from service.augment.strategies import decomposed, global_, linked, local, qa
from service.augment.teacher import Teacher
from service.augment.types import OnUnitDone, StrategyName, StrategyResult, Unit, UnitResult

# Each strategy's `prepare(units, teacher, params)` says what to run per unit; the runner runs it.
_PREPARE = {
    "local": local.prepare,
    "decomposed": decomposed.prepare,
    "global": global_.prepare,
    "linked": linked.prepare,
    "qa": qa.prepare,
}
assert set(_PREPARE) == set(STRATEGIES)


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
    if strategy not in _PREPARE:
        raise ValueError(f"unknown strategy {strategy!r}; one of {', '.join(STRATEGIES)}")
    errors = params.validate()
    if errors:
        raise ValueError("; ".join(errors))

    def verified(result: UnitResult) -> Awaitable[None] | None:
        # Every kept statement gets its verification score before anyone sees it.
        for example in result.examples:
            verify(example)
        return on_unit_done(result) if on_unit_done is not None else None

    work = _PREPARE[strategy](units, teacher, params)
    if params.unit_concurrency:
        work = replace(work, concurrency=params.unit_concurrency)
    return await run_units(
        strategy,
        work,
        on_unit_done=verified,
        skip_unit_ids=frozenset(skip_unit_ids),
        keep_examples=params.keep_examples,
    )
