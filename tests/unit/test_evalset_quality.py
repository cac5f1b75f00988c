"""Generated eval sets on the development set, judged by its gold (`docadapt perf evalset`):
the issue 13 target, at least 90% of the items with exactly one right answer, and the judge
itself (it must catch an item with two right answers or a false marked answer)."""

from __future__ import annotations

import pytest

from service.benchmark.devset import load_devset
from service.benchmark.evalset_perf import TARGET, Verdict, gold_statements, judge, measure
from service.evaluate.evalset import EvalItem
from service.evaluate.generate import GeneratedItem


@pytest.fixture(scope="module")
def dev() -> list[Verdict]:
    return measure("dev")


def test_generated_items_have_exactly_one_right_answer_by_the_gold(dev: list[Verdict]) -> None:
    counts = {c: sum(v.item.base_category == c for v in dev) for c in ("forward", "reversed")}
    assert counts["forward"] >= 15 and counts["reversed"] >= 15, counts
    assert sum(v.item.base_category == "cross-document" for v in dev) >= 4
    good = sum(v.exactly_one for v in dev)
    failing = [f"{v.item.item.question} -> {v.item.item.answer}" for v in dev if not v.exactly_one]
    assert good / len(dev) >= TARGET, failing
    # a wrong answer the gold calls true is the worst failure: none on the dev split
    assert not [v for v in dev if v.right_distractors], failing


def test_every_item_rests_on_dev_sentences_only(dev: list[Verdict]) -> None:
    dev_docs = {d.id for d in load_devset("dev").documents}
    for v in dev:
        assert {key.split(":", 1)[0] for key in v.item.sources} <= dev_docs
        assert v.split == "dev"


def _item(question: str, choices: list[str], answer: str, statements: list[str]) -> GeneratedItem:
    item = EvalItem(id="x", question=question, answer=answer, choices=tuple(choices))
    return GeneratedItem(item=item, statements=tuple(statements), sources=(), rule="test")


def test_the_judge_catches_two_right_answers_and_a_false_marked_answer() -> None:
    gold = gold_statements(load_devset())
    right = "Priya Nandakumar leads the Platform team."
    one = _item(
        "Who leads the Platform team?",
        ["Priya Nandakumar.", "Chen Wei."],
        "Priya Nandakumar.",
        [right, "Chen Wei leads the Platform team."],
    )
    assert judge(one, gold, "dev").exactly_one
    two = _item(
        "Who leads a team?",
        ["Priya Nandakumar.", "Chen Wei."],
        "Priya Nandakumar.",
        [right, "Chen Wei leads the Product Engineering team."],
    )
    verdict = judge(two, gold, "dev")
    assert not verdict.exactly_one and verdict.right_distractors == ["Chen Wei."]
    wrong = _item(
        "Who leads the Platform team?",
        ["Chen Wei.", "Priya Nandakumar."],
        "Chen Wei.",
        ["Chen Wei leads the Platform team.", right],
    )
    verdict = judge(wrong, gold, "dev")
    assert not verdict.answer_right and not verdict.exactly_one
