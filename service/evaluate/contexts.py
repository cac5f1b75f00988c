"""The contexts of the evaluation's modes, as the query API builds them.

The icl mode follows the query API's `icl:` policy (service.serving.icl_context): all of the
collection's documents in the prompt when they fit the budget (one shared, cacheable prefix), else
for each question the BM25-most-relevant passages that fit. The budget is the query API's:
min(icl_budget_tokens, max_model_len - the rest of the prompt - the answer's room - slack).
rag puts the question's top passages by the same BM25 ranking in the same template; adapter+rag
sends exactly rag's prompts to an adapter instead of the base model."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from adapters.tokens import TokenCounter
from service.evaluate.evalset import EvalItem
from service.evaluate.scoring import CONTEXT_SEPARATOR, Scorer
from service.serving.icl_context import (
    PassageRef,
    build_icl_context,
    fit_budget,
    icl_system_prompt,
    retrieve,
)


@dataclass(frozen=True)
class TokenCounts:
    """How the base tokenizer counts what a query sends (see `token_counts`)."""

    text: Callable[[str], int]  # plain text, no special tokens
    prompt: Callable[[str], int]  # a completion prompt, special tokens added as vLLM does
    chat: Callable[[list[dict[str, str]]], int]  # chat messages with the generation prompt
    continuation: Callable[[str, str], int]  # a choice's tokens after a prompt


def token_counts(scorer: Scorer) -> TokenCounts:
    """Counts with the scorer's tokenizer, exactly as the scorer builds its requests."""

    counter = TokenCounter(scorer.tokenizer)  # as the query API counts
    return TokenCounts(
        text=counter.text,
        prompt=lambda t: len(scorer.encode_prompt(t)),
        chat=counter.chat,
        continuation=lambda p, c: len(scorer.encode_continuation(p, c)),
    )


def context_budget(
    item: EvalItem,
    counts: TokenCounts,
    *,
    budget_tokens: int,
    max_model_len: int,
    max_tokens: int,
) -> int:
    """Most context tokens `item`'s prompt can take: the query API's ICL budget, for the
    completion prompt a multiple-choice item is scored with (room for its longest choice) or the
    chat a generation item sends (room for `max_tokens`)."""
    if item.choices is not None:
        skeleton = icl_system_prompt("") + CONTEXT_SEPARATOR + item.question
        fixed = counts.prompt(skeleton)
        reserve = max(counts.continuation(skeleton, c) for c in item.choices)
    else:
        messages = [
            {"role": "system", "content": icl_system_prompt("")},
            {"role": "user", "content": item.question},
        ]
        fixed, reserve = counts.chat(messages), max_tokens
    return fit_budget(budget_tokens, max_model_len, fixed, reserve)


@dataclass(frozen=True)
class ModeContext:
    """A mode's context: one text for every item (`shared`), or one per item id."""

    shared: str | None
    per_item: dict[str, str]
    description: str

    def source(self) -> str | Callable[[EvalItem], str]:
        if self.shared is not None:
            return self.shared
        texts = self.per_item
        return lambda item: texts[item.id]


def icl_context(
    items: Sequence[EvalItem],
    passages: Sequence[PassageRef],
    budgets: dict[str, int],
    count_tokens: Callable[[str], int],
) -> ModeContext:
    """The query API's ICL context for each item; shared when every item got all passages."""
    per_item: dict[str, str] = {}
    cut = 0
    empty = 0
    tokens: list[int] = []
    for item in items:
        ctx = build_icl_context(
            passages, item.question, budget_tokens=budgets[item.id], count_tokens=count_tokens
        )
        per_item[item.id] = ctx.text
        cut += ctx.truncated
        empty += ctx.passages_used == 0
        tokens.append(ctx.prompt_tokens)
    if not cut and len(set(per_item.values())) <= 1:
        text = next(iter(per_item.values()), "")
        return ModeContext(
            text,
            {},
            f"all {len(passages)} passages, {max(tokens, default=0)} tokens, "
            "one shared prefix for every item",
        )
    description = (
        f"documents cut to the token budget for {cut} of {len(items)} items "
        f"(BM25-most-relevant passages that fit, {min(tokens)}-{max(tokens)} tokens)"
    )
    if empty:
        description += f"; {empty} items had no room for any passage"
    return ModeContext(None, per_item, description)


def rag_context(
    items: Sequence[EvalItem],
    passages: Sequence[PassageRef],
    budgets: dict[str, int],
    count_tokens: Callable[[str], int],
    top_k: int,
) -> ModeContext:
    """Each item's top `top_k` passages by BM25 (the ICL policy's retriever), in document order,
    cut to the ICL budget when they do not fit."""
    per_item = {}
    for item in items:
        top = retrieve(passages, item.question, top_k)
        ctx = build_icl_context(
            top, item.question, budget_tokens=budgets[item.id], count_tokens=count_tokens
        )
        per_item[item.id] = ctx.text
    return ModeContext(None, per_item, f"top {top_k} of {len(passages)} passages by BM25")


# -- adapters' one-time cost inputs -------------------------------------------------------------
