"""What one bench run runs: the table's columns, the size presets (datasets, default columns,
training hyperparameters, request parameters) and BenchOptions, one run's choices."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from service.benchmark.datasets import DATASET_NAMES

# Columns that are adapters trained on an augmentation set (the --strategies choices).
AUGMENTED: tuple[str, ...] = (
    "local",
    "global",
    "both",
    "decomposed",
    "linked",
    "default",
    "oracle",
)
# Table columns, in the paper's order, then the rule-made ones and the oracle.
COLUMNS: tuple[str, ...] = ("base", "icl", "ft", *AUGMENTED)
COLUMN_LABELS: dict[str, str] = {
    "base": "base",
    "icl": "ICL",
    "ft": "FT",
    "local": "aug local",
    "global": "aug global",
    "both": "aug both",
    "decomposed": "aug decomposed",
    "linked": "aug linked",
    "default": "aug default",
    "oracle": "oracle",
}
TEACHER_WRITTEN: tuple[str, ...] = ("local", "global", "both")
# Columns made by one augmentation job each, and the strategies it asks for (None: the
# service's default list, whatever it is at the time).
STRATEGY_JOBS: dict[str, list[str] | None] = {
    "local": ["local"],
    "global": ["global"],
    "decomposed": ["decomposed"],
    "linked": ["linked"],
    "default": None,
}
ADAPTER_COLUMNS: tuple[str, ...] = ("ft", *AUGMENTED)
# The columns every augmented column is tested against, pair by pair.
REFERENCES: tuple[str, ...] = ("ft", "icl")
OVERALL = "all"
POOLED_PREFIX = "all/"  # "all/reversal": one split over every dataset that has it


@dataclass(frozen=True)
class SizePreset:
    """What one size runs with: the datasets of the suite and the augmented columns it runs by
    default, the same training hyperparameters for every adapter, the augmentation request's
    parameters, and the evaluation request's extras."""

    datasets: tuple[str, ...]
    columns: tuple[str, ...]
    train: dict[str, Any]
    augmentation: dict[str, Any]
    evaluation: dict[str, Any]


# Why these numbers. Training is the bulk of a CPU run: one adapter after another, at about
# 110-130 tokens/s on an idle 2-core AVX-512 host (SmolLM2-135M, LoRA r16) and several times
# slower when the cores are shared; each knowledge check (40 probes, 4 choices) costs about half
# an epoch of FT's documents. "small" is ~2,000 document tokens (16 packed rows of 128: 4 steps of
# 4 rows an epoch; the default and oracle sets add 2-3 steps). At lr 1e-3 FT's check took 12
# epochs to reach 100% on a first version of this suite (15 with patience 3), too slow for three
# adapters in 30 minutes; lr 2e-3 (the tiny preset's, high for LoRA but stable on these short
# facts) gets there in about half the epochs. patience 3 is the recipe's default: the check
# moves by single probes, and with patience 2 a trial run stopped FT after 5 epochs at 80% (base
# 72%) with only 75% of its forward items right. max_steps=120 and epochs=30 are caps for a run
# that never settles, not targets. The preset sets its own learning rate so the bench does not
# move with the service's default.
# "tiny" only proves the pipeline (tests): 4 steps, no early stopping. "medium"/"large" are for
# GPU hosts and follow the paper's recipe (batch 8-16, lr 3e-4) with generous caps.
PRESETS: dict[str, SizePreset] = {
    "tiny": SizePreset(
        datasets=DATASET_NAMES,
        columns=AUGMENTED,
        train={
            "max_steps": 4,
            "epochs": 100,  # max_steps ends these runs
            "early_stopping": False,
            "eval_every": 0,
            "batch_size": 2,
            "max_seq_length": 64,
            "learning_rate": 2e-3,
            "rank": 8,
            "alpha": 16,
            "checkpoint_every": 0,
        },
        augmentation={
            "outputs_per_unit": 1,
            "temperature": 0.7,
            "max_tokens": 48,
            "global_max_tokens": 96,
        },
        evaluation={"measure_latency": False, "concurrency": 8},
    ),
    "small": SizePreset(
        datasets=("simple_reversals", "syllogisms"),
        columns=("default", "oracle"),
        train={
            "max_steps": 120,
            "epochs": 30,
            "early_stopping": True,
            "patience": 3,
            "eval_every": None,  # about ten checks a run, at least one an epoch
            "batch_size": 4,
            "max_seq_length": 128,
            "learning_rate": 2e-3,
            "rank": 16,
            "alpha": 32,
            "checkpoint_every": 50,
        },
        augmentation={"outputs_per_unit": 2, "temperature": 0.7, "max_tokens": 96},
        evaluation={"measure_latency": False, "concurrency": 8},
    ),
    "medium": SizePreset(
        datasets=DATASET_NAMES,
        columns=AUGMENTED,
        train={
            "max_steps": 600,
            "epochs": 50,
            "early_stopping": True,
            "patience": 3,
            "eval_every": None,
            "batch_size": 8,
            "max_seq_length": 256,
            "learning_rate": 3e-4,
            "rank": 16,
            "alpha": 32,
            "checkpoint_every": 100,
        },
        augmentation={"outputs_per_unit": 3, "temperature": 0.7},
        evaluation={"measure_latency": True, "latency_samples": 3, "concurrency": 16},
    ),
    "large": SizePreset(
        datasets=DATASET_NAMES,
        columns=AUGMENTED,
        train={
            "max_steps": 2000,
            "epochs": 50,
            "early_stopping": True,
            "patience": 3,
            "eval_every": None,
            "batch_size": 16,
            "max_seq_length": 256,
            "learning_rate": 3e-4,
            "rank": 16,
            "alpha": 32,
            "checkpoint_every": 200,
        },
        augmentation={"outputs_per_unit": 4, "temperature": 0.7},
        evaluation={"measure_latency": True, "latency_samples": 3, "concurrency": 32},
    ),
}


