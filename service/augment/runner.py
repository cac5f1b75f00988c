"""Run a strategy's per-unit work concurrently and hand each result over as it finishes."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import jinja2

from service.augment.teacher import Completion, Sampling, TeacherError
from service.augment.types import (
    Example,
    OnUnitDone,
    StrategyName,
    StrategyResult,
    Unit,
    UnitResult,
    YieldStats,
)

if TYPE_CHECKING:
    from service.augment.prompts import PromptTemplate

ProcessUnit = Callable[[Unit, YieldStats], Awaitable[UnitResult]]


@dataclass(frozen=True)
class UnitWork:
    """What a strategy's `prepare` hands the runner: units, the work on one, how many at once."""

    units: Sequence[Unit]
    process: ProcessUnit
    concurrency: int
    first_alone: bool = False
    """Send the first unit before any other (global: it fills the prefix cache the rest reuse)."""


def count_completion(stats: YieldStats, completion: Completion) -> None:
    """Add one answered request to a unit's counts."""
    stats.requests += 1
    stats.retries += completion.attempts - 1
    stats.prompt_tokens += completion.prompt_tokens
    stats.completion_tokens += completion.completion_tokens
    stats.cached_prompt_tokens += completion.cached_prompt_tokens
    stats.generated += len(completion.texts)


def taught_example(
    strategy: StrategyName,
    unit: Unit,
    text: str,
    template: PromptTemplate,
    sampling: Sampling,
    completion: Completion,
    teacher_model: str,
    **extra: Any,
) -> Example:
    """A statement the teacher wrote about `unit` in `completion`, with where it came from."""
    return Example(
        text=text,
        strategy=strategy,
        document_id=unit.document_id,
        unit_ids=[unit.id],
        source_text=unit.text,
        **template.provenance(),
        teacher_model=teacher_model,
        sampling=sampling.to_dict(),
        prompt_tokens=completion.prompt_tokens,
        completion_tokens=completion.completion_tokens,
        request_ids=[completion.request_id],
        **extra,
    )


async def _guarded(process: ProcessUnit, unit: Unit) -> UnitResult:
    # A unit that fails (teacher gone for good, or a template that fails on this unit's text)
    # is counted and reported; it never stops the others.
    stats = YieldStats()
    failing = False
    try:
        return await process(unit, stats)
    except TeacherError as exc:
        stats.requests += 1
        stats.requests_failed += 1
        error = f"teacher: {exc}"
        failing = exc.endpoint_failing
    except jinja2.TemplateError as exc:
        error = f"template: {exc}"
    stats.units_failed = 1
    return UnitResult(
        unit.id, unit.document_id, [], stats, failed=True, error=error, teacher_failing=failing
    )


async def run_units(
    strategy: StrategyName,
    work: UnitWork,
    *,
    on_unit_done: OnUnitDone | None = None,
    skip_unit_ids: Collection[str] = (),
    keep_examples: bool = True,
) -> StrategyResult:
    """Process every unit of `work` not in `skip_unit_ids`, at most `work.concurrency` at a time.

    Each finished unit goes to `on_unit_done` (awaited if it returns an awaitable) before its
    counts join the totals; callbacks run one at a time, in completion order. Cancelling the
    caller cancels the units in flight; finished ones were already handed over.
    """
    units, process, concurrency = work.units, work.process, work.concurrency
    stats = YieldStats(units_total=len(units))
    todo = [u for u in units if u.id not in skip_unit_ids]
    stats.units_skipped = len(units) - len(todo)
    examples = []
    started = time.perf_counter()

    async def handle(result: UnitResult) -> None:
        if not result.failed:
            result.stats.units_done = 1
        if on_unit_done is not None:
            maybe = on_unit_done(result)
            if inspect.isawaitable(maybe):
                await maybe
        stats.merge(result.stats)
        if keep_examples:
            examples.extend(result.examples)

    queue = iter(todo)
    if work.first_alone and todo:
        await handle(await _guarded(process, next(queue)))
    pending: set[asyncio.Task[UnitResult]] = set()
    try:
        for unit in queue:
            pending.add(asyncio.create_task(_guarded(process, unit)))
            if len(pending) >= concurrency:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    await handle(task.result())
        while pending:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                await handle(task.result())
    finally:
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
    stats.wall_s = time.perf_counter() - started
    return StrategyResult(strategy, examples, stats)
