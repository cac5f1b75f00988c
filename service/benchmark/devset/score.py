"""Score augmentation examples against the devset gold.

An example is a dict with at least `text`, `strategy` and `document` (the devset document id it
cites; for a cross-document strategy any of its sources). Its normalized text is looked up in the
pooled gold of its document (every sentence, true and false entries) and in the cross-document
gold; if neither has it, in every document's gold (a statement can be true of another sentence).

Outcomes: "true" (matches a true entry), "false" (matches a false entry: it contradicts the
documents), "unmatched" (matches nothing). Unmatched counts as not true, so precision is a lower
bound; the unmatched statements are listed so a person can read them and, where right, add
them to the gold.

Recall: a gold entry counts once however many of its phrasings, or examples, match it. Reversal
recall is over the reversal entries of the documents scored (the devset's documents, or the
`documents` given); cross-document recall over the cross facts of the devset whose sources all
lie in those documents.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from service.benchmark.devset import DevSet, GoldEntry, load_devset, normalize
from service.evaluate.stats import CONFIDENCE, wilson_interval

__all__ = [
    "DevsetScore",
    "Outcome",
    "ScoredExample",
    "StrategyScore",
    "render_markdown",
    "score",
]

Outcome = Literal["true", "false", "unmatched"]
Where = Literal["document", "cross", "other_document"]
ALL_STRATEGIES = "(all)"


@dataclass(frozen=True)
class ScoredExample:
    text: str
    strategy: str
    document: str
    outcome: Outcome
    where: Where | None  # which lookup found it; None when unmatched
    matches: tuple[GoldEntry, ...]  # the gold entries its normalized text equals
    example: Mapping[str, Any] = field(repr=False, compare=False)

    @property
    def cross(self) -> bool:
        return any(e.cross_index is not None for e in self.matches)

    @property
    def source_sentence(self) -> str | None:
        """The gold sentence it matched, else the example's own `source` if it carries one."""
        for e in self.matches:
            if e.sentence is not None:
                return e.sentence
        for e in self.matches:
            if e.cross_index is not None:
                return f"cross-document fact #{e.cross_index}"
        src = self.example.get("source")
        return src if isinstance(src, str) and src else None


@dataclass
class StrategyScore:
    strategy: str
    kept: int = 0
    true: int = 0
    false: int = 0
    unmatched: int = 0
    precision: float | None = None
    precision_ci: tuple[float, float] | None = None
    contradiction_rate: float | None = None
    reversal_matched: int = 0
    reversal_total: int = 0
    reversal_recall: float | None = None
    cross_kept: int = 0  # examples that match a cross-document entry (true or false)
    cross_true: int = 0
    cross_false: int = 0
    cross_precision: float | None = None
    cross_matched: int = 0  # cross facts with a true match
    cross_total: int = 0
    cross_recall: float | None = None
    true_examples: list[ScoredExample] = field(default_factory=list)
    false_examples: list[ScoredExample] = field(default_factory=list)
    unmatched_examples: list[ScoredExample] = field(default_factory=list)
    reversal_examples: list[ScoredExample] = field(default_factory=list)
    cross_examples: list[ScoredExample] = field(default_factory=list)
    matched_reversal_keys: set[str] = field(default_factory=set)
    matched_cross_keys: set[str] = field(default_factory=set)


@dataclass
class DevsetScore:
    split: str | None
    documents: tuple[str, ...]
    strategies: dict[str, StrategyScore]  # per strategy, plus "(all)" when there are several
    examples: list[ScoredExample]
    confidence: float = CONFIDENCE


