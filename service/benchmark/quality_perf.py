"""Augmentation quality on real prose and on the synthetic sets: `docadapt perf quality`.

    docadapt perf quality [--split dev|heldout|all] [--strategies decomposed,linked]
                          [--teacher-url URL --teacher-api-key KEY] [--out DIR]

1. Real prose: the development set's documents (service/benchmark/devset, hand-written company
   documents with gold statements per sentence) go through the upload path's text extraction
   and segmentation, then each strategy; every kept statement is matched against the gold
   (true, a contradiction, or unmatched, which counts as not true: precision is a lower bound).
2. Synthetic: the benchmark's generated datasets (simple reversals, syllogisms, semantic),
   judged by the generator's own truth (service/benchmark/truth.py).
The rule strategies (decomposed, linked) need no teacher; local and global need --teacher-url.
Prints both tables, the examples behind them, and writes quality.json / quality.md to --out.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from service.augment.engine import run_strategy
from service.augment.filters.verify import estimated_precision
from service.augment.params import AugmentParams
from service.augment.teacher import Teacher, TeacherConfig
from service.augment.types import Example, Unit
from service.benchmark.devset import DevSet, load_devset
from service.benchmark.devset.score import ALL_STRATEGIES, DevsetScore, render_markdown, score
from service.benchmark.perf_cli import perf_parser
from service.collections.ingest.pipeline import ingest_file
from service.collections.ingest.segment import segment

RULE_STRATEGIES = ("decomposed", "linked")
TEACHER_STRATEGIES = ("local", "global")


def devset_units(devset: DevSet, strategy: str) -> list[Unit]:
    """The units a collection of the devset's documents would give `strategy`."""
    return file_units([(d.id, d.path) for d in devset.documents], strategy)


def file_units(files: list[tuple[str, Path]], strategy: str) -> list[Unit]:
    """The units a collection of these files would give `strategy` (as service/augment/job.py
    builds them from the upload path's text): sentences with the one before, or documents."""
    units: list[Unit] = []
    for doc_id, path in files:
        data = path.read_bytes()
        text = ingest_file(
            data, path.name, count_tokens=lambda t: len(t.split()), max_bytes=len(data) + 1
        ).text
        passages = segment(text)
        if strategy == "global":
            units.append(
                Unit(
                    id=doc_id,
                    document_id=doc_id,
                    text="\n\n".join(p.text for p in passages),
                    title=path.name,
                )
            )
            continue
        for p in passages:
            for k, sentence in enumerate(p.sentences):
                units.append(
                    Unit(
                        id=f"{doc_id}:p{p.index}:s{k}",
                        document_id=doc_id,
                        text=sentence,
                        title=path.name,
                        context=p.sentences[k - 1] if k else "",
                    )
                )
    return units


async def _augment(
    strategy: str, units: list[Unit], teacher_cfg: TeacherConfig | None
) -> list[Example]:
    params = AugmentParams(unit_concurrency=8)
    if teacher_cfg is None:
        return (await run_strategy(strategy, units, None, params)).examples  # type: ignore[arg-type]
    async with Teacher(teacher_cfg) as teacher:
        return (await run_strategy(strategy, units, teacher, params)).examples


def _example_dict(ex: Example) -> dict[str, Any]:
    return {
        "text": ex.text,
        "strategy": ex.strategy,
        "document": ex.document_id,
        "source": ex.source_text,
        "score": ex.score,
        "flagged": ex.flagged,
        "rewrite": ex.detail.get("rewrite") or ex.detail.get("rule"),
        "verification": ex.detail.get("verification"),
    }


def prose_quality(
    strategies: list[str], split: str | None, teacher_cfg: TeacherConfig | None
) -> tuple[DevsetScore, list[dict[str, Any]]]:
    devset = load_devset(split)
    examples: list[dict[str, Any]] = []
    for strategy in strategies:
        units = devset_units(devset, strategy)
        needs = teacher_cfg if strategy in TEACHER_STRATEGIES else None
        examples.extend(_example_dict(e) for e in asyncio.run(_augment(strategy, units, needs)))
    return score(examples, devset, documents=devset.document_ids), examples


def synthetic_quality(strategies: list[str], size: str = "small") -> dict[str, Any]:
    """Precision and recall of the rule strategies on the generated datasets."""
    from service.augment.filters.postprocess import split_sentences
    from service.benchmark.datasets import generate_suite
    from service.benchmark.truth import AugmentedStatement, score_augmentations

    suite = generate_suite(size, seed=0)
    units: list[Unit] = []
    for ds in suite:
        for doc in ds.documents:
            sentences = split_sentences(doc.text)
            for i, s in enumerate(sentences):
                units.append(
                    Unit(f"{doc.id}:s{i}", doc.id, s, context=sentences[i - 1] if i else "")
                )
    statements = []
    for strategy in strategies:
        for ex in asyncio.run(_augment(strategy, units, None)):
            statements.append(AugmentedStatement(ex.text, strategy, ex.document_id))
    report = score_augmentations(suite, statements)
    out: dict[str, Any] = {}
    for q in report.qualities:
        out.setdefault(q.strategy, {})[q.scope] = {
            "kept": q.kept,
            "true": q.true,
            "contradiction": q.contradiction,
            "unknown": q.unknown,
            "precision": q.precision,
            "recall": q.recall,
        }
    return out


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.0f}%"


