"""The bench's tables: cells recomputed from per-item results, Wilson intervals, pooled split rows,
several training seeds, the paired tests against FT and ICL, the check against the service's
report, and the Markdown and PNG outputs."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import pytest

from service.benchmark.bench.formatting import format_cell, format_paired
from service.benchmark.bench.markdown import markdown
from service.benchmark.bench.options import OVERALL, PRESETS, BenchOptions
from service.benchmark.bench.outputs import plot_png
from service.benchmark.bench.tables import (
    accuracy_table,
    chance_levels,
    in_row,
    paired_summary,
    paired_tests,
    report_check,
    table_rows,
)
from service.benchmark.datasets import generate_suite


def result(mode: str, item_id: str, category: str, correct: bool) -> dict[str, Any]:
    """One item result as GET /v1/evaluations/{id}/results returns it."""
    kind = "base" if mode == "base" else "icl" if mode == "icl" else "adapter"
    return {
        "item_id": item_id,
        "mode": mode,
        "mode_kind": kind,
        "model": mode,
        "category": category,
        "kind": "multiple_choice",
        "correct": correct,
        "scores": {"mc_sum": correct, "mc_norm": correct},
        "answer": "a",
    }


def _results() -> list[dict]:
    out = []
    for k in range(4):  # base: 3 of 4 on a/x; icl: 1 of 4 on a/x, 2 of 2 on b/y
        out.append(result("base", f"x{k}", "a/x", k < 3))
        out.append(result("icl", f"x{k}", "a/x", k == 0))
    for k in range(2):
        out.append(result("base", f"y{k}", "b/y", False))
        out.append(result("icl", f"y{k}", "b/y", True))
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


def test_pooled_rows_take_a_split_from_every_dataset_that_has_it() -> None:
    suite = generate_suite("small", 0, ("simple_reversals", "syllogisms"))
    rows = table_rows(suite)
    assert rows == [
        "simple_reversals/forward",
        "simple_reversals/reversal",
        "syllogisms/forward",
        "syllogisms/syllogism",
        "all/forward",  # the only split both datasets have
        OVERALL,
    ]
    assert in_row("syllogisms/forward", "all/forward")
    assert not in_row("syllogisms/syllogism", "all/forward")
    assert in_row("anything/else", OVERALL) and not in_row(None, "a/x")
    results = [result("base", "r1", "simple_reversals/forward", True)] + [
        result("base", f"s{k}", "syllogisms/forward", k == 0) for k in range(3)
    ]
    table = accuracy_table(results, rows, ["base"], {"base": "base"})
    assert (table["all/forward"]["base"]["correct"], table["all/forward"]["base"]["n"]) == (2, 4)
    chance = chance_levels(suite, rows)
    forward = [i for d in suite for i in d.test_items if i.split == "forward"]
    assert len(forward) >= 80
    assert chance["all/forward"] == pytest.approx(
        sum(1 / len(i.choices) for i in forward) / len(forward)
    )


def _seeded() -> tuple[list[dict], dict[str, list[str]]]:
    """20 items of category a/x. FT seeds: 5/20 and 6/20 right; oracle seeds 15/20 and 17/20;
    ICL 8/20. Built so the discordant counts are known."""
    out = []
    ft = [set(range(5)), set(range(6))]
    oracle = [set(range(15)), set(range(17))]
    for k in range(20):
        out.append(result("icl", f"i{k}", "a/x", k >= 12))  # items 12-19
        for seed in range(2):
            out.append(result(f"ft-s{seed}", f"i{k}", "a/x", k in ft[seed]))
            out.append(result(f"oracle-s{seed}", f"i{k}", "a/x", k in oracle[seed]))
    modes = {"icl": ["icl"], "ft": ["ft-s0", "ft-s1"], "oracle": ["oracle-s0", "oracle-s1"]}
    return out, modes


def test_several_seeds_give_the_mean_and_the_spread() -> None:
    results, modes = _seeded()
    table = accuracy_table(results, ["a/x"], ["icl", "ft", "oracle"], modes)
    oracle = table["a/x"]["oracle"]
    assert oracle["seeds"] == 2 and oracle["n"] == 20
    assert oracle["accuracy"] == pytest.approx(0.8)  # (15 + 17) / 2 / 20
    assert (oracle["min"], oracle["max"]) == (0.75, 0.85)
    assert oracle["sd"] == pytest.approx(math.sqrt(2 * 0.05**2))
    assert [c["correct"] for c in oracle["per_seed"]] == [15, 17]
    assert format_cell(oracle) == "80% (75-85)"
    assert format_cell(table["a/x"]["icl"]) == "40% [22-61]"  # one mode: the Wilson interval


def test_paired_tests_against_ft_and_icl_per_seed_with_exact_p_values() -> None:
    results, modes = _seeded()
    tests = paired_tests(results, ["a/x"], ["base", "icl", "ft", "oracle"], modes)
    by_key = {(t["column"], t["reference"], t["seed"]): t for t in tests}
    # FT against ICL, and the oracle against both; base and ICL are no adapter columns.
    assert set(by_key) == {
        ("ft", "icl", 0),
        ("ft", "icl", 1),
        ("oracle", "ft", 0),
        ("oracle", "ft", 1),
        ("oracle", "icl", 0),
        ("oracle", "icl", 1),
    }
    # Oracle seed 0 (items 0-14) against FT seed 0 (items 0-4): 10 discordant, all the
    # oracle's: two-sided binomial p = 2 / 2^10.
    t = by_key[("oracle", "ft", 0)]
    assert (t["only_mode"], t["only_reference"], t["both_correct"], t["n"]) == (10, 0, 5, 20)
    assert t["p_value"] == pytest.approx(2 / 1024)
    # Seed 1 pairs with FT's seed 1 (items 0-5), not seed 0: 11 discordant, p = 2 / 2^11.
    assert by_key[("oracle", "ft", 1)]["only_mode"] == 11
    assert by_key[("oracle", "ft", 1)]["p_value"] == pytest.approx(2 / 2048)
    # Oracle seed 0 against ICL (items 12-19): oracle alone right on 0-11 (12), ICL alone on
    # 15-19 (5): p = 2 * sum_{k<=5} C(17, k) / 2^17.
    t = by_key[("oracle", "icl", 0)]
    assert (t["only_mode"], t["only_reference"]) == (12, 5)
    tail = sum(math.comb(17, k) for k in range(6))
    assert t["p_value"] == pytest.approx(2 * tail / 2**17)
    summary = paired_summary(tests)["a/x"]["oracle vs ft"]
    assert summary["p_values"] == [pytest.approx(2 / 1024), pytest.approx(2 / 2048)]
    assert summary["p_max"] == pytest.approx(2 / 1024)
    assert format_paired(summary) == "**0.002 (+21/-0)**"
    assert format_paired(paired_summary(tests)["a/x"]["oracle vs icl"]).startswith("0.")


def test_report_check_finds_a_disagreeing_cell() -> None:
    modes = {"base": "base", "icl": "icl"}
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
    check = report_check(_results(), report, ["a/x", "all/x", OVERALL], modes)
    assert check["compared"] == 4 and not check["agrees"]
    assert check["mismatches"] == [
        {"row": "a/x", "column": "icl", "mode": "icl", "table": [1, 4], "report": [2, 4]}
    ]


def _bench_result(options: BenchOptions, suite: list, rows: list[str]) -> dict[str, Any]:
    columns = list(options.table_columns)
    results = [
        result(c, i.id, i.category, (k + j) % 2 == 0)
        for j, c in enumerate(columns)
        for d in suite
        for k, i in enumerate(d.test_items)
    ]
    modes = {c: c for c in columns}
    tests = paired_tests(results, rows, columns, modes)
    return {
        "options": {"size": "tiny", "seed": 0, "seeds": 1, "train": options.train_config},
        "columns": columns,
        "column_labels": {c: c.upper() for c in columns},
        "rows": rows,
        "chance": chance_levels(suite, rows),
        "table": accuracy_table(results, rows, columns, modes),
        "paired_tests": tests,
        "paired_summary": paired_summary(tests),
        "training": [
            {
                "column": "ft",
                "seed": 0,
                "examples": 30,
                "steps": 24,
                "planned_steps": 160,
                "stopped_early_at": 24,
                "train_seconds": 61.4,
                "job_seconds": 80.2,
                "knowledge": 0.95,
                "knowledge_base": 0.4,
            }
        ],
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
        "jobs": {"train:ft:s0": {"status": "succeeded", "seconds": 12.0}},
        "timings": {"total_s": 600.0},
        "failures": {"oracle": "training failed"},
        "report_check": {"agrees": True, "mismatches": []},
    }


def test_rows_chance_markdown_and_plot(tmp_path: Path) -> None:
    suite = generate_suite("tiny", 0)
    rows = table_rows(suite)
    assert rows[-1] == OVERALL
    categories = {i.category for d in suite for i in d.test_items}
    assert set(rows[:-1]) == categories | {"all/forward", "all/reversal", "all/syllogism"}
    chance = chance_levels(suite, rows)
    assert chance["simple_reversals/reversal"] == pytest.approx(0.5)
    syllogisms = [i for d in suite for i in d.test_items if i.category == "syllogisms/syllogism"]
    assert chance["syllogisms/syllogism"] == pytest.approx(
        sum(1 / len(i.choices) for i in syllogisms) / len(syllogisms)
    )

    options = BenchOptions(size="tiny")
    result_ = _bench_result(options, suite, rows)
    columns, table = result_["columns"], result_["table"]
    md = markdown(result_)
    for row in rows:
        line = next(
            x for x in md.splitlines() if x.startswith(f"| {row} (") or x.startswith(f"| **{row}**")
        )
        assert line.count("|") == len(columns) + 3
        for c in columns:
            assert format_cell(table[row][c]) in line
    # The paired table: every adapter column against FT and ICL (FT only against ICL).
    header = next(x for x in md.splitlines() if x.startswith("| data / split | FT vs ICL"))
    adapters = [c for c in columns if c not in ("base", "icl")]
    assert header.count(" vs ") == 2 * len(adapters) - 1
    summary = result_["paired_summary"]
    line = next(x for x in md.splitlines() if x.startswith("| all/reversal | "))
    assert format_paired(summary["all/reversal"]["oracle vs ft"]) in line
    assert "| FT | 0 | 30 | 24 (160) | 24 | 61 | 80 | 95% | 40% |" in md
    assert "| local | 3 | 67% | 33% | 10% | 1 | 100% | 0% | - |" in md
    assert "ORACLE dropped**: training failed" in md

    plot_png(result_, tmp_path / "bench.png")
    import matplotlib.image

    image = matplotlib.image.imread(tmp_path / "bench.png")
    assert image.shape[0] > 200 and image.shape[1] > 400


def test_options_refuse_unknown_sizes_strategies_and_seeds() -> None:
    with pytest.raises(ValueError, match="unknown size"):
        BenchOptions(size="huge")
    with pytest.raises(ValueError, match="unknown strategies"):
        BenchOptions(columns=("local", "telepathy"))
    with pytest.raises(ValueError, match="seeds"):
        BenchOptions(seeds=0)
    with pytest.raises(ValueError, match="training seed"):
        BenchOptions(train={"seed": 3})
    assert BenchOptions(columns=("oracle", "local")).table_columns == (
        "base",
        "icl",
        "ft",
        "local",
        "oracle",
    )
    # Each size runs its own columns by default; each seed trains with its own seed.
    assert BenchOptions(size="small").columns == PRESETS["small"].columns
    assert BenchOptions(size="tiny").columns == PRESETS["tiny"].columns
    options = BenchOptions(size="small", seeds=3)
    assert options.training_seeds == (0, 1, 2)
    assert options.train_config_for(2)["seed"] == 2
    assert options.train_config_for(2)["learning_rate"] == options.train_config["learning_rate"]


def test_small_trains_to_the_plateau_on_the_powered_suite() -> None:
    small = PRESETS["small"]
    # Early stopping on the knowledge check; epochs and max_steps are caps.
    assert small.train["early_stopping"] is True and small.train["max_steps"] >= 100
    suite = generate_suite("small", 0, small.datasets)
    splits: dict[str, int] = {}
    for d in suite:
        for split, n in d.splits().items():
            splits[split] = splits.get(split, 0) + n
    assert splits["forward"] >= 40 and splits["reversal"] >= 40 and splits["syllogism"] >= 40
    # The oracle set states every inference a reversal or syllogism item needs, in the words
    # the item asks for it (behind a lead-in or a header, as the documents state facts).
    oracle = [i.statement.lower() for d in suite for i in d.true_inferences]
    needed = [s for d in suite for i in d.test_items for s in i.needed_inferences]
    assert len(needed) == splits["reversal"] + splits["syllogism"]
    for statement in needed:
        said = re.compile(r"[\s:] ?" + re.escape(statement.lower().rstrip(".")) + r"[.?]$")
        assert any(said.search(o) for o in oracle), statement