class _Index:
    def __init__(self, devset: DevSet) -> None:
        self.by_document: dict[str, dict[str, list[GoldEntry]]] = defaultdict(
            lambda: defaultdict(list)
        )
        self.everywhere: dict[str, list[GoldEntry]] = defaultdict(list)
        self.cross: dict[str, list[GoldEntry]] = defaultdict(list)
        for doc, sentence in devset.sentences:
            for entry in sentence.entries:
                for n in entry.normalized:
                    self.by_document[doc.id][n].append(entry)
                    self.everywhere[n].append(entry)
        for fact in devset.cross:
            for entry in (fact.true, fact.false):
                if entry is not None:
                    for n in entry.normalized:
                        self.cross[n].append(entry)

    def lookup(self, text: str, document: str) -> tuple[Where | None, tuple[GoldEntry, ...]]:
        n = normalize(text)
        local = self.by_document.get(document, {}).get(n, [])
        cross = self.cross.get(n, [])
        if local or cross:
            return ("document" if local else "cross"), tuple(local + cross)
        found = self.everywhere.get(n, [])
        return ("other_document", tuple(found)) if found else (None, ())


def _classify(example: Mapping[str, Any], index: _Index) -> ScoredExample:
    for key in ("text", "strategy", "document"):
        if not isinstance(example.get(key), str):
            raise ValueError(f"devset score: example needs a string {key!r}: {dict(example)!r}")
    where, matches = index.lookup(example["text"], example["document"])
    outcome: Outcome
    if any(e.truth for e in matches):
        outcome = "true"  # load_devset guarantees no text is both true and false
    elif matches:
        outcome = "false"
    else:
        outcome = "unmatched"
    return ScoredExample(
        text=example["text"],
        strategy=example["strategy"],
        document=example["document"],
        outcome=outcome,
        where=where,
        matches=matches,
        example=example,
    )


def _ratio(k: int, n: int) -> float | None:
    return k / n if n else None


def _aggregate(
    name: str,
    scored: Sequence[ScoredExample],
    reversal_keys: set[str],
    cross_keys: set[str],
) -> StrategyScore:
    s = StrategyScore(name, reversal_total=len(reversal_keys), cross_total=len(cross_keys))
    for ex in scored:
        s.kept += 1
        {"true": s.true_examples, "false": s.false_examples, "unmatched": s.unmatched_examples}[
            ex.outcome
        ].append(ex)
        if ex.outcome == "true":
            hit_reversals = {e.key for e in ex.matches if e.truth and e.key in reversal_keys}
            if hit_reversals:
                s.reversal_examples.append(ex)
                s.matched_reversal_keys |= hit_reversals
        if ex.cross:
            s.cross_examples.append(ex)
            s.cross_kept += 1
            if ex.outcome == "true":
                s.cross_true += 1
                s.matched_cross_keys |= {
                    e.key for e in ex.matches if e.truth and e.key in cross_keys
                }
            else:
                s.cross_false += 1
    s.true, s.false, s.unmatched = (
        len(s.true_examples),
        len(s.false_examples),
        len(s.unmatched_examples),
    )
    s.precision = _ratio(s.true, s.kept)
    s.precision_ci = wilson_interval(s.true, s.kept)
    s.contradiction_rate = _ratio(s.false, s.kept)
    s.reversal_matched = len(s.matched_reversal_keys)
    s.reversal_recall = _ratio(s.reversal_matched, s.reversal_total)
    s.cross_precision = _ratio(s.cross_true, s.cross_kept)
    s.cross_matched = len(s.matched_cross_keys)
    s.cross_recall = _ratio(s.cross_matched, s.cross_total)
    return s


