"""The bench's tables: cells recomputed from per-item results, Wilson intervals, the check against
the service's report, and the Markdown and PNG outputs."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from service.benchmark.bench import (
    OVERALL,
    BenchOptions,
    accuracy_table,
    chance_levels,
    format_cell,
    markdown,
    plot_png,
    report_check,
    table_rows,
)
from service.benchmark.datasets import generate_suite


def _results() -> list[dict]:
    out = []
    for k in range(4):  # base: 3 of 4 on a/x; icl: 1 of 4 on a/x, 2 of 2 on b/y
        out.append({"mode": "base", "item_id": f"x{k}", "category": "a/x", "correct": k < 3})
        out.append({"mode": "icl", "item_id": f"x{k}", "category": "a/x", "correct": k == 0})
    for k in range(2):
        out.append({"mode": "base", "item_id": f"y{k}", "category": "b/y", "correct": False})
        out.append({"mode": "icl", "item_id": f"y{k}", "category": "b/y", "correct": True})
    return out


def test_cells_are_counts_of_the_results_with_wilson_intervals() -> None:
    rows = ["a/x", "b/y", OVERALL]
    table = accuracy_table(_results(), rows, ["base", "icl", "ft"], {"base": "base", "icl": "icl"})
    assert (table["a/x"]["base"]["correct"], table["a/x"]["base"]["n"]) == (3, 4)
    assert (table["b/y"]["icl"]["correct"], table["b/y"]["icl"]["n"]) == (2, 2)
    assert (table[OVERALL]["icl"]["correct"], table[OVERALL]["icl"]["n"]) == (3, 6)
    assert table["a/x"]["ft"] is None  # a column without a mode (dropped)
    # Wilson 95% for 3/4: 0.3006-0.9544 (independent of scipy: the closed form).
    p, n, z = 0.75, 4, 1.959963984540054
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    assert table["a/x"]["base"]["ci_low"] == pytest.approx(centre - half, abs=1e-6)
    assert table["a/x"]["base"]["ci_high"] == pytest.approx(centre + half, abs=1e-6)
    assert format_cell(table["a/x"]["base"]) == "75% [30-95]"
    assert format_cell(None) == "-"


def test_report_check_finds_a_disagreeing_cell() -> None:
    modes = {"base": "base", "icl": "icl"}
    table = accuracy_table(_results(), ["a/x", OVERALL], ["base", "icl"], modes)
    report = {
        "accuracy": {
            "base": {"correct": {"correct": 3, "n": 6}},
            "icl": {"correct": {"correct": 3, "n": 6}},
        },
        "accuracy_by_category": {
            "base": {"a/x": {"correct": {"correct": 3, "n": 4}}},
            "icl": {"a/x": {"correct": {"correct": 2, "n": 4}}},
        },
    }
    check = report_check(table, report, modes)
    assert check["compared"] == 4 and not check["agrees"]
    assert check["mismatches"] == [
        {"row": "a/x", "column": "icl", "table": [1, 4], "report": [2, 4]}
    ]


def test_rows_chance_markdown_and_plot(tmp_path: Path) -> None:
    suite = generate_suite("tiny", 0)
    rows = table_rows(suite)
    assert rows[-1] == OVERALL
    assert set(rows[:-1]) == {i.category for d in suite for i in d.test_items}
    chance = chance_levels(suite, rows)
    assert chance["simple_reversals/reversal"] == pytest.approx(0.5)
    syllogisms = [i for d in suite for i in d.test_items if i.category == "syllogisms/syllogism"]
    assert chance["syllogisms/syllogism"] == pytest.approx(
        sum(1 / len(i.choices) for i in syllogisms) / len(syllogisms)
    )

    options = BenchOptions(size="tiny")
    columns = list(options.table_columns)
    results = [
        {"mode": c, "item_id": i.id, "category": i.category, "correct": (k + j) % 2 == 0}
        for j, c in enumerate(columns)
        for d in suite
        for k, i in enumerate(d.test_items)
    ]
    table = accuracy_table(results, rows, columns, {c: c for c in columns})
    result = {
        "options": {"size": "tiny", "seed": 0, "train": options.train_config},
        "columns": columns,
        "column_labels": {c: c.upper() for c in columns},
        "rows": rows,
        "chance": chance,
        "table": table,
        "teacher_quality": [
            {
                "strategy": "local",
                "kept": 3,
                "precision": 2 / 3,
                "contradiction_rate": 1 / 3,
                "recall": 0.1,
                "reversal_kept": 1,
                "reversal_precision": 1.0,
                "reversal_contradiction_rate": 0.0,
                "reversal_recall": None,
            }
        ],
        "jobs": {"train:ft": {"status": "succeeded", "seconds": 12.0}},
        "timings": {"total_s": 600.0},
        "failures": {"oracle": "training failed"},
        "report_check": {"agrees": True, "mismatches": []},
    }
    md = markdown(result)
    for row in rows:
        line = next(
            x for x in md.splitlines() if x.startswith(f"| {row} (") or x.startswith(f"| **{row}**")
        )
        assert line.count("|") == len(columns) + 3
        for c in columns:
            assert format_cell(table[row][c]) in line
    assert "| local | 3 | 67% | 33% | 10% | 1 | 100% | 0% | - |" in md
    assert "ORACLE dropped**: training failed" in md

    plot_png(result, tmp_path / "bench.png")
    import matplotlib.image

    image = matplotlib.image.imread(tmp_path / "bench.png")
    assert image.shape[0] > 200 and image.shape[1] > 400


def test_options_refuse_unknown_sizes_and_strategies() -> None:
    with pytest.raises(ValueError, match="unknown size"):
        BenchOptions(size="huge")
    with pytest.raises(ValueError, match="unknown strategies"):
        BenchOptions(columns=("local", "telepathy"))
    assert BenchOptions(columns=("oracle", "local")).table_columns == (
        "base",
        "icl",
        "ft",
        "local",
        "oracle",
    )
