"""Global strategy: each document as a target, read against the rest of the collection.

The prompt holds the shared corpus first, in one fixed order (sorted by document id), and the
target last, so that vLLM's prefix cache reuses the corpus across targets; the first target is
sent alone to fill that cache before the rest go out concurrently. When the corpus does not fit
the token budget, each target gets the documents most relevant to it (BM25), and a coverage pass
makes sure every document serves as context for some target.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from service.augment.filters.postprocess import (
    Deduplicator,
    filter_statements,
    split_sentences,
    split_statements,
)
from service.augment.params import AugmentParams
from service.augment.prompts import PromptTemplate, resolve_template
from service.augment.runner import UnitWork, count_completion, taught_example
from service.augment.teacher import Completion, Sampling, Teacher
from service.augment.types import Unit, UnitResult, YieldStats


@dataclass(frozen=True)
class ContextPlan:
    """What each target's prompt holds: context document ids in corpus order, and whether the
    whole corpus fit (then every prompt shares one prefix)."""

    contexts: dict[str, list[str]]
    whole_corpus: bool
    truncated: frozenset[str]  # documents cut to fit the budget on their own


def _doc_dict(unit: Unit, text: str | None = None) -> dict[str, str | None]:
    return {"id": unit.id, "title": unit.title, "text": unit.text if text is None else text}


def _relevance(docs: Sequence[Unit]) -> list[list[float]]:
    """scores[t][d]: BM25 relevance of document d to target t's text (bm25s)."""
    import bm25s  # imported here: only the over-budget path needs it

    corpus = [f"{d.title or ''} {d.text}" for d in docs]
    retriever = bm25s.BM25()
    retriever.index(
        bm25s.tokenize(corpus, stopwords="en", show_progress=False), show_progress=False
    )
    scores: list[list[float]] = []
    for text in corpus:
        query = bm25s.tokenize([text], stopwords="en", show_progress=False)
        ids = query.ids[0] if query.ids else []
        vocab = {i: w for w, i in query.vocab.items()}
        words = [vocab[i] for i in ids]
        scores.append(
            [float(s) for s in retriever.get_scores(words)] if words else [0.0] * len(docs)
        )
    return scores


