"""The fused LoRA linear (adapters/vllm/fused_lora.py) against vLLM's own per-slice method on the
same stacked weights: equal outputs for rows with an adapter, nothing added to rows without one,
and fresh weights after vLLM rewrites a slot in place."""

from __future__ import annotations

import torch
from vllm.lora.ops.torch_ops import lora_ops
from vllm.lora.punica_wrapper.punica_cpu import PunicaWrapperCPU

from adapters.vllm import fused_lora

SLOTS, RANK, HIDDEN = 4, 8, 24
SLICES = (40, 12, 12)  # q, k, v as a merged QKV layer stacks them
# Runs of tokens as vLLM's CPU runner batches them: base prompts, two adapters, base decodes.
TOKEN_SLOTS = [-1] * 7 + [1] * 5 + [3] * 4 + [-1] * 3 + [1] + [-1] + [3] * 2


def _original_ops(name: str):  # type: ignore[no-untyped-def]
    op = getattr(lora_ops, name)
    return getattr(op, "__wrapped_original__", op)


def _wrapper(token_slots: list[int]) -> PunicaWrapperCPU:
    wrapper = PunicaWrapperCPU(max_num_batched_tokens=64, max_batches=8, device="cpu")
    tokens = torch.tensor(token_slots)
    wrapper._token_lora_indices[: len(tokens)].copy_(tokens)
    wrapper.indices_len[:] = [len(tokens)] * 4
    wrapper._update_prefill_metadata(wrapper.token_lora_indices)
    wrapper.is_prefill = True
    setattr(wrapper, fused_lora._SEGMENTS, fused_lora.segments_of(wrapper.token_lora_indices))
    return wrapper


def _weights(gen: torch.Generator) -> tuple[tuple[torch.Tensor, ...], tuple[torch.Tensor, ...]]:
    a = tuple(torch.randn(SLOTS, 1, RANK, HIDDEN, generator=gen) for _ in SLICES)
    b = tuple(torch.randn(SLOTS, 1, out, RANK, generator=gen) for out in SLICES)
    return a, b


def _reference(token_slots, y, x, a, b):  # type: ignore[no-untyped-def]
    """Per token, the LoRA product vLLM means: y += x @ A[slot].T @ B[slot].T, per slice."""
    want = y.clone()
    for row, slot in enumerate(token_slots):
        if slot < 0:
            continue
        col = 0
        for a_s, b_s, out in zip(a, b, SLICES, strict=True):
            want[row, col : col + out] += x[row] @ a_s[slot, 0].T @ b_s[slot, 0].T
            col += out
    return want


def test_fused_equals_the_per_slice_product_and_skips_rows_without_adapter() -> None:
    gen = torch.Generator().manual_seed(0)
    n = len(TOKEN_SLOTS)
    a, b = _weights(gen)
    x = torch.randn(n, HIDDEN, generator=gen)
    y0 = torch.randn(n, sum(SLICES) + 5, generator=gen)  # padded wider than the slices

    fused = fused_lora.wrap_add_lora_linear(PunicaWrapperCPU.add_lora_linear)
    got = y0.clone()
    fused(_wrapper(TOKEN_SLOTS), got, x, a, b, 1.0, SLICES)

    want = _reference(TOKEN_SLOTS, y0, x, a, b)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    no_adapter = torch.tensor(TOKEN_SLOTS) < 0
    assert torch.equal(got[no_adapter], y0[no_adapter])  # bit for bit untouched
    assert torch.equal(got[:, sum(SLICES) :], y0[:, sum(SLICES) :])


def test_fused_matches_vllms_own_method_on_rows_with_an_adapter() -> None:
    """vLLM's per-slice method with its original ops is right wherever every row has an adapter
    (its ops misread slot -1 only), so compare there, batch of two adapters."""
    slots = [2] * 6 + [0] * 3 + [2] * 2
    gen = torch.Generator().manual_seed(1)
    a, b = _weights(gen)
    x = torch.randn(len(slots), HIDDEN, generator=gen)
    y0 = torch.randn(len(slots), sum(SLICES), generator=gen)
    wrapper = _wrapper(slots)

    fused = fused_lora.wrap_add_lora_linear(PunicaWrapperCPU.add_lora_linear)
    got = y0.clone()
    fused(wrapper, got, x, a, b, 1.0, SLICES)

    want = y0.clone()
    shrink, expand = _original_ops("sgmv_shrink"), _original_ops("sgmv_expand_slice")
    meta = wrapper.prefill_metadata
    col = 0
    for a_s, b_s, out in zip(a, b, SLICES, strict=True):
        buffer = torch.zeros(len(slots), RANK)
        shrink(x, a_s, buffer, *meta, 1.0)
        expand(buffer, b_s, want, *meta, col, out, True)
        col += out
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_weights_written_into_a_slot_are_used_at_the_next_call() -> None:
    gen = torch.Generator().manual_seed(2)
    slots = [1] * 4
    a, b = _weights(gen)
    x = torch.randn(4, HIDDEN, generator=gen)
    wrapper = _wrapper(slots)
    fused = fused_lora.wrap_add_lora_linear(PunicaWrapperCPU.add_lora_linear)
    first = torch.zeros(4, sum(SLICES))
    fused(wrapper, first, x, a, b, 1.0, SLICES)

    # vLLM loads another adapter into slot 1 by writing the stacked tensors in place.
    for t in (*a, *b):
        t[1].copy_(torch.randn(t[1].shape, generator=gen))
    second = torch.zeros(4, sum(SLICES))
    fused(wrapper, second, x, a, b, 1.0, SLICES)

    torch.testing.assert_close(second, _reference(slots, torch.zeros(4, sum(SLICES)), x, a, b))
    assert not torch.allclose(first, second)


def test_shapes_it_was_not_written_for_go_to_vllms_method() -> None:
    calls = []

    def original(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(args)

    fused = fused_lora.wrap_add_lora_linear(original)
    gen = torch.Generator().manual_seed(3)
    a, b = _weights(gen)
    wrapper = _wrapper([1] * 4)
    x = torch.randn(5, HIDDEN, generator=gen)  # 5 rows against 4 mapped tokens
    fused(wrapper, torch.zeros(5, sum(SLICES)), x, a, b, 1.0, SLICES)
    setattr(wrapper, fused_lora._SEGMENTS, None)  # metadata not (yet) computed by the wrapper
    fused(wrapper, torch.zeros(4, sum(SLICES)), x[:4], a, b, 1.0, SLICES)
    assert len(calls) == 2


def test_segments_are_runs_of_one_slot() -> None:
    assert fused_lora.segments_of(torch.tensor([-1, -1, 2, 2, 2, -1, 0])) == [
        (0, 2, -1),
        (2, 5, 2),
        (5, 6, -1),
        (6, 7, 0),
    ]
    assert fused_lora.segments_of(torch.tensor([], dtype=torch.long)) == []