def synthetic_markdown(result: dict[str, Any]) -> str:
    lines = [
        "| strategy | dataset | kept | true | contradictions | precision | recall |",
        "|---|---|---|---|---|---|---|",
    ]
    for strategy, scopes in result.items():
        for scope, q in scopes.items():
            if scope == "all" or not q["kept"]:
                continue
            recall = q["recall"].get("reversal") if scope == "simple_reversals" else None
            if scope == "syllogisms":
                recall = q["recall"].get("syllogisms/syllogism")
            lines.append(
                f"| {strategy} | {scope} | {q['kept']} | {q['true']} | {q['contradiction']} | "
                f"{_pct(q['precision'])} | {_pct(recall)} |"
            )
    return "\n".join(lines)


def estimate_markdown(prose: DevsetScore) -> str:
    """Per strategy: the estimated precision (mean verification score) beside the measured
    ones (gold only, a lower bound; and with the independent reader's judgments)."""
    lines = [
        "| strategy | kept | flagged | estimated precision | gold precision (lower bound) "
        "| read precision |",
        "|---|---|---|---|---|---|",
    ]
    for name, s in prose.strategies.items():
        mine = [e for e in prose.examples if name == ALL_STRATEGIES or e.strategy == name]
        estimate = estimated_precision(e.example.get("score") for e in mine)
        flagged = sum(1 for e in mine if e.example.get("flagged"))
        read = getattr(s, "read_precision", None)
        lines.append(
            f"| {name} | {s.kept} | {flagged} | {_pct(estimate)} | {_pct(s.precision)} "
            f"| {_pct(read)} |"
        )
    return "\n".join(lines)


def own_documents(
    folder: Path, strategies: list[str], teacher_cfg: TeacherConfig | None, out: Path | None
) -> int:
    """Augment a folder of files as an upload would, and print what was kept, with scores."""
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    named = [(p.stem, p) for p in files]
    examples: list[dict[str, Any]] = []
    for strategy in strategies:
        units = file_units(named, strategy)
        needs = teacher_cfg if strategy in TEACHER_STRATEGIES else None
        examples.extend(_example_dict(e) for e in asyncio.run(_augment(strategy, units, needs)))
    lines = [
        f"# {len(examples)} statements from {len(files)} files in {folder}",
        "",
        "| strategy | kept | flagged | estimated precision |",
        "|---|---|---|---|",
    ]
    for strategy in strategies:
        mine = [e for e in examples if e["strategy"] == strategy]
        estimate = estimated_precision(e["score"] for e in mine)
        flagged = sum(1 for e in mine if e["flagged"])
        lines.append(f"| {strategy} | {len(mine)} | {flagged} | {_pct(estimate)} |")
    lines += ["", "| strategy | score | statement | source |", "|---|---|---|---|"]
    for e in examples:
        flag = " (flagged)" if e["flagged"] else ""
        source = " ".join(e["source"].split())
        lines.append(f"| {e['strategy']} | {e['score']}{flag} | {e['text']} | {source} |")
    report = "\n".join(lines) + "\n"
    print(report)
    if out:
        out.mkdir(parents=True, exist_ok=True)
        (out / "statements.md").write_text(report)
        (out / "statements.json").write_text(json.dumps(examples, indent=2, default=str))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = perf_parser("quality", __doc__)
    parser.add_argument(
        "--split",
        choices=["dev", "heldout", "all"],
        default="all",
        help="which development-set documents to augment (default: all)",
    )
    parser.add_argument(
        "--strategies",
        default=",".join(RULE_STRATEGIES),
        help="comma-separated strategies (local and global need --teacher-url)",
    )
    parser.add_argument("--teacher-url", help="an OpenAI-compatible teacher (a vLLM server)")
    parser.add_argument("--teacher-model", default="base", help="the teacher's model name")
    parser.add_argument("--teacher-api-key", help="the teacher's API key")
    parser.add_argument("--synthetic-size", default="small", help="size of the synthetic sets")
    parser.add_argument("--out", type=Path, help="folder for quality.json and quality.md")
    parser.add_argument(
        "--documents",
        type=Path,
        help="a folder of your own files (.pdf .docx .md .txt .html): augment them and print "
        "every kept statement with its score and source, and the estimated precision (no gold)",
    )
    args = parser.parse_args(argv)
    strategies = [s.strip() for s in args.strategies.split(",") if s.strip()]
    teacher_cfg = None
    if any(s in TEACHER_STRATEGIES for s in strategies):
        if not args.teacher_url:
            parser.error("local and global need --teacher-url")
        teacher_cfg = TeacherConfig(
            base_url=args.teacher_url, model=args.teacher_model, api_key=args.teacher_api_key
        )
    if args.documents:
        return own_documents(args.documents, strategies, teacher_cfg, args.out)
    split = None if args.split == "all" else args.split
    prose, examples = prose_quality(strategies, split, teacher_cfg)
    rules = [s for s in strategies if s in RULE_STRATEGIES]
    synthetic = synthetic_quality(rules, args.synthetic_size) if rules else {}
    report = (
        f"## Real prose (development set, split {args.split})\n\n{render_markdown(prose)}\n\n"
        f"## What verification estimated, without the gold\n\n{estimate_markdown(prose)}\n\n"
        f"## Synthetic sets (size {args.synthetic_size})\n\n{synthetic_markdown(synthetic)}\n"
    )
    print(report)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "quality.md").write_text(report)
        (args.out / "quality.json").write_text(
            json.dumps(
                {
                    "split": args.split,
                    "strategies": {
                        name: {
                            k: v
                            for k, v in vars(s).items()
                            if not k.endswith("_examples") and not k.startswith("matched_")
                        }
                        for name, s in prose.strategies.items()
                    },
                    "examples": [
                        {**e, "outcome": s.outcome}
                        for e, s in zip(examples, prose.examples, strict=True)
                    ],
                    "synthetic": synthetic,
                },
                indent=2,
                default=str,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
