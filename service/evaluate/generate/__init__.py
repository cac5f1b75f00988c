"""Eval sets written from a collection's documents: multiple-choice items, each with one answer
the documents support and wrong answers of the same kind from the same collection.

Every item is a question that asks for the subject of a statement ("Who leads the Platform
team?" from "Priya Nandakumar leads the Platform team."); the statement comes from the
rule-made, high-precision readings of `service/augment/structure.py` and `linked.py`:
- reversed: the document's own statement, asked from its other side: the answer is the
  sentence's subject ("Which tool is for expenses?" when the document says "Ledgerly is the tool
  for expenses"); made only where the parse supports a rewrite, so the clause is read right;
- forward: the stated fact asked in the direction it is written: the subject of its voice or
  identity rewrite is asked ("Which team is led by Priya Nandakumar?");
- cross-document: a fact that follows from two sentences of different documents (inheritance
  along "is a", a chain through a named thing, a syllogism), asked where only one answer
  follows: never the member of a class (every member shares the class's properties).
An item names what it asks about (a proper name or a described thing, never "the meeting" or
"this policy"), its answer is a name, a team or (for identities) a description, and its wrong
answers are phrases of the same kind from the collection that make no statement the collection
supports: not a sentence, rewrite or inference of it, not a phrase written in one sentence with
what the question names, nor one that a class statement ("Every office manager reports to ...")
could make true. No item's question and answer restate a document sentence.

`generate_evalset` also picks the held-out sentences: a seeded share of the sentences the chosen
items rest on, which training then leaves out; their items are marked "<category>/held-out".
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from typing import Any

from service.evaluate.generate.frames import Reading, clean_sentence, read_collection
from service.evaluate.generate.model import (
    CATEGORIES,
    DEFAULT_CHOICES,
    HELD_OUT,
    GeneratedItem,
    Generation,
    SourceSentence,
    sentence_sha256,
)
from service.evaluate.generate.phrases import learn_statements
from service.evaluate.generate.questions import quantifier_item, write_item

__all__ = [
    "CATEGORIES",
    "DEFAULT_CHOICES",
    "HELD_OUT",
    "GeneratedItem",
    "Generation",
    "Progress",
    "SourceSentence",
    "clean_sentence",
    "generate_evalset",
    "sentence_sha256",
]

Progress = Callable[[int, int, str], None]


def generate_evalset(
    sentences: Sequence[SourceSentence],
    *,
    categories: Sequence[str] = CATEGORIES,
    max_items: int = 50,
    hold_out: float = 0.0,
    seed: int = 0,
    choices: int = DEFAULT_CHOICES,
    progress: Progress | None = None,
) -> Generation:
    """Up to `max_items` items in `categories` (balanced, deterministic for a seed), each with
    `choices` options or fewer (at least two) where the collection has fewer of the kind; and
    the held-out sentences (a `hold_out` share of the sentences the items rest on)."""
    _check_options(categories, hold_out, choices)
    report = progress or (lambda done, total, message: None)
    total = len(sentences) + 2
    reading = read_collection(sentences, report, total)
    report(len(sentences) + 1, total, "choosing answers")
    learn_statements(reading.collection)
    rng = random.Random(seed)
    candidates, dropped = _candidates(reading, choices, rng)
    chosen = _select(candidates, categories, max_items, rng)
    held = _hold_out(chosen, sentences, hold_out, rng)
    items = _mark_held_out(chosen, held)
    stats: dict[str, Any] = {"sentences": len(sentences), "dropped": {}}
    stats["candidates"] = {c: len(v) for c, v in candidates.items()}
    stats["items"] = {c: sum(1 for g in items if g.base_category == c) for c in CATEGORIES}
    stats["held_out_items"] = sum(1 for g in items if g.held_out)
    stats["held_out_sentences"] = len(held)
    stats["dropped"] = dict(sorted(dropped.items()))
    report(total, total, "done")
    return Generation(items=items, held_out=held, stats=stats)


def _check_options(categories: Sequence[str], hold_out: float, choices: int) -> None:
    unknown = sorted(set(categories) - set(CATEGORIES))
    if unknown:
        raise ValueError(f"unknown categories {unknown}; expected some of {list(CATEGORIES)}")
    if not 0.0 <= hold_out < 1.0:
        raise ValueError("hold_out must be at least 0 and below 1")
    if choices < 2:
        raise ValueError("choices must be at least 2")


def _candidates(
    reading: Reading, choices: int, rng: random.Random
) -> tuple[dict[str, list[GeneratedItem]], dict[str, int]]:
    """Every item the frames and syllogisms make, by category (a question once), and how many
    were dropped for each reason."""
    from service.augment.structure import parse

    collection = reading.collection
    frame_docs = parse(f.text for f in reading.frames)
    candidates: dict[str, list[GeneratedItem]] = {c: [] for c in CATEGORIES}
    seen_questions: set[str] = set()
    dropped: dict[str, int] = {}
    for frame, doc in zip(reading.frames, frame_docs, strict=True):
        made = write_item(frame, doc, collection, choices, rng)
        if isinstance(made, str):
            dropped[made] = dropped.get(made, 0) + 1
            continue
        if made.item.question in seen_questions:
            dropped["same_question"] = dropped.get("same_question", 0) + 1
            continue
        seen_questions.add(made.item.question)
        candidates[frame.category].append(made)
    for inference, rule in reading.quantified:
        made = quantifier_item(inference, rule, collection)
        if isinstance(made, str):
            dropped[made] = dropped.get(made, 0) + 1
        else:
            candidates["cross-document"].append(made)
    return candidates, dropped


def _mark_held_out(
    chosen: Sequence[GeneratedItem], held: Sequence[SourceSentence]
) -> list[GeneratedItem]:
    """The chosen items, those resting on a held-out sentence marked "<category>/held-out"."""
    held_keys = {s.key for s in held}
    items = []
    for g in chosen:
        if held_keys & set(g.sources):
            item = g.item.model_copy(update={"category": f"{g.base_category}/{HELD_OUT}"})
            g = replace(g, item=item, held_out=True)
        items.append(g)
    return items


def _select(
    candidates: dict[str, list[GeneratedItem]],
    categories: Iterable[str],
    max_items: int,
    rng: random.Random,
) -> list[GeneratedItem]:
    """Up to `max_items`, taken in turn from each category (seeded order within one)."""
    queues = []
    for category in CATEGORIES:
        if category not in categories:
            continue
        queue = sorted(candidates[category], key=lambda g: g.item.id)
        rng.shuffle(queue)
        queues.append(queue)
    out: list[GeneratedItem] = []
    while len(out) < max_items and any(queues):
        for queue in queues:
            if queue and len(out) < max_items:
                out.append(queue.pop(0))
    return out


def _hold_out(
    items: Sequence[GeneratedItem],
    sentences: Sequence[SourceSentence],
    share: float,
    rng: random.Random,
) -> list[SourceSentence]:
    """A `share` of the sentences the items rest on (at least one when `share` > 0)."""
    if share <= 0 or not items:
        return []
    keys = sorted({k for g in items for k in g.sources})
    count = max(1, round(share * len(keys)))
    held = set(rng.sample(keys, min(count, len(keys))))
    return [s for s in sentences if s.key in held]
