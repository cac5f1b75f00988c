"""Eval sets written from documents (spaCy's real model, no server): forward, reversed and
cross-document items on small hand-written sentences; wrong answers of the answer's kind that
stay wrong; nothing stated verbatim; held-out sentences; and the development set's target."""

from __future__ import annotations

import pytest

from service.benchmark.devset import normalize
from service.evaluate.generate import (
    HELD_OUT,
    GeneratedItem,
    SourceSentence,
    generate_evalset,
)


def _sentences(docs: dict[str, list[str]]) -> list[SourceSentence]:
    out = []
    for doc, texts in docs.items():
        for k, text in enumerate(texts):
            out.append(SourceSentence(f"{doc}:p0:s{k}", doc, text, texts[k - 1] if k else ""))
    return out


DOCS = {
    "teams": [
        "Priya Nandakumar leads the Platform team.",
        "Chen Wei leads the Product Engineering team.",
        "The Security team is led by Marco Bianchi.",
        "The Finance team is led by Ingrid Svensson.",
        "All internal tools are maintained by the Platform team.",
        "Joana Pereira reports to Rui Costa.",
    ],
    "tools": [
        "Expensio is the tool for expenses.",
        "Tidemark is the dashboard the Analytics team uses.",
        "Tidemark is an internal tool.",
        "Compass is the HR system where employees request leave.",
        "Leave is requested in Compass.",
        "Manifest is built by the Product Engineering team.",
    ],
    "notes": [
        "Priya Nandakumar chaired the meeting.",
        "Lena Hoffmann works with the Security team every week.",
    ],
}
PEOPLE = {
    "Priya Nandakumar.",
    "Chen Wei.",
    "Marco Bianchi.",
    "Ingrid Svensson.",
    "Joana Pereira.",
    "Rui Costa.",
    "Lena Hoffmann.",
}
TEAMS = {
    "The Platform team.",
    "The Product Engineering team.",
    "The Security team.",
    "The Finance team.",
    "The Analytics team.",
}


@pytest.fixture(scope="module")
def generated() -> list[GeneratedItem]:
    return generate_evalset(_sentences(DOCS), max_items=1000, seed=0).items


def _by_question(items: list[GeneratedItem]) -> dict[str, GeneratedItem]:
    return {g.item.question: g for g in items}


def test_a_reversed_item_asks_the_relation_from_its_other_side(generated) -> None:  # type: ignore[no-untyped-def]
    items = _by_question(generated)
    tool = items["What is the tool for expenses?"]  # "Expensio is the tool for expenses."
    assert tool.item.category == "reversed" and tool.item.answer == "Expensio."
    assert set(tool.item.choices or ()) - {"Expensio."} <= {"Tidemark.", "Compass.", "Manifest."}
    lead = items["Who leads the Platform team?"]
    assert lead.item.category == "reversed" and lead.item.answer == "Priya Nandakumar."
    assert lead.statements[lead.item.choices.index("Priya Nandakumar.")] == DOCS["teams"][0]
    # the passive sentence is asked from its agent's side: the subject is the answer
    built = items["What is built by the Product Engineering team?"]
    assert built.item.answer == "Manifest." and built.item.category == "reversed"


def test_a_forward_item_asks_the_fact_in_the_direction_it_is_written(generated) -> None:  # type: ignore[no-untyped-def]
    items = _by_question(generated)
    led = items["Which team is led by Priya Nandakumar?"]
    assert led.item.category == "forward" and led.item.answer == "The Platform team."
    assert set(led.item.choices or ()) <= TEAMS
    marco = items["Who leads the Security team?"]  # from "The Security team is led by Marco ..."
    assert marco.item.category == "forward" and marco.item.answer == "Marco Bianchi."
    what = items["What is Tidemark?"]
    assert what.item.answer == "The dashboard the Analytics team uses."
    assert "The HR system where employees request leave." in (what.item.choices or ())


