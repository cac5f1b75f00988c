"""TrainConfig.validate: the problems the API turns into a 422 before any job starts."""

from __future__ import annotations

from dataclasses import asdict

import pytest

from adapters.train import DEFAULT_TARGET_MODULES, TrainConfig, _lr_lambda


def test_defaults_are_valid_and_follow_the_paper() -> None:
    config = TrainConfig()
    assert config.validate(max_lora_rank=16) == []
    assert (config.rank, config.alpha, config.learning_rate) == (16, 32.0, 3e-4)
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


def test_from_dict_round_trips_and_refuses_unknown_keys() -> None:
    config = TrainConfig(rank=8, max_steps=30)
    assert TrainConfig.from_dict(asdict(config)) == config
    with pytest.raises(ValueError, match="modules_to_save"):
        TrainConfig.from_dict({"modules_to_save": ["lm_head"]})


def test_schedule_warms_up_then_decays_to_a_tenth() -> None:
    multiplier = _lr_lambda("cosine", 0.1, 100)
    assert multiplier(0) == pytest.approx(0.1)
    assert multiplier(9) == pytest.approx(1.0)
    assert multiplier(100) == pytest.approx(0.1)
    values = [multiplier(s) for s in range(10, 101)]
    assert values == sorted(values, reverse=True)
    assert _lr_lambda("constant", 0.0, 10)(5) == 1.0
