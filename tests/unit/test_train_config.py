"""TrainConfig.validate: the problems the API turns into a 422 before any job starts."""

from __future__ import annotations

from dataclasses import asdict

import pytest

from adapters.train import DEFAULT_TARGET_MODULES, TrainConfig
from adapters.train.early_stopping import auto_eval_every, plateaued
from adapters.train.history import History
from adapters.train.step import lr_multiplier


def test_defaults_are_valid_and_train_to_the_knowledge_checks_plateau() -> None:
    config = TrainConfig()
    assert config.validate(max_lora_rank=16) == []
    assert (config.rank, config.alpha, config.learning_rate) == (16, 32.0, 1e-3)
    # Upper bounds with early stopping, evaluated about ten times a run.
    assert (config.epochs, config.max_steps, config.eval_every) == (20, None, None)
    assert config.early_stopping and config.patience == 3
    assert config.target_modules == list(DEFAULT_TARGET_MODULES)


def test_rank_above_the_servers_maximum_is_a_problem() -> None:
    problems = TrainConfig(rank=32).validate(max_lora_rank=16)
    assert len(problems) == 1
    assert "rank" in problems[0] and "16" in problems[0]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"rank": 0}, "rank"),
        ({"rank": "8"}, "rank"),
        ({"alpha": 0}, "alpha"),
        ({"dropout": 1.0}, "dropout"),
        ({"learning_rate": -1e-4}, "learning_rate"),
        ({"learning_rate": float("nan")}, "learning_rate"),
        ({"lr_schedule": "step"}, "lr_schedule"),
        ({"warmup_ratio": 1.0}, "warmup_ratio"),
        ({"epochs": 0}, "epochs"),
        ({"max_steps": 0}, "max_steps"),
        ({"batch_size": True}, "batch_size"),
        ({"grad_accum": 0}, "grad_accum"),
        ({"max_seq_length": 8}, "max_seq_length"),
        ({"packing": "yes"}, "packing"),
        ({"precision": "int8"}, "precision"),
        ({"checkpoint_every": -1}, "checkpoint_every"),
        ({"target_modules": []}, "target_modules"),
        ({"target_modules": ["lm_head"]}, "target_modules"),
        ({"target_modules": ["q_proj", "q_proj"]}, "target_modules"),
    ],
)
def test_each_bad_value_is_named(changes: dict, field: str) -> None:
    problems = TrainConfig(**changes).validate(max_lora_rank=16)
    assert len(problems) == 1, problems
    assert problems[0].startswith(field)


def test_several_problems_are_all_reported() -> None:
    problems = TrainConfig(rank=64, dropout=2.0, batch_size=0).validate(max_lora_rank=16)
    assert len(problems) == 3


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"batch_size": True}, "batch_size must be a valid integer, got True"),
        ({"alpha": False}, "alpha must be a valid number, got False"),
        ({"learning_rate": float("nan")}, "learning_rate must be a finite number, got nan"),
        ({"max_grad_norm": float("inf")}, "max_grad_norm must be a finite number, got inf"),
        ({"seed": "1"}, "seed must be a valid integer, got '1'"),
        ({"epochs": 2.0}, "epochs must be a valid integer, got 2.0"),
        ({"alpha": 0}, "alpha must be greater than 0, got 0"),
        (
            {"max_steps": 10_000_001},
            "max_steps must be less than or equal to 10000000, got 10000001",
        ),
    ],
)
def test_strict_types_bool_is_no_int_and_nan_is_no_number(changes: dict, message: str) -> None:
    assert TrainConfig(**changes).validate(max_lora_rank=16) == [message]


def test_ints_are_numbers_and_the_bounds_are_inclusive_where_they_say_so() -> None:
    edges = TrainConfig(
        alpha=4096,
        dropout=0,
        learning_rate=1,
        warmup_ratio=0,
        max_grad_norm=0,
        epochs=10_000,
        max_steps=10_000_000,
        max_seq_length=16,
        seed=2**63 - 1,
        checkpoint_every=0,
        eval_every=0,
    )
    assert edges.validate(max_lora_rank=16) == []
    assert TrainConfig(rank=16).validate(max_lora_rank=16) == []
    assert TrainConfig(warmup_ratio=0.999).validate(max_lora_rank=16) == []


def test_the_openapi_schema_shows_the_fields_from_the_same_definition() -> None:
    from service.training.schemas import AdapterCreate

    hyper = AdapterCreate.model_json_schema()["properties"]["hyperparameters"]
    assert hyper["type"] == "object" and hyper["additionalProperties"] is False
    props = hyper["properties"]
    assert list(props) == list(asdict(TrainConfig()))
    for name, default in asdict(TrainConfig()).items():
        assert props[name]["default"] == default, name
        assert props[name]["description"], name  # the field's docstring
    assert props["rank"]["type"] == "integer" and props["rank"]["minimum"] == 1
    assert "maximum" not in props["rank"]  # the server's --max-lora-rank, checked by validate
    assert props["alpha"]["exclusiveMinimum"] == 0 and props["alpha"]["maximum"] == 4096
    assert props["dropout"]["minimum"] == 0 and props["dropout"]["exclusiveMaximum"] == 1
    assert props["seed"]["maximum"] == 2**63 - 1
    assert props["lr_schedule"]["enum"] == ["cosine", "constant"]
    assert props["target_modules"]["items"]["enum"] == list(DEFAULT_TARGET_MODULES)
    assert props["target_modules"]["minItems"] == 1
    assert {"type": "integer", "minimum": 1, "maximum": 10_000_000} in props["max_steps"]["anyOf"]
    assert "$defs" not in TrainConfig.json_schema()  # nothing the field's schema would lose


