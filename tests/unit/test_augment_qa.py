"""The qa strategy: each fact as the question that asks for it and its answer, trained as the
chat turn an adapter will be asked in."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from adapters.training_data import IGNORE_INDEX, build_examples, chat_prompt, encode_example
from service.augment.engine import run_strategy
from service.augment.filters.verify import FLAG_BELOW
from service.augment.params import AugmentParams
from service.augment.types import Unit

DOCUMENTS = {
    "teams": [
        "Priya Nandakumar leads the Platform team.",
        "Chen Wei leads the Product Engineering team.",
        "Ingrid Svensson leads the Finance team.",
    ],
    "tools": [
        "The Product Engineering team builds Manifest.",
        "Ledger is the invoicing system that the Finance team uses.",
        "Compass is the HR system where employees request leave.",
        "Tidemark is the dashboard the Analytics team uses.",
        "Expense claims are usually filed on Fridays.",
    ],
}


def _units() -> list[Unit]:
    return [
        Unit(f"{doc}:{i}", doc, text, context=sentences[i - 1] if i else "")
        for doc, sentences in DOCUMENTS.items()
        for i, text in enumerate(sentences)
    ]


@pytest.fixture(scope="module")
def qa() -> list[Any]:
    return asyncio.run(run_strategy("qa", _units(), None, AugmentParams())).examples  # type: ignore[arg-type]


def test_each_fact_is_asked_from_both_sides_with_the_fact_as_its_answer(qa: list[Any]) -> None:
    pairs = {(e.detail["question"], e.text) for e in qa}
    assert ("Who leads the Platform team?", "Priya Nandakumar leads the Platform team.") in pairs
    assert (
        "Which team is led by Chen Wei?",
        "The Product Engineering team is led by Chen Wei.",
    ) in pairs
    assert (
        "What is the dashboard the Analytics team uses?",
        "Tidemark is the dashboard the Analytics team uses.",
    ) in pairs
    assert ("What is Tidemark?", "The dashboard the Analytics team uses is Tidemark.") in pairs
    # across documents: the team that builds Manifest is the one Chen Wei leads
    assert (
        "Who leads the team that builds Manifest?",
        "Chen Wei leads the team that builds Manifest.",
    ) in pairs


def test_no_question_where_the_answer_is_not_something_named(qa: list[Any]) -> None:
    assert not [e for e in qa if "Expense claims" in e.text or "Fridays" in e.text]


def test_every_pair_cites_its_sentences_and_is_trusted_without_a_teacher(qa: list[Any]) -> None:
    by_text = {e.text: e for e in qa}
    cross = by_text["Chen Wei leads the team that builds Manifest."]
    assert cross.unit_ids == ["teams:1", "tools:0"]
    assert cross.context_document_ids == ["tools"]
    assert by_text["Tidemark is the dashboard the Analytics team uses."].unit_ids == ["tools:3"]
    for ex in qa:
        assert ex.strategy == "qa" and ex.teacher_model.startswith("spacy:")
        assert ex.score is not None and ex.score >= FLAG_BELOW and not ex.flagged
    assert len({(e.detail["question"], e.text) for e in qa}) == len(qa)


@pytest.fixture(scope="module")
def tokenizer(base_model_dir: Path) -> Any:
    from adapters.base_model import load_tokenizer

    return load_tokenizer(base_model_dir)


def test_a_pair_trains_the_answer_after_the_chat_prompt_vllm_renders(tokenizer: Any) -> None:
    prompt = chat_prompt(tokenizer, "Who leads the Platform team?")
    assert prompt.endswith("<|im_start|>assistant\n") and "Who leads the Platform team?" in prompt
    tokens, labels = encode_example(tokenizer, prompt, "Priya Nandakumar leads the Platform team.")
    # The prompt is exactly what a chat request's template gives, token for token ...
    rendered = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Who leads the Platform team?"}],
        tokenize=True,
        add_generation_prompt=True,
    )
    rendered = list(getattr(rendered, "input_ids", rendered))
    assert tokens[: len(rendered)] == rendered
    # ... and the loss falls on the answer (no space before it) and its end-of-turn only.
    trained = [t for t in labels if t != IGNORE_INDEX]
    assert tokenizer.decode(trained) == "Priya Nandakumar leads the Platform team.<|im_end|>"
    assert trained[-1] == tokenizer.eos_token_id


def test_pairs_and_statements_share_one_training_set(tokenizer: Any) -> None:
    prompt = chat_prompt(tokenizer, "Who leads the Platform team?")
    result = build_examples(
        [],
        [(prompt, "Priya Nandakumar leads the Platform team."), "Harbor is a tool."],
        validation_fraction=0,
    )
    assert sorted(result.examples) == [
        ("", "Harbor is a tool."),
        (prompt, "Priya Nandakumar leads the Platform team."),
    ]


def test_the_knowledge_check_asks_the_trained_questions_as_chat_requests(tokenizer: Any) -> None:
    from service.evaluate.probes import QUESTION_CATEGORY, question_probes

    asked = [
        (
            "Who leads the Platform team?",
            ["Chen Wei leads the Platform team.", "Priya Nandakumar leads the Platform team."],
            1,
        ),
        ("Which team builds Manifest?", ["The Platform team builds Manifest."], 0),  # one choice
    ]
    probes = question_probes(tokenizer, asked)
    assert len(probes) == 1
    (probe,) = probes
    assert probe.category == QUESTION_CATEGORY
    assert probe.question == chat_prompt(tokenizer, "Who leads the Platform team?")
    assert probe.answer == "Priya Nandakumar leads the Platform team."
    assert probe.choices == asked[0][1]
    # scored as trained: the answer's tokens straight after the prompt's closing newline
    from adapters.knowledge import KnowledgeProbe

    scored = KnowledgeProbe.from_text(tokenizer, probe.question, probe.choices, 1)
    tokens, labels = encode_example(tokenizer, probe.question, probe.answer)
    assert scored.prompt_ids + scored.choice_ids[1] == tokens[:-1]  # less the end of turn
