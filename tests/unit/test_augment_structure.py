"""The parse-based rewrites (decomposed) and the linked strategy's joins, on prose and on the
benchmark's generated sets; spaCy's real English model, no teacher."""

from __future__ import annotations

import asyncio

import pytest

from service.augment.engine import run_strategy
from service.augment.filters.verify import FLAG_BELOW
from service.augment.params import AugmentParams
from service.augment.structure import collection_names, rewrites
from service.augment.types import Unit
from service.benchmark.quality_perf import synthetic_quality

NAMES = collection_names(["We ask Finance, Tidemark, Harbor and Ledger about laptops."])


@pytest.mark.parametrize(
    ("sentence", "previous", "expected"),
    [
        (
            "Priya Nandakumar leads the Platform team.",
            "",
            "The Platform team is led by Priya Nandakumar.",
        ),
        (
            "The Platform team builds and maintains all internal tools.",
            "",
            "All internal tools are built and maintained by the Platform team.",
        ),
        (
            "Corvane Freight was founded in 2009 by Ana Reis.",
            "",
            "Ana Reis founded Corvane Freight in 2009.",
        ),
        (
            "Finance approves expenses over 500 euros.",
            "",
            "Expenses over 500 euros are approved by Finance.",
        ),
        (
            "Vendors must not access the production network.",
            "",
            "The production network must not be accessed by vendors.",
        ),
        (
            "Tidemark is the dashboard the Analytics team uses to analyse shipment data.",
            "",
            "The Analytics team uses Tidemark to analyse shipment data.",
        ),
        (
            "Harbor is an internal tool for booking meeting rooms.",
            "",
            "One internal tool for booking meeting rooms is Harbor.",
        ),
        (
            "It builds and maintains all internal tools.",
            "The Platform team is based in Lisbon.",
            "The Platform team builds and maintains all internal tools.",
        ),
        ("Joana Pereira reports to Rui Costa.", "", "Rui Costa is Joana Pereira's manager."),
        (  # two verbs with their own parts: two sentences, each rewritten
            "Laptops must use full-disk encryption and lock after five minutes.",
            "",
            "Laptops must lock after five minutes.",
        ),
        (
            "The review is written by the incident commander and approved by Priya Nandakumar.",
            "",
            "Priya Nandakumar approves the review.",
        ),
        (
            "The IT Helpdesk is part of the Platform team.",
            "",
            "The Platform team includes the IT Helpdesk.",
        ),
        (  # the second verb is finite: no auxiliary copied to it ("is supports")
            "The Clinical Systems team is led by Aisha Karimi and supports Beacon.",
            "",
            "The Clinical Systems team supports Beacon.",
        ),
    ],
)
def test_rewrites_keep_the_sentence_true(sentence: str, previous: str, expected: str) -> None:
    made, _ = rewrites(sentence, previous, NAMES)
    assert expected in [r.text for r in made]


@pytest.mark.parametrize(
    ("sentence", "reason"),
    [
        ("It is chaired by Helena Marques.", "unresolved_pronoun"),  # nothing before it
        ("The Lisbon office has 40 staff.", "verb_does_not_passivize"),
        ("If a laptop is lost, staff must report it within 24 hours.", "pronoun_object"),
        (
            "Ingrid Svensson leads the Finance team and reports to Helena Marques.",
            "unclear_coordination|coordinated_verbs_with_own_parts",
        ),
        ("Every new employee meets their buddy.", "verb_does_not_passivize|possessive_pronoun"),
        ("Lena Hoffmann also keeps the release calendar.", "focus_adverb"),
        ("This catalogue lists the main systems.", "document_as_agent"),
        ("All team leads report to Dr. Priya Raman.", "unclear_number"),
        ("Its archive was exported and handed to the Security team.", "passive_without_agent"),
        ("Manifest is a customer-facing service, not an internal tool.", "attribute_with_aside"),
    ],
)
def test_uncertain_structure_gives_no_statement(sentence: str, reason: str) -> None:
    made, why = rewrites(sentence, "", NAMES)
    assert made == [] and why in reason.split("|")


def test_a_heading_glued_to_its_sentence_is_dropped() -> None:
    made, _ = rewrites("Quarry Software Quarry Software licenses Ledger to the company.", "", NAMES)
    assert [r.text for r in made] == ["Ledger is licensed to the company by Quarry Software."] or [
        r.text for r in made
    ] == ["Ledger is licensed by Quarry Software to the company."]


def _units(texts: dict[str, list[str]]) -> list[Unit]:
    return [
        Unit(f"{doc}:{i}", doc, s, context=sentences[i - 1] if i else "")
        for doc, sentences in texts.items()
        for i, s in enumerate(sentences)
    ]


def test_linked_joins_facts_across_documents_with_their_sentence_ids() -> None:
    units = _units(
        {
            "tools": [
                "Tidemark is an internal tool.",
                "Harbor is an internal tool for deployments.",
            ],
            "teams": [
                "All internal tools are maintained by the Platform team.",
                "Priya Nandakumar leads the Platform team.",
                "All contractors are external staff.",
                "No external staff may access the payroll system.",
            ],
        }
    )
    result = asyncio.run(run_strategy("linked", units, None, AugmentParams()))  # type: ignore[arg-type]
    by_text = {e.text: e for e in result.examples}
    assert by_text["Tidemark is maintained by the Platform team."].unit_ids == [
        "tools:0",
        "teams:0",
    ]
    assert by_text["Tidemark is maintained by the Platform team."].context_document_ids == ["teams"]
    assert "Harbor is maintained by the Platform team." in by_text
    assert "No contractors may access the payroll system." in by_text
    assert "Priya Nandakumar leads the team that maintains all internal tools." in by_text
    assert result.stats.requests == 0
    for ex in result.examples:
        assert ex.score is not None and ex.score >= FLAG_BELOW and not ex.flagged


def test_synthetic_targets_hold() -> None:
    """Issue 12: reversals >= 90% precise on the synthetic set; syllogism recall >= 50%."""
    q = synthetic_quality(["decomposed", "linked"], "small")
    reversals = q["decomposed"]["simple_reversals"]
    assert reversals["kept"] >= 25 and reversals["precision"] >= 0.9
    assert reversals["contradiction"] == 0
    syllogisms = q["linked"]["syllogisms"]
    assert syllogisms["recall"]["syllogisms/syllogism"] >= 0.5 and syllogisms["precision"] >= 0.9


def test_free_form_statements_are_flagged_for_review() -> None:
    from service.augment.filters.verify import verify
    from service.augment.types import Example

    ex = Example(
        text="Corvane Freight shares offices with Lisbon.",
        strategy="global",
        document_id="d",
        unit_ids=["d"],
        source_text="Corvane Freight has offices in Lisbon.",
        template_name="global",
        template_version="1",
        template_hash="h",
        teacher_model="base",
        sampling={},
        prompt_tokens=1,
        completion_tokens=1,
        request_ids=["r"],
    )
    verify(ex)
    assert ex.flagged and ex.score is not None and ex.score < FLAG_BELOW
