"""QA strategy: the collection's facts as questions with their answers, trained as chat turns.

People ask an adapter questions through the chat API ("Who leads the Platform team?"), but the
documents and the other strategies' statements are declarative sentences. Measured on the dev
split with the embedded 135M model (2026-12-06), adapters that knew 100% of their documents' facts
by the knowledge check answered 0 of 10 (plain) and 3 of 10 (decomposed + linked) plain chat
questions about them: the model completes "Priya Nandakumar leads the ___" but was never shown the
question form that leads there. This strategy writes, for each fact, the question that asks for it
and its answer, which the training recipe puts in the base model's chat template: the user's
question, then the answer as the assistant's turn (loss on the answer only).

The questions are the eval-set generator's (`service/evaluate/generate/`): made only where the
parse supports the reading, asked in both directions of a voice or identity rewrite ("Who leads
the Platform team?" and "Which team is led by Priya Nandakumar?") and across documents, each
naming what it asks about; 55 of 58 such items had exactly one right answer by the dev gold.
The answer is the fact as a full sentence, so the adapter learns to say what the documents say
and where it comes from. No teacher is asked.

An eval set generated from the same collection asks the same questions: an adapter trained on
this strategy has seen them, so its forward and reversed scores there measure recall of trained
questions. Generalization is what the eval set's held-out sentences measure (`hold_out`): their
questions are left out of training with the sentences.
"""

from __future__ import annotations

from collections.abc import Sequence

from service.augment.filters.postprocess import split_sentences
from service.augment.params import AugmentParams
from service.augment.runner import UnitWork
from service.augment.structure import _drop_glued_heading, made_by_rule
from service.augment.teacher import Teacher
from service.augment.types import Example, Unit, UnitResult, YieldStats

# Far more than any collection's facts: every question the generator can write is kept.
_ALL_ITEMS = 1_000_000


def prepare(units: Sequence[Unit], teacher: Teacher, params: AugmentParams) -> UnitWork:
    """Question-answer pairs whose first source sentence lies in each unit; see `run_strategy`.
    The teacher is not asked: the questions are made by rule on the parse."""
    del teacher
    from service.evaluate.generate import SourceSentence, generate_evalset

    sentences: list[SourceSentence] = []
    for unit in units:
        previous = unit.context
        for n, sentence in enumerate(split_sentences(unit.text)):
            text = _drop_glued_heading(sentence)
            key = unit.id if n == 0 else f"{unit.id}#{n}"
            sentences.append(SourceSentence(key, unit.document_id, text, previous))
            previous = text
    unit_of = {s.key: s.key.split("#")[0] for s in sentences}
    text_of = {s.key: s.text for s in sentences}
    document_of = {s.key: s.document_id for s in sentences}
    generation = generate_evalset(sentences, max_items=_ALL_ITEMS)
    by_unit: dict[str, list] = {}
    for made in generation.items:
        by_unit.setdefault(unit_of[made.sources[0]], []).append(made)
    seen: set[tuple[str, str]] = set()

    async def process(unit: Unit, stats: YieldStats) -> UnitResult:
        examples: list[Example] = []
        made_here = by_unit.get(unit.id, [])
        if not made_here:
            stats.no_statement("no_question")
        for made in made_here:
            question = made.item.question
            answer = made.statements[made.item.answer_index or 0]
            stats.parsed += 1
            if (question, answer) in seen:
                stats.drop("duplicate")
                continue
            seen.add((question, answer))
            stats.kept += 1
            sources = list(dict.fromkeys(unit_of[k] for k in made.sources))
            examples.append(
                Example(
                    text=answer,
                    strategy="qa",
                    document_id=unit.document_id,
                    unit_ids=sources,
                    source_text=" ".join(text_of[k] for k in made.sources),
                    **made_by_rule("qa"),  # type: ignore[arg-type]
                    context_document_ids=sorted(
                        {document_of[k] for k in made.sources} - {unit.document_id}
                    ),
                    detail={
                        "question": question,
                        "category": made.base_category,
                        "rule": made.rule,
                        # the generator's wrong answers: the knowledge check asks with them
                        "choices": list(made.statements),
                        "answer_index": made.item.answer_index,
                    },
                )
            )
        return UnitResult(unit.id, unit.document_id, examples, stats)

    return UnitWork(units, process, concurrency=8)
