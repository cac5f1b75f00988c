"""Score augmentation examples against the devset gold.

An example is a dict with at least `text`, `strategy` and `document` (the devset document id it
cites; for a cross-document strategy any of its sources). Its normalized text is looked up in the
pooled gold of its document (every sentence, true and false entries) and in the cross-document
gold; if neither has it, in every document's gold (a statement can be true of another sentence).

Outcomes: "true" (matches a true entry), "false" (matches a false entry: it contradicts the
documents), "unmatched" (matches nothing). Unmatched counts as not true, so precision is a lower
bound; the unmatched statements are listed so a person can read them and, where right, add
them to the gold.

Second tier: `judgments.json` (optional) holds an independent reader's verdicts on statements
the gold does not cover, matched by normalized text. An example that matches no gold entry but
has a judgment gets "judged_true", "judged_false" or "judged_ungrammatical". `precision` stays
the strict gold-only lower bound (true / kept); `read_precision` is (true + judged_true) / kept
and `read_contradiction_rate` (false + judged_false) / kept. A statement neither the gold nor a
judgment covers stays "unmatched" and counts as not true in both.

Recall: a gold entry counts once however many of its phrasings, or examples, match it. Reversal
recall is over the reversal entries of the documents scored (the devset's documents, or the
`documents` given); cross-document recall over the cross facts of the devset whose sources all
lie in those documents.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from service.benchmark.devset import DEVSET_DIR, DevSet, GoldEntry, load_devset, normalize
from service.evaluate.stats import CONFIDENCE, wilson_interval

__all__ = [
    "JUDGMENTS_PATH",
    "VERDICTS",
    "DevsetScore",
    "Judgment",
    "Outcome",
    "ScoredExample",
    "StrategyScore",
    "load_judgments",
    "render_markdown",
    "score",
]

Outcome = Literal[
    "true", "false", "unmatched", "judged_true", "judged_false", "judged_ungrammatical"
]
Verdict = Literal["true", "false", "ungrammatical"]
Where = Literal["document", "cross", "other_document"]
ALL_STRATEGIES = "(all)"
JUDGMENTS_PATH = DEVSET_DIR / "judgments.json"
VERDICTS: tuple[str, ...] = ("true", "false", "ungrammatical")


@dataclass(frozen=True)
class Judgment:
    """A reader's verdict on a statement the gold does not cover."""

    text: str
    document: str
    verdict: Verdict
    note: str

    @property
    def outcome(self) -> Outcome:
        return _JUDGED_OUTCOME[self.verdict]


_JUDGED_OUTCOME: dict[str, Outcome] = {
    "true": "judged_true",
    "false": "judged_false",
    "ungrammatical": "judged_ungrammatical",
}


def load_judgments(path: Path | str | None = None) -> dict[str, Judgment]:
    """The judgments keyed by normalized text. The default file is optional (no file: no
    judgments); a `path` given must exist. Raises ValueError for an unknown version or verdict,
    a judgment without text or document, or one text judged two different ways.
    """
    file = Path(path) if path is not None else JUDGMENTS_PATH
    if path is None and not file.is_file():
        return {}
    try:
        raw = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"devset judgments {file} cannot be read: {exc}") from exc
    if not isinstance(raw, dict) or raw.get("version") != 1:
        version = raw.get("version") if isinstance(raw, dict) else None
        raise ValueError(f"devset judgments {file}: unsupported version {version!r}")
    items = raw.get("judgments", [])
    if not isinstance(items, list):
        raise ValueError(f"devset judgments {file}: 'judgments' must be a list")
    out: dict[str, Judgment] = {}
    for i, item in enumerate(items):
        where = f"devset judgments {file.name}[{i}]"
        if not isinstance(item, dict):
            raise ValueError(f"{where}: not an object")
        for key in ("text", "document"):
            if not isinstance(item.get(key), str) or not item[key].strip():
                raise ValueError(f"{where}: needs a non-empty string {key!r}")
        verdict = item.get("verdict")
        if verdict not in VERDICTS:
            raise ValueError(f"{where}: unknown verdict {verdict!r}; expected one of {VERDICTS}")
        note = item.get("note", "")
        if not isinstance(note, str):
            raise ValueError(f"{where}: 'note' must be a string")
        judgment = Judgment(item["text"], item["document"], verdict, note)
        n = normalize(judgment.text)
        seen = out.get(n)
        if seen is not None and seen.verdict != judgment.verdict:
            raise ValueError(
                f"{where}: {judgment.text!r} is judged {seen.verdict!r} and {judgment.verdict!r}"
            )
        out.setdefault(n, judgment)
    return out


@dataclass(frozen=True)
class ScoredExample:
    text: str
    strategy: str
    document: str
    outcome: Outcome
    where: Where | None  # which lookup found it; None when unmatched
    matches: tuple[GoldEntry, ...]  # the gold entries its normalized text equals
    example: Mapping[str, Any] = field(repr=False, compare=False)
    judgment: Judgment | None = None  # the reader's verdict, when the gold has no match

    @property
    def judged(self) -> bool:
        return self.judgment is not None

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
    unmatched: int = 0  # matched neither the gold nor a judgment
    judged_true: int = 0
    judged_false: int = 0
    judged_ungrammatical: int = 0
    precision: float | None = None  # gold-only lower bound: true / kept
    precision_ci: tuple[float, float] | None = None
    read_precision: float | None = None  # (true + judged_true) / kept
    read_precision_ci: tuple[float, float] | None = None
    contradiction_rate: float | None = None  # false / kept
    read_contradiction_rate: float | None = None  # (false + judged_false) / kept
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
    judged_examples: list[ScoredExample] = field(default_factory=list)
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


