"""The one LoRA training recipe: config -> data -> peft LoRA on the base model -> fit -> save.

Reads top to bottom like litgpt's finetune/lora.py: `TrainConfig` (hyperparameters, saved next to
the adapter), `train()` (setup, data, model, fit loop, save), then the pieces it calls, in order.

Choices worth knowing:
- Data: examples from `adapters.training_data` are encoded with next-token labels already
  shifted, so loss falls only on each target (never on its context) and never across examples.
- Packing (default): examples are packed into rows of at most `max_seq_length` tokens by
  first-fit decreasing, never split. Each example's position ids restart at 0; with no attention
  mask, transformers turns those restarts into a block-diagonal causal mask, so an example
  attends only to its own tokens and packing changes nothing but speed. (EOS closes every
  example too, so a model that ignored position ids would still see a separator.) Rows are
  shuffled each epoch with the seed.
- Loss: summed token cross-entropy over a step's labelled tokens divided by their count, so
  every target token weighs the same whatever row or micro-batch it landed in.
- Precision: weights stay fp32; "auto" autocasts to bf16 where the hardware has native bf16
  (CUDA with bf16, or CPUs with AVX512-BF16/AMX), fp16 with a grad scaler on older GPUs, and
  stays fp32 elsewhere: on an AVX2-only CPU bf16 autocast ran ~30x slower than fp32.
- Checkpoints (adapter weights, optimizer, scheduler, RNG, step, data order, curves) are one
  file each, written to a temporary name and renamed, so a killed worker leaves either the old
  or the new checkpoint, never half of one. `train(..., resume=True)` continues from the newest.
- Several GPUs: the same `train()` runs data-parallel under torchrun (DistributedDataParallel;
  WORLD_SIZE > 1 is how torchrun says so), e.g. from the command line at the end of this file:
      torchrun --nproc-per-node 4 -m adapters.train --model-dir BASE \
          --data training_set.json --out OUT [--config hyperparameters.json]
  Each rank trains its share of every step's rows; rank 0 alone writes checkpoints and outputs
  and reports progress; `batch_size` is per rank, so the global batch grows with the GPU count.
  The output folder must be shared by the ranks (one machine, or a shared filesystem).
"""

from __future__ import annotations

import atexit
import json
import logging
import math
import os
import random
import resource
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from adapters.knowledge import (
    KNOWLEDGE_TARGET,
    PLAIN_HEAD_MODEL_TYPES,
    KnowledgeProbe,
    probe_accuracy,
)
from adapters.training_data import IGNORE_INDEX, TrainingSet, encode_example