def test_cross_document_items_join_two_documents_and_never_ask_a_class_member(
    generated,  # type: ignore[no-untyped-def]
) -> None:
    items = _by_question(generated)
    inherited = items["Which team maintains Tidemark?"]  # tools + teams
    assert inherited.item.category == "cross-document"
    assert inherited.item.answer == "The Platform team."
    assert {s.split(":")[0] for s in inherited.sources} == {"tools", "teams"}
    chain = items["Who leads the team that builds Manifest?"]
    assert chain.item.category == "cross-document" and chain.item.answer == "Chen Wei."
    # every internal tool is maintained by the Platform team: never "What is maintained by ...?"
    assert not any(q.startswith("What is maintained by the Platform team") for q in items)


def test_wrong_answers_are_of_the_answer_kind_and_make_no_true_statement(generated) -> None:  # type: ignore[no-untyped-def]
    sentences = {normalize(t) for texts in DOCS.values() for t in texts}
    assert len(generated) >= 8
    for g in generated:
        item = g.item
        choices = item.choices or ()
        assert 2 <= len(choices) <= 4 and item.answer in choices
        if item.answer in PEOPLE:
            assert set(choices) <= PEOPLE, item
        if item.answer in TEAMS:
            assert set(choices) <= TEAMS, item
        for choice, statement in zip(choices, g.statements, strict=True):
            if choice != item.answer:
                assert normalize(statement) not in sentences, (item.question, choice)


def test_a_wrong_answer_written_with_what_the_question_names_is_never_offered(
    generated,  # type: ignore[no-untyped-def]
) -> None:
    items = _by_question(generated)
    # "Lena Hoffmann works with the Security team": she might lead it, for all we know
    assert "Lena Hoffmann." not in (items["Who leads the Security team?"].item.choices or ())
    for g in generated:
        assert "Priya." not in (g.item.choices or ()), "a first name of an answer's person"


def test_nothing_is_stated_verbatim_and_no_question_gives_its_answer(generated) -> None:  # type: ignore[no-untyped-def]
    sentences = {normalize(t) for texts in DOCS.values() for t in texts}
    for g in generated:
        item = g.item
        assert normalize(f"{item.question} {item.answer}") not in sentences
        if item.category != "reversed":
            answer_statement = g.statements[(item.choices or ()).index(item.answer)]
            assert normalize(answer_statement) not in sentences, item
        assert item.answer.rstrip(".").lower() not in item.question.lower()
    # "the meeting" names nothing outside its document: no item asks about it
    assert not any("meeting" in g.item.question for g in generated)


def test_held_out_sentences_are_a_share_of_the_item_sources_and_mark_their_items() -> None:
    generation = generate_evalset(_sentences(DOCS), max_items=1000, hold_out=0.5, seed=1)
    sources = sorted({k for g in generation.items for k in g.sources})
    held = {s.key for s in generation.held_out}
    assert len(held) == round(0.5 * len(sources)) and held <= set(sources)
    for g in generation.items:
        marked = (g.item.category or "").endswith(f"/{HELD_OUT}")
        assert marked == g.held_out == bool(held & set(g.sources)), g.item
    assert any(g.held_out for g in generation.items)
    assert any(not g.held_out for g in generation.items)
    assert generation.stats["held_out_sentences"] == len(held)
    nothing = generate_evalset(_sentences(DOCS), max_items=1000, hold_out=0.0)
    assert nothing.held_out == [] and not any(g.held_out for g in nothing.items)


def test_generation_is_deterministic_balanced_and_validated() -> None:
    sentences = _sentences(DOCS)
    one = generate_evalset(sentences, max_items=6, seed=3)
    again = generate_evalset(sentences, max_items=6, seed=3)
    assert [g.item for g in one.items] == [g.item for g in again.items]
    assert len(one.items) == 6
    # taken in turn: with six items, two of each category
    assert sorted(g.base_category for g in one.items) == sorted(
        ["forward", "reversed", "cross-document"] * 2
    )
    only = generate_evalset(sentences, categories=["reversed"], max_items=100)
    assert only.items and {g.item.category for g in only.items} == {"reversed"}
    two = generate_evalset(sentences, max_items=100, choices=2)
    assert all(len(g.item.choices or ()) == 2 for g in two.items)
    with pytest.raises(ValueError, match="unknown categories"):
        generate_evalset(sentences, categories=["sideways"])
    with pytest.raises(ValueError, match="hold_out"):
        generate_evalset(sentences, hold_out=1.0)
    assert generate_evalset([], max_items=10).items == []