def _classify(
    example: Mapping[str, Any], index: _Index, judgments: Mapping[str, Judgment]
) -> ScoredExample:
    for key in ("text", "strategy", "document"):
        if not isinstance(example.get(key), str):
            raise ValueError(f"devset score: example needs a string {key!r}: {dict(example)!r}")
    where, matches = index.lookup(example["text"], example["document"])
    outcome: Outcome
    judgment = None
    if any(e.truth for e in matches):
        outcome = "true"  # load_devset guarantees no text is both true and false
    elif matches:
        outcome = "false"
    else:
        judgment = judgments.get(normalize(example["text"]))
        outcome = judgment.outcome if judgment is not None else "unmatched"
    return ScoredExample(
        text=example["text"],
        strategy=example["strategy"],
        document=example["document"],
        outcome=outcome,
        where=where,
        matches=matches,
        example=example,
        judgment=judgment,
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
        if ex.outcome == "true":
            s.true_examples.append(ex)
        elif ex.outcome == "false":
            s.false_examples.append(ex)
        elif ex.outcome == "unmatched":
            s.unmatched_examples.append(ex)
        else:
            s.judged_examples.append(ex)
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
    verdicts = [ex.outcome for ex in s.judged_examples]
    s.judged_true = verdicts.count("judged_true")
    s.judged_false = verdicts.count("judged_false")
    s.judged_ungrammatical = verdicts.count("judged_ungrammatical")
    s.precision = _ratio(s.true, s.kept)
    s.precision_ci = wilson_interval(s.true, s.kept)
    s.read_precision = _ratio(s.true + s.judged_true, s.kept)
    s.read_precision_ci = wilson_interval(s.true + s.judged_true, s.kept)
    s.contradiction_rate = _ratio(s.false, s.kept)
    s.read_contradiction_rate = _ratio(s.false + s.judged_false, s.kept)
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
    judgments: Mapping[str, Judgment] | None = None,
) -> DevsetScore:
    """Classify every example and compute the figures per strategy (see the module docstring).

    `devset` defaults to both splits; `documents` restricts the recall denominators (and the
    cross facts counted) to the documents that were augmented. Examples citing a document
    outside the devset are still matched against the cross and every-document gold.
    `judgments` (normalized text -> Judgment) defaults to `load_judgments()`; pass {} for the
    gold alone.
    """
    devset = devset if devset is not None else load_devset()
    judgments = judgments if judgments is not None else load_judgments()
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
    scored = [_classify(ex, index, judgments) for ex in examples]
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


def _judged_rows(items: Sequence[ScoredExample]) -> list[str]:
    rows = [
        "| strategy | document | statement | source sentence | verdict | note |",
        "|---|---|---|---|---|---|",
    ]
    for ex in items:
        j = ex.judgment
        rows.append(
            f"| {_cell(ex.strategy)} | {_cell(ex.document)} | {_cell(ex.text)} | "
            f"{_cell(ex.source_sentence)} | {j.verdict if j else '-'} | "
            f"{_cell(j.note if j else None)} |"
        )
    return rows


def render_markdown(result: DevsetScore) -> str:
    """A per-strategy table, then up to 10 true, all false, all judged and up to 15 unmatched
    examples."""
    split = result.split or "dev + heldout"
    lines = [
        f"# Devset precision ({split}, {len(result.documents)} documents)",
        "",
        "Gold precision counts only gold-true matches: statements outside the gold count as not "
        "true, so it is a lower bound. Read precision also counts statements an independent "
        "reader judged true (judgments.json); statements neither covers still count as not "
        f"true. Intervals: {int(result.confidence * 100)}% Wilson.",
        "",
        "| strategy | kept | true | false | judged true | judged false | judged ungrammatical | "
        "unmatched | gold precision (lower bound) | gold precision CI | read precision | "
        "read precision CI | contradiction rate | read contradiction rate | reversal recall | "
        "cross precision | cross recall |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in result.strategies.values():
        lines.append(
            f"| {_cell(s.strategy)} | {s.kept} | {s.true} | {s.false} | {s.judged_true} | "
            f"{s.judged_false} | {s.judged_ungrammatical} | {s.unmatched} | "
            f"{_pct(s.precision)} | {_ci(s.precision_ci)} | {_pct(s.read_precision)} | "
            f"{_ci(s.read_precision_ci)} | {_pct(s.contradiction_rate)} | "
            f"{_pct(s.read_contradiction_rate)} | "
            f"{_pct(s.reversal_recall)} ({s.reversal_matched}/{s.reversal_total}) | "
            f"{_pct(s.cross_precision)} ({s.cross_true}/{s.cross_kept}) | "
            f"{_pct(s.cross_recall)} ({s.cross_matched}/{s.cross_total}) |"
        )
    true_ex = [e for e in result.examples if e.outcome == "true"]
    false_ex = [e for e in result.examples if e.outcome == "false"]
    judged = [e for e in result.examples if e.judged]
    unmatched = [e for e in result.examples if e.outcome == "unmatched"]
    for title, items, limit in (
        (f"True examples ({len(true_ex)})", true_ex, 10),
        (f"False examples: contradictions ({len(false_ex)})", false_ex, None),
        (f"Judged examples: outside the gold, read by a person ({len(judged)})", judged, None),
        (f"Unmatched examples ({len(unmatched)})", unmatched, 15),
    ):
        lines += ["", f"## {title}", ""]
        if not items:
            lines.append("None.")
        elif items is judged:
            lines += _judged_rows(items)
        else:
            lines += _example_rows(items, limit)
    return "\n".join(lines) + "\n"