def test_from_dict_round_trips_and_refuses_unknown_keys() -> None:
    config = TrainConfig(rank=8, max_steps=30)
    assert TrainConfig.from_dict(asdict(config)) == config
    with pytest.raises(ValueError, match="modules_to_save"):
        TrainConfig.from_dict({"modules_to_save": ["lm_head"]})


def test_schedule_warms_up_then_decays_to_a_tenth() -> None:
    multiplier = lr_multiplier("cosine", 0.1, 100)
    assert multiplier(0) == pytest.approx(0.1)
    assert multiplier(9) == pytest.approx(1.0)
    assert multiplier(100) == pytest.approx(0.1)
    values = [multiplier(s) for s in range(10, 101)]
    assert values == sorted(values, reverse=True)
    assert lr_multiplier("constant", 0.0, 10)(5) == 1.0


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"eval_every": -1}, "eval_every"),
        ({"early_stopping": "yes"}, "early_stopping"),
        ({"patience": 0}, "patience"),
    ],
)
def test_stopping_settings_are_checked(changes: dict, field: str) -> None:
    problems = TrainConfig(**changes).validate(max_lora_rank=16)
    assert len(problems) == 1 and problems[0].startswith(field), problems


def test_automatic_evaluation_is_ten_a_run_and_at_least_one_an_epoch() -> None:
    assert auto_eval_every(total_steps=40, steps_per_epoch=20) == 4
    assert auto_eval_every(total_steps=400, steps_per_epoch=20) == 20
    assert auto_eval_every(total_steps=6, steps_per_epoch=3) == 1
    assert auto_eval_every(total_steps=1, steps_per_epoch=1) == 1


def _history(knowledge=(), held_out=()) -> History:
    return History(
        knowledge=[(i, v) for i, v in enumerate(knowledge)],
        held_out=[(i, v) for i, v in enumerate(held_out)],
    )


def test_plateau_of_the_knowledge_check_stops_training() -> None:
    assert not plateaued(_history(knowledge=[0.3, 0.95, 0.95]), patience=2)  # too few evaluations
    assert not plateaued(_history(knowledge=[0.3, 0.9, 0.9, 0.95]), patience=2)
    assert plateaued(_history(knowledge=[0.3, 0.95, 0.95, 0.925]), patience=2)
    # At 100% nothing is left to improve: it stops at once.
    assert plateaued(_history(knowledge=[0.3, 1.0]), patience=2)
    assert not plateaued(_history(knowledge=[0.3, 0.975]), patience=2)


def test_below_the_target_a_flat_check_waits_for_the_held_out_loss() -> None:
    # Learning that has not shown in the check yet: the held-out loss still falls.
    early = _history(knowledge=[0.25, 0.25, 0.25, 0.25], held_out=[3.0, 2.8, 2.6, 2.4])
    assert not plateaued(early, patience=2)
    stuck = _history(knowledge=[0.25, 0.5, 0.5, 0.5], held_out=[3.0, 2.5, 2.6, 2.7])
    assert plateaued(stuck, patience=2)
    # With no held-out split, the check alone decides.
    assert plateaued(_history(knowledge=[0.25, 0.5, 0.5, 0.5]), patience=2)


def test_without_probes_the_held_out_loss_decides() -> None:
    assert not plateaued(_history(held_out=[3.0, 2.5, 2.4, 2.3]), patience=2)
    assert plateaued(_history(held_out=[3.0, 2.5, 2.6, 2.7]), patience=2)
    # Above the target the knowledge check decides, whatever the held-out loss does.
    rising = _history(knowledge=[0.2, 0.5, 0.7, 0.9], held_out=[3.0, 2.5, 2.6, 2.7])
    assert not plateaued(rising, patience=2)
    assert not plateaued(History(), patience=1)


@pytest.mark.parametrize("schedule", ["cosine", "constant"])
@pytest.mark.parametrize(("warmup_ratio", "total_steps"), [(0.0, 1), (0.05, 7), (0.1, 100)])
def test_schedule_is_transformers_but_warmup_starts_a_step_later(
    schedule: str, warmup_ratio: float, total_steps: int
) -> None:
    """After warmup the curve is transformers' (cosine to a tenth, or constant); during warmup
    transformers' starts at 0, a step behind, so the first step would not learn: why the
    recipe keeps its own."""
    import torch
    from transformers.optimization import (
        get_constant_schedule_with_warmup,
        get_cosine_with_min_lr_schedule_with_warmup,
    )

    warmup = max(1, round(warmup_ratio * total_steps))
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    if schedule == "cosine":
        theirs = get_cosine_with_min_lr_schedule_with_warmup(
            optimizer, warmup, total_steps, min_lr_rate=0.1
        ).lr_lambdas[0]
    else:
        theirs = get_constant_schedule_with_warmup(optimizer, warmup).lr_lambdas[0]
    ours = lr_multiplier(schedule, warmup_ratio, total_steps)
    assert theirs(0) == 0.0 < ours(0)
    for step in range(warmup):
        assert ours(step) == pytest.approx(theirs(step + 1) if step + 1 < warmup else 1.0)
    for step in range(warmup, total_steps + 1):
        assert ours(step) == pytest.approx(theirs(step))
