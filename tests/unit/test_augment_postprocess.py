"""Parsing and filtering of teacher outputs, on outputs the embedded model really wrote
(tests/fixtures/teacher_outputs.json, recorded by tests/fixtures/record_teacher_outputs.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from service.augment.filters.postprocess import (
    Deduplicator,
    FilterConfig,
    filter_statements,
    is_copy,
    normalize_statement,
    similarity_key,
    split_statements,
)
from service.augment.prompts import builtin_template
from service.augment.types import YieldStats

RECORDED = json.loads((Path(__file__).parents[1] / "fixtures" / "teacher_outputs.json").read_text())


def run_pipeline(records: list[dict]) -> tuple[dict[str, list[str]], YieldStats]:
    template = builtin_template("local")
    stats, dedup, kept = YieldStats(), Deduplicator(0.9), {}
    for rec in records:
        statements: list[str] = []
        for text, finish in zip(rec["texts"], rec["finish_reasons"], strict=True):
            stats.generated += 1
            statements += split_statements(
                text,
                split_sentences_too=True,
                cut_markers=template.stop,
                truncated=finish == "length",
            )
        kept.setdefault(rec["source"], []).extend(
            filter_statements(
                statements,
                sources=[rec["source"]],
                config=FilterConfig(),
                dedup=dedup,
                stats=stats,
                foreign_names=template.example_names,
            )
        )
    return kept, stats


def test_list_output_splits_into_clean_statements() -> None:
    out = " Quom is more dangerous than Kreb.\n- Quom is not more dangerous than Kreb.\n- Quom..."
    assert split_statements(out, split_sentences_too=True) == [
        "Quom is more dangerous than Kreb.",
        "Quom is not more dangerous than Kreb.",
        "Quom...",
    ]
    numbered = (
        "Here are some facts:\n1. Plim are lighter than zorb.\n2) Reversal: **Zorb weigh "
        "more.** Both are heavy\n\nStatement: next example"
    )
    assert split_statements(numbered, split_sentences_too=True, cut_markers=["Statement:"]) == [
        "Plim are lighter than zorb.",
        "Zorb weigh more.",
        "Both are heavy.",
    ]
    # A global chain stays whole when sentences are not split.
    chain = "- Dax are a type of fep. Feps glide, so dax glide.\n- Zorb are big."
    assert split_statements(chain, split_sentences_too=False) == [
        "Dax are a type of fep. Feps glide, so dax glide.",
        "Zorb are big.",
    ]


def test_truncated_output_loses_its_unfinished_last_statement() -> None:
    out = "- Harlin owns Widgetco.\n- Kreb is more dangerous than"
    assert split_statements(out, split_sentences_too=True, truncated=True) == [
        "Harlin owns Widgetco."
    ]
    assert len(split_statements(out, split_sentences_too=True, truncated=False)) == 2


@pytest.mark.parametrize(
    "raw, clean",
    [
        ('  "quom live in caves"  ', "Quom live in caves."),
        ("- * Output 2: kreb bite;", "Kreb bite."),
        ("---", ""),
    ],
)
def test_normalize_statement(raw: str, clean: str) -> None:
    assert normalize_statement(raw) == clean


def test_copy_and_swap_are_told_apart() -> None:
    src = similarity_key("Kreb are more dangerous than quom.")
    assert is_copy(similarity_key("Kreb is more dangerous than quom!"), src, 0.9)
    assert is_copy(similarity_key("The kreb are more dangerous"), src, 0.9)  # a piece of it
    # Same words, opposite meaning: not a copy (the gate judges it, not the copy filter).
    assert not is_copy(similarity_key("Quom are more dangerous than kreb."), src, 0.9)


def test_recorded_local_outputs_every_statement_accounted_for() -> None:
    kept, stats = run_pipeline(RECORDED["local"])
    assert stats.generated == sum(len(r["texts"]) for r in RECORDED["local"])
    assert stats.parsed == stats.kept + sum(stats.dropped.values())
    assert stats.kept == sum(len(v) for v in kept.values()) > 0
    # The teacher copies its source a lot; those never survive.
    for source, statements in kept.items():
        for s in statements:
            assert not is_copy(similarity_key(s), similarity_key(source), 0.9)
    assert stats.dropped["copy_of_source"] > 0


def test_recorded_local_outputs_keep_no_known_contradiction() -> None:
    kept, stats = run_pipeline(RECORDED["local"])
    wrong = {fact[4].lower().rstrip(".") for fact in RECORDED["facts"]}
    raw = [
        s.lower().rstrip(".")
        for r in RECORDED["local"]
        for t in r["texts"]
        for s in split_statements(t, split_sentences_too=True)
    ]
    keys = {similarity_key(w) for w in wrong}
    # The recording holds such contradictions (the dominant failure), and the gate dropped them.
    assert any(similarity_key(s) in keys for s in raw)
    assert not any(similarity_key(s) in keys for v in kept.values() for s in v)
    assert stats.dropped["gate:swapped_not_flipped"] > 0


def test_recorded_outputs_do_not_keep_names_the_source_lacks() -> None:
    kept, stats = run_pipeline(RECORDED["local"] + RECORDED["local_chat"])
    for source, statements in kept.items():
        words = set(source.lower().replace(".", "").split())
        for s in statements:
            for word in s.rstrip(".").split()[1:]:
                if word[:1].isupper():
                    assert word.lower().strip(",;'") in words, (source, s)
    assert stats.dropped["unknown_name"] > 0


def test_chat_outputs_that_replay_the_examples_are_dropped() -> None:
    kept, stats = run_pipeline(RECORDED["local_chat"])
    joined = " ".join(s for v in kept.values() for s in v).lower()
    for name in ("widgetco", "harlin", "zorb", "plim"):
        assert name not in joined
    assert stats.dropped["gate:example_leak"] + stats.dropped["unknown_name"] > 0


def test_duplicates_dropped_across_units_and_near_duplicates_within_one() -> None:
    stats, dedup = YieldStats(), Deduplicator(0.9)
    config = FilterConfig()
    first = filter_statements(
        ["Quom live in the deep caves.", "Quom live in deep caves!", "Quoms live in deep caves."],
        sources=["Quom live near kreb in deep caves."],
        config=config,
        dedup=dedup,
        stats=stats,
    )
    second = filter_statements(
        ["Quom live in deep caves."],
        sources=["Quom live near kreb in deep caves."],
        config=config,
        dedup=dedup,
        stats=stats,
    )
    assert first == ["Quom live in the deep caves."] and second == []
    assert stats.dropped["duplicate"] == 3  # articles, punctuation and plurals do not count


def test_length_bounds_and_repetition() -> None:
    stats = YieldStats()
    kept = filter_statements(
        [
            "Quom swim.",
            "The lighter quom is lighter lighter lighter lighter than kreb.",
            " ".join(["quom"] + ["swim"] * 70),
        ],
        sources=["Quom swim faster than kreb and are lighter."],
        config=FilterConfig(),
        dedup=Deduplicator(0.9),
        stats=stats,
    )
    assert kept == []
    assert stats.dropped == {"too_short": 1, "repetitive": 1, "too_long": 1}
