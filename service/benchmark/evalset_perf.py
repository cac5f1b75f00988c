"""Generated eval sets judged by the development set's gold: `docadapt perf evalset`.

    docadapt perf evalset [--split dev|heldout|all] [--max-items N] [--seed S] [--out DIR]

The split's documents go through the upload path's text extraction and segmentation, then
`service.evaluate.generate.generate_evalset` writes every item it can. Each item is judged by
the gold (service/benchmark/devset): what a choice asserts (the item's statement with that
choice as its subject, or the choice itself) is right when it is a sentence of the documents or
a statement the gold marks true; the item has exactly one right answer when its marked answer is
right and no other choice is. An answer the gold does not cover counts as not right (a lower
bound); a wrong answer the gold does not cover counts as not right too, so the failing items and
the wrong answers the gold does not mark false are printed for a person to read.

With `--split all` the collection is every document and each item counts for the split of its
sources (held-out as soon as one source is), as the gold splits its cross-document facts.
Tune nothing on the held-out split.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from service.benchmark.devset import DevSet, load_devset, normalize
from service.benchmark.perf_cli import perf_parser
from service.evaluate.generate import (
    CATEGORIES,
    GeneratedItem,
    SourceSentence,
    clean_sentence,
    generate_evalset,
)

TARGET = 0.90  # issue 13: share of generated items with exactly one right answer


@dataclass(frozen=True)
class Gold:
    true: frozenset[str]
    false: frozenset[str]


def gold_statements(devset: DevSet) -> Gold:
    """Normalized statements the gold makes true (its sentences, their true entries and the
    cross-document facts) and false."""
    true: set[str] = set()
    false: set[str] = set()
    for _, sentence in devset.sentences:
        true.add(normalize(sentence.text))
        cleaned = clean_sentence(sentence.text)
        if cleaned:
            true.add(normalize(cleaned))
        for entry in sentence.true:
            true |= entry.normalized
        for entry in sentence.false:
            false |= entry.normalized
    for fact in devset.cross:
        true |= fact.true.normalized
        if fact.false is not None:
            false |= fact.false.normalized
    return Gold(frozenset(true), frozenset(false - true))


@dataclass
class Verdict:
    item: GeneratedItem
    split: str
    answer_right: bool
    right_distractors: list[str] = field(default_factory=list)
    unknown_distractors: list[str] = field(default_factory=list)  # the gold says nothing

    @property
    def exactly_one(self) -> bool:
        return self.answer_right and not self.right_distractors


def judge(item: GeneratedItem, gold: Gold, split: str) -> Verdict:
    choices = item.item.choices or ()

    def right(i: int) -> bool:
        question = f"{item.item.question} {choices[i]}"
        return normalize(item.statements[i]) in gold.true or normalize(question) in gold.true

    answer = choices.index(item.item.answer)
    verdict = Verdict(item, split, right(answer))
    for i, choice in enumerate(choices):
        if i == answer:
            continue
        if right(i):
            verdict.right_distractors.append(choice)
        elif normalize(item.statements[i]) not in gold.false:
            verdict.unknown_distractors.append(choice)
    return verdict


def devset_sentences(devset: DevSet) -> list[SourceSentence]:
    """The sentences a collection of the devset's documents has, keyed as the service keys
    them (document id, passage, sentence)."""
    from service.benchmark.quality_perf import devset_units

    return [
        SourceSentence(key=u.id, document_id=u.document_id, text=u.text, previous=u.context)
        for u in devset_units(devset, "decomposed")
    ]


def measure(
    split: str, *, max_items: int = 10_000, seed: int = 0, stats: dict | None = None
) -> list[Verdict]:
    """Every item the generator writes for the split's documents, judged (`stats` receives
    the generator's counts)."""
    collection = load_devset(None if split == "all" else split)
    gold = gold_statements(load_devset())
    splits = {d.id: d.split for d in load_devset().documents}
    generation = generate_evalset(devset_sentences(collection), max_items=max_items, seed=seed)
    if stats is not None:
        stats.update(generation.stats)
    verdicts = []
    for item in generation.items:
        docs = {key.split(":", 1)[0] for key in item.sources}
        item_split = "heldout" if any(splits.get(d) == "heldout" for d in docs) else "dev"
        verdicts.append(judge(item, gold, item_split))
    return verdicts


