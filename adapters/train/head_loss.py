"""The output head and its cross-entropy in one pass over row chunks, gradient included.

Run the usual way (logits = head(hidden), then F.cross_entropy on logits.float()), the head and
its loss materialise a labelled-rows x vocabulary logits tensor several times over: the bf16
logits, their fp32 copy, log-softmax's output, the zero-filled gradient nll_loss scatters into,
its bf16 cast. For SmolLM2's 49k-word vocabulary and ~900 labelled rows that is 200 MB per pass,
and in a profile of a compiled bf16 CPU step (2-core EPYC, batch 8 x 128) those passes took 28%
of the step, more than the head's two matmuls. Here the rows go through in chunks whose logits
fit in cache; each chunk's loss (log-sum-exp in fp32) and its gradient (softmax minus the one-hot
target, the cross-entropy's closed form) are computed together in reused buffers, and the
gradient for the hidden states is ready before backward asks for it: the head's weight is frozen
in LoRA training, so nothing else needs the logits.

PyTorch 2.13's F.linear_cross_entropy(options=...) chunks too, but in bf16 it also sums the loss
in bf16 (1-3% off on 900 rows, too coarse for the loss curve and early stopping), and with fp32
accumulation it ran slower than the unchunked path on this CPU.
"""

from __future__ import annotations

import torch

# Logit elements per chunk (32 MB in fp32): 170 rows of a 49k vocabulary. Chunks of 128-256
# rows ran the head within 5-20% of its two matmuls alone on a 2-core EPYC; 32 rows were slower.
CHUNK_ELEMENTS = 1 << 23


def linear_cross_entropy_sum(
    hidden: torch.Tensor, weight: torch.Tensor, labels: torch.Tensor, dtype: torch.dtype
) -> torch.Tensor:
    """sum over rows of cross_entropy(hidden @ weight.T, labels), the matmuls in `dtype`, the
    loss in fp32. `weight` must be frozen (no gradient is computed for it); the gradient for
    `hidden` is computed when autograd will need it."""
    if weight.requires_grad:
        raise ValueError("linear_cross_entropy_sum computes no gradient for the head's weight")
    return _LinearCrossEntropySum.apply(hidden, weight.to(dtype), labels)


class _LinearCrossEntropySum(torch.autograd.Function):
    @staticmethod
    def forward(  # type: ignore[override]
        ctx: torch.autograd.function.FunctionCtx,
        hidden: torch.Tensor,
        weight: torch.Tensor,
        labels: torch.Tensor,
    ) -> torch.Tensor:
        rows, vocab = hidden.shape[0], weight.shape[0]
        chunk = max(1, min(rows, CHUNK_ELEMENTS // vocab))
        device = hidden.device
        # Inputs and outputs keep their dtypes under autocast: the caller chose `weight`'s.
        with torch.autocast(device.type, enabled=False):
            inputs = hidden.detach().to(weight.dtype)
            grad = torch.empty_like(inputs) if ctx.needs_input_grad[0] else None
            logits = torch.empty(chunk, vocab, dtype=weight.dtype, device=device)
            # The chunk's logits in fp32, turned in place into the loss's gradient.
            probs = logits if weight.dtype == torch.float32 else logits.float()
            loss = torch.zeros((), dtype=torch.float32, device=device)
            for start in range(0, rows, chunk):
                end = min(start + chunk, rows)
                chunk_logits = logits[: end - start]
                # One tensor when the logits are fp32 already: no copies in and out of the buffer.
                chunk_probs = chunk_logits if probs is logits else probs[: end - start]
                torch.mm(inputs[start:end], weight.T, out=chunk_logits)
                loss += _loss_and_softmax_grad(
                    chunk_logits, chunk_probs, labels[start:end], grad is not None
                )
                if grad is not None:
                    torch.mm(chunk_logits, weight, out=grad[start:end])
        ctx.save_for_backward(grad)
        ctx.hidden_dtype = hidden.dtype
        return loss

    @staticmethod
    def backward(  # type: ignore[override]
        ctx: torch.autograd.function.FunctionCtx, grad_loss: torch.Tensor
    ) -> tuple[torch.Tensor | None, None, None]:
        (grad,) = ctx.saved_tensors
        if grad is None:
            return None, None, None
        return (grad * grad_loss).to(ctx.hidden_dtype), None, None


def _loss_and_softmax_grad(
    logits: torch.Tensor, probs: torch.Tensor, labels: torch.Tensor, with_grad: bool
) -> torch.Tensor:
    """The summed cross-entropy of one chunk of logits; with `with_grad`, also overwrites
    `logits` with its gradient (softmax minus the one-hot target). `probs` is the fp32 buffer
    the work happens in (`logits` itself when that is fp32)."""
    if probs is not logits:
        probs.copy_(logits)
    rows = torch.arange(logits.shape[0], device=logits.device)
    target_logits = probs[rows, labels]  # indexing copies: kept before the buffer changes
    peak = probs.amax(dim=1, keepdim=True)
    probs.sub_(peak).exp_()
    total = probs.sum(dim=1, keepdim=True)
    loss = ((peak + total.log()).squeeze(1) - target_logits).sum()
    if with_grad:
        probs.div_(total)
        probs[rows, labels] -= 1
        if probs is not logits:
            logits.copy_(probs)
    return loss
