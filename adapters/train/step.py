"""One optimizer step and one held-out evaluation, and the learning-rate schedule they follow.

The loss is the summed token cross-entropy over a step's labelled tokens divided by their count,
so every target token weighs the same whatever row or micro-batch it landed in.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext

import torch
import torch.nn.functional as F
from torch import nn

from adapters.knowledge import PLAIN_HEAD_MODEL_TYPES
from adapters.train.compiled import CompiledLayers
from adapters.train.config import TrainConfig
from adapters.train.distributed import Distributed
from adapters.train.head_loss import linear_cross_entropy_sum
from adapters.train.packing import Row, collate, micro_batches
from adapters.training_data import IGNORE_INDEX

# Cosine decays to this fraction of the peak learning rate, not to zero.
MIN_LR_RATIO = 0.1


def lr_multiplier(schedule: str, warmup_ratio: float, total_steps: int) -> Callable[[int], float]:
    """Multiplier of the peak learning rate at each step: linear warmup, then cosine or flat."""
    # Not transformers' schedulers: their warmup starts at 0 (a wasted first step, the whole
    # warmup of a short run) and the lr_rate variant starts the cosine a step early
    # (tests/unit/test_train_config.py compares the curves).
    warmup = max(1, round(warmup_ratio * total_steps))

    def multiplier(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        if schedule == "constant":
            return 1.0
        progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
        return MIN_LR_RATIO + (1 - MIN_LR_RATIO) * 0.5 * (1 + math.cos(math.pi * progress))

    return multiplier


class CausalLMLoss(nn.Module):
    """Summed next-token cross-entropy over labelled positions, for one padded batch.

    The model runs without an attention mask and without a KV cache so that transformers
    derives the per-example block-diagonal mask from the restarting position ids. Where the
    architecture allows, the output head (a fifth of the model's work for SmolLM2's 49k-word
    vocabulary) runs only where a label is: not on context, example ends or padding, and with
    its loss in one chunked pass that never holds the whole logits tensor
    (adapters.train.head_loss).
    """

    compiled_decoder: CompiledLayers | None

    def __init__(self, peft_model: nn.Module) -> None:
        super().__init__()
        self.peft_model = peft_model
        self.head_on_labels_only = peft_model.config.model_type in PLAIN_HEAD_MODEL_TYPES
        # Not a registered submodule: it shares the decoder's parameters, and state dicts and
        # DDP must see them once.
        self.__dict__["compiled_decoder"] = None

    def compile_decoder(self) -> None:
        """From now on, training forwards run the decoder's layers through torch.compile, with
        fixed shapes (the caller pads every micro-batch to the same size); evaluation stays
        eager (adapters.train.compiled)."""
        if not self.head_on_labels_only:
            raise ValueError(f"compiling is not supported for {self.peft_model.config.model_type}")
        # A compiler failure (missing headers, an op inductor cannot lower) runs the layer
        # eagerly instead of ending the job; the ledger then records no gain, and "auto" stops
        # choosing to compile that shape.
        torch._dynamo.config.suppress_errors = True
        # Each run compiles afresh (from the disk cache when warm): compiled code kept from an
        # earlier run of a long-lived worker would pile up guards until dynamo gives up on it.
        torch._dynamo.reset()
        decoder = self.peft_model.get_base_model().get_decoder()
        self.__dict__["compiled_decoder"] = CompiledLayers(decoder)

    def forward(
        self, input_ids: torch.Tensor, position_ids: torch.Tensor, labels: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        keep = labels != IGNORE_INDEX
        if self.head_on_labels_only:
            causal_lm = self.peft_model.get_base_model()
            decoder = causal_lm.get_decoder()
            if self.training and self.compiled_decoder is not None:
                decoder = self.compiled_decoder
            hidden = decoder(
                input_ids=input_ids, position_ids=position_ids, use_cache=False
            ).last_hidden_state
            head = causal_lm.get_output_embeddings()
            if head.bias is None and not head.weight.requires_grad:
                dtype = _compute_dtype(head.weight)
                loss = linear_cross_entropy_sum(
                    hidden[keep], self._frozen_head_weight(head.weight, dtype), labels[keep], dtype
                )
                return loss, keep.sum()
            logits = head(hidden[keep])
        else:
            logits = self.peft_model(
                input_ids=input_ids, position_ids=position_ids, use_cache=False
            ).logits[keep]
        loss = F.cross_entropy(logits.float(), labels[keep], reduction="sum")
        return loss, keep.sum()

    def _frozen_head_weight(self, weight: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """The head's frozen weight in `dtype`, cast once per run rather than every step (28M
        values for SmolLM2, tied to the fp32 input embedding)."""
        cached = self.__dict__.get("head_weight")
        if cached is None or cached[0] != (weight.data_ptr(), weight._version, dtype):
            cached = ((weight.data_ptr(), weight._version, dtype), weight.detach().to(dtype))
            self.__dict__["head_weight"] = cached
        return cached[1]


def _compute_dtype(weight: torch.Tensor) -> torch.dtype:
    """The dtype autocast would run a matmul with `weight` in, here and now."""
    device = weight.device.type
    if torch.is_autocast_enabled(device):
        return torch.get_autocast_dtype(device)
    return weight.dtype


def train_step(
    loss_module: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    scaler: torch.amp.GradScaler,
    rows: Sequence[Row],
    config: TrainConfig,
    autocast: Callable[[], AbstractContextManager],
    device: torch.device,
    dist: Distributed,
) -> tuple[float, int, int]:
    """One optimizer step over this rank's rows; returns (mean token loss over all ranks,
    tokens seen, target tokens), the counts summed over ranks."""
    loss_module.train()
    pad_id = pad_id_of(loss_module)
    targets = sum(sum(label != IGNORE_INDEX for label in r.labels) for r in rows)
    batches = list(micro_batches(rows, config.batch_size))
    loss_sum = 0.0
    compiled = inner_loss(loss_module).compiled_decoder is not None
    # A compiled decoder has one graph for one shape: every micro-batch gets the full size.
    shape = (config.batch_size, config.max_seq_length) if compiled else None
    for i, batch in enumerate(batches):
        inputs = collate(batch, pad_id, device, shape=shape)
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
    dist: Distributed,
) -> float:
    """Mean token loss on the held-out rows (dropout off); every rank computes all of it."""
    loss_module.eval()
    inner = inner_loss(loss_module)
    pad_id = pad_id_of(loss_module)
    loss_sum, count = 0.0, 0
    for batch in micro_batches(rows, batch_size):
        with autocast():
            loss, n = inner(**collate(batch, pad_id, device))
        loss_sum += loss.item()
        count += int(n)
    loss_module.train()
    return loss_sum / max(count, 1)


def inner_loss(loss_module: nn.Module) -> CausalLMLoss:
    """The CausalLMLoss itself, whether or not DistributedDataParallel wraps it."""
    if isinstance(loss_module, nn.parallel.DistributedDataParallel):
        return loss_module.module
    assert isinstance(loss_module, CausalLMLoss)
    return loss_module


def pad_id_of(loss_module: nn.Module) -> int:
    """The token id padding uses: the model's pad token, else its EOS, else 0."""
    inner = inner_loss(loss_module)
    config = inner.peft_model.config
    for candidate in (config.pad_token_id, config.eos_token_id, 0):
        if isinstance(candidate, int):
            return candidate
        if isinstance(candidate, list) and candidate:
            return int(candidate[0])
    return 0