def plan_contexts(
    docs: Sequence[Unit], budget: int, count_tokens: Callable[[str], int], overhead: int
) -> ContextPlan:
    """Choose each target's context documents within `budget` tokens (prompt overhead and the
    target included). Deterministic: same documents, same plan."""
    sizes = {d.id: count_tokens(d.text) + 12 for d in docs}  # ~12 tokens of "Document n (title)"
    room = budget - overhead
    truncated = frozenset(d.id for d in docs if sizes[d.id] > room // 2)
    for d in truncated:
        sizes[d] = room // 2  # a document alone may take half the room; it is cut to that
    if sum(sizes.values()) + max(sizes.values(), default=0) <= room:
        ids = [d.id for d in docs]
        return ContextPlan({d.id: ids for d in docs}, True, truncated)
    scores = _relevance(docs)
    order = {d.id: i for i, d in enumerate(docs)}
    contexts: dict[str, list[str]] = {}
    for t, target in enumerate(docs):
        free = room - sizes[target.id]
        chosen: list[str] = []
        ranked = sorted((i for i in range(len(docs)) if i != t), key=lambda i: (-scores[t][i], i))
        for i in ranked:
            if sizes[docs[i].id] <= free:
                chosen.append(docs[i].id)
                free -= sizes[docs[i].id]
        contexts[target.id] = chosen
    # Coverage: a document nobody chose goes to the target it is most relevant to, evicting
    # that target's least relevant documents that other targets also use.
    uses = Counter(i for chosen in contexts.values() for i in chosen)
    index = {d.id: i for i, d in enumerate(docs)}
    for d in docs:
        if uses[d.id] or len(docs) < 2:
            continue
        for t in sorted(
            (i for i in range(len(docs)) if docs[i].id != d.id),
            key=lambda i: (-scores[i][index[d.id]], i),
        ):
            chosen = contexts[docs[t].id]
            free = room - sizes[docs[t].id] - sum(sizes[c] for c in chosen)
            evictable = sorted(
                (c for c in chosen if uses[c] > 1), key=lambda c: (scores[t][index[c]], -index[c])
            )
            evict: list[str] = []
            while free < sizes[d.id] and evictable:
                c = evictable.pop(0)
                evict.append(c)
                free += sizes[c]
            if free >= sizes[d.id]:
                for c in evict:
                    chosen.remove(c)
                    uses[c] -= 1
                chosen.append(d.id)
                uses[d.id] += 1
                break
    for tid, chosen in contexts.items():
        chosen.sort(key=order.__getitem__)  # corpus order, so similar plans share a prefix
        contexts[tid] = chosen
    return ContextPlan(contexts, False, truncated)


def _cut(text: str, tokens_allowed: int, count_tokens: Callable[[str], int]) -> str:
    if count_tokens(text) <= tokens_allowed:
        return text
    lo, hi = 0, len(text)
    while lo < hi:  # longest prefix that fits
        mid = (lo + hi + 1) // 2
        if count_tokens(text[:mid]) <= tokens_allowed:
            lo = mid
        else:
            hi = mid - 1
    return text[:lo].rsplit(" ", 1)[0] + " ..."


def render_prompt(
    template: PromptTemplate,
    docs_by_id: dict[str, Unit],
    context_ids: list[str],
    target: Unit,
    texts: dict[str, str],
) -> str:
    """The prompt for one target: the context documents in corpus order, then the target."""
    documents = [_doc_dict(docs_by_id[i], texts[i]) for i in context_ids]
    return template.render(documents=documents, target=_doc_dict(target, texts[target.id]))


@dataclass(frozen=True)
class _Setup:
    """What every target of one run shares: the teacher, template and sampling, the context
    plan, each document's text as it goes into prompts, and one deduplicator."""

    teacher: Teacher
    params: AugmentParams
    template: PromptTemplate
    sampling: Sampling
    docs_by_id: dict[str, Unit]
    plan: ContextPlan
    texts: dict[str, str]  # each document's text, cut where the plan says it must be
    dedup: Deduplicator


def _setup(
    units: Sequence[Unit], teacher: Teacher, params: AugmentParams
) -> tuple[list[Unit], _Setup]:
    """The documents in corpus order and what their prompts share."""
    template = resolve_template("global", params.templates.get("global"))
    sampling = params.sampling(params.global_max_tokens, template.stop)
    docs = sorted(units, key=lambda u: u.id)  # the fixed corpus order the prefix cache needs
    docs_by_id = {d.id: d for d in docs}
    count = params.count_tokens
    overhead = count(template.render(documents=[], target={"id": "", "title": "", "text": ""}))
    budget = params.context_budget_tokens
    plan = plan_contexts(docs, budget, count, overhead)
    room = budget - overhead
    texts = {
        d.id: _cut(d.text, room // 2, count) if d.id in plan.truncated else d.text for d in docs
    }
    dedup = Deduplicator(params.global_filters.near_duplicate_threshold)
    return docs, _Setup(teacher, params, template, sampling, docs_by_id, plan, texts, dedup)


def _statements(setup: _Setup, completion: Completion, stats: YieldStats) -> list[str]:
    """The statements of every choice of the teacher's answer."""
    statements: list[str] = []
    for text, finish in zip(completion.texts, completion.finish_reasons, strict=True):
        parts = split_statements(
            text,
            split_sentences_too=setup.params.global_filters.split_sentences,
            cut_markers=setup.template.stop,
            truncated=finish == "length",
        )
        if not parts:
            stats.no_statement("empty_output")
        statements.extend(parts)
    return statements


async def _process(setup: _Setup, target: Unit, stats: YieldStats) -> UnitResult:
    """One target's prompt, and the statements of its answer that pass the filters."""
    texts = setup.texts
    context_ids = setup.plan.contexts[target.id]
    prompt = render_prompt(setup.template, setup.docs_by_id, context_ids, target, texts)
    completion = await setup.teacher.complete(prompt, setup.sampling)
    count_completion(stats, completion)
    statements = _statements(setup, completion, stats)
    in_prompt = [texts[target.id], *(texts[i] for i in context_ids if i != target.id)]
    source_sentences = [s for t in in_prompt for s in split_sentences(t)]
    kept = filter_statements(
        statements,
        # the whole target too: a copy of the document is no inference (sentence by
        # sentence it resembles none of them closely enough to count as a copy)
        sources=[*source_sentences, texts[target.id]],
        config=setup.params.global_filters,
        dedup=setup.dedup,
        stats=stats,
        gate=setup.params.gate,
        foreign_names=setup.template.example_names,
    )
    others = [i for i in context_ids if i != target.id]
    examples = [
        taught_example(
            "global",
            target,
            text,
            setup.template,
            setup.sampling,
            completion,
            setup.teacher.model,
            context_document_ids=others,
            detail={
                "whole_corpus": setup.plan.whole_corpus,
                "cached_prompt_tokens": completion.cached_prompt_tokens,
            },
        )
        for text in kept
    ]
    return UnitResult(target.id, target.document_id, examples, stats)


def prepare(units: Sequence[Unit], teacher: Teacher, params: AugmentParams) -> UnitWork:
    """One prompt per target document (units are whole documents); see `run_strategy`."""
    docs, setup = _setup(units, teacher, params)
    return UnitWork(
        docs,
        functools.partial(_process, setup),
        concurrency=teacher.config.concurrency,
        first_alone=True,
    )
