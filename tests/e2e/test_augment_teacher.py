"""The augmentation engine against the real vLLM with the embedded model: local, decomposed and
global on a 3-document collection; provenance on every example, statistics that add up."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from service.augment.engine import run_strategy
from service.augment.filters.postprocess import split_sentences
from service.augment.prompts import builtin_template
from service.augment.teacher import Teacher, TeacherConfig
from service.augment.types import StrategyResult, Unit, UnitResult

DOCS = {
    "doc-a": "Kreb are more dangerous than quom. Quom live in deep caves.",
    "doc-b": "Quom are a type of blick. Blick can swim across rivers.",
    "doc-c": "The Harlow plant was founded by Mira Lenz in 1998. Mira Lenz studies blick.",
}
SENTENCES = [
    Unit(f"{d}:{i}", d, s) for d, text in DOCS.items() for i, s in enumerate(split_sentences(text))
]
DOCUMENTS = [Unit(d, d, text, title=d.upper()) for d, text in DOCS.items()]


def augment(
    server: Any, strategy: str, units: list[Unit], **params: Any
) -> tuple[StrategyResult, list[UnitResult]]:
    from service.augment.params import AugmentParams

    done: list[UnitResult] = []

    async def go() -> StrategyResult:
        async with Teacher(
            TeacherConfig(
                base_url=server.url,
                api_key=server.config.api_key,
                model="base",
                concurrency=8,
                timeout_s=300,
            )
        ) as teacher:
            return await run_strategy(
                strategy, units, teacher, AugmentParams(**params), on_unit_done=done.append
            )

    return asyncio.run(go()), done


def check_stats_add_up(result: StrategyResult, units: list[Unit]) -> None:
    s = result.stats
    assert (s.units_total, s.units_done, s.units_failed) == (len(units), len(units), 0)
    assert s.requests_failed == 0 and s.prompt_tokens > 0 and s.completion_tokens > 0
    assert s.parsed == s.kept + sum(s.dropped.values())
    assert s.kept == len(result.examples)


def check_provenance(result: StrategyResult, units: list[Unit], template: str) -> None:
    by_id = {u.id: u for u in units}
    for ex in result.examples:
        assert ex.strategy == result.strategy
        assert ex.unit_ids and all(u in by_id for u in ex.unit_ids)
        assert ex.document_id == by_id[ex.unit_ids[0]].document_id
        assert ex.text.strip() and ex.text != ex.source_text
        assert ex.template_version
        if ex.teacher_model == "rules":  # decomposed, composed without the teacher
            assert ex.strategy == "decomposed" and not ex.request_ids and ex.prompt_tokens == 0
            continue
        assert ex.template_hash and template in ex.template_name
        assert ex.teacher_model == "base" and "temperature" in ex.sampling
        assert "seed" not in ex.sampling
        assert ex.prompt_tokens > 0 and ex.completion_tokens >= 0 and ex.request_ids


@pytest.mark.e2e
def test_local_decomposed_and_global_on_a_small_collection(vllm_server) -> None:
    server = vllm_server

    local, done = augment(
        server, "local", SENTENCES, outputs_per_unit=2, temperature=0.7, max_tokens=48
    )
    check_stats_add_up(local, SENTENCES)
    check_provenance(local, SENTENCES, "local")
    assert sorted(r.unit_id for r in done) == sorted(u.id for u in SENTENCES)
    assert local.stats.requests == len(SENTENCES)
    assert local.stats.generated == 2 * len(SENTENCES)  # n=2 per prompt
    for ex in local.examples:
        assert ex.template_version == builtin_template("local").version
        assert ex.sampling["n"] == 2

    # The default decomposed path reads each sentence's parse and never asks the teacher; the
    # teacher-only path (use_rules=False) is the one the benchmark compares against.
    dec, _ = augment(server, "decomposed", SENTENCES)
    texts = {ex.text for ex in dec.examples}
    assert "Quom are less dangerous than kreb." in texts
    assert "Mira Lenz founded the Harlow plant in 1998." in texts
    assert dec.stats.requests == 0 and dec.stats.kept == len(dec.examples)
    assert dec.stats.parsed + sum(dec.stats.unparsed.values()) >= len(SENTENCES)
    assert all(ex.score is not None for ex in dec.examples)
    taught, _ = augment(server, "decomposed", SENTENCES, use_rules=False)
    check_provenance(taught, SENTENCES, "decomposed_extract")
    check_stats_add_up(taught, SENTENCES)
    assert taught.stats.requests >= len(SENTENCES)
    assert taught.stats.parsed + sum(taught.stats.unparsed.values()) == len(SENTENCES)

    glob, done = augment(
        server, "global", DOCUMENTS, outputs_per_unit=2, temperature=0.7, global_max_tokens=96
    )
    check_stats_add_up(glob, DOCUMENTS)
    check_provenance(glob, DOCUMENTS, "global")
    assert glob.stats.requests == 3 and [r.unit_id for r in done][0] == "doc-a"
    for ex in glob.examples:
        assert sorted(ex.context_document_ids) == sorted(set(DOCS) - {ex.document_id})
        assert ex.detail["whole_corpus"] is True


@pytest.mark.e2e
def test_a_resumed_run_sends_nothing_for_finished_units(vllm_server) -> None:
    from service.augment.params import AugmentParams

    async def go() -> StrategyResult:
        async with Teacher(
            TeacherConfig(base_url=vllm_server.url, api_key=vllm_server.config.api_key)
        ) as teacher:
            return await run_strategy(
                "local",
                SENTENCES[:2],
                teacher,
                AugmentParams(outputs_per_unit=1, max_tokens=16),
                skip_unit_ids={SENTENCES[0].id},
            )

    result = asyncio.run(go())
    assert result.stats.units_skipped == 1 and result.stats.requests == 1
    assert result.stats.requests_failed == 0
    assert all(ex.unit_ids == [SENTENCES[1].id] for ex in result.examples)
