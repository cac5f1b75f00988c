"""The numeric precision a run trains in: trained weights stay fp32; "auto" autocasts to bf16
where the hardware has native bf16 (CUDA with bf16, or CPUs with AVX512-BF16/AMX), fp16 with a
grad scaler on older GPUs, and stays fp32 elsewhere: on an AVX2-only CPU bf16 autocast ran ~30x
slower than fp32."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext

import torch
from torch import nn


def resolve_precision(precision: str, device: torch.device) -> str:
    """The precision to train with on `device`: "auto" becomes a concrete choice."""
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "bf16-autocast" if torch.cuda.is_bf16_supported() else "fp16-autocast"
    return "bf16-autocast" if cpu_has_native_bf16() else "fp32"


def cpu_has_native_bf16() -> bool:
    """Whether this CPU multiplies bf16 in hardware (AVX512-BF16 or AMX); without it, bf16
    matmuls are emulated and far slower than fp32."""
    cpu = getattr(torch, "cpu", None)
    return any(
        bool(getattr(cpu, probe, lambda: False)())
        for probe in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    )


_AUTOCAST_DTYPES = {"bf16-autocast": torch.bfloat16, "fp16-autocast": torch.float16}


def autocast_for(precision: str, device: torch.device) -> Callable[[], AbstractContextManager]:
    """A factory of the autocast context for a resolved `precision` (a no-op for fp32)."""
    dtype = _AUTOCAST_DTYPES.get(precision)
    if dtype is None:
        return nullcontext
    return lambda: torch.autocast(device.type, dtype=dtype)


def attention_for(precision: str, device: torch.device) -> str:
    """The transformers attention implementation to train with. On CPU under bf16 autocast the
    explicit one: PyTorch's CPU flash-attention backward in bf16 took 18% of a step, and the
    step ran 12-19% faster without it (fp32 ran the same either way)."""
    return "eager" if device.type == "cpu" and precision == "bf16-autocast" else "sdpa"


def store_frozen_weights_for(precision: str, model: nn.Module) -> None:
    """Keep every frozen weight of a LoRA-adapted linear layer in the autocast dtype: autocast
    would round it to that dtype on every forward anyway (same values, bit for bit), so this only
    drops the per-step copies (13% of a bf16 step on CPU) and halves those weights' memory once
    loaded. Norms, embeddings and the LoRA weights stay fp32, so the residual stream and the
    optimizer keep their precision."""
    dtype = _AUTOCAST_DTYPES.get(precision)
    if dtype is None:
        return
    from peft.tuners.lora import LoraLayer

    for module in model.modules():
        if isinstance(module, LoraLayer):
            weight = module.get_base_layer().weight
            if not weight.requires_grad:
                weight.data = weight.data.to(dtype)