def summary(verdicts: Sequence[Verdict]) -> dict[str, Any]:
    out: dict[str, Any] = {"items": len(verdicts), "categories": {}}
    for category in CATEGORIES:
        group = [v for v in verdicts if v.item.base_category == category]
        out["categories"][category] = {
            "items": len(group),
            "exactly_one_right": sum(v.exactly_one for v in group),
        }
    good = sum(v.exactly_one for v in verdicts)
    out["exactly_one_right"] = good
    out["share"] = round(good / len(verdicts), 3) if verdicts else None
    out["answer_not_confirmed"] = sum(not v.answer_right for v in verdicts)
    out["two_right_answers"] = sum(bool(v.right_distractors) for v in verdicts)
    out["wrong_answers_gold_does_not_cover"] = sum(len(v.unknown_distractors) for v in verdicts)
    return out


def _describe(v: Verdict) -> str:
    item = v.item.item
    why = []
    if not v.answer_right:
        why.append("marked answer not confirmed by the gold")
    if v.right_distractors:
        why.append(f"also right: {v.right_distractors}")
    lines = [
        f"  [{item.category}] {item.question} -> {item.answer}  ({'; '.join(why)})",
        f"      rule {v.item.rule}, sources {list(v.item.sources)}",
        f"      statement: {v.item.statements[(item.choices or ()).index(item.answer)]}",
        f"      choices: {list(item.choices or ())}",
    ]
    return "\n".join(lines)


def render(verdicts: Sequence[Verdict], split: str, *, show_items: bool) -> str:
    parts = []
    for name in ("dev", "heldout") if split == "all" else (split,):
        group = [v for v in verdicts if v.split == name]
        s = summary(group)
        share = f"{s['share']:.1%}" if s["share"] is not None else "n/a"
        parts.append(
            f"== {name}: {s['items']} items, {s['exactly_one_right']} with exactly one right "
            f"answer by the gold ({share}; target {TARGET:.0%})"
        )
        for category, c in s["categories"].items():
            parts.append(f"   {category:15s} {c['exactly_one_right']:4d} / {c['items']:4d}")
        parts.append(
            f"   answer not confirmed: {s['answer_not_confirmed']}, two right answers: "
            f"{s['two_right_answers']}, wrong answers the gold does not mark false: "
            f"{s['wrong_answers_gold_does_not_cover']}"
        )
        failing = [v for v in group if not v.exactly_one]
        if failing:
            parts.append(" failing items:")
            parts.extend(_describe(v) for v in failing)
        if show_items:
            parts.append(" items:")
            for v in group:
                item = v.item.item
                parts.append(f"  [{item.category}] {item.question} -> {item.answer}")
                parts.append(f"      {list(item.choices or ())}")
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = perf_parser("evalset", __doc__)
    parser.add_argument(
        "--split",
        choices=("dev", "heldout", "all"),
        default="dev",
        help="which development-set documents to generate items from",
    )
    parser.add_argument(
        "--max-items", type=int, default=10_000, help="most items generated per document set"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the generator")
    parser.add_argument("--items", action="store_true", help="print every item too")
    parser.add_argument("--out", type=Path, default=None, help="write evalset_quality.json")
    args = parser.parse_args(argv)
    stats: dict[str, Any] = {}
    verdicts = measure(args.split, max_items=args.max_items, seed=args.seed, stats=stats)
    print(render(verdicts, args.split, show_items=args.items))
    print(f"generator: {stats['sentences']} sentences, candidates {stats['candidates']}")
    print(f"  no item, by reason: {stats['dropped']}")
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        data = {
            name: summary([v for v in verdicts if v.split == name])
            for name in (("dev", "heldout") if args.split == "all" else (args.split,))
        }
        (args.out / "evalset_quality.json").write_text(json.dumps(data, indent=2))
    shares = [
        summary([v for v in verdicts if v.split == name])["share"]
        for name in (("dev",) if args.split in ("dev", "all") else ())
    ]
    return 0 if all(s is None or s >= TARGET for s in shares) else 1


if __name__ == "__main__":
    sys.exit(main())
