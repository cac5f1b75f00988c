"""The one LoRA training recipe, top to bottom: `train()` = setup (rows, model, optimizer) ->
resume from a checkpoint -> fit (steps, evaluations, checkpoints, early stopping) -> finish (the
adapter, its config, metrics and loss curve). The pieces it calls live beside it in
adapters/train/ (see the package docstring)."""

from __future__ import annotations

import logging
import math
import random
import shutil
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from adapters.knowledge import KnowledgeProbe, probe_accuracy
from adapters.train.checkpoints import (
    check_compatible,
    load_latest_checkpoint,
    save_adapter,
    save_checkpoint,
    set_rng_state,
    write_json,
)
from adapters.train.compiled import CompilePlan, Ledger, shape_key, unavailable_reason
from adapters.train.config import TrainConfig
from adapters.train.distributed import Distributed
from adapters.train.early_stopping import auto_eval_every, plateaued
from adapters.train.history import History, metrics_of, plot_loss_curve
from adapters.train.packing import Row, cycle_take, epoch_order, pack_examples, padded_size
from adapters.train.precision import (
    attention_for,
    autocast_for,
    resolve_precision,
    store_frozen_weights_for,
)
from adapters.train.step import (
    CausalLMLoss,
    evaluate,
    inner_loss,
    lr_multiplier,
    pad_id_of,
    train_step,
)
from adapters.training_data import TrainingSet

log = logging.getLogger(__name__)

_NO_RANK_LIMIT = 1 << 16


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
    compiling: bool = False
    """The next step compiles the model (adapters.train.compiled); `eta_seconds` includes it."""


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
    run = _setup(config, model_dir, training_set, Path(out_dir), probes)
    if resume:
        _resume(run)
    _fit(run, progress, should_stop)
    return _finish(run)


@dataclass
class _Run:
    """One run's state from setup to the saved adapter; `step` counts the optimizer steps done."""

    config: TrainConfig
    resolved: TrainConfig
    """`config` with "auto" precision made concrete: what is saved and what resume compares."""
    training_set: TrainingSet
    out_dir: Path
    dist: Distributed
    probes: Sequence[KnowledgeProbe]
    train_rows: list[Row]
    val_rows: list[Row]
    rows_per_step: int
    steps_per_epoch: int
    total_steps: int
    eval_every: int
    model: nn.Module
    loss_module: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    autocast: Callable[[], AbstractContextManager]
    compile_plan: CompilePlan
    history: History = field(default_factory=History)
    step: int = 0

    @property
    def ckpt_dir(self) -> Path:
        return self.out_dir / "checkpoints"


# ============================================================================ setup


def _setup(
    config: TrainConfig,
    model_dir: Path | str,
    training_set: TrainingSet,
    out_dir: Path,
    probes: Sequence[KnowledgeProbe],
) -> _Run:
    """Everything a run needs before its first step, built in the order the seeds expect."""
    out_dir.mkdir(parents=True, exist_ok=True)
    dist = Distributed.setup()
    precision = resolve_precision(config.precision, dist.device)
    resolved = TrainConfig(**{**asdict(config), "precision": precision})
    # LoRA init and dropout draw from torch's RNG; row order uses its own seeded generator.
    torch.manual_seed(config.seed)
    random.seed(config.seed)
    train_rows, val_rows = _load_rows(config, model_dir, training_set)
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
    model, loss_module = _load_model(config, model_dir, dist, precision)
    trainable = [p for p in model.parameters() if p.requires_grad]
    # The fused kernel updates all LoRA tensors in one pass (CPU and CUDA alike).
    optimizer = torch.optim.AdamW(
        trainable, lr=config.learning_rate, weight_decay=config.weight_decay, fused=True
    )
    return _Run(
        config=config,
        resolved=resolved,
        training_set=training_set,
        out_dir=out_dir,
        dist=dist,
        probes=probes,
        train_rows=train_rows,
        val_rows=val_rows,
        rows_per_step=rows_per_step,
        steps_per_epoch=steps_per_epoch,
        total_steps=total_steps,
        eval_every=eval_every,
        model=model,
        loss_module=loss_module,
        optimizer=optimizer,
        scheduler=torch.optim.lr_scheduler.LambdaLR(
            optimizer, lr_multiplier(config.lr_schedule, config.warmup_ratio, total_steps)
        ),
        scaler=torch.amp.GradScaler(dist.device.type, enabled=precision == "fp16-autocast"),
        autocast=autocast_for(precision, dist.device),
        compile_plan=_compile_plan(resolved, model, loss_module, dist),
    )


