"""Knowledge probes: does an adapter know the sentences it was trained on?

Each probe is one training sentence with its key span left out ("Kwame Mensah runs the ___"),
scored by likelihood like the evaluation: the sentence's own span against spans of the same kind
from elsewhere in the collection (another name for a name, another date for a date, another noun
phrase for a noun phrase). A distractor that would make another sentence of the collection is
not used, so each probe has one answer the documents support. Built from the parse
(`service/augment/structure/`), deterministically for a seed.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from adapters.knowledge import KNOWLEDGE_TARGET
from service.evaluate.evalset import EvalItem, generated_id

MAX_PROBES = 40
QUESTION_CATEGORY = "knowledge/question"
CHOICES = 4
TARGET = KNOWLEDGE_TARGET  # an adapter should know at least 90% of its documents' facts
_MIN_PREFIX_WORDS = 2
# Entity labels by the kind of answer they are; the small model's labels for names are unsure
# ("Marco Bianchi" as PERSON, "Tomás Ferreira" as ORG), so names form one kind.
_KIND = {
    **dict.fromkeys(("PERSON", "ORG", "GPE", "LOC", "FAC", "PRODUCT", "NORP", "EVENT"), "NAME"),
    **dict.fromkeys(("DATE", "TIME"), "TIME"),
    **dict.fromkeys(("MONEY", "PERCENT", "QUANTITY", "CARDINAL"), "AMOUNT"),
}


@dataclass(frozen=True)
class _Span:
    sentence: str
    start: int  # character offsets of the span in the sentence
    end: int
    kind: str  # NAME, TIME or AMOUNT for an entity, NP for another noun phrase

    @property
    def text(self) -> str:
        return self.sentence[self.start : self.end]


def _key_span(doc) -> _Span | None:  # type: ignore[no-untyped-def]
    """The last entity of the sentence, else its last noun phrase, when words come before it."""
    text = doc.text
    chunks = [c for c in doc.noun_chunks if c.start >= _MIN_PREFIX_WORDS and c.root.pos_ != "PRON"]
    ents = [e for e in doc.ents if e.label_ in _KIND and e.start >= _MIN_PREFIX_WORDS]
    # An entity inside a longer noun phrase ("Platform" in "the Platform team") is not the
    # span: the phrase is.
    ents = [
        e
        for e in ents
        if not any(c.start <= e.start and e.end <= c.end and len(c) > len(e) for c in chunks)
    ]
    # (position, entity before phrase, ...): the last span wins, an entity over the same phrase
    candidates = [(e.start, 1, e.start_char, e.end_char, _KIND[e.label_]) for e in ents]
    candidates += [(c.start, 0, c.start_char, c.end_char, "NP") for c in chunks]
    if not candidates:
        return None
    _, _, start, end, kind = max(candidates)  # the sentence's object or complement
    return _Span(text, start, end, kind)


def knowledge_probes(
    sentences: Sequence[str], *, max_probes: int = MAX_PROBES, seed: int = 0
) -> list[EvalItem]:
    """Up to `max_probes` multiple-choice probes from `sentences` (the training documents'
    sentences), each with `CHOICES` options, or fewer (at least two) where the collection has
    fewer spans of its kind."""
    from service.augment.structure import parse

    unique = list(dict.fromkeys(" ".join(s.split()) for s in sentences if len(s.split()) >= 4))
    spans = [s for s in (_key_span(d) for d in parse(unique)) if s is not None]
    by_kind: dict[str, list[str]] = {}
    for span in spans:
        texts = by_kind.setdefault(span.kind, [])
        if span.text not in texts:
            texts.append(span.text)
    known = {s.lower() for s in unique}
    rng = random.Random(seed)
    order = list(range(len(spans)))
    rng.shuffle(order)
    probes: list[EvalItem] = []
    for index in order:
        if len(probes) >= max_probes:
            break
        span = spans[index]
        question = span.sentence[: span.start].rstrip()
        rest = span.sentence[span.end :]
        answer = span.text + rest
        pool = [
            t
            for t in by_kind.get(span.kind, [])
            if t.lower() != span.text.lower()
            and f"{question} {t}{rest}".lower() not in known  # another true sentence
        ]
        if not pool:
            continue
        distractors = rng.sample(pool, min(CHOICES - 1, len(pool)))
        choices = [answer, *(d + rest for d in distractors)]
        rng.shuffle(choices)
        fields = {"question": question, "answer": answer, "choices": choices}
        probes.append(
            EvalItem(id=generated_id(fields), category=f"knowledge/{span.kind}", **fields)
        )
    return probes


def question_probes(
    tokenizer,  # type: ignore[no-untyped-def]
    asked: Sequence[tuple[str, Sequence[str], int]],
    *,
    max_probes: int = MAX_PROBES,
    seed: int = 0,
) -> list[EvalItem]:
    """Up to `max_probes` probes of the questions an adapter was trained to answer (the qa
    strategy's (question, choices, answer index)): the question as a chat request renders it,
    the answer as the assistant's reply against the same facts about other things. A model that
    completes its documents' sentences may still not answer questions about them."""
    from adapters.training_data import chat_prompt

    usable = [(q, list(c), i) for q, c, i in asked if len(c) >= 2 and 0 <= i < len(c)]
    random.Random(seed).shuffle(usable)
    probes = []
    for question, choices, index in usable[:max_probes]:
        fields = {
            "question": chat_prompt(tokenizer, question),
            "answer": choices[index],
            "choices": choices,
        }
        # Built without validation, which would strip the prompt's closing newline: the answer
        # follows it directly, as in training and in a chat reply.
        probes.append(
            EvalItem.model_construct(id=generated_id(fields), category=QUESTION_CATEGORY, **fields)
        )
    return probes


@dataclass(frozen=True)
class BaseScores:
    """Where the base model's probe results are kept: every adapter of a collection trained on
    the same documents gets the same probes, and the base model answers them the same way each
    time, so only the adapter is scored after the first (`model` identifies the base model)."""

    folder: Path
    model: str

    def path(self, probes: Sequence[EvalItem]) -> Path:
        items = [p.model_dump(mode="json") for p in probes]
        key = json.dumps({"model": self.model, "probes": items, "v": 1}, sort_keys=True)
        return self.folder / f"{hashlib.sha256(key.encode()).hexdigest()}.json"

    def load(self, probes: Sequence[EvalItem]) -> dict[str, bool] | None:
        try:
            right = json.loads(self.path(probes).read_text())
        except (OSError, ValueError):
            return None  # not scored yet (or unreadable): score the base model again
        return right if isinstance(right, dict) and set(right) == {p.id for p in probes} else None

    def save(self, probes: Sequence[EvalItem], right: dict[str, bool]) -> None:
        path = self.path(probes)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{os.getpid()}.tmp")
        partial.write_text(json.dumps(right))
        partial.replace(path)  # atomic: a reader sees the whole file or none


async def knowledge_check(  # type: ignore[no-untyped-def]
    scorer,
    served_name: str,
    probes: Sequence[EvalItem],
    training: dict | None = None,
    base_scores: BaseScores | None = None,
) -> dict:
    """Probe accuracy of the adapter and of the base model, and what to do when the adapter is
    below `TARGET`, told from how its training ended (`training`: its metrics). `scorer` is a
    `service.evaluate.scoring.Scorer`; the base model's results come from `base_scores` when it
    has them for these probes."""
    from service.evaluate.scoring import Mode

    if not probes:
        return {"probes": 0, "note": "no sentence of the documents made a probe"}
    base_right = base_scores.load(probes) if base_scores is not None else None
    modes = [Mode.adapter(served_name, "adapter")] + ([Mode.base()] if base_right is None else [])
    results = await scorer.score(probes, modes)
    correct = {(r.mode, r.item_id): r.correct for r in results}
    if base_right is None:
        base_right = {p.id: correct[("base", p.id)] for p in probes}
        if base_scores is not None and not any(r.error for r in results if r.mode == "base"):
            base_scores.save(probes, base_right)
    correct |= {("base", item_id): ok for item_id, ok in base_right.items()}
    asks_question = {p.id: p.category == QUESTION_CATEGORY for p in probes}
    right = {"adapter": 0, "base": 0}
    questions = {"adapter": 0, "base": 0}
    for (mode, item_id), ok in correct.items():
        right[mode] += int(ok)
        if asks_question.get(item_id):
            questions[mode] += int(ok)
    n = len(probes)
    adapter, base = right["adapter"] / n, right["base"] / n
    chance = sum(1 / len(p.choices or ()) for p in probes) / n
    out = {
        "probes": n,
        "adapter": round(adapter, 3),
        "base": round(base, 3),
        "chance": round(chance, 3),
        "target": TARGET,
        "summary": f"knows {adapter:.0%} of its documents' facts; base {base:.0%}",
    }
    n_questions = sum(asks_question.values())
    if n_questions:
        q_adapter, q_base = questions["adapter"] / n_questions, questions["base"] / n_questions
        out["questions"] = {
            "probes": n_questions,
            "adapter": round(q_adapter, 3),
            "base": round(q_base, 3),
        }
        # These are the questions it trained on: recall of its qa pairs, not of any question.
        out["summary"] += (
            f"; answers {q_adapter:.0%} of {n_questions} question{'s' * (n_questions != 1)} "
            f"it was trained to answer in chat (base {q_base:.0%})"
        )
    if adapter < TARGET:
        out["flag"] = f"below the {TARGET:.0%} target: " + what_to_change(training or {})
    return out


def what_to_change(training: dict) -> str:
    """Advice for an adapter below the target, by how its training ended."""
    steps, planned = training.get("steps"), training.get("planned_steps")
    if training.get("stopped_early_at"):
        return (
            f"training stopped at step {steps} of {planned} when the check stopped improving; "
            "train with a higher learning_rate or a larger patience"
        )
    if steps and planned and steps >= planned:
        return (
            f"training used all {planned} steps it was allowed and was still improving; raise "
            "epochs (or max_steps)"
        )
    return (
        "train longer (more epochs or max_steps) or with a higher learning rate; an adapter "
        "near the base model's score has not learned its documents"
    )
