"""When a training run compiles its step: the pay-back rule, the ledger of what compiling cost, and
the fixed-shape micro-batches a compiled decoder needs. (The compiled run itself is walked in
tests/e2e/test_train_recipe.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from adapters.train.compiled import (
    COMPILED_STEPS,
    DEFAULT_COLD_SECONDS,
    EAGER_STEPS,
    PAYBACK_MARGIN,
    CompilePlan,
    CompileRecord,
    Ledger,
    expected_cost,
    pays_back,
    shape_key,
)
from adapters.train.config import TrainConfig
from adapters.train.packing import Row, collate, padded_size
from adapters.training_data import IGNORE_INDEX

CPU = torch.device("cpu")


def test_a_cold_compile_pays_back_only_in_a_long_run() -> None:
    # 1 s eager steps at 1.5x save 1/3 s a step; a 60 s cold compile needs 2 x 60 x 3 steps.
    assert not pays_back(350, 1.0, None)
    assert pays_back(370, 1.0, None)
    warm = CompileRecord(cold_seconds=190.0, warm_seconds=18.0, speedup=1.4)
    assert pays_back(130, 1.0, warm)
    assert not pays_back(120, 1.0, warm)


def test_no_speedup_never_pays_back() -> None:
    assert not pays_back(10**9, 1.0, CompileRecord(warm_seconds=0.0, speedup=1.0))
    assert not pays_back(10**9, 1.0, CompileRecord(warm_seconds=1.0, speedup=0.8))


def test_expected_cost_follows_the_record() -> None:
    assert expected_cost(None) == (DEFAULT_COLD_SECONDS, 1.5)
    # Compiled once here: the kernels are cached, so a fifth of the cold time until measured.
    assert expected_cost(CompileRecord(cold_seconds=200.0, speedup=1.6)) == (40.0, 1.6)
    assert expected_cost(CompileRecord(cold_seconds=200.0, warm_seconds=12.0)) == (12.0, 1.5)


def test_the_ledger_keeps_records_and_survives_a_broken_file(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "cache" / "ledger.json")
    assert ledger.get("k") is None
    ledger.put("k", CompileRecord(cold_seconds=150.0, speedup=1.5))
    ledger.put("other", CompileRecord(warm_seconds=9.0))
    assert ledger.get("k") == CompileRecord(cold_seconds=150.0, speedup=1.5)
    assert ledger.get("other") == CompileRecord(warm_seconds=9.0)
    ledger.path.write_text("{not json")
    assert ledger.get("k") is None
    ledger.path.write_text('{"k": {"unknown_field": 1}}')
    assert ledger.get("k") is None
    ledger.put("k", CompileRecord(cold_seconds=1.0))  # rewrites the broken file
    assert ledger.get("k") == CompileRecord(cold_seconds=1.0)


def test_the_shape_key_changes_with_what_changes_the_graph() -> None:
    model = {"hidden_size": 576, "num_hidden_layers": 30}
    base = shape_key(TrainConfig(), model, CPU)
    assert shape_key(TrainConfig(), dict(model), CPU) == base
    assert shape_key(TrainConfig(learning_rate=1e-4, seed=3), model, CPU) == base
    for changed in (
        TrainConfig(batch_size=8),
        TrainConfig(max_seq_length=256),
        TrainConfig(rank=8),
        TrainConfig(target_modules=["q_proj"]),
        TrainConfig(dropout=0.1),
        TrainConfig(precision="fp32"),
    ):
        assert shape_key(changed, model, CPU) != base
    assert shape_key(TrainConfig(), {**model, "num_hidden_layers": 2}, CPU) != base


def _steps(plan: CompilePlan, times: list[float], total: int) -> list[int]:
    """Feed step times to `plan`; the 1-based steps after which it asked to compile."""
    return [i + 1 for i, t in enumerate(times) if plan.observe(t, total - (i + 1))]


def test_auto_times_eager_steps_then_compiles_a_long_run_and_records_it(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.json")
    plan = CompilePlan(mode="auto", key="k", ledger=ledger)
    assert not plan.at_start()
    # The first step (warm-up, 9 s) is not counted; then 2 s steps with 5,000 steps to go.
    assert _steps(plan, [9.0, 2.0, 2.0, 2.0], total=5_000) == [EAGER_STEPS + 1]
    # The progress report before the compiling step says so, and its ETA includes the compile.
    assert plan.compile_pending()
    assert plan.expected_compile_seconds() == DEFAULT_COLD_SECONDS
    times = [100.0] + [1.0] * COMPILED_STEPS + [1.0] * 5
    assert _steps(plan, times, total=5_000 - 4) == []
    assert not plan.compile_pending() and plan.expected_compile_seconds() == 0
    assert plan.switched and plan.done
    assert plan.compile_seconds == 99.0  # the compiled step less a compiled step's time
    assert ledger.get("k") == CompileRecord(cold_seconds=99.0, speedup=2.0)
    # The next run of the same shape expects the cache to be warm, and records that time.
    plan = CompilePlan(mode="auto", key="k", ledger=ledger)
    times = [9.0, 2.0, 2.0, 2.0] + [11.0] + [1.0] * COMPILED_STEPS
    assert _steps(plan, times, total=100) == [EAGER_STEPS + 1]
    assert ledger.get("k") == CompileRecord(cold_seconds=99.0, warm_seconds=10.0, speedup=2.0)


def test_auto_stays_eager_when_the_rest_of_the_run_is_short(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.json")
    plan = CompilePlan(mode="auto", key="k", ledger=ledger)
    # 300 steps of 1 s at the assumed 1.5x save 100 s: under twice a cold compile.
    assert PAYBACK_MARGIN * DEFAULT_COLD_SECONDS > 300 * (1 - 1 / 1.5)
    assert _steps(plan, [5.0] + [1.0] * 20, total=300) == []
    assert plan.done and not plan.switched
    assert not ledger.path.exists()


def test_on_compiles_from_the_start_and_off_or_unavailable_never(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.json")
    plan = CompilePlan(mode="on", key="k", ledger=ledger)
    assert plan.at_start()
    assert _steps(plan, [50.0] + [1.0] * COMPILED_STEPS, total=10) == []
    assert plan.compile_seconds == 49.0
    assert ledger.get("k") == CompileRecord(cold_seconds=49.0)  # no eager step: no speedup
    for plan in (
        CompilePlan(mode="off", key="k", ledger=ledger),
        CompilePlan(mode="on", key="k", ledger=ledger, unavailable="no C++ compiler"),
        CompilePlan(mode="auto", key="k", ledger=ledger, unavailable="no C++ compiler"),
    ):
        assert not plan.at_start()
        assert _steps(plan, [1.0] * 10, total=10**6) == []
        assert not plan.switched


def test_fixed_shape_micro_batches_pad_rows_and_width_without_labels() -> None:
    rows = [Row([5, 6, 7], [6, 7, 2], [0, 1, 2]), Row([8, 9], [IGNORE_INDEX, 3], [0, 1])]
    natural = collate(rows, pad_id=0, device=CPU)
    assert natural["input_ids"].shape == (2, 3)
    fixed = collate(rows, pad_id=0, device=CPU, shape=(4, 6))
    assert fixed["input_ids"].shape == fixed["labels"].shape == (4, 6)
    assert torch.equal(fixed["input_ids"][:2, :3], natural["input_ids"])
    assert torch.equal(fixed["labels"][:2, :3], natural["labels"])
    # Padding is never a target, and its positions run on their own.
    assert (fixed["labels"][:, 3:] == IGNORE_INDEX).all()
    assert (fixed["labels"][2:] == IGNORE_INDEX).all()
    assert fixed["position_ids"][0].tolist() == [0, 1, 2, 0, 1, 2]
    assert fixed["position_ids"][3].tolist() == [0, 1, 2, 3, 4, 5]
    assert padded_size(rows, 4) == 2 * 3
    assert padded_size(rows, 4, fixed=6) == 4 * 6
    assert padded_size(rows * 3, 4, fixed=6) == 2 * 4 * 6


def test_workers_compile_into_the_data_dir_unless_told_otherwise(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from service.jobs.pool import worker_env

    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR", raising=False)
    env = worker_env(tmp_path, "sqlite://", None, None, None, None)
    assert env["TORCHINDUCTOR_CACHE_DIR"] == str(tmp_path / "cache" / "torchinductor")
    assert env["TRITON_CACHE_DIR"] == str(tmp_path / "cache" / "triton")
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", "/srv/shared-inductor")
    assert worker_env(tmp_path, "sqlite://", None, None, None, None)["TORCHINDUCTOR_CACHE_DIR"] == (
        "/srv/shared-inductor"
    )
