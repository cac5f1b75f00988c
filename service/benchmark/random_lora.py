"""A LoRA adapter with random weights, for the benchmarks that measure serving (`perf query`,
`perf load`): what an adapter costs to serve does not depend on what it learned."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


def make_random_lora(
    model_dir: Path,
    out_dir: Path,
    *,
    r: int = 8,
    seed: int = 0,
    target_modules: Sequence[str] = ("q_proj", "v_proj"),
) -> Path:
    """Save a peft LoRA adapter for the model in `model_dir` with random, non-zero weights.

    Both LoRA matrices keep their random initialisation (peft's `init_lora_weights=False`), so the
    adapter changes the model's output. Returns `out_dir`.
    """
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    config = LoraConfig(
        r=r,
        lora_alpha=2 * r,
        target_modules=list(target_modules),
        init_lora_weights=False,
        task_type="CAUSAL_LM",
    )
    get_peft_model(model, config).save_pretrained(out_dir)
    return out_dir