@dataclass
class BenchOptions:
    """One bench run. `columns` are the augmented columns to run (base, ICL and FT always run;
    None: the size's own list); `seeds` how many times every adapter is trained (training seeds
    0..seeds-1 on the same data; `seed` is the generated datasets' seed); `train` overrides the
    size's training hyperparameters, `augmentation` and `evaluation` its request parameters."""

    size: str = "small"
    seed: int = 0
    seeds: int = 1
    out_dir: Path = Path("bench-results")
    columns: Sequence[str] | None = None
    train: dict[str, Any] = field(default_factory=dict)
    augmentation: dict[str, Any] = field(default_factory=dict)
    evaluation: dict[str, Any] = field(default_factory=dict)
    poll_s: float = 1.5
    timeout_s: float | None = None  # the whole run; None: no limit
    upload_batch: int = 16  # files per upload request

    def __post_init__(self) -> None:
        if self.size not in PRESETS:
            raise ValueError(f"unknown size {self.size!r}; one of {', '.join(PRESETS)}")
        if self.columns is None:
            self.columns = PRESETS[self.size].columns
        unknown = [c for c in self.columns if c not in AUGMENTED]
        if unknown:
            raise ValueError(f"unknown strategies {unknown}; choose from {', '.join(AUGMENTED)}")
        if not isinstance(self.seeds, int) or not 1 <= self.seeds <= 20:
            raise ValueError(f"seeds must be a whole number from 1 to 20, got {self.seeds!r}")
        if "seed" in self.train:
            raise ValueError("the training seed is set per run by `seeds`; leave it out of train")
        self.columns = tuple(c for c in AUGMENTED if c in self.columns)
        self.out_dir = Path(self.out_dir)

    @property
    def datasets(self) -> tuple[str, ...]:
        return PRESETS[self.size].datasets

    @property
    def train_config(self) -> dict[str, Any]:
        return {**PRESETS[self.size].train, **self.train}

    def train_config_for(self, seed: int) -> dict[str, Any]:
        """The training hyperparameters of the run with training seed `seed`."""
        return {**self.train_config, "seed": seed}

    @property
    def augmentation_params(self) -> dict[str, Any]:
        return {**PRESETS[self.size].augmentation, **self.augmentation}

    @property
    def evaluation_params(self) -> dict[str, Any]:
        return {**PRESETS[self.size].evaluation, **self.evaluation}

    @property
    def table_columns(self) -> tuple[str, ...]:
        return ("base", "icl", "ft", *self.columns)

    @property
    def training_seeds(self) -> tuple[int, ...]:
        return tuple(range(self.seeds))
