"""What a run writes to disk, each file written to a temporary name and renamed, so a killed
worker leaves the old file or the new one, never half of one: checkpoints while it trains
(adapter weights, optimizer, scheduler, RNG, step, data order, curves; one file each), then the
adapter and its JSON files."""

from __future__ import annotations

import json
import logging
import os
import random
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from torch import nn

from adapters.train.config import TrainConfig
from adapters.train.distributed import Distributed
from adapters.train.history import History
from adapters.training_data import TrainingSet

log = logging.getLogger(__name__)

CHECKPOINT_FORMAT = 1
KEEP_CHECKPOINTS = 2


def save_checkpoint(
    ckpt_dir: Path,
    step: int,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    scaler: torch.amp.GradScaler,
    history: History,
    config: TrainConfig,
    training_set: TrainingSet,
    order: list[int],
    dist: Distributed,
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


def load_latest_checkpoint(ckpt_dir: Path) -> dict[str, Any] | None:
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


def check_compatible(ckpt: dict[str, Any], config: TrainConfig, training_set: TrainingSet) -> None:
    if ckpt.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"checkpoint {ckpt['path']} has an unknown format")
    if ckpt["dataset_sha256"] != training_set.sha256:
        raise ValueError(
            f"checkpoint {ckpt['path']} was made from another training set; "
            "remove its folder or train with resume=False"
        )
    # How often to checkpoint or evaluate, the precision a new machine resolves "auto" to, and
    # whether the step is compiled may change between attempts; nothing else may.
    free = ("checkpoint_every", "eval_every", "precision", "compile")
    differing = sorted(
        k for k, v in asdict(config).items() if k not in free and ckpt["config"].get(k) != v
    )
    if differing:
        raise ValueError(
            f"checkpoint {ckpt['path']} was made with other settings for "
            f"{differing}; remove its folder or train with resume=False"
        )


def set_rng_state(rng: dict[str, Any], dist: Distributed, seed: int, step: int) -> None:
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


def save_adapter(model: nn.Module, adapter_dir: Path) -> None:
    """save_pretrained into a temporary folder, then swap it into place."""
    tmp = adapter_dir.with_name(adapter_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(str(tmp))
    if adapter_dir.exists():
        shutil.rmtree(adapter_dir)
    os.replace(tmp, adapter_dir)


def write_json(path: Path, data: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)
