"""`docadapt bench` end to end at size tiny: the driver runs the whole benchmark through the REST
API of the live test service (real worker, real vLLM, real training), and its outputs hold up:
every row and column, a table and paired tests that the per-item results recompute, the training
table, the teacher's quality, a plot."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from service.benchmark.bench.formatting import format_cell
from service.benchmark.bench.options import COLUMNS, BenchOptions
from service.benchmark.bench.run import run_bench
from service.benchmark.bench.tables import cell, in_row, table_rows
from service.benchmark.datasets import generate_suite
from tests.conftest import ADMIN_KEY
from tests.e2e.service_fixtures import LiveService

pytestmark = pytest.mark.e2e


def exact_mcnemar(a: int, b: int) -> float:
    """Two-sided exact McNemar p from the discordant counts, by hand (no scipy)."""
    n = a + b
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, k) for k in range(min(a, b) + 1)) / 2**n
    return min(1.0, 2 * tail)


# A loaded 2-core machine can take several times the ~6 minutes this needs when idle.
@pytest.mark.timeout(2700)
def test_bench_tiny_end_to_end(live_service: LiveService, start_worker, tmp_path: Path) -> None:
    worker = start_worker()
    out = tmp_path / "bench"
    options = BenchOptions(size="tiny", seed=0, out_dir=out, poll_s=1.0, timeout_s=2400)
    returned = run_bench(live_service.client, options, admin_key=ADMIN_KEY)
    assert returned["failures"] == {}, (returned["failures"], worker.log()[-3000:])

    result = json.loads((out / "bench.json").read_text())
    suite = generate_suite("tiny", 0)
    rows = table_rows(suite)
    assert result["columns"] == list(COLUMNS) and result["rows"] == rows
    assert {"all/forward", "all/reversal", "all/syllogism"} <= set(rows)
    items = {i.id: i for d in suite for i in d.test_items}

    # Every item scored once under every column's mode; the table is those results, counted.
    modes = result["column_modes"]
    assert set(modes) == set(COLUMNS) and all(len(m) == 1 for m in modes.values())
    mode_of = {c: m[0] for c, m in modes.items()}
    assert len(set(mode_of.values())) == len(COLUMNS)
    per_mode: dict[str, list[dict]] = {}
    for r in result["results"]:
        per_mode.setdefault(r["mode"], []).append(r)
    for column in COLUMNS:
        scored = per_mode[mode_of[column]]
        assert sorted(r["item_id"] for r in scored) == sorted(items)
        assert all(r["category"] == items[r["item_id"]].category for r in scored)
    for row in rows:
        for column in COLUMNS:
            mine = [r for r in per_mode[mode_of[column]] if in_row(r["category"], row)]
            expected = cell(sum(r["correct"] for r in mine), len(mine))
            assert result["table"][row][column] == pytest.approx(expected), (row, column)
            assert expected["n"] == sum(in_row(i.category, row) for i in items.values())
    assert result["report_check"]["agrees"] and result["report_check"]["compared"] > 0

    # The paired tests: every adapter column against FT and ICL on every row, recomputed from
    # the per-item results with a binomial tail computed here.
    tests = result["paired_tests"]
    adapters = [c for c in COLUMNS if c not in ("base", "icl")]
    expected_pairs = {(c, r) for c in adapters for r in ("ft", "icl") if c != r}
    assert {(t["column"], t["reference"]) for t in tests} == expected_pairs
    assert len(tests) == len(expected_pairs) * len(rows)
    for t in tests:
        right = {
            c: {
                r["item_id"]: r["correct"]
                for r in per_mode[mode_of[c]]
                if in_row(r["category"], t["row"])
            }
            for c in (t["column"], t["reference"])
        }
        a = sum(right[t["column"]][i] and not right[t["reference"]][i] for i in right[t["column"]])
        b = sum(right[t["reference"]][i] and not right[t["column"]][i] for i in right[t["column"]])
        assert (t["only_mode"], t["only_reference"]) == (a, b), t
        assert t["p_value"] == pytest.approx(exact_mcnemar(a, b)), t
        summary = result["paired_summary"][t["row"]][f"{t['column']} vs {t['reference']}"]
        assert summary["p_max"] == pytest.approx(t["p_value"])

    md = (out / "bench.md").read_text()
    for row in rows:
        line = next(x for x in md.splitlines() if f"| {row} (" in x or f"| **{row}** (" in x)
        for column in COLUMNS:
            assert format_cell(result["table"][row][column]) in line
    for label in result["column_labels"].values():
        assert label in md
    assert "## Paired tests (exact McNemar, two-sided)" in md
    assert "## Training (to the knowledge check's plateau)" in md
    # The service's decision at equal quality, as the report states it, named in the bench.
    recommendation = result["report"]["recommendation"]
    assert "## Cost at equal quality (the service's evaluation report)" in md
    for line in recommendation["lines"]:
        assert line in md
    best = recommendation["best"]
    assert f"| {best} |" in md and "per correct answer (no caching)" in md

    # Training: one adapter per column (one seed), the same hyperparameters but for nothing,
    # each with its steps, time and knowledge check after training.
    training = {t["column"]: t for t in result["training"]}
    assert set(training) == set(adapters) and all(t["seed"] == 0 for t in training.values())
    for t in training.values():
        assert t["steps"] == options.train_config["max_steps"] and t["planned_steps"] == t["steps"]
        assert t["train_seconds"] > 0 and t["job_seconds"] >= t["train_seconds"]
        assert t["knowledge_probes"] > 0 and 0 <= t["knowledge"] <= 1
        assert 0 <= t["knowledge_base"] <= 1 and t["examples"] > 0
    assert training["oracle"]["examples"] > training["ft"]["examples"]

    # Teacher quality per augmentation set, against the generator's truth.
    quality = {q["strategy"]: q for q in result["teacher_quality"]}
    assert set(quality) == {"local", "global", "decomposed", "linked", "default", "both", "oracle"}
    for q in quality.values():
        for key in (
            "precision",
            "contradiction_rate",
            "recall",
            "reversal_precision",
            "reversal_recall",
        ):
            assert key in q
    augs = result["augmentations"]
    assert augs["both"]["kept"] == augs["local"]["kept"] + augs["global"]["kept"]
    assert augs["oracle"]["source"] == "uploaded"
    assert augs["default"]["params"]["strategies"] == ["decomposed", "linked", "qa"]
    oracle = quality["oracle"]
    assert oracle["kept"] == sum(len(d.true_inferences) for d in suite)
    assert oracle["precision"] == 1.0 and oracle["contradiction_rate"] == 0.0
    # Every adapter trained with the same hyperparameters, on its own augmentation set.
    adapters_out = result["adapters"]
    assert set(adapters_out) == set(adapters)
    for column, (adapter,) in adapters_out.items():
        train = adapter["hyperparameters"]["train"]
        assert train == {**train, **options.train_config_for(0)}, column
    assert adapters_out["ft"][0]["augmentation_id"] is None
    assert adapters_out["oracle"][0]["augmentation_id"] == augs["oracle"]["id"]

    png = (out / "bench.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    import matplotlib.image

    image = matplotlib.image.imread(out / "bench.png")
    assert image.shape[0] > 200 and image.shape[1] > 400