log = logging.getLogger(__name__)

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
# Cosine decays to this fraction of the peak learning rate, not to zero.
MIN_LR_RATIO = 0.1
CHECKPOINT_FORMAT = 1
KEEP_CHECKPOINTS = 2
_NO_RANK_LIMIT = 1 << 16


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
        problems: list[str] = []

        def is_int(value: Any) -> bool:
            return isinstance(value, int) and not isinstance(value, bool)

        def is_num(value: Any) -> bool:
            return is_int(value) or isinstance(value, float)

        def need_int(name: str, low: int, high: int | None = None) -> None:
            value = getattr(self, name)
            if not is_int(value):
                problems.append(f"{name} must be an integer, got {value!r}")
            elif value < low or (high is not None and value > high):
                bound = f"between {low} and {high}" if high is not None else f"at least {low}"
                problems.append(f"{name} must be {bound}, got {value}")

        def need_num(
            name: str, low: float, high: float, *, low_open: bool = False, high_open: bool = False
        ) -> None:
            value = getattr(self, name)
            if not is_num(value) or math.isnan(value):
                problems.append(f"{name} must be a number, got {value!r}")
                return
            too_low = value <= low if low_open else value < low
            too_high = value >= high if high_open else value > high
            if too_low or too_high:
                problems.append(
                    f"{name} must be in {'(' if low_open else '['}{low}, {high}"
                    f"{')' if high_open else ']'}, got {value}"
                )

        need_int("rank", 1, max_lora_rank)
        if is_int(self.rank) and self.rank > max_lora_rank:
            problems[-1] += f" (the server's maximum LoRA rank is {max_lora_rank})"
        need_num("alpha", 0.0, 4096.0, low_open=True)
        need_num("dropout", 0.0, 1.0, high_open=True)
        modules = self.target_modules
        if (
            not isinstance(modules, list)
            or not modules
            or not all(isinstance(m, str) for m in modules)
        ):
            problems.append(
                "target_modules must be a non-empty list of module names, "
                f"e.g. {list(DEFAULT_TARGET_MODULES)}"
            )
        else:
            unknown = sorted(set(modules) - set(DEFAULT_TARGET_MODULES))
            if unknown:
                problems.append(
                    f"target_modules {unknown} are not supported; choose from "
                    f"{list(DEFAULT_TARGET_MODULES)}"
                )
            if len(set(modules)) != len(modules):
                problems.append("target_modules lists a module twice")
        need_num("learning_rate", 0.0, 1.0, low_open=True)
        if self.lr_schedule not in LR_SCHEDULES:
            problems.append(
                f"lr_schedule must be one of {list(LR_SCHEDULES)}, got {self.lr_schedule!r}"
            )
        need_num("warmup_ratio", 0.0, 1.0, high_open=True)
        need_num("weight_decay", 0.0, 1.0)
        need_num("max_grad_norm", 0.0, 1e6)
        need_int("epochs", 1, 10_000)
        if self.max_steps is not None:
            need_int("max_steps", 1, 10_000_000)
        need_int("batch_size", 1, 4096)
        need_int("grad_accum", 1, 4096)
        need_int("max_seq_length", 16, 1_048_576)
        if not isinstance(self.packing, bool):
            problems.append(f"packing must be true or false, got {self.packing!r}")
        need_int("seed", 0, 2**63 - 1)
        if self.precision not in PRECISIONS:
            problems.append(f"precision must be one of {list(PRECISIONS)}, got {self.precision!r}")
        need_int("checkpoint_every", 0)
        if self.eval_every is not None:
            need_int("eval_every", 0)
        if not isinstance(self.early_stopping, bool):
            problems.append(f"early_stopping must be true or false, got {self.early_stopping!r}")
        need_int("patience", 1, 1000)
        return problems

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        """Build a config from a mapping (e.g. saved JSON); unknown keys raise ValueError."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown training parameters: {unknown}")
        return cls(**values)


@dataclass(frozen=True)
class TrainProgress:
    """What `train()` reports after every optimizer step (on rank 0)."""

    step: int
    total_steps: int
    epoch: int
    loss: float
    learning_rate: float
    tokens_trained: int
    tokens_per_second: float
    eta_seconds: float
    held_out_loss: float | None
    knowledge: float | None = None
    """The latest knowledge check: share of probes the model answers right."""


@dataclass(frozen=True)
class TrainResult:
    """Where the trained adapter is and what training measured (the contents of metrics.json)."""

    adapter_dir: Path
    config: TrainConfig
    metrics: dict[str, Any]


class TrainingCancelled(Exception):
    """`should_stop` asked training to stop; a checkpoint of `step` was written first."""

    def __init__(self, step: int, checkpoint: Path | None) -> None:
        super().__init__(f"training stopped at step {step}")
        self.step = step
        self.checkpoint = checkpoint


def train(
    config: TrainConfig,
    model_dir: Path | str,
    training_set: TrainingSet,
    out_dir: Path | str,
    *,
    progress: Callable[[TrainProgress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    resume: bool = True,
    probes: Sequence[KnowledgeProbe] = (),
) -> TrainResult:
    """Train a LoRA adapter on `training_set` for the base model in `model_dir`.

    Writes, under `out_dir`: `adapter/` (a PEFT adapter vLLM can load: no modules_to_save, no
    DoRA), `train_config.json` (the resolved config), `metrics.json`, `loss_curve.png`, and
    `checkpoints/` while training (removed once the adapter is saved). With `resume`, a
    checkpoint already in `out_dir/checkpoints` (made from the same config and data set, else
    ValueError) is continued from its step. When `should_stop()` turns true between steps, a
    checkpoint is written and TrainingCancelled is raised. `progress` is called after every
    optimizer step (on rank 0 only). `probes` (the knowledge check, `adapters.knowledge`) are
    scored at every evaluation and decide early stopping; without them the held-out loss does.
    """
    # The serving limit on rank is the API's check (it knows the server); here only sanity.
    problems = config.validate(max_lora_rank=_NO_RANK_LIMIT)
    if problems:
        raise ValueError("invalid training config: " + "; ".join(problems))
    if not training_set.examples:
        raise ValueError("the training set has no examples")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    dist = _Distributed.setup()
    device = dist.device
    precision = resolve_precision(config.precision, device)
    resolved = TrainConfig(**{**asdict(config), "precision": precision})
    # LoRA init and dropout draw from torch's RNG; row order uses its own seeded generator.
    torch.manual_seed(config.seed)
    random.seed(config.seed)

    # ---- data -------------------------------------------------------------------------------
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
    train_rows = pack_examples(
        tokenizer, training_set.examples, config.max_seq_length, packing=config.packing
    )
    val_rows = pack_examples(
        tokenizer, training_set.validation, config.max_seq_length, packing=config.packing
    )
    rows_per_step = config.batch_size * config.grad_accum * dist.world_size
    steps_per_epoch = math.ceil(len(train_rows) / rows_per_step)
    total_steps = config.epochs * steps_per_epoch
    if config.max_steps:
        total_steps = min(total_steps, config.max_steps)
    eval_every = (
        config.eval_every
        if config.eval_every is not None
        else auto_eval_every(total_steps, steps_per_epoch)
    )

    # ---- model: fp32 base weights, LoRA on the target linears ---------------------------------
    from peft import LoraConfig, get_peft_model

    base = AutoModelForCausalLM.from_pretrained(
        str(model_dir), dtype=torch.float32, local_files_only=True
    )
    lora = LoraConfig(
        task_type="CAUSAL_LM",
        r=config.rank,
        lora_alpha=config.alpha,
        lora_dropout=config.dropout,
        target_modules=list(config.target_modules),
        bias="none",
        use_dora=False,
    )
    model = get_peft_model(base, lora).to(device)
    loss_module: nn.Module = _CausalLMLoss(model)
    if dist.world_size > 1:
        loss_module = nn.parallel.DistributedDataParallel(
            loss_module, device_ids=[device.index] if device.type == "cuda" else None
        )
    trainable = [p for p in model.parameters() if p.requires_grad]
    # The fused kernel updates all LoRA tensors in one pass (CPU and CUDA alike).
    optimizer = torch.optim.AdamW(
        trainable, lr=config.learning_rate, weight_decay=config.weight_decay, fused=True
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, _lr_lambda(config.lr_schedule, config.warmup_ratio, total_steps)
    )
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16-autocast")

    # ---- resume -----------------------------------------------------------------------------
    ckpt_dir = out_dir / "checkpoints"
    history = _History()
    step = 0
    if resume and (ckpt := _load_latest_checkpoint(ckpt_dir)) is not None:
        _check_compatible(ckpt, resolved, training_set)
        from peft import set_peft_model_state_dict

        set_peft_model_state_dict(model, ckpt["adapter"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        scaler.load_state_dict(ckpt["scaler"])
        _set_rng_state(ckpt["rng"], dist, config.seed, ckpt["step"])
        history = _History(**ckpt["history"])
        step = ckpt["step"]
        log.info("resuming from %s at step %d of %d", ckpt["path"], step, total_steps)

    # ---- fit --------------------------------------------------------------------------------
    autocast = _autocast(precision, device)

    def measure(at: int) -> None:
        """Held-out loss and the knowledge check at step `at` (every rank computes both)."""
        started = time.perf_counter()
        if val_rows:
            history.held_out.append(
                (at, evaluate(loss_module, val_rows, config.batch_size, autocast, device, dist))
            )
        if probes:
            accuracy = probe_accuracy(
                model, probes, pad_id=_pad_id(loss_module), device=device, autocast=autocast
            )
            history.knowledge.append((at, accuracy))
        history.eval_seconds += time.perf_counter() - started

    if step == 0:
        measure(0)
    session_start = time.perf_counter()
    session_steps = 0
    while step < total_steps and history.stopped_early is None:
        epoch = step // steps_per_epoch
        order = epoch_order(len(train_rows), config.seed, epoch)
        offset = (step % steps_per_epoch) * rows_per_step
        step_rows = _cycle_take(order, offset, rows_per_step, exact=dist.world_size > 1)
        my_rows = [train_rows[i] for i in step_rows[dist.rank :: dist.world_size]]
        t0 = time.perf_counter()
        loss, tokens, targets = _train_step(
            loss_module, optimizer, scheduler, scaler, my_rows, config, autocast, device, dist
        )
        history.train_seconds += time.perf_counter() - t0
        step += 1
        session_steps += 1
        history.loss.append((step, loss))
        history.tokens += tokens
        history.target_tokens += targets
        history.padded_tokens += _padded_size(my_rows, config.batch_size) * dist.world_size
        # The last step is always evaluated here, so its progress report carries the final loss.
        periodic = eval_every and step % eval_every == 0
        if periodic or step == total_steps:
            measure(step)
            if periodic and config.early_stopping and plateaued(history, config.patience):
                history.stopped_early = step
        saved = None
        if config.checkpoint_every and step % config.checkpoint_every == 0 and step < total_steps:
            saved = _save_checkpoint(
                ckpt_dir,
                step,
                model,
                optimizer,
                scheduler,
                scaler,
                history,
                resolved,
                training_set,
                order,
                dist,
            )
        if dist.is_main and progress is not None:
            elapsed = time.perf_counter() - session_start
            progress(
                TrainProgress(
                    step=step,
                    total_steps=total_steps,
                    epoch=epoch,
                    loss=loss,
                    learning_rate=scheduler.get_last_lr()[0],
                    tokens_trained=history.tokens,
                    tokens_per_second=history.tokens / max(history.train_seconds, 1e-9),
                    eta_seconds=(total_steps - step) * elapsed / session_steps,
                    held_out_loss=history.held_out[-1][1] if history.held_out else None,
                    knowledge=history.knowledge[-1][1] if history.knowledge else None,
                )
            )
        if history.stopped_early:
            log.info(
                "early stopping at step %d of %d: the check stopped improving", step, total_steps
            )
            break
        # Every rank asks, and all stop if any was asked to, so none waits on the others.
        if step < total_steps and dist.any(should_stop is not None and should_stop()):
            saved = saved or _save_checkpoint(
                ckpt_dir,
                step,
                model,
                optimizer,
                scheduler,
                scaler,
                history,
                resolved,
                training_set,
                order,
                dist,
            )
            raise TrainingCancelled(step, saved)

    # ---- save -------------------------------------------------------------------------------
    # The end of the run is always measured (a run resumed at its last step has not been yet).
    last = (history.held_out or history.knowledge or [(-1, 0.0)])[-1][0]
    if (val_rows or probes) and last != step:
        measure(step)
    metrics = _metrics(history, resolved, training_set, train_rows, val_rows, dist, device)
    metrics["planned_steps"] = total_steps
    metrics["eval_every"] = eval_every
    adapter_dir = out_dir / "adapter"
    if dist.is_main:
        _save_adapter(model, adapter_dir)
        _write_json(out_dir / "train_config.json", asdict(resolved))
        _write_json(out_dir / "metrics.json", metrics)
        plot_loss_curve(history, out_dir / "loss_curve.png")
        # Optimizer state is twice the adapter's size; a finished run needs none of it.
        shutil.rmtree(ckpt_dir, ignore_errors=True)
    dist.barrier()
    return TrainResult(adapter_dir=adapter_dir, config=resolved, metrics=metrics)


# ============================================================================ setup helpers


def resolve_precision(precision: str, device: torch.device) -> str:
    """The precision to train with on `device`: "auto" becomes a concrete choice."""
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "bf16-autocast" if torch.cuda.is_bf16_supported() else "fp16-autocast"
    return "bf16-autocast" if cpu_has_native_bf16() else "fp32"


def cpu_has_native_bf16() -> bool:
    """Whether this CPU multiplies bf16 in hardware (AVX512-BF16 or AMX); without it, bf16
    matmuls are emulated and far slower than fp32."""
    cpu = getattr(torch, "cpu", None)
    return any(
        bool(getattr(cpu, probe, lambda: False)())
        for probe in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    )


def _autocast(precision: str, device: torch.device) -> Callable[[], AbstractContextManager]:
    dtype = {"bf16-autocast": torch.bfloat16, "fp16-autocast": torch.float16}.get(precision)
    if dtype is None:
        return nullcontext
    return lambda: torch.autocast(device.type, dtype=dtype)


def _lr_lambda(schedule: str, warmup_ratio: float, total_steps: int) -> Callable[[int], float]:
    """Multiplier of the peak learning rate at each step: linear warmup, then cosine or flat."""
    warmup = max(1, round(warmup_ratio * total_steps))

    def multiplier(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        if schedule == "constant":
            return 1.0
        progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
        return MIN_LR_RATIO + (1 - MIN_LR_RATIO) * 0.5 * (1 + math.cos(math.pi * progress))

    return multiplier


@dataclass
class _Distributed:
    """This process's place in a torchrun job; a single process is world_size 1, rank 0."""

    rank: int
    world_size: int
    device: torch.device

    @classmethod
    def setup(cls) -> _Distributed:
        # torchrun announces data parallelism through these variables (its documented contract).
        world_size = int(os.environ.get("WORLD_SIZE", "1"))
        if world_size <= 1:
            device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
            if device.type == "cpu" and "OMP_NUM_THREADS" not in os.environ:
                # One thread per usable core (torch's default can undercount on VMs), unless
                # the operator chose a number.
                torch.set_num_threads(len(os.sched_getaffinity(0)))
            return cls(rank=0, world_size=1, device=device)
        import torch.distributed as tdist

        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        if torch.cuda.is_available():
            torch.cuda.set_device(local_rank)
            device = torch.device("cuda", local_rank)
        else:
            device = torch.device("cpu")
        if not tdist.is_initialized():
            tdist.init_process_group("nccl" if device.type == "cuda" else "gloo")
            # The group outlives this call: a second train() in the same process (a resume)
            # reuses it, since re-initialising after destroying it can hang on the rendezvous.
            atexit.register(tdist.destroy_process_group)
        return cls(rank=tdist.get_rank(), world_size=world_size, device=device)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def sum(self, values: Sequence[float]) -> list[float]:
        """Element-wise sum over all ranks (identity for one process)."""
        if self.world_size == 1:
            return list(values)
        import torch.distributed as tdist

        tensor = torch.tensor(list(values), dtype=torch.float64, device=self.device)
        tdist.all_reduce(tensor)
        return tensor.tolist()

    def any(self, flag: bool) -> bool:
        """True on every rank when any rank's flag is true, so all ranks stop together."""
        return self.sum([float(flag)])[0] > 0

    def barrier(self) -> None:
        if self.world_size > 1:
            import torch.distributed as tdist

            tdist.barrier()


