"""The in-context-learning (ICL) context policy, shared by query API, augmentation and evaluation.

A collection's documents go into the prompt of the base model. When they all fit the token budget,
every passage goes in, in document order, rendered the same way for every query, so vLLM's prefix
cache serves the long context after the first query. When they do not fit, the passages are ranked
by BM25 against the query, the most relevant fill the budget, and they are rendered in document
order (a stable reading order helps a small model more than a relevance order does).

`retrieve` is the same BM25 retriever, for the `rag` evaluation mode. `icl_system_prompt` is the one
prompt template every caller uses: documents first, the question after (in the user message or
after the prefix), so the long shared part is a prefix.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import bm25s

# Rendering: one heading line per document, passages one per line, a blank line between documents.
_DOC_HEADING = "## {title}"
_PASSAGE_SEP = "\n"
_DOC_SEP = "\n\n"
# Estimated tokens a separator adds beyond the passages' own counts; the exact count is always
# taken on the rendered text, estimates only decide what to try first.
_PASSAGE_OVERHEAD = 1
# Render and count exactly when the estimate is within this factor of the budget.
_ESTIMATE_SLACK = 1.1

_ICL_TEMPLATE = (
    "Answer using the documents below. They are the only source you need.\n"
    "\n"
    "<documents>\n"
    "{context}\n"
    "</documents>\n"
    "\n"
    "Answer the question after this message using the documents above."
)


@dataclass(frozen=True)
class PassageRef:
    """One passage of a collection: where it comes from, its text and its token count."""

    doc_id: str
    doc_title: str
    index: int  # position of the passage in its document
    text: str
    token_count: int


@dataclass(frozen=True)
class ContextResult:
    """The rendered context and what went into it."""

    text: str
    truncated: bool  # True when some passages were left out to respect the budget
    used_passages: tuple[PassageRef, ...]  # in the order they appear in `text`
    total_passages: int
    prompt_tokens: int  # tokens of `text` as counted by `count_tokens`

    @property
    def passages_used(self) -> int:
        return len(self.used_passages)


# Tokens kept free beyond the prompt's other parts and the answer's room: chat-template and
# tokenizer-boundary differences between how a caller counts and how vLLM renders.
CONTEXT_SLACK_TOKENS = 16


def fit_budget(
    budget_tokens: int, max_model_len: int, fixed_tokens: int, reserve_tokens: int
) -> int:
    """The ICL budget, one rule for queries and evaluation: at most `budget_tokens`, and no more
    than the model's length leaves after the prompt's other parts (`fixed_tokens`), the answer's
    room (`reserve_tokens`) and the slack."""
    return min(budget_tokens, max_model_len - fixed_tokens - reserve_tokens - CONTEXT_SLACK_TOKENS)


def document_order(passages: Sequence[PassageRef]) -> list[PassageRef]:
    """Passages grouped by document (documents in order of first appearance), then by index."""
    first_seen: dict[str, int] = {}
    for p in passages:
        first_seen.setdefault(p.doc_id, len(first_seen))
    return sorted(passages, key=lambda p: (first_seen[p.doc_id], p.index))


def render_passages(passages: Sequence[PassageRef]) -> str:
    """Render passages (already in the wanted order) as documents with headings.

    Deterministic: the same passages always give the same text, byte for byte.
    """
    blocks: list[str] = []
    current: str | None = None
    lines: list[str] = []
    for p in passages:
        if p.doc_id != current:
            if lines:
                blocks.append(_PASSAGE_SEP.join(lines))
            current = p.doc_id
            lines = [_heading(p)]
        lines.append(p.text.strip())
    if lines:
        blocks.append(_PASSAGE_SEP.join(lines))
    return _DOC_SEP.join(blocks)


def icl_system_prompt(context: ContextResult | str) -> str:
    """The ICL prompt around a context: instructions and documents; the question comes after it.

    Used as the system message of a chat request, or as the prefix of a completion prompt (followed
    by a blank line and the user's prompt). The text before the documents never changes, so
    identical contexts give identical prefixes.
    """
    text = context.text if isinstance(context, ContextResult) else context
    return _ICL_TEMPLATE.format(context=text)


def rank_passages(passages: Sequence[PassageRef], query: str) -> list[tuple[PassageRef, float]]:
    """All passages with their BM25 score against `query`, best first.

    Ties (including passages sharing no term with the query) keep document order, so the ranking
    is deterministic.
    """
    ordered = document_order(passages)
    return [(ordered[i], score) for i, score in _rank_positions(ordered, query)]


def _rank_positions(ordered: Sequence[PassageRef], query: str) -> list[tuple[int, float]]:
    """Positions in `ordered` with their BM25 scores, best first, ties by position."""
    if not ordered:
        return []
    corpus_tokens = _tokenize([p.text for p in ordered])
    query_tokens = _tokenize([query])[0]
    if not query_tokens or not any(corpus_tokens):
        return [(i, 0.0) for i in range(len(ordered))]
    retriever = bm25s.BM25()
    retriever.index(corpus_tokens, show_progress=False)
    scores = retriever.get_scores(query_tokens)
    ranked = sorted(range(len(ordered)), key=lambda i: (-float(scores[i]), i))
    return [(i, float(scores[i])) for i in ranked]


def retrieve(passages: Sequence[PassageRef], query: str, k: int) -> list[PassageRef]:
    """The `k` passages most relevant to `query` by BM25, best first (ties in document order)."""
    if k <= 0:
        return []
    return [p for p, _ in rank_passages(passages, query)[:k]]


def build_icl_context(
    passages: Sequence[PassageRef],
    query: str,
    *,
    budget_tokens: int,
    count_tokens: Callable[[str], int],
) -> ContextResult:
    """The context for one query, at most `budget_tokens` tokens as `count_tokens` counts them.

    If every passage fits, all of them in document order (the result does not depend on `query`).
    Otherwise the passages most relevant to `query` (BM25) that fit, in document order, and
    `truncated` is True. A passage larger than the remaining budget is skipped, and a smaller,
    less relevant one may still fill the room.
    """
    ordered = document_order(passages)
    total = len(ordered)
    if total == 0:
        return ContextResult("", False, (), 0, 0)
    budget = max(0, budget_tokens)
    first_of_doc = {p.doc_id: p for p in reversed(ordered)}
    # One exact count per document heading; +1 for the separator before the next document.
    heading_cost = {
        d: count_tokens(_heading(p) + _PASSAGE_SEP) + 1 for d, p in first_of_doc.items()
    }

    estimate = sum(p.token_count + _PASSAGE_OVERHEAD for p in ordered) + sum(heading_cost.values())
    if estimate <= budget * _ESTIMATE_SLACK:
        text = render_passages(ordered)
        tokens = count_tokens(text)
        if tokens <= budget:
            return ContextResult(text, False, tuple(ordered), total, tokens)

    chosen: list[int] = []  # positions in `ordered`, most relevant first
    docs: set[str] = set()
    used = 0
    for i, _ in _rank_positions(ordered, query):
        cost = _cost(ordered[i], heading_cost, docs)
        if used + cost > budget:
            continue
        chosen.append(i)
        docs.add(ordered[i].doc_id)
        used += cost

    # Estimates can be off (token boundaries, stale token counts): drop the least relevant
    # passages, about as many tokens as the overflow, until the exact count fits.
    while chosen:
        kept = [ordered[i] for i in sorted(chosen)]
        text = render_passages(kept)
        tokens = count_tokens(text)
        if tokens <= budget:
            return ContextResult(text, True, tuple(kept), total, tokens)
        overflow = tokens - budget
        while chosen and overflow > 0:
            overflow -= count_tokens(ordered[chosen.pop()].text) + _PASSAGE_OVERHEAD
    return ContextResult("", True, (), total, 0)


def _cost(p: PassageRef, heading_cost: dict[str, int], docs_in: set[str]) -> int:
    return (
        p.token_count + _PASSAGE_OVERHEAD + (0 if p.doc_id in docs_in else heading_cost[p.doc_id])
    )


def _heading(p: PassageRef) -> str:
    return _DOC_HEADING.format(title=_one_line(p.doc_title) or p.doc_id)


def _tokenize(texts: list[str]) -> list[list[str]]:
    return bm25s.tokenize(texts, stopwords="en", return_ids=False, show_progress=False)


def _one_line(text: str) -> str:
    return " ".join(text.split())
