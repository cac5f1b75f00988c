"""The bench's numbers, recomputed from the evaluation's per-item results: table rows (with
pooled splits), chance levels, accuracy cells with Wilson intervals (or over seeds), the paired
tests against the references, the check against the service's report, and the teacher's
quality per strategy."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import Any

from service.benchmark.bench.options import ADAPTER_COLUMNS, OVERALL, POOLED_PREFIX, REFERENCES
from service.benchmark.datasets import BenchmarkDataset
from service.benchmark.truth import REVERSAL, TruthReport
from service.evaluate.scoring import ItemResult
from service.evaluate.stats import accuracy_of, paired_test


def table_rows(suite: Sequence[BenchmarkDataset]) -> list[str]:
    """ "<dataset>/<split>" for every split of every dataset, in generator order; then
    "all/<split>" for each split that several datasets have (pooled over them); then "all"."""
    rows = [f"{d.name}/{split}" for d in suite for split in d.splits()]
    splits: dict[str, int] = {}
    for d in suite:
        for split in d.splits():
            splits[split] = splits.get(split, 0) + 1
    pooled = [f"{POOLED_PREFIX}{split}" for split, count in splits.items() if count > 1]
    return rows + pooled + [OVERALL]


def in_row(category: str | None, row: str) -> bool:
    """Whether an item of `category` ("<dataset>/<split>") counts in `row`."""
    if row == OVERALL:
        return True
    if row.startswith(POOLED_PREFIX):
        return (category or "").endswith("/" + row.removeprefix(POOLED_PREFIX))
    return category == row


def chance_levels(suite: Sequence[BenchmarkDataset], rows: Sequence[str]) -> dict[str, float]:
    """Expected accuracy of guessing, per row: the mean of 1 / number of choices."""
    items = [i for d in suite for i in d.test_items]
    out = {}
    for row in rows:
        mine = [i for i in items if in_row(i.category, row)]
        out[row] = sum(1 / len(i.choices) for i in mine) / len(mine) if mine else math.nan
    return out


def cell(correct: int, n: int) -> dict[str, Any]:
    """k of n with its 95% Wilson interval (None fields when n is 0)."""
    return accuracy_of(correct, n).model_dump(exclude={"confidence"})


def seeds_cell(cells: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One column's cell over several training seeds: the mean accuracy, its min, max and
    standard deviation, and each seed's own cell (k of n with its Wilson interval)."""
    values = [c["accuracy"] for c in cells if c["accuracy"] is not None]
    return {
        "seeds": len(cells),
        "n": cells[0]["n"] if cells else 0,
        "accuracy": statistics.fmean(values) if values else None,
        "min": min(values) if values else None,
        "max": max(values) if values else None,
        "sd": statistics.stdev(values) if len(values) > 1 else 0.0 if values else None,
        "per_seed": list(cells),
    }


def _mode_lists(modes: dict[str, str | list[str]]) -> dict[str, list[str]]:
    return {c: [m] if isinstance(m, str) else list(m) for c, m in modes.items()}


def accuracy_table(
    results: Sequence[dict[str, Any]],
    rows: Sequence[str],
    columns: Sequence[str],
    modes: dict[str, str | list[str]],
) -> dict[str, dict[str, Any]]:
    """row -> column -> cell, recomputed from the per-item results (`correct`, the primary
    metric). A column with one mode gets `cell`, one with a mode per seed `seeds_cell`; a
    column without a mode (dropped) has None cells."""
    by_mode = _mode_lists(modes)
    table: dict[str, dict[str, Any]] = {}
    for row in rows:
        table[row] = {}
        for column in columns:
            names = by_mode.get(column)
            if not names:
                table[row][column] = None
                continue
            cells = []
            for mode in names:
                mine = [r for r in results if r["mode"] == mode and in_row(r.get("category"), row)]
                cells.append(cell(sum(bool(r["correct"]) for r in mine), len(mine)))
            table[row][column] = cells[0] if len(cells) == 1 else seeds_cell(cells)
    return table


