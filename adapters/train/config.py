"""`TrainConfig`: the hyperparameters of one LoRA run, their defaults and their checks."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any, Literal

# Every linear layer of a Llama-style block; vLLM serves LoRA on exactly these.
DEFAULT_TARGET_MODULES: tuple[str, ...] = (
    "q_proj",
    "k_proj",
    "v_proj",
    "o_proj",
    "gate_proj",
    "up_proj",
    "down_proj",
)
Precision = Literal["auto", "bf16-autocast", "fp16-autocast", "fp32"]
PRECISIONS: tuple[str, ...] = ("auto", "bf16-autocast", "fp16-autocast", "fp32")
LR_SCHEDULES: tuple[str, ...] = ("cosine", "constant")


@dataclass
class TrainConfig:
    """Hyperparameters of one LoRA fine-tuning run; saved as train_config.json next to it."""

    rank: int = 16
    """LoRA rank r (width of the low-rank update); at most the server's --max-lora-rank."""
    alpha: float = 32.0
    """LoRA alpha; the update is scaled by alpha / rank."""
    dropout: float = 0.0
    """Dropout on the LoRA branch's input during training. Off by default: peft then copies every
    adapted layer's input, which cost 21% of a CPU training step here (132 -> 104 tokens/s)."""
    target_modules: list[str] = field(default_factory=lambda: list(DEFAULT_TARGET_MODULES))
    """Linear layers that get a LoRA update; default: all attention and MLP projections."""
    learning_rate: float = 1e-3
    """Peak AdamW learning rate. Lampinen et al. (2025) used 3e-4 on larger models; with the
    embedded 135M model and LoRA r=16, 3e-4 had the knowledge check at 60% after 3 epochs where
    1e-3 had 78%, 90% after 6 and 97.5% after 10 (69 real sentences plus their augmentation)."""
    lr_schedule: Literal["cosine", "constant"] = "cosine"
    """After linear warmup: cosine decay to 10% of the peak, or constant."""
    warmup_ratio: float = 0.05
    """Fraction of all steps spent warming the learning rate up linearly (at least 1 step)."""
    weight_decay: float = 0.0
    """AdamW weight decay on the LoRA weights."""
    max_grad_norm: float = 1.0
    """Gradients are clipped to this global norm (0 disables clipping)."""
    epochs: int = 20
    """At most this many passes over the training rows (early stopping may end sooner)."""
    max_steps: int | None = None
    """At most this many optimizer steps; training ends at whichever of epochs and max_steps
    comes first, or sooner when early stopping ends it."""
    batch_size: int = 2
    """Rows (packed sequences) per micro-batch, per process; a 128-token row holds about ten
    one-sentence examples, so the default step sees about twenty (the paper used 8-16)."""
    grad_accum: int = 1
    """Micro-batches accumulated into one optimizer step."""
    max_seq_length: int = 128
    """Tokens per row; longer examples lose context from the left, then target from the right."""
    packing: bool = True
    """Pack several short examples into each row (isolated by position ids), else one per row."""
    seed: int = 0
    """Seeds LoRA initialisation, dropout and the row order."""
    precision: Precision = "auto"
    """auto: bf16 autocast where the hardware has native bf16, fp16 on older GPUs, else fp32."""
    checkpoint_every: int = 50
    """Optimizer steps between checkpoints (0: none but the one written when stopped)."""
    eval_every: int | None = None
    """Optimizer steps between evaluations (held-out loss and the knowledge check); None: about
    ten times a run and at least once an epoch; 0: only at the start and the end."""
    early_stopping: bool = True
    """Stop once the knowledge check reaches 100%, or it (with no probes: the held-out loss) has
    not improved for `patience` evaluations; below the check's 90% target the held-out loss must
    have stalled too."""
    patience: int = 3
    """Evaluations without improvement before early stopping ends the run."""

    def validate(self, max_lora_rank: int) -> list[str]:
        """Human-readable problems with this config (empty when it can train and be served).

        Checks types and ranges only; it loads nothing, so the API can answer 422 before any
        job starts.
        """
        check = _Checks(self)
        check.integer("rank", 1, max_lora_rank)
        if _is_int(self.rank) and self.rank > max_lora_rank:
            check.problems[-1] += f" (the server's maximum LoRA rank is {max_lora_rank})"
        check.number("alpha", 0.0, 4096.0, low_open=True)
        check.number("dropout", 0.0, 1.0, high_open=True)
        check.problems += _target_module_problems(self.target_modules)
        check.number("learning_rate", 0.0, 1.0, low_open=True)
        check.one_of("lr_schedule", LR_SCHEDULES)
        check.number("warmup_ratio", 0.0, 1.0, high_open=True)
        check.number("weight_decay", 0.0, 1.0)
        check.number("max_grad_norm", 0.0, 1e6)
        check.integer("epochs", 1, 10_000)
        if self.max_steps is not None:
            check.integer("max_steps", 1, 10_000_000)
        check.integer("batch_size", 1, 4096)
        check.integer("grad_accum", 1, 4096)
        check.integer("max_seq_length", 16, 1_048_576)
        check.boolean("packing")
        check.integer("seed", 0, 2**63 - 1)
        check.one_of("precision", PRECISIONS)
        check.integer("checkpoint_every", 0)
        if self.eval_every is not None:
            check.integer("eval_every", 0)
        check.boolean("early_stopping")
        check.integer("patience", 1, 1000)
        return check.problems

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        """Build a config from a mapping (e.g. saved JSON); unknown keys raise ValueError."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown training parameters: {unknown}")
        return cls(**values)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_num(value: Any) -> bool:
    return _is_int(value) or isinstance(value, float)


class _Checks:
    """Collects one message per field of `config` that is of the wrong type or out of range."""

    def __init__(self, config: TrainConfig) -> None:
        self.config = config
        self.problems: list[str] = []

    def integer(self, name: str, low: int, high: int | None = None) -> None:
        value = getattr(self.config, name)
        if not _is_int(value):
            self.problems.append(f"{name} must be an integer, got {value!r}")
        elif value < low or (high is not None and value > high):
            bound = f"between {low} and {high}" if high is not None else f"at least {low}"
            self.problems.append(f"{name} must be {bound}, got {value}")

    def number(
        self, name: str, low: float, high: float, *, low_open: bool = False, high_open: bool = False
    ) -> None:
        value = getattr(self.config, name)
        if not _is_num(value) or math.isnan(value):
            self.problems.append(f"{name} must be a number, got {value!r}")
            return
        too_low = value <= low if low_open else value < low
        too_high = value >= high if high_open else value > high
        if too_low or too_high:
            self.problems.append(
                f"{name} must be in {'(' if low_open else '['}{low}, {high}"
                f"{')' if high_open else ']'}, got {value}"
            )

    def one_of(self, name: str, choices: tuple[str, ...]) -> None:
        value = getattr(self.config, name)
        if value not in choices:
            self.problems.append(f"{name} must be one of {list(choices)}, got {value!r}")

    def boolean(self, name: str) -> None:
        value = getattr(self.config, name)
        if not isinstance(value, bool):
            self.problems.append(f"{name} must be true or false, got {value!r}")


def _target_module_problems(modules: Any) -> list[str]:
    if not isinstance(modules, list) or not modules or not all(isinstance(m, str) for m in modules):
        return [
            "target_modules must be a non-empty list of module names, "
            f"e.g. {list(DEFAULT_TARGET_MODULES)}"
        ]
    problems = []
    unknown = sorted(set(modules) - set(DEFAULT_TARGET_MODULES))
    if unknown:
        problems.append(
            f"target_modules {unknown} are not supported; choose from "
            f"{list(DEFAULT_TARGET_MODULES)}"
        )
    if len(set(modules)) != len(modules):
        problems.append("target_modules lists a module twice")
    return problems