def _load_rows(
    config: TrainConfig, model_dir: Path | str, training_set: TrainingSet
) -> tuple[list[Row], list[Row]]:
    """The training and held-out examples, encoded with the base model's tokenizer and packed."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
    train_rows = pack_examples(
        tokenizer, training_set.examples, config.max_seq_length, packing=config.packing
    )
    val_rows = pack_examples(
        tokenizer, training_set.validation, config.max_seq_length, packing=config.packing
    )
    return train_rows, val_rows


def _load_model(
    config: TrainConfig, model_dir: Path | str, dist: Distributed, precision: str
) -> tuple[nn.Module, nn.Module]:
    """The peft model (LoRA on the target linears, fp32 but for the frozen linear weights under
    autocast) on this rank's device, and the loss module that trains it (data-parallel across
    ranks under torchrun)."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    device = dist.device
    base = AutoModelForCausalLM.from_pretrained(
        str(model_dir),
        dtype=torch.float32,
        local_files_only=True,
        attn_implementation=attention_for(precision, device),
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
    store_frozen_weights_for(precision, model)
    loss_module: nn.Module = CausalLMLoss(model)
    if dist.world_size > 1:
        loss_module = nn.parallel.DistributedDataParallel(
            loss_module, device_ids=[device.index] if device.type == "cuda" else None
        )
    return model, loss_module


def _compile_plan(
    config: TrainConfig, model: nn.Module, loss_module: nn.Module, dist: Distributed
) -> CompilePlan:
    """When this run compiles its step (adapters.train.compiled); "auto" stays eager under
    torchrun, where ranks timing their own steps could decide differently."""
    head_on_labels_only = inner_loss(loss_module).head_on_labels_only
    unavailable = unavailable_reason(dist.device)
    if not head_on_labels_only:
        unavailable = f"compiling does not support {model.config.model_type} models"
    elif dist.world_size > 1 and config.compile == "auto":
        unavailable = "data-parallel runs compile only with compile='on'"
    if unavailable and config.compile == "on":
        log.warning("training without compiling: %s", unavailable)
    return CompilePlan(
        mode=config.compile,
        key=shape_key(config, model.config.to_dict(), dist.device),
        ledger=Ledger.default() if dist.is_main else None,
        unavailable=unavailable,
    )


def _start_compiling(run: _Run) -> None:
    inner_loss(run.loss_module).compile_decoder()
    run.history.compiled_at = run.step


def _resume(run: _Run) -> None:
    """Continue from the newest checkpoint in the run's folder, when there is one."""
    ckpt = load_latest_checkpoint(run.ckpt_dir)
    if ckpt is None:
        return
    check_compatible(ckpt, run.resolved, run.training_set)
    from peft import set_peft_model_state_dict

    set_peft_model_state_dict(run.model, ckpt["adapter"])
    run.optimizer.load_state_dict(ckpt["optimizer"])
    run.scheduler.load_state_dict(ckpt["scheduler"])
    run.scaler.load_state_dict(ckpt["scaler"])
    set_rng_state(ckpt["rng"], run.dist, run.config.seed, ckpt["step"])
    run.history = History(**ckpt["history"])
    run.step = ckpt["step"]
    log.info("resuming from %s at step %d of %d", ckpt["path"], run.step, run.total_steps)


# ============================================================================ fit


def _fit(
    run: _Run,
    progress: Callable[[TrainProgress], None] | None,
    should_stop: Callable[[], bool] | None,
) -> None:
    """Optimizer steps until the planned last one, early stopping, or `should_stop`."""
    if run.step == 0:
        _measure(run, 0)
    if run.compile_plan.at_start():
        _start_compiling(run)
    session_start = time.perf_counter()
    session_steps = 0
    while run.step < run.total_steps and run.history.stopped_early is None:
        epoch = run.step // run.steps_per_epoch
        order = epoch_order(len(run.train_rows), run.config.seed, epoch)
        loss = _optimizer_step(run, order)
        session_steps += 1
        _evaluate_when_due(run)
        saved = None
        every = run.config.checkpoint_every
        if every and run.step % every == 0 and run.step < run.total_steps:
            saved = _checkpoint(run, order)
        if run.dist.is_main and progress is not None:
            elapsed = time.perf_counter() - session_start
            progress(_progress(run, epoch, loss, elapsed, session_steps))
        if run.history.stopped_early:
            log.info(
                "early stopping at step %d of %d: the check stopped improving",
                run.step,
                run.total_steps,
            )
            break
        # Every rank asks, and all stop if any was asked to, so none waits on the others.
        if run.step < run.total_steps and run.dist.any(should_stop is not None and should_stop()):
            raise TrainingCancelled(run.step, saved or _checkpoint(run, order))


def _optimizer_step(run: _Run, order: list[int]) -> float:
    """One optimizer step on this rank's share of the step's rows, recorded in the history;
    returns the step's mean token loss over all ranks."""
    dist, history = run.dist, run.history
    offset = (run.step % run.steps_per_epoch) * run.rows_per_step
    step_rows = cycle_take(order, offset, run.rows_per_step, exact=dist.world_size > 1)
    my_rows = [run.train_rows[i] for i in step_rows[dist.rank :: dist.world_size]]
    plan = run.compile_plan
    # train_step pads compiled micro-batches to the full width; the efficiency counts that.
    compiled = inner_loss(run.loss_module).compiled_decoder is not None
    fixed_width = run.config.max_seq_length if compiled else None
    t0 = time.perf_counter()
    loss, tokens, targets = train_step(
        run.loss_module,
        run.optimizer,
        run.scheduler,
        run.scaler,
        my_rows,
        run.config,
        run.autocast,
        dist.device,
        dist,
    )
    seconds = time.perf_counter() - t0
    history.train_seconds += seconds
    run.step += 1
    if plan.observe(seconds, run.total_steps - run.step):
        _start_compiling(run)
    elif plan.compile_seconds is not None:
        history.compile_seconds = plan.compile_seconds
    history.loss.append((run.step, loss))
    history.tokens += tokens
    history.target_tokens += targets
    history.padded_tokens += padded_size(my_rows, run.config.batch_size, fixed=fixed_width) * (
        dist.world_size
    )
    return loss


def _evaluate_when_due(run: _Run) -> None:
    """Evaluate every `eval_every` steps and at the last, and stop early once it plateaus."""
    # The last step is always evaluated here, so its progress report carries the final loss.
    periodic = run.eval_every and run.step % run.eval_every == 0
    if periodic or run.step == run.total_steps:
        _measure(run, run.step)
        if periodic and run.config.early_stopping and plateaued(run.history, run.config.patience):
            run.history.stopped_early = run.step


def _measure(run: _Run, at: int) -> None:
    """Held-out loss and the knowledge check at step `at` (every rank computes both)."""
    started = time.perf_counter()
    device = run.dist.device
    if run.val_rows:
        loss = evaluate(
            run.loss_module, run.val_rows, run.config.batch_size, run.autocast, device, run.dist
        )
        run.history.held_out.append((at, loss))
    if run.probes:
        accuracy = probe_accuracy(
            run.model,
            run.probes,
            pad_id=pad_id_of(run.loss_module),
            device=device,
            autocast=run.autocast,
        )
        run.history.knowledge.append((at, accuracy))
    run.history.eval_seconds += time.perf_counter() - started


def _checkpoint(run: _Run, order: list[int]) -> Path | None:
    return save_checkpoint(
        run.ckpt_dir,
        run.step,
        run.model,
        run.optimizer,
        run.scheduler,
        run.scaler,
        run.history,
        run.resolved,
        run.training_set,
        order,
        run.dist,
    )


def _progress(
    run: _Run, epoch: int, loss: float, elapsed: float, session_steps: int
) -> TrainProgress:
    history = run.history
    # Compiling is paid once: it is not a step's time.
    seconds, steps = run.compile_plan.without_compile(elapsed, session_steps)
    return TrainProgress(
        step=run.step,
        total_steps=run.total_steps,
        epoch=epoch,
        loss=loss,
        learning_rate=run.scheduler.get_last_lr()[0],
        tokens_trained=history.tokens,
        tokens_per_second=history.tokens / max(history.train_seconds, 1e-9),
        eta_seconds=(run.total_steps - run.step) * seconds / steps
        + run.compile_plan.expected_compile_seconds(),
        held_out_loss=history.held_out[-1][1] if history.held_out else None,
        knowledge=history.knowledge[-1][1] if history.knowledge else None,
        compiling=run.compile_plan.compile_pending(),
    )


# ============================================================================ finish


def _finish(run: _Run) -> TrainResult:
    """Measure the end, write the adapter and its files (rank 0), drop the checkpoints."""
    history, step = run.history, run.step
    # The end of the run is always measured (a run resumed at its last step has not been yet).
    last = (history.held_out or history.knowledge or [(-1, 0.0)])[-1][0]
    if (run.val_rows or run.probes) and last != step:
        _measure(run, step)
    metrics = metrics_of(
        history,
        run.resolved,
        run.training_set,
        run.train_rows,
        run.val_rows,
        run.dist,
        run.dist.device,
    )
    metrics["planned_steps"] = run.total_steps
    metrics["eval_every"] = run.eval_every
    adapter_dir = run.out_dir / "adapter"
    if run.dist.is_main:
        save_adapter(run.model, adapter_dir)
        write_json(run.out_dir / "train_config.json", asdict(run.resolved))
        write_json(run.out_dir / "metrics.json", metrics)
        plot_loss_curve(history, run.out_dir / "loss_curve.png")
        # Optimizer state is twice the adapter's size; a finished run needs none of it.
        shutil.rmtree(run.ckpt_dir, ignore_errors=True)
    run.dist.barrier()
    return TrainResult(adapter_dir=adapter_dir, config=run.resolved, metrics=metrics)
