"""`TrainConfig`: the hyperparameters of one LoRA run, their defaults and their checks.

Each field's type and bounds are declared once, in its annotation (`Annotated[..., Field(...)]`,
`Literal` for choices); `validate` runs pydantic over them, and the API's OpenAPI document shows
the same definition (`TrainConfig.json_schema()`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from functools import cache
from typing import Annotated, Any, Literal, get_args

from pydantic import AfterValidator, ConfigDict, Field, TypeAdapter, ValidationError
from pydantic_core import PydanticCustomError

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
PRECISIONS: tuple[str, ...] = get_args(Precision)
Compile = Literal["auto", "on", "off"]
LrSchedule = Literal["cosine", "constant"]
LR_SCHEDULES: tuple[str, ...] = get_args(LrSchedule)

_MODULES_SHAPE = (
    f"target_modules must be a non-empty list of module names, e.g. {list(DEFAULT_TARGET_MODULES)}"
)


def _check_target_modules(modules: list[str]) -> list[str]:
    """Known module names, each once (pydantic has checked it is a non-empty list of str)."""
    problems = []
    unknown = sorted(set(modules) - set(DEFAULT_TARGET_MODULES))
    if unknown:
        problems.append(
            f"target_modules {unknown} are not supported; choose from "
            f"{list(DEFAULT_TARGET_MODULES)}"
        )
    if len(set(modules)) != len(modules):
        problems.append("target_modules lists a module twice")
    if problems:
        raise PydanticCustomError("target_modules", "{problems}", {"problems": problems})
    return modules


TargetModules = Annotated[
    list[str],
    Field(
        min_length=1,
        json_schema_extra={
            "items": {"type": "string", "enum": list(DEFAULT_TARGET_MODULES)},
            "uniqueItems": True,
            "default": list(DEFAULT_TARGET_MODULES),  # a default_factory is not shown otherwise
        },
    ),
    AfterValidator(_check_target_modules),
]


@dataclass
class TrainConfig:
    """Hyperparameters of one LoRA fine-tuning run; saved as train_config.json next to it."""

    # Strict: a bool is no int, a string no number (an int is a float); NaN and inf are refused.
    __pydantic_config__ = ConfigDict(
        strict=True,
        allow_inf_nan=False,
        revalidate_instances="always",
        use_attribute_docstrings=True,
    )

    rank: Annotated[int, Field(ge=1)] = 16
    """LoRA rank r (width of the low-rank update); at most the server's --max-lora-rank."""
    alpha: Annotated[float, Field(gt=0, le=4096)] = 32.0
    """LoRA alpha; the update is scaled by alpha / rank."""
    dropout: Annotated[float, Field(ge=0, lt=1)] = 0.0
    """Dropout on the LoRA branch's input during training. Off by default: peft then copies every
    adapted layer's input, which cost 21% of a CPU training step here (132 -> 104 tokens/s)."""
    target_modules: TargetModules = field(default_factory=lambda: list(DEFAULT_TARGET_MODULES))
    """Linear layers that get a LoRA update; default: all attention and MLP projections."""
    learning_rate: Annotated[float, Field(gt=0, le=1)] = 1e-3
    """Peak AdamW learning rate. Lampinen et al. (2025) used 3e-4 on larger models; with the
    embedded 135M model and LoRA r=16, 3e-4 had the knowledge check at 60% after 3 epochs where
    1e-3 had 78%, 90% after 6 and 97.5% after 10 (69 real sentences plus their augmentation)."""
    lr_schedule: LrSchedule = "cosine"
    """After linear warmup: cosine decay to 10% of the peak, or constant."""
    warmup_ratio: Annotated[float, Field(ge=0, lt=1)] = 0.05
    """Fraction of all steps spent warming the learning rate up linearly (at least 1 step)."""
    weight_decay: Annotated[float, Field(ge=0, le=1)] = 0.0
    """AdamW weight decay on the LoRA weights."""
    max_grad_norm: Annotated[float, Field(ge=0, le=1e6)] = 1.0
    """Gradients are clipped to this global norm (0 disables clipping)."""
    epochs: Annotated[int, Field(ge=1, le=10_000)] = 20
    """At most this many passes over the training rows (early stopping may end sooner)."""
    max_steps: Annotated[int, Field(ge=1, le=10_000_000)] | None = None
    """At most this many optimizer steps; training ends at whichever of epochs and max_steps
    comes first, or sooner when early stopping ends it."""
    batch_size: Annotated[int, Field(ge=1, le=4096)] = 2
    """Rows (packed sequences) per micro-batch, per process; a 128-token row holds about ten
    one-sentence examples, so the default step sees about twenty (the paper used 8-16)."""
    grad_accum: Annotated[int, Field(ge=1, le=4096)] = 1
    """Micro-batches accumulated into one optimizer step."""
    max_seq_length: Annotated[int, Field(ge=16, le=1_048_576)] = 128
    """Tokens per row; longer examples lose context from the left, then target from the right."""
    packing: bool = True
    """Pack several short examples into each row (isolated by position ids), else one per row."""
    seed: Annotated[int, Field(ge=0, le=2**63 - 1)] = 0
    """Seeds LoRA initialisation, dropout and the row order."""
    precision: Precision = "auto"
    """auto: bf16 autocast where the hardware has native bf16, fp16 on older GPUs, else fp32."""
    compile: Compile = "auto"
    """torch.compile the decoder layers for training: auto compiles once the first steps' timing
    shows that the rest of the run saves at least twice the compile time (on a 2-core CPU about a
    minute the first time for a shape, 2-10 s once cached); on: from the first step; off: never."""
    checkpoint_every: Annotated[int, Field(ge=0)] = 50
    """Optimizer steps between checkpoints (0: none but the one written when stopped)."""
    eval_every: Annotated[int, Field(ge=0)] | None = None
    """Optimizer steps between evaluations (held-out loss and the knowledge check); None: about
    ten times a run and at least once an epoch; 0: only at the start and the end."""
    early_stopping: bool = True
    """Stop once the knowledge check reaches 100%, or it (with no probes: the held-out loss) has
    not improved for `patience` evaluations; below the check's 90% target the held-out loss must
    have stalled too."""
    patience: Annotated[int, Field(ge=1, le=1000)] = 3
    """Evaluations without improvement before early stopping ends the run."""

    def validate(self, max_lora_rank: int) -> list[str]:
        """Human-readable problems with this config (empty when it can train and be served).

        Checks types and ranges only; it loads nothing, so the API can answer 422 before any
        job starts.
        """
        try:
            _adapter().validate_python(self)
            problems = []
        except ValidationError as exc:
            problems = _problems(exc)
        # The one bound that is the server's, not the recipe's.
        rank = self.rank
        if isinstance(rank, int) and not isinstance(rank, bool) and rank > max_lora_rank:
            problems.append(
                f"rank must be between 1 and {max_lora_rank}, got {rank} "
                f"(the server's maximum LoRA rank is {max_lora_rank})"
            )
        return problems

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        """Build a config from a mapping (e.g. saved JSON); unknown keys raise ValueError."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown training parameters: {unknown}")
        return cls(**values)

    @classmethod
    def json_schema(cls) -> dict[str, Any]:
        """The JSON schema of the fields: types, bounds, defaults and descriptions."""
        return _adapter().json_schema()


@cache
def _adapter() -> TypeAdapter[TrainConfig]:
    return TypeAdapter(TrainConfig)


def _problems(exc: ValidationError) -> list[str]:
    """One message per bad field, each starting with the field's name."""
    problems: list[str] = []
    for err in exc.errors(include_url=False):
        name = str(err["loc"][0])
        if err["type"] == "target_modules":
            messages = err["ctx"]["problems"]
        elif name == "target_modules":  # not a list, an item not a string, or empty
            messages = [_MODULES_SHAPE]
        else:
            messages = [f"{name} {_readable(err['msg'])}, got {err['input']!r}"]
        problems += [m for m in messages if m not in problems]
    return problems


def _readable(msg: str) -> str:
    """Pydantic's "Input should be ..." as "must be ..."."""
    if msg.startswith("Input should"):
        return "must" + msg.removeprefix("Input should")
    return msg[:1].lower() + msg[1:]
