"""The quality gate: outputs that contradict their source are dropped, with the reason."""

from __future__ import annotations

import pytest

from service.augment.filters.gate import contradiction

KREB = "Kreb are more dangerous than quom."
MORV = "Morv are dimmer than jolp."


@pytest.mark.parametrize(
    "output, reason",
    [
        # The dominant failure: names swapped, relation kept.
        ("Quom are more dangerous than kreb.", "swapped_not_flipped"),
        ("Quom is more dangerous than Kreb.", "swapped_not_flipped"),
        ("So quom are more dangerous than the kreb.", "swapped_not_flipped"),
        # Relation flipped in place, or the opposite comparison in other words.
        ("Kreb are less dangerous than quom.", "flipped_not_swapped"),
        ("Kreb are safer than quom.", "opposite_comparative"),
        ("Kreb are not more dangerous than quom.", "opposite_comparative"),
        ("Quom is the same as kreb.", "opposite_comparative"),
        ("Quom is no longer dangerous than Kreb.", "negation_flip"),
        ("Quom are noisier than kreb.", "unsupported_comparison"),
        ("Quom are less dangerous than quom.", "self_comparison"),
        # Right: the reversal, in several wordings.
        ("Quom are less dangerous than kreb.", None),
        ("Quom are safer than kreb.", None),
        ("Quom are not more dangerous than kreb.", None),
        ("In other words, quom are less dangerous than kreb.", None),
    ],
)
def test_comparatives(output: str, reason: str | None) -> None:
    assert contradiction(output, [KREB]) == reason


@pytest.mark.parametrize(
    "output, reason",
    [
        ("Jolp are dimmer than morv.", "swapped_not_flipped"),
        ("Morv are brighter than jolp.", "flipped_not_swapped"),
        ("Jolp are less bright than morv.", "opposite_comparative"),
        ("Jolp are brighter than morv.", None),
        ("Morv are less bright than jolp.", None),
        ("Jolp is less dim than morv.", None),
    ],
)
def test_er_comparatives_and_antonyms(output: str, reason: str | None) -> None:
    assert contradiction(output, [MORV]) == reason


@pytest.mark.parametrize(
    "source, output, reason",
    [
        ("Acme founded Widgetco in 1999.", "Widgetco founded Acme in 1999.", "swapped_not_flipped"),
        (
            "In 1999, Acme founded Widgetco.",
            "In 1999, Widgetco founded Acme.",
            "swapped_not_flipped",
        ),
        (
            "The Harlow plant was founded by Mira Lenz in 1998.",
            "Mira Lenz was founded by the Harlow plant.",
            "swapped_not_flipped",
        ),
        ("Acme founded Widgetco.", "Acme was founded by Widgetco.", "flipped_not_swapped"),
        ("Jane is the parent of Tom.", "Jane is the child of Tom.", "flipped_not_swapped"),
        ("Gruds are a type of abmes.", "Abmes are a type of gruds.", "swapped_not_flipped"),
        ("Gruds are a type of abmes.", "Gruds include abmes.", "flipped_not_swapped"),
        ("All glon are yomp.", "All yomp are glon.", "invalid_conversion"),
        ("The plant is open on Sundays.", "The plant is not open on Sundays.", "negation_flip"),
        ("Quom are a type of blick.", "Quom is not a blick.", "negation_flip"),
        # Right, or symmetric, or an identity: kept.
        ("Acme founded Widgetco in 1999.", "Widgetco was founded by Acme in 1999.", None),
        ("Gruds are a type of abmes.", "Abmes include gruds.", None),
        ("Jane is the parent of Tom.", "Tom is the child of Jane.", None),
        ("Anna is married to Bob.", "Bob is married to Anna.", None),
        ("Some glon are yomp.", "Some yomp are glon.", None),
        ("Paris is the capital of France.", "The capital of France is Paris.", None),
    ],
)
def test_relations(source: str, output: str, reason: str | None) -> None:
    assert contradiction(output, [source]) == reason


def test_multi_sentence_sources_are_checked_sentence_by_sentence() -> None:
    doc = "Quom live in deep caves. Kreb are more dangerous than quom. Blick can swim."
    assert contradiction("Quom are more dangerous than kreb.", [doc]) == "swapped_not_flipped"
    assert contradiction("Quom are less dangerous than kreb.", [doc]) is None


def test_names_from_the_worked_examples_are_refused_unless_the_source_has_them() -> None:
    names = frozenset({"zorb", "plim"})
    assert contradiction("Zorb are heavier than quom.", [KREB], names) == "example_leak"
    assert (
        contradiction("Zorb are heavier than plim.", ["Zorb weigh a lot. Plim are small."], names)
        is None
    )