# ============================================================================ data helpers


@dataclass(frozen=True)
class Row:
    """One training sequence: tokens, shifted labels, and per-example position ids."""

    tokens: list[int]
    labels: list[int]
    positions: list[int]


def pack_examples(
    tokenizer: Any,
    examples: Sequence[tuple[str, str]],
    max_seq_length: int,
    *,
    packing: bool = True,
) -> list[Row]:
    """Encode examples and pack them into rows of at most `max_seq_length` tokens.

    First-fit decreasing (by length, ties by input order): deterministic, and within a few
    percent of perfect for examples much shorter than a row. An example is never split; position
    ids restart at 0 for each one, which keeps its attention inside itself. Without `packing`,
    every example is its own row.
    """
    encoded = [encode_example(tokenizer, c, t, max_length=max_seq_length) for c, t in examples]
    if not packing:
        return [Row(tokens, labels, list(range(len(tokens)))) for tokens, labels in encoded]
    order = sorted(range(len(encoded)), key=lambda i: (-len(encoded[i][0]), i))
    bins: list[list[int]] = []
    free: list[int] = []
    # bins_by_room[r]: bins with exactly r tokens of room, so a fit is found without scanning
    # every bin.
    bins_by_room: list[list[int]] = [[] for _ in range(max_seq_length + 1)]
    for i in order:
        size = len(encoded[i][0])
        room = next((r for r in range(size, max_seq_length + 1) if bins_by_room[r]), None)
        if room is None:
            b = len(bins)
            bins.append([])
            free.append(max_seq_length)
        else:
            b = bins_by_room[room].pop()
        bins[b].append(i)
        free[b] -= size
        bins_by_room[free[b]].append(b)
    rows = []
    for members in bins:
        tokens: list[int] = []
        labels: list[int] = []
        positions: list[int] = []
        for i in sorted(members):
            tokens += encoded[i][0]
            labels += encoded[i][1]
            positions += range(len(encoded[i][0]))
        rows.append(Row(tokens, labels, positions))
    return rows


