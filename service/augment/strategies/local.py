"""Local strategy: for each unit alone, a few-shot prompt for rephrasings and direct inferences
(reversals included); several sampled outputs per unit, split, filtered and gated."""

from __future__ import annotations

from collections.abc import Sequence

from service.augment.filters.postprocess import Deduplicator, filter_statements, split_statements
from service.augment.params import AugmentParams
from service.augment.prompts import resolve_template
from service.augment.runner import UnitWork, count_completion, taught_example
from service.augment.teacher import Teacher
from service.augment.types import Unit, UnitResult, YieldStats


def prepare(units: Sequence[Unit], teacher: Teacher, params: AugmentParams) -> UnitWork:
    """Augment each unit (sentence or passage) on its own; see `run_strategy`."""
    template = resolve_template("local", params.templates.get("local"))
    sampling = params.sampling(params.max_tokens, template.stop)
    dedup = Deduplicator(params.filters.near_duplicate_threshold)

    async def process(unit: Unit, stats: YieldStats) -> UnitResult:
        prompt = template.render(unit=unit.text, document_title=unit.title or "")
        completion = await teacher.complete(prompt, sampling)
        count_completion(stats, completion)
        statements: list[str] = []
        for text, finish in zip(completion.texts, completion.finish_reasons, strict=True):
            parts = split_statements(
                text,
                split_sentences_too=params.filters.split_sentences,
                cut_markers=template.stop,
                truncated=finish == "length",
            )
            if not parts:
                stats.no_statement("empty_output")
            statements.extend(parts)
        kept = filter_statements(
            statements,
            sources=[unit.text],
            config=params.filters,
            dedup=dedup,
            stats=stats,
            gate=params.gate,
            foreign_names=template.example_names,
        )
        examples = [
            taught_example("local", unit, text, template, sampling, completion, teacher.model)
            for text in kept
        ]
        return UnitResult(unit.id, unit.document_id, examples, stats)

    return UnitWork(units, process, concurrency=2 * teacher.config.concurrency)
