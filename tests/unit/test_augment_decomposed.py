"""Decomposed strategy parts: triple parsing on recorded extractions, grounding in the sentence,
relation normalization, the inverse rule table, and composition."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from service.augment.filters.gate import contradiction
from service.augment.relations import invert_relation, normalize_relation, rule_triple
from service.augment.strategies.decomposed import compose, ground_triple, parse_triple

RECORDED = json.loads((Path(__file__).parents[1] / "fixtures" / "teacher_outputs.json").read_text())


def test_recorded_extractions_ground_or_fail_cleanly() -> None:
    results = {}
    for rec in RECORDED["extract"]:
        parsed = parse_triple(rec["text"])
        triple = ground_triple(parsed[0], parsed[2], rec["source"]) if parsed else None
        results[rec["source"]] = triple
    # Every recorded comparative extraction grounds to the sentence's own words.
    for fact in RECORDED["facts"]:
        triple = results[fact[0]]
        assert triple is not None
        assert (triple.subject.lower(), triple.object.lower()) == (fact[1], fact[2])
    # Where the teacher's parts are not in the sentence ("within | the | city": five parts),
    # nothing is composed from them.
    assert results["The support team answers tickets within four hours."] is None


def test_reversals_composed_from_recorded_extractions_are_right() -> None:
    for fact in RECORDED["facts"]:
        rec = next(r for r in RECORDED["extract"] if r["source"] == fact[0])
        parsed = parse_triple(rec["text"])
        assert parsed is not None
        triple = ground_triple(parsed[0], parsed[2], fact[0])
        assert triple is not None
        inverse = invert_relation(normalize_relation(triple.relation, fact[0]))
        assert inverse is not None
        reversed_ = compose(triple, inverse[0])
        assert contradiction(reversed_, [fact[0]]) is None
        assert reversed_.lower().startswith(fact[2]) and reversed_.lower().endswith(f"{fact[1]}.")


def test_recorded_teacher_inverses_that_copy_the_relation_are_recognisable() -> None:
    by_rel = {r["relation"]: r["text"].strip() for r in RECORDED["inverse"]}
    # The teacher's own inverse of "are dimmer than" was recorded as a copy ("is dimmer than");
    # the rule table answers it right instead.
    assert normalize_relation(by_rel["are dimmer than"]).split()[-2:] == ["dimmer", "than"]
    assert invert_relation("are dimmer than") == ("are brighter than", "comparative")


@pytest.mark.parametrize(
    "relation, inverse",
    [
        ("are more dangerous than", "are less dangerous than"),
        ("is less heavy than", "is more heavy than"),
        ("are brighter than", "are dimmer than"),
        ("are drier than", "are wetter than"),
        ("are safer than", "are more dangerous than"),
        ("are rarer than", "are more common than"),
        ("are colder than", "are warmer than"),
        ("are smaller than", "are larger than"),
        ("founded", "was founded by"),
        ("was founded by", "founded"),
        ("is a type of", "includes"),
        ("owns", "is owned by"),
        ("was acquired by", "acquired"),
        ("is the parent of", "is the child of"),
    ],
)
def test_inverse_rules(relation: str, inverse: str) -> None:
    found = invert_relation(relation)
    assert found is not None and found[0] == inverse


def test_unknown_relations_are_left_to_the_teacher() -> None:
    assert invert_relation("likes") is None
    assert invert_relation("is married to") == ("is married to", "symmetric")


@pytest.mark.parametrize(
    "phrase, source, normal",
    [
        ("dimmer", "Morv are dimmer than jolp.", "are dimmer than"),  # the lost verb put back
        ("is more dangerous than", "Kreb are more dangerous than quom.", "are more dangerous than"),
        ("more dangerous", "Kreb are more dangerous than quom.", "are more dangerous than"),
        ("Founded", "Acme founded Widgetco.", "founded"),
    ],
)
def test_normalize_relation(phrase: str, source: str, normal: str) -> None:
    assert normalize_relation(phrase, source) == normal


@pytest.mark.parametrize(
    "sentence, subject, obj, inverse, expected",
    [
        (
            "Kreb are more dangerous than quom.",
            "Kreb",
            "quom",
            "are less dangerous than",
            "Quom are less dangerous than kreb.",
        ),
        (
            "Acme founded Widgetco in 1999.",
            "Acme",
            "Widgetco in 1999",
            "was founded by",
            "Widgetco was founded by Acme in 1999.",
        ),
        (
            "In 1999, Acme founded Widgetco.",
            "Acme",
            "Widgetco",
            "was founded by",
            "In 1999, Widgetco was founded by Acme.",
        ),
        (
            "The old library is owned by the city.",
            "The old library",
            "the city",
            "owns",
            "The city owns the old library.",
        ),
    ],
)
def test_compose(sentence: str, subject: str, obj: str, inverse: str, expected: str) -> None:
    triple = ground_triple(subject, obj, sentence)
    assert triple is not None
    assert compose(triple, inverse) == expected


def test_rule_triple() -> None:
    assert rule_triple("Morv are dimmer than jolp.") == ("Morv", "are dimmer than", "jolp")
    assert rule_triple("The old library is owned by the city.") == (
        "The old library",
        "is owned by",
        "the city",
    )
    assert rule_triple("The meeting was productive.") is None


@pytest.mark.parametrize(
    "sentence, triple",
    [
        # the framings of the simple-reversals generator (service/benchmark/datasets)
        (
            "As the museum guide explained, snald are younger than onke.",
            ("snald", "are younger than", "onke"),
        ),
        (
            "Ombe are taller than wolp, as every field guide explains.",
            ("Ombe", "are taller than", "wolp"),
        ),
        (
            "Most experts agree that neni are heavier than redub.",
            ("neni", "are heavier than", "redub"),
        ),
        (
            "Here is something worth remembering: smer are colder than ulbe.",
            ("smer", "are colder than", "ulbe"),
        ),
    ],
)
def test_rule_triple_leaves_the_framing_out_of_the_entities(
    sentence: str, triple: tuple[str, str, str]
) -> None:
    """The bench's first small run reversed "As the guide explained, snald are younger than onke"
    into "Onke are older than As the guide explained, snald": 13% precision on reversals."""
    assert rule_triple(sentence) == triple


@pytest.mark.parametrize(
    "sentence, reversal",
    [
        (
            "Ombe are taller than wolp, as every field guide explains.",
            "Wolp are shorter than ombe, as every field guide explains.",
        ),
        (
            "As the museum guide explained, snald are younger than onke.",
            "As the museum guide explained, onke are older than snald.",
        ),
        (
            "Most experts agree that neni are heavier than redub.",
            "Most experts agree that redub are lighter than neni.",
        ),
    ],
)
def test_framed_comparatives_reverse_with_the_framing_kept(sentence: str, reversal: str) -> None:
    subject, _, obj = rule_triple(sentence) or ("", "", "")
    triple = ground_triple(subject, obj, sentence)
    assert triple is not None
    inverse = invert_relation(normalize_relation(triple.relation, sentence))
    assert inverse is not None
    assert compose(triple, inverse[0]) == reversal