def score(
    examples: Iterable[Mapping[str, Any]],
    devset: DevSet | None = None,
    *,
    documents: Iterable[str] | None = None,
) -> DevsetScore:
    """Classify every example and compute the figures per strategy (see the module docstring).

    `devset` defaults to both splits; `documents` restricts the recall denominators (and the
    cross facts counted) to the documents that were augmented. Examples citing a document
    outside the devset are still matched against the cross and every-document gold.
    """
    devset = devset if devset is not None else load_devset()
    doc_ids = tuple(documents) if documents is not None else devset.document_ids
    unknown = set(doc_ids) - set(devset.document_ids)
    if unknown:
        raise ValueError(f"devset score: documents not in the devset: {sorted(unknown)}")
    chosen = set(doc_ids)
    reversal_keys = {
        e.key
        for d in devset.documents
        if d.id in chosen
        for s in d.sentences
        for e in s.true
        if e.kind == "reversal"
    }
    cross_keys = (
        {c.true.key for c in devset.cross if all(doc in chosen for doc, _ in c.sources)}
        if documents is not None
        else {c.true.key for c in devset.cross}
    )
    index = _Index(devset)
    scored = [_classify(ex, index) for ex in examples]
    by_strategy: dict[str, list[ScoredExample]] = defaultdict(list)
    for ex in scored:
        by_strategy[ex.strategy].append(ex)
    strategies = {
        name: _aggregate(name, items, reversal_keys, cross_keys)
        for name, items in sorted(by_strategy.items())
    }
    if len(strategies) > 1:
        strategies[ALL_STRATEGIES] = _aggregate(ALL_STRATEGIES, scored, reversal_keys, cross_keys)
    return DevsetScore(devset.split, doc_ids, strategies, scored)


# --------------------------------------------------------------------------- rendering


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _ci(ci: tuple[float, float] | None) -> str:
    return "-" if ci is None else f"{100 * ci[0]:.1f}-{100 * ci[1]:.1f}%"


def _cell(text: str | None) -> str:
    return (text or "-").replace("|", "\\|").replace("\n", " ")


def _example_rows(items: Sequence[ScoredExample], limit: int | None) -> list[str]:
    rows = [
        "| strategy | document | statement | source sentence | matched |",
        "|---|---|---|---|---|",
    ]
    shown = items if limit is None else items[:limit]
    for ex in shown:
        matched = ", ".join(sorted({e.kind for e in ex.matches})) or "-"
        rows.append(
            f"| {_cell(ex.strategy)} | {_cell(ex.document)} | {_cell(ex.text)} | "
            f"{_cell(ex.source_sentence)} | {matched} |"
        )
    if limit is not None and len(items) > limit:
        rows.append(f"\n({len(items) - limit} more not shown)")
    return rows


def render_markdown(result: DevsetScore) -> str:
    """A per-strategy table, then up to 10 true, all false and up to 15 unmatched examples."""
    split = result.split or "dev + heldout"
    lines = [
        f"# Devset precision ({split}, {len(result.documents)} documents)",
        "",
        "Unmatched statements count as not true: precision is a lower bound. "
        f"Intervals: {int(result.confidence * 100)}% Wilson.",
        "",
        "| strategy | kept | true | false | unmatched | precision | precision CI | "
        "contradiction rate | reversal recall | cross precision | cross recall |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in result.strategies.values():
        lines.append(
            f"| {_cell(s.strategy)} | {s.kept} | {s.true} | {s.false} | {s.unmatched} | "
            f"{_pct(s.precision)} | {_ci(s.precision_ci)} | {_pct(s.contradiction_rate)} | "
            f"{_pct(s.reversal_recall)} ({s.reversal_matched}/{s.reversal_total}) | "
            f"{_pct(s.cross_precision)} ({s.cross_true}/{s.cross_kept}) | "
            f"{_pct(s.cross_recall)} ({s.cross_matched}/{s.cross_total}) |"
        )
    true_ex = [e for e in result.examples if e.outcome == "true"]
    false_ex = [e for e in result.examples if e.outcome == "false"]
    unmatched = [e for e in result.examples if e.outcome == "unmatched"]
    for title, items, limit in (
        (f"True examples ({len(true_ex)})", true_ex, 10),
        (f"False examples: contradictions ({len(false_ex)})", false_ex, None),
        (f"Unmatched examples ({len(unmatched)})", unmatched, 15),
    ):
        lines += ["", f"## {title}", ""]
        lines += _example_rows(items, limit) if items else ["None."]
    return "\n".join(lines) + "\n"