def epoch_order(n_rows: int, seed: int, epoch: int) -> list[int]:
    """The row order of one epoch: a permutation fixed by (seed, epoch), so resume needs no
    generator state."""
    generator = torch.Generator().manual_seed(seed * 100_003 + epoch)
    return torch.randperm(n_rows, generator=generator).tolist()


def _cycle_take(order: list[int], offset: int, count: int, *, exact: bool) -> list[int]:
    """`count` rows from `order` starting at `offset`; with `exact`, a short final step wraps
    around to the start so every rank gets the same number of micro-batches."""
    taken = order[offset : offset + count]
    while exact and len(taken) < count:
        taken += order[: count - len(taken)]
    return taken


def _collate(rows: Sequence[Row], pad_id: int, device: torch.device) -> dict[str, torch.Tensor]:
    """Pad rows to the longest; padding gets its own position run and no labels."""
    width = max(len(r.tokens) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    labels = torch.full((len(rows), width), IGNORE_INDEX, dtype=torch.long)
    positions = torch.arange(width).repeat(len(rows), 1)
    for b, row in enumerate(rows):
        n = len(row.tokens)
        ids[b, :n] = torch.tensor(row.tokens)
        labels[b, :n] = torch.tensor(row.labels)
        positions[b, :n] = torch.tensor(row.positions)
        positions[b, n:] = torch.arange(width - n)
    return {
        k: v.to(device, non_blocking=True)
        for k, v in {"input_ids": ids, "labels": labels, "position_ids": positions}.items()
    }


def _micro_batches(rows: Sequence[Row], batch_size: int) -> Iterator[Sequence[Row]]:
    for start in range(0, len(rows), batch_size):
        yield rows[start : start + batch_size]


def _padded_size(rows: Sequence[Row], batch_size: int) -> int:
    """Token slots the micro-batches of `rows` occupy once padded (for packing efficiency)."""
    return sum(len(mb) * max(len(r.tokens) for r in mb) for mb in _micro_batches(rows, batch_size))


# ============================================================================ fit helpers


def auto_eval_every(total_steps: int, steps_per_epoch: int) -> int:
    """About ten evaluations a run, and at least one an epoch, so a short run shows progress
    and early stopping can act within an epoch of the plateau."""
    return max(1, min(steps_per_epoch, math.ceil(total_steps / 10)))


def plateaued(history: _History, patience: int) -> bool:
    """Whether training has stopped improving: the knowledge check's accuracy where there are
    probes, else the held-out loss, has not beaten its best for the last `patience`
    evaluations. A check at 100% has nothing left to improve (on the dev set the held-out loss
    rose over the 3 epochs after it). Below the check's target a flat accuracy may only mean
    that learning has not shown yet, so there the held-out loss must have stalled too."""

    def stalled(values: list[float]) -> bool:  # higher is better
        return len(values) > patience and max(values[-patience:]) <= max(values[:-patience])

    knowledge = [v for _, v in history.knowledge]
    losses = [-v for _, v in history.held_out]
    if knowledge and knowledge[-1] >= 1.0:
        return True
    if knowledge and max(knowledge) >= KNOWLEDGE_TARGET:
        return stalled(knowledge)
    if knowledge:
        return stalled(knowledge) and (not losses or stalled(losses))
    return stalled(losses)


class _CausalLMLoss(nn.Module):
    """Summed next-token cross-entropy over labelled positions, for one padded batch.

    The model runs without an attention mask and without a KV cache so that transformers
    derives the per-example block-diagonal mask from the restarting position ids. Where the
    architecture allows, the output head (a fifth of the model's work for SmolLM2's 49k-word
    vocabulary) runs only where a label is: not on context, example ends or padding.
    """

    def __init__(self, peft_model: nn.Module) -> None:
        super().__init__()
        self.peft_model = peft_model
        self.head_on_labels_only = peft_model.config.model_type in PLAIN_HEAD_MODEL_TYPES

    def forward(
        self, input_ids: torch.Tensor, position_ids: torch.Tensor, labels: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        keep = labels != IGNORE_INDEX
        if self.head_on_labels_only:
            causal_lm = self.peft_model.get_base_model()
            hidden = causal_lm.get_decoder()(
                input_ids=input_ids, position_ids=position_ids, use_cache=False
            ).last_hidden_state
            logits = causal_lm.get_output_embeddings()(hidden[keep])
        else:
            logits = self.peft_model(
                input_ids=input_ids, position_ids=position_ids, use_cache=False
            ).logits[keep]
        loss = F.cross_entropy(logits.float(), labels[keep], reduction="sum")
        return loss, keep.sum()


def _train_step(
    loss_module: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    scaler: torch.amp.GradScaler,
    rows: Sequence[Row],
    config: TrainConfig,
    autocast: Callable[[], AbstractContextManager],
    device: torch.device,
    dist: _Distributed,
) -> tuple[float, int, int]:
    """One optimizer step over this rank's rows; returns (mean token loss over all ranks,
    tokens seen, target tokens), the counts summed over ranks."""
    loss_module.train()
    pad_id = _pad_id(loss_module)
    targets = sum(sum(label != IGNORE_INDEX for label in r.labels) for r in rows)
    batches = list(_micro_batches(rows, config.batch_size))
    loss_sum = 0.0
    for i, batch in enumerate(batches):
        inputs = _collate(batch, pad_id, device)
        # DDP all-reduces gradients only on the last micro-batch of the step.
        sync = (
            nullcontext()
            if i == len(batches) - 1 or dist.world_size == 1
            else loss_module.no_sync()
        )
        with sync, autocast():
            loss, _ = loss_module(**inputs)
        scaler.scale(loss / max(targets, 1)).backward()
        loss_sum += loss.item()
    scaler.unscale_(optimizer)
    params = [p for group in optimizer.param_groups for p in group["params"]]
    if config.max_grad_norm:
        torch.nn.utils.clip_grad_norm_(params, config.max_grad_norm)
    scaler.step(optimizer)
    scaler.update()
    optimizer.zero_grad(set_to_none=True)
    scheduler.step()
    total_loss, total_targets, tokens = dist.sum(
        [loss_sum, float(targets), float(sum(len(r.tokens) for r in rows))]
    )
    return total_loss / max(total_targets, 1.0), int(tokens), int(total_targets)


@torch.no_grad()
def evaluate(
    loss_module: nn.Module,
    rows: Sequence[Row],
    batch_size: int,
    autocast: Callable[[], AbstractContextManager],
    device: torch.device,
    dist: _Distributed,
) -> float:
    """Mean token loss on the held-out rows (dropout off); every rank computes all of it."""
    loss_module.eval()
    inner = (
        loss_module.module
        if isinstance(loss_module, nn.parallel.DistributedDataParallel)
        else loss_module
    )
    pad_id = _pad_id(loss_module)
    loss_sum, count = 0.0, 0
    for batch in _micro_batches(rows, batch_size):
        with autocast():
            loss, n = inner(**_collate(batch, pad_id, device))
        loss_sum += loss.item()
        count += int(n)
    loss_module.train()
    return loss_sum / max(count, 1)


def _pad_id(loss_module: nn.Module) -> int:
    inner = getattr(loss_module, "module", loss_module)
    config = inner.peft_model.config
    for candidate in (config.pad_token_id, config.eos_token_id, 0):
        if isinstance(candidate, int):
            return candidate
        if isinstance(candidate, list) and candidate:
            return int(candidate[0])
    return 0


@dataclass
class _History:
    """Everything measured so far; saved in every checkpoint so a resumed run keeps its curves."""

    loss: list[tuple[int, float]] = field(default_factory=list)
    held_out: list[tuple[int, float]] = field(default_factory=list)
    knowledge: list[tuple[int, float]] = field(default_factory=list)
    stopped_early: int | None = None  # the step at which early stopping ended the run
    tokens: int = 0
    target_tokens: int = 0
    padded_tokens: int = 0
    train_seconds: float = 0.0
    eval_seconds: float = 0.0

    def __post_init__(self) -> None:
        # Checkpoints store pairs as lists; keep them tuples in memory.
        self.loss = [(int(s), float(v)) for s, v in self.loss]
        self.held_out = [(int(s), float(v)) for s, v in self.held_out]
        self.knowledge = [(int(s), float(v)) for s, v in self.knowledge]


# ============================================================================ checkpoints


def _save_checkpoint(
    ckpt_dir: Path,
    step: int,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    scaler: torch.amp.GradScaler,
    history: _History,
    config: TrainConfig,
    training_set: TrainingSet,
    order: list[int],
    dist: _Distributed,
) -> Path | None:
    """Write checkpoint `step` atomically (rank 0) and drop all but the newest few."""
    path = ckpt_dir / f"step-{step:08d}.pt"
    if dist.is_main:
        from peft import get_peft_model_state_dict

        ckpt_dir.mkdir(parents=True, exist_ok=True)
        state = {
            "format": CHECKPOINT_FORMAT,
            "step": step,
            "adapter": get_peft_model_state_dict(model),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "scaler": scaler.state_dict(),
            "rng": {
                "torch": torch.get_rng_state(),
                "python": random.getstate(),
                "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            },
            "data_order": order,
            "dataset_sha256": training_set.sha256,
            "config": asdict(config),
            "history": asdict(history),
        }
        tmp = path.with_suffix(".pt.tmp")
        with open(tmp, "wb") as handle:
            torch.save(state, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        for old in sorted(ckpt_dir.glob("step-*.pt"))[:-KEEP_CHECKPOINTS]:
            old.unlink(missing_ok=True)
    dist.barrier()
    return path


def _load_latest_checkpoint(ckpt_dir: Path) -> dict[str, Any] | None:
    """The newest readable checkpoint in `ckpt_dir`, or None."""
    for path in sorted(ckpt_dir.glob("step-*.pt"), reverse=True):
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:  # a damaged file falls back to the one before it
            log.warning("skipping unreadable checkpoint %s: %s", path, error)
            continue
        state["path"] = path
        return state
    return None


def _check_compatible(ckpt: dict[str, Any], config: TrainConfig, training_set: TrainingSet) -> None:
    if ckpt.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"checkpoint {ckpt['path']} has an unknown format")
    if ckpt["dataset_sha256"] != training_set.sha256:
        raise ValueError(
            f"checkpoint {ckpt['path']} was made from another training set; "
            "remove its folder or train with resume=False"
        )
    # How often to checkpoint or evaluate, and the precision a new machine resolves "auto" to,
    # may change between attempts; nothing else may.
    free = ("checkpoint_every", "eval_every", "precision")
    differing = sorted(
        k for k, v in asdict(config).items() if k not in free and ckpt["config"].get(k) != v
    )
    if differing:
        raise ValueError(
            f"checkpoint {ckpt['path']} was made with other settings for "
            f"{differing}; remove its folder or train with resume=False"
        )


def _set_rng_state(rng: dict[str, Any], dist: _Distributed, seed: int, step: int) -> None:
    if dist.world_size > 1:
        # Rank 0's saved state would give every rank the same dropout masks; reseed per rank.
        torch.manual_seed(seed + 1_000_003 * (dist.rank + 1) + step)
        return
    torch.set_rng_state(rng["torch"])
    random.setstate(_as_tuple(rng["python"]))
    if rng["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])


def _as_tuple(value: Any) -> Any:
    return tuple(_as_tuple(v) for v in value) if isinstance(value, (list, tuple)) else value


# ============================================================================ outputs


def _save_adapter(model: nn.Module, adapter_dir: Path) -> None:
    """save_pretrained into a temporary folder, then swap it into place."""
    tmp = adapter_dir.with_name(adapter_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(str(tmp))
    if adapter_dir.exists():
        shutil.rmtree(adapter_dir)
    os.replace(tmp, adapter_dir)


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


def _metrics(
    history: _History,
    config: TrainConfig,
    training_set: TrainingSet,
    train_rows: Sequence[Row],
    val_rows: Sequence[Row],
    dist: _Distributed,
    device: torch.device,
) -> dict[str, Any]:
    return {
        "steps": history.loss[-1][0] if history.loss else 0,
        "loss_curve": [list(p) for p in history.loss],
        "final_loss": history.loss[-1][1] if history.loss else None,
        "held_out_curve": [list(p) for p in history.held_out],
        "initial_held_out_loss": history.held_out[0][1] if history.held_out else None,
        "held_out_loss": history.held_out[-1][1] if history.held_out else None,
        "knowledge_curve": [list(p) for p in history.knowledge],
        "stopped_early_at": history.stopped_early,
        "tokens_trained": history.tokens,
        "target_tokens_trained": history.target_tokens,
        "train_seconds": round(history.train_seconds, 3),
        "eval_seconds": round(history.eval_seconds, 3),
        "tokens_per_second": history.tokens / max(history.train_seconds, 1e-9),
        "packing_efficiency": history.tokens / max(history.padded_tokens, 1),
        "examples": len(training_set.examples),
        "validation_examples": len(training_set.validation),
        "rows": len(train_rows),
        "validation_rows": len(val_rows),
        "dataset_sha256": training_set.sha256,
        "precision": config.precision,
        "world_size": dist.world_size,
        "device": device.type,  # the cost report prices CPU and accelerator time differently
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    }


def plot_loss_curve(history: _History, path: Path) -> None:
    """Training loss per step, held-out loss and the knowledge check, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4))
    if history.loss:
        axes.plot(*zip(*history.loss, strict=True), label="training loss", linewidth=1)
    if history.held_out:
        axes.plot(*zip(*history.held_out, strict=True), "o-", label="held-out loss")
    axes.set_xlabel("optimizer step")
    axes.set_ylabel("token cross-entropy")
    axes.grid(alpha=0.3)
    handles, labels = axes.get_legend_handles_labels()
    if history.knowledge:
        right = axes.twinx()
        right.plot(*zip(*history.knowledge, strict=True), "s-", color="tab:green")
        right.set_ylabel("knowledge check (share of probes right)")
        right.set_ylim(0, 1.05)
        handles += right.get_lines()
        labels.append("knowledge check")
    if history.stopped_early:
        axes.axvline(history.stopped_early, color="grey", linestyle=":")
    axes.legend(handles, labels, loc="center right")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


# ============================================================================ command line


def main(argv: Sequence[str] | None = None) -> int:
    """`[torchrun --nproc-per-node N] python -m adapters.train --model-dir M --data D --out O`"""
    import argparse

    from adapters.training_data import load_training_set

    parser = argparse.ArgumentParser(description="Train one LoRA adapter (see module docstring).")
    parser.add_argument("--model-dir", type=Path, required=True, help="base model folder")
    parser.add_argument(
        "--data",
        type=Path,
        required=True,
        help="training set JSON (adapters.training_data.save_training_set)",
    )
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        help="JSON object of TrainConfig fields (others keep their defaults)",
    )
    parser.add_argument("--no-resume", action="store_true", help="ignore existing checkpoints")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    values = json.loads(args.config.read_text()) if args.config else {}
    config = TrainConfig.from_dict(values)

    def report(p: TrainProgress) -> None:
        log.info(
            "step %d/%d loss %.4f held-out %s %.0f tok/s eta %.0fs",
            p.step,
            p.total_steps,
            p.loss,
            "-" if p.held_out_loss is None else f"{p.held_out_loss:.4f}",
            p.tokens_per_second,
            p.eta_seconds,
        )

    result = train(
        config,
        args.model_dir,
        load_training_set(args.data),
        args.out,
        progress=report,
        resume=not args.no_resume,
    )
    log.info("adapter saved to %s", result.adapter_dir)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
