"""What a run has measured (`History`, saved in every checkpoint), the metrics.json it becomes,
and its loss-curve plot."""

from __future__ import annotations

import resource
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from adapters.train.config import TrainConfig
from adapters.train.distributed import Distributed
from adapters.train.packing import Row
from adapters.training_data import TrainingSet


@dataclass
class History:
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
    compiled_at: int | None = None  # the step after which the decoder ran compiled
    compile_seconds: float = 0.0  # what compiling added to the first compiled step

    def __post_init__(self) -> None:
        # Checkpoints store pairs as lists; keep them tuples in memory.
        self.loss = [(int(s), float(v)) for s, v in self.loss]
        self.held_out = [(int(s), float(v)) for s, v in self.held_out]
        self.knowledge = [(int(s), float(v)) for s, v in self.knowledge]


def metrics_of(
    history: History,
    config: TrainConfig,
    training_set: TrainingSet,
    train_rows: Sequence[Row],
    val_rows: Sequence[Row],
    dist: Distributed,
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
        "compiled_at_step": history.compiled_at,
        "compile_seconds": round(history.compile_seconds, 1),
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


def plot_loss_curve(history: History, path: Path) -> None:
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
