"""`[torchrun --nproc-per-node N] python -m adapters.train --model-dir M --data D --out O`: one
LoRA run from the command line (see the package docstring)."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

from adapters.train.config import TrainConfig
from adapters.train.recipe import TrainProgress, train

log = logging.getLogger(__name__)


def main(argv: Sequence[str] | None = None) -> int:
    """`[torchrun --nproc-per-node N] python -m adapters.train --model-dir M --data D --out O`"""
    import argparse

    from adapters.training_data import load_training_set

    parser = argparse.ArgumentParser(description="Train one LoRA adapter (adapters.train).")
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