def paired_tests(
    results: Sequence[dict[str, Any]],
    rows: Sequence[str],
    columns: Sequence[str],
    modes: dict[str, str | list[str]],
    references: Sequence[str] = REFERENCES,
) -> list[dict[str, Any]]:
    """The exact McNemar test (`service.evaluate.stats.paired_test`, primary metric) of every
    adapter column against every reference column, per row and per training seed: seed i of a
    column against seed i of a reference that has seeds, else against its one mode (ICL).
    Rows where either side scored nothing are left out."""
    by_mode = _mode_lists(modes)
    parsed: dict[str, list[ItemResult]] = {}
    for r in results:
        parsed.setdefault(r["mode"], []).append(ItemResult.model_validate(r))
    out: list[dict[str, Any]] = []
    for column in columns:
        if column not in ADAPTER_COLUMNS or not by_mode.get(column):
            continue
        for reference in references:
            ref_modes = by_mode.get(reference)
            if reference == column or not ref_modes:
                continue
            for seed, mode in enumerate(by_mode[column]):
                ref_mode = ref_modes[seed] if len(ref_modes) > 1 else ref_modes[0]
                for row in rows:
                    mine = [r for r in parsed.get(mode, []) if in_row(r.category, row)]
                    theirs = [r for r in parsed.get(ref_mode, []) if in_row(r.category, row)]
                    if not mine or not theirs:
                        continue
                    test = paired_test(mine, theirs).model_dump()
                    # The test names modes; the bench's rows name columns (and keep the modes).
                    test["reference_mode"] = test.pop("reference")
                    out.append(
                        {"row": row, "column": column, "reference": reference, "seed": seed, **test}
                    )
    return out


def paired_summary(tests: Sequence[dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    """row -> "<column> vs <reference>" -> the p-values over seeds (in seed order), the largest
    one, and each seed's discordant counts."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for t in tests:
        entry = out.setdefault(t["row"], {}).setdefault(
            f"{t['column']} vs {t['reference']}",
            {"p_values": [], "only_mode": [], "only_reference": [], "n": t["n"]},
        )
        entry["p_values"].append(t["p_value"])
        entry["only_mode"].append(t["only_mode"])
        entry["only_reference"].append(t["only_reference"])
        entry["p_max"] = max(entry["p_values"])
    return out


def report_check(
    results: Sequence[dict[str, Any]],
    report: dict[str, Any],
    rows: Sequence[str],
    modes: dict[str, str | list[str]],
) -> dict[str, Any]:
    """Whether the service's report says the same k of n as the per-item results, for every
    mode on every dataset/split row and overall (pooled rows are the bench's own)."""
    by_category = report.get("accuracy_by_category") or {}
    overall = report.get("accuracy") or {}
    mismatches = []
    compared = 0
    for column, names in _mode_lists(modes).items():
        for mode in names:
            for row in rows:
                if row.startswith(POOLED_PREFIX):
                    continue
                source = overall.get(mode) if row == OVERALL else by_category.get(mode, {}).get(row)
                theirs = (source or {}).get("correct")
                if theirs is None:
                    continue
                mine = [r for r in results if r["mode"] == mode and in_row(r.get("category"), row)]
                ours = [sum(bool(r["correct"]) for r in mine), len(mine)]
                compared += 1
                if [theirs["correct"], theirs["n"]] != ours:
                    mismatches.append(
                        {
                            "row": row,
                            "column": column,
                            "mode": mode,
                            "table": ours,
                            "report": [theirs["correct"], theirs["n"]],
                        }
                    )
    return {"compared": compared, "mismatches": mismatches, "agrees": not mismatches}


def teacher_quality_rows(truth: TruthReport) -> list[dict[str, Any]]:
    """Per strategy: kept, precision, contradiction rate and recall, over everything and on
    reversals (precision on the simple-reversals data, recall on every reversal split)."""
    out = []
    strategies = list(dict.fromkeys(q.strategy for q in truth.qualities))
    for strategy in strategies:
        overall = truth.get(strategy)
        try:
            reversal_data = truth.get(strategy, "simple_reversals")
        except KeyError:
            reversal_data = None
        out.append(
            {
                "strategy": strategy,
                "kept": overall.kept,
                "true": overall.true,
                "contradiction": overall.contradiction,
                "unknown": overall.unknown,
                "precision": overall.precision,
                "contradiction_rate": overall.contradiction_rate,
                "recall": overall.recall.get("all"),
                "reversal_kept": reversal_data.kept if reversal_data else 0,
                "reversal_precision": reversal_data.precision if reversal_data else None,
                "reversal_contradiction_rate": (
                    reversal_data.contradiction_rate if reversal_data else None
                ),
                "reversal_recall": overall.recall.get(REVERSAL),
            }
        )
    return out
