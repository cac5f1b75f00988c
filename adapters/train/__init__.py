"""The one LoRA training recipe: config -> data -> peft LoRA on the base model -> fit -> save.

Read it like litgpt's finetune/lora.py, starting at `recipe.train()`; each piece it calls has
its own module here:
- `config`: `TrainConfig`, the hyperparameters (saved next to the adapter) and their checks.
- `recipe`: `train()`, top to bottom: setup, resume, fit loop, save.
- `packing`: examples -> token rows, packed first-fit decreasing with per-example position ids,
  so packing changes nothing but speed; the row order of each epoch; padded micro-batches.
- `step`: the loss, one optimizer step, the held-out evaluation, the learning-rate schedule.
- `early_stopping`: when to evaluate and when the knowledge check has stopped improving.
- `history`: what a run measured, the metrics.json it becomes, the loss-curve plot.
- `checkpoints`: checkpoints and outputs, each written to a temporary name and renamed, so a
  killed worker leaves the old file or the new one; `train(..., resume=True)` continues from the
  newest checkpoint.
- `precision`: fp32 weights, autocast to bf16 only where the hardware has native bf16.
- `compiled`: torch.compile of the decoder's layers, where the rest of the run pays for it.
- `distributed`: data parallelism under torchrun.
- `__main__`: the command line.

Several GPUs: the same `train()` runs data-parallel under torchrun (DistributedDataParallel;
WORLD_SIZE > 1 is how torchrun says so), e.g.
    torchrun --nproc-per-node 4 -m adapters.train --model-dir BASE \
        --data training_set.json --out OUT [--config hyperparameters.json]
Each rank trains its share of every step's rows; rank 0 alone writes checkpoints and outputs and
reports progress; `batch_size` is per rank, so the global batch grows with the GPU count. The
output folder must be shared by the ranks (one machine, or a shared filesystem).
"""

from adapters.train.config import DEFAULT_TARGET_MODULES, TrainConfig
from adapters.train.recipe import TrainingCancelled, TrainProgress, TrainResult, train

__all__ = [
    "DEFAULT_TARGET_MODULES",
    "TrainConfig",
    "TrainProgress",
    "TrainResult",
    "TrainingCancelled",
    "train",
]
