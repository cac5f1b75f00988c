"""Strategies over a scripted teacher: per-unit results, resume, provenance, the global context
plan (prefix order, budget, coverage), and the decomposed path with and without rules."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest

from service.augment.engine import run_strategy
from service.augment.params import AugmentParams, estimate_tokens
from service.augment.strategies.global_ import plan_contexts
from service.augment.teacher import Teacher
from service.augment.types import Unit, UnitResult
from tests.fixtures.scripted_teacher import (
    completion_body,
    config,
    teacher_server_fixture,  # noqa: F401
)

SENTENCES = [
    Unit("s1", "d1", "Kreb are more dangerous than quom."),
    Unit("s2", "d1", "Morv are dimmer than jolp."),
    Unit("s3", "d2", "Acme acquired Blorp in 2003."),
]


def local_script(n: int, payload: dict[str, Any]):
    unit = payload["prompt"].rsplit("Statement: ", 1)[1].split("\n")[0]
    a, b = {"Kreb": ("Quom", "kreb"), "Morv": ("Jolp", "morv")}.get(unit.split()[0], ("X", "y"))
    # One right reversal and the dominant failure for each unit, plus a copy of the source.
    return (
        200,
        {},
        completion_body(
            [
                f" {a} are {'less dangerous' if a == 'Quom' else 'brighter'} than {b}.\n"
                f"- {a} are {'more dangerous' if a == 'Quom' else 'dimmer'} than {b}.\n- {unit}"
            ]
            * payload["n"],
            50,
            20,
        ),
    )


def run(
    teacher_server,
    strategy: str,
    units: list[Unit],
    params: AugmentParams,
    script=local_script,
    **kw: Any,
):
    srv = teacher_server(script)
    done: list[UnitResult] = []

    async def go():
        async with Teacher(config(srv.url)) as teacher:
            return await run_strategy(
                strategy, units, teacher, params, on_unit_done=done.append, **kw
            )

    return asyncio.run(go()), done, srv


def test_local_results_arrive_per_unit_with_provenance(teacher_server) -> None:
    params = AugmentParams(outputs_per_unit=2, temperature=0.8)
    result, done, srv = run(teacher_server, "local", SENTENCES[:2], params)
    assert sorted(r.unit_id for r in done) == ["s1", "s2"]
    texts = sorted(e.text for e in result.examples)
    assert texts == ["Jolp are brighter than morv.", "Quom are less dangerous than kreb."]
    ex = next(e for e in result.examples if e.unit_ids == ["s1"])
    assert (ex.strategy, ex.document_id, ex.source_text) == ("local", "d1", SENTENCES[0].text)
    assert ex.template_name == "local" and ex.template_version and ex.template_hash
    assert ex.teacher_model == "base" and ex.sampling["n"] == 2
    assert ex.sampling["temperature"] == 0.8 and "seed" not in ex.sampling
    assert (ex.prompt_tokens, ex.completion_tokens) == (50, 20) and ex.request_ids
    s = result.stats
    assert (s.requests, s.generated, s.prompt_tokens, s.completion_tokens) == (2, 4, 100, 40)
    assert s.parsed == s.kept + sum(s.dropped.values())
    # Gate and copy filter see both samples; the second sample's reversal is a duplicate.
    assert s.dropped["gate:swapped_not_flipped"] == 4 and s.dropped["copy_of_source"] == 4
    assert s.dropped["duplicate"] == 2


def test_resumed_job_skips_finished_units(teacher_server) -> None:
    result, done, srv = run(
        teacher_server,
        "local",
        SENTENCES[:2],
        AugmentParams(outputs_per_unit=1),
        skip_unit_ids={"s1"},
    )
    assert [r.unit_id for r in done] == ["s2"] and len(srv.payloads) == 1
    assert (result.stats.units_total, result.stats.units_skipped, result.stats.units_done) == (
        2,
        1,
        1,
    )


def test_decomposed_rules_answer_comparatives_without_the_teacher(teacher_server) -> None:
    def script(n: int, payload: dict[str, Any]):
        prompt = payload["prompt"]
        if prompt.rstrip().endswith("Triple:"):
            return (200, {}, completion_body([" Acme | acquired | Blorp"]))
        return (200, {}, completion_body([" was bought by"]))

    result, done, srv = run(teacher_server, "decomposed", SENTENCES, AugmentParams(), script=script)
    by_unit = {e.unit_ids[0]: e for e in result.examples}
    assert by_unit["s1"].text == "Quom are less dangerous than kreb."
    assert by_unit["s2"].text == "Jolp are brighter than morv."
    assert by_unit["s1"].detail["inverse_source"] == "rule:comparative"
    # "acquired" is in the rule table too: "Blorp was acquired by Acme in 2003."
    assert by_unit["s3"].text == "Blorp was acquired by Acme in 2003."
    assert len(srv.payloads) == 0  # every sentence was answered by rules

    result, done, srv = run(
        teacher_server, "decomposed", SENTENCES[2:], AugmentParams(use_rules=False), script=script
    )
    (ex,) = result.examples
    assert ex.text == "Blorp was bought by Acme in 2003."
    assert ex.detail["extraction"] == "teacher" and ex.detail["inverse_source"] == "teacher"
    assert len(ex.request_ids) == 2 and ex.template_name == "decomposed_extract+decomposed_inverse"


def test_decomposed_refuses_a_teacher_inverse_that_copies_the_relation(teacher_server) -> None:
    def script(n: int, payload: dict[str, Any]):
        if payload["prompt"].rstrip().endswith("Triple:"):
            return (200, {}, completion_body([" Morv | are dimmer than | jolp"]))
        return (200, {}, completion_body([" are dimmer than"]))

    result, _, _ = run(
        teacher_server, "decomposed", SENTENCES[1:2], AugmentParams(use_rules=False), script=script
    )
    assert result.examples == [] and result.stats.unparsed["inverse_is_copy"] == 1


DOCS = [
    Unit(f"doc{i}", f"doc{i}", text, title=f"T{i}")
    for i, text in enumerate(
        [
            "Kreb are more dangerous than quom. Quom live in deep caves.",
            "Quom are a type of blick. Blick can swim across rivers.",
            "The Harlow plant was founded by Mira Lenz in 1998.",
            "Mira Lenz studies blick at the Lenz Institute.",
            "Deep caves are cold and dark.",
        ]
    )
]


def test_global_prompts_share_the_corpus_prefix_and_the_first_goes_alone(teacher_server) -> None:
    order: list[tuple[str, float]] = []

    def script(n: int, payload: dict[str, Any]):
        target = re.findall(r"Target document \((T\d)\)", payload["prompt"])[-1]
        order.append(target)
        return (
            200,
            {},
            completion_body(
                [
                    " Mira Lenz studies blick, and quom are a type of "
                    "blick, so Mira Lenz studies quom's kind."
                ]
            ),
        )

    result, done, srv = run(
        teacher_server,
        "global",
        list(reversed(DOCS)),
        AugmentParams(outputs_per_unit=1, temperature=0.0),
        script=script,
    )
    prompts = [p["prompt"] for p in srv.payloads]
    corpus_end = [p.rindex("Target document") for p in prompts]
    assert len(set(p[:e] for p, e in zip(prompts, corpus_end, strict=True))) == 1  # one prefix
    assert order[0] == "T0"  # fixed corpus order, whatever order the units came in
    assert result.stats.units_done == 5
    ex = result.examples[0]
    assert ex.strategy == "global" and ex.document_id in ex.unit_ids
    assert set(ex.context_document_ids) == {d.id for d in DOCS} - {ex.document_id}


@pytest.mark.parametrize("budget", [60, 95])  # room for the target and one or two more
def test_global_plan_over_budget_stays_in_budget_and_covers_every_document(budget: int) -> None:
    plan = plan_contexts(DOCS, budget, estimate_tokens, overhead=0)
    assert not plan.whole_corpus
    used = {d for ctx in plan.contexts.values() for d in ctx}
    assert used == {d.id for d in DOCS}  # every document is context for some target
    cut = budget // 2  # a document alone is cut to half the room
    for target, ctx in plan.contexts.items():
        assert target not in ctx and ctx == sorted(ctx)  # corpus order
        size = sum(
            min(estimate_tokens(next(d.text for d in DOCS if d.id == i)) + 12, cut)
            for i in [*ctx, target]
        )
        assert size <= budget
    assert plan == plan_contexts(DOCS, budget, estimate_tokens, overhead=0)  # deterministic


def test_global_plan_prefers_relevant_documents() -> None:
    plan = plan_contexts(DOCS, 95, estimate_tokens, overhead=0)
    # Mira Lenz links doc2 and doc3; quom links doc0 and doc1.
    assert "doc3" in plan.contexts["doc2"] and "doc2" in plan.contexts["doc3"]
    assert "doc1" in plan.contexts["doc0"]
    whole = plan_contexts(DOCS, 10_000, estimate_tokens, overhead=0)
    assert whole.whole_corpus and whole.contexts["doc0"] == [d.id for d in DOCS]


def test_job_params_carry_every_token_cap() -> None:
    from service.augment.job import build_params

    params = build_params({"max_tokens": 40, "global_max_tokens": 96}, None)
    assert (params.max_tokens, params.global_max_tokens) == (40, 96)
    assert build_params({}, None).global_max_tokens == 256
