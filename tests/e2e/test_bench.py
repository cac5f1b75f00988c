"""`docadapt bench` end to end at size tiny: the driver runs the whole benchmark through the REST
API of the live test service (real worker, real vLLM, real training), and its outputs hold up:
every row and column, a table the per-item results recompute, the teacher's quality, a plot."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from service.benchmark.bench import (
    COLUMNS,
    OVERALL,
    BenchOptions,
    cell,
    format_cell,
    run_bench,
    table_rows,
)
from service.benchmark.datasets import generate_suite
from tests.conftest import ADMIN_KEY
from tests.e2e.service_fixtures import LiveService

pytestmark = pytest.mark.e2e


# A loaded 2-core machine can take several times the ~5 minutes this needs when idle.
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
    items = {i.id: i for d in suite for i in d.test_items}

    # Every item scored once under every column's mode; the table is those results, counted.
    modes = result["column_modes"]
    assert set(modes) == set(COLUMNS) and len(set(modes.values())) == len(COLUMNS)
    per_mode: dict[str, list[dict]] = {}
    for r in result["results"]:
        per_mode.setdefault(r["mode"], []).append(r)
    for column in COLUMNS:
        scored = per_mode[modes[column]]
        assert sorted(r["item_id"] for r in scored) == sorted(items)
        assert all(r["category"] == items[r["item_id"]].category for r in scored)
    for row in rows:
        for column in COLUMNS:
            mine = [r for r in per_mode[modes[column]] if row == OVERALL or r["category"] == row]
            expected = cell(sum(r["correct"] for r in mine), len(mine))
            assert result["table"][row][column] == pytest.approx(expected), (row, column)
            assert expected["n"] == (
                len(items) if row == OVERALL else sum(i.category == row for i in items.values())
            )
    assert result["report_check"]["agrees"] and result["report_check"]["compared"] > 0

    md = (out / "bench.md").read_text()
    for row in rows:
        line = next(x for x in md.splitlines() if f"| {row} (" in x or f"| **{row}** (" in x)
        for column in COLUMNS:
            assert format_cell(result["table"][row][column]) in line
    for label in result["column_labels"].values():
        assert label in md

    # Teacher quality per augmentation set, against the generator's truth.
    quality = {q["strategy"]: q for q in result["teacher_quality"]}
    assert set(quality) == {"local", "global", "decomposed", "both", "oracle"}
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
    oracle = quality["oracle"]
    assert oracle["kept"] == sum(len(d.true_inferences) for d in suite)
    assert oracle["precision"] == 1.0 and oracle["contradiction_rate"] == 0.0
    # Every adapter trained with the same hyperparameters, on its own augmentation set.
    adapters = result["adapters"]
    assert {a["hyperparameters"]["train"]["max_steps"] for a in adapters.values()} == {
        options.train_config["max_steps"]
    }
    assert adapters["ft"]["augmentation_id"] is None
    assert adapters["oracle"]["augmentation_id"] == augs["oracle"]["id"]

    png = (out / "bench.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    import matplotlib.image

    image = matplotlib.image.imread(out / "bench.png")
    assert image.shape[0] > 200 and image.shape[1] > 400
