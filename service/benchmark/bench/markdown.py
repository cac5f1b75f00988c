"""bench.md: the tables of a bench result as Markdown."""

from __future__ import annotations

from typing import Any

from service.benchmark.bench.formatting import (
    format_cell,
    format_paired,
    pct,
    secs,
    seeds_note,
)
from service.benchmark.bench.options import ADAPTER_COLUMNS, OVERALL, REFERENCES
from service.report.markdown import recommendation_markdown


def markdown(result: dict[str, Any]) -> str:
    """The tables of a bench result as Markdown."""
    lines = [
        *_accuracy_section(result),
        *_paired_section(result),
        *_training_section(result),
        *_cost_section(result),
        *_teacher_section(result),
        *_run_section(result),
    ]
    return "\n".join(lines) + "\n"


def _accuracy_section(result: dict[str, Any]) -> list[str]:
    o = result["options"]
    columns = result["columns"]
    labels = result["column_labels"]
    several = o.get("seeds", 1) > 1
    lines = [
        f"# docadapt bench: size {o['size']}, seed {o['seed']}, {seeds_note(o)}",
        "",
        "Accuracy on held-out test items (multiple choice by log-likelihood, choices not shown), "
        + (
            "mean over the training seeds (min-max); base and ICL, which do not train, with 95% "
            "Wilson intervals"
            if several
            else "with 95% Wilson intervals"
        )
        + "; chance is the mean of 1/choices. all/<split>: that split over every dataset.",
        "",
        "| data / split | chance | " + " | ".join(labels[c] for c in columns) + " |",
        "|---|---|" + "---|" * len(columns),
    ]
    for row in result["rows"]:
        cells = [format_cell(result["table"][row][c]) for c in columns]
        n = next((v["n"] for v in result["table"][row].values() if v), 0)
        name = f"**{row}**" if row == OVERALL else row
        lines.append(
            f"| {name} (n={n}) | {pct(result['chance'][row])} | " + " | ".join(cells) + " |"
        )
    return [
        *lines,
        "",
        "Columns: base = the model alone; ICL = the documents in the prompt; FT = fine-tuned on "
        "the documents; aug X = fine-tuned on the documents plus the X augmentation (local, "
        "global: written by the teacher model; both = the union of the local and global sets; "
        "decomposed, linked: made by rule from the parse; default = one augmentation with the "
        "service's default strategies); oracle = the generator's own true inferences as the "
        "augmentation set. Every adapter: the same hyperparameters "
        f"({', '.join(f'{k}={v}' for k, v in o['train'].items())}).",
    ]


def _paired_section(result: dict[str, Any]) -> list[str]:
    labels = result["column_labels"]
    several = result["options"].get("seeds", 1) > 1
    summary = result.get("paired_summary") or {}
    pairs = [
        (c, ref)
        for c in result["columns"]
        if c in ADAPTER_COLUMNS
        for ref in REFERENCES
        if ref != c and any(f"{c} vs {ref}" in v for v in summary.values())
    ]
    if not pairs:
        return []
    lines = [
        "",
        "## Paired tests (exact McNemar, two-sided)",
        "",
        "Each cell: the p-value on the items both columns scored, then the discordant items "
        "(+a: the column right where the reference is wrong; -b: the reverse); bold below "
        "0.01."
        + (
            " With several seeds each seed is its own test (seed i against FT's seed i; ICL "
            "has no seed): the cell shows the largest p and the discordant counts summed "
            "over seeds; bench.json has every seed's."
            if several
            else ""
        ),
        "",
        "| data / split | "
        + " | ".join(f"{labels.get(c, c)} vs {labels.get(r, r)}" for c, r in pairs)
        + " |",
        "|---|" + "---|" * len(pairs),
    ]
    for row in result["rows"]:
        entries = summary.get(row, {})
        lines.append(
            f"| {row} | "
            + " | ".join(format_paired(entries.get(f"{c} vs {r}")) for c, r in pairs)
            + " |"
        )
    return lines


def _training_section(result: dict[str, Any]) -> list[str]:
    labels = result["column_labels"]
    training = result.get("training") or []
    if not training:
        return []
    lines = [
        "",
        "## Training (to the knowledge check's plateau)",
        "",
        "| column | seed | examples | steps (cap) | stopped early at | train s | job s | "
        "knowledge check: adapter | base |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for t in training:
        lines.append(
            f"| {labels.get(t['column'], t['column'])} | {t['seed']} | "
            f"{t['examples'] if t['examples'] is not None else '-'} | "
            f"{t['steps'] if t['steps'] is not None else '-'} "
            f"({t['planned_steps'] if t['planned_steps'] is not None else '-'}) | "
            f"{t['stopped_early_at'] if t['stopped_early_at'] is not None else '-'} | "
            f"{secs(t['train_seconds'])} | {secs(t['job_seconds'])} | "
            f"{pct(t['knowledge'])} | {pct(t['knowledge_base'])} |"
        )
    return [
        *lines,
        "",
        "Examples: training examples (document sentences plus augmented statements, less the "
        "5% held out for the held-out loss). Knowledge check: probes from the documents' own "
        "sentences (a key span left out), scored after training like the evaluation scores.",
    ]


def _cost_section(result: dict[str, Any]) -> list[str]:
    labels = result["column_labels"]
    report = result.get("report") or {}
    if not report.get("recommendation"):
        return []
    modes = ", ".join(
        f"{labels.get(c, c)} = `{m}`" for c, ms in result["column_modes"].items() for m in ms
    )
    return [
        "",
        "## Cost at equal quality (the service's evaluation report)",
        "",
        "Which mode the evaluation recommends: the cheapest among those not significantly "
        "less accurate than the best (paired test, margin as stated), with cost per query "
        "and per correct answer, and break-even against every reference. Modes are the "
        f"service's names: {modes}.",
        "",
        *recommendation_markdown(report),
    ]


def _teacher_section(result: dict[str, Any]) -> list[str]:
    lines = [
        "",
        "## Teacher quality against the generator's truth",
        "",
        "| strategy | kept | precision | contradictions | recall | reversal data: kept | "
        "precision | contradictions | recall on reversal splits |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for q in result["teacher_quality"]:
        lines.append(
            f"| {q['strategy']} | {q['kept']} | {pct(q['precision'])} | "
            f"{pct(q['contradiction_rate'])} | {pct(q['recall'])} | {q['reversal_kept']} | "
            f"{pct(q['reversal_precision'])} | {pct(q['reversal_contradiction_rate'])} | "
            f"{pct(q['reversal_recall'])} |"
        )
    return [
        *lines,
        "",
        "Precision: share of kept statements that are true; contradictions: share that state "
        "something false; the rest says nothing the matcher can decide. Recall: share of the "
        "inferences the test items need that some true statement of the strategy states in words "
        "of its own. Reversal data: the statements about the simple-reversals dataset.",
    ]


def _run_section(result: dict[str, Any]) -> list[str]:
    labels = result["column_labels"]
    lines = ["", "## Run", ""]
    for key, job in result["jobs"].items():
        lines.append(f"- {key}: {job['status']} in {job['seconds']:.0f} s")
    lines.append(f"- total: {result['timings'].get('total_s', 0) / 60:.1f} min")
    for column, why in result["failures"].items():
        lines.append(f"- **{labels.get(column, column)} dropped**: {why}")
    if not result["report_check"]["agrees"]:
        lines.append(
            f"- the service's report disagrees with the per-item results: "
            f"{result['report_check']['mismatches']}"
        )
    return lines
