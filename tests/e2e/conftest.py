"""End-to-end fixtures: peft adapters made in the test with random, non-zero weights. The ONE real
vLLM server (the embedded model) of the whole test session is `vllm_server` in
tests/e2e/service_fixtures.py, shared with tests/browser."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from adapters.selfcheck import make_random_adapter as make_random_adapter_at


def rename_adapter_modules(adapter_dir: Path, out_dir: Path) -> Path:
    """A copy of the adapter whose weights name module paths the base model does not have
    (`model.layers.N` -> `model.blocks.N`); the last names (q_proj, ...) stay valid for vLLM."""
    from safetensors.torch import load_file, save_file

    tensors = load_file(adapter_dir / "adapter_model.safetensors")
    renamed = {k.replace(".model.layers.", ".model.blocks."): v for k, v in tensors.items()}
    assert renamed.keys() != tensors.keys()
    out_dir.mkdir(parents=True, exist_ok=True)
    save_file(renamed, out_dir / "adapter_model.safetensors")
    config = json.loads((adapter_dir / "adapter_config.json").read_text())
    (out_dir / "adapter_config.json").write_text(json.dumps(config))
    return out_dir


@pytest.fixture(scope="session")
def make_random_adapter(base_model_dir: Path) -> Iterator[Callable[..., Path]]:
    """`make_random_adapter(dir, seed, rank=8)` -> the saved adapter folder. The base model is
    loaded once per session, on first use."""
    loaded: dict[str, Any] = {}

    def make(out_dir: Path, seed: int, rank: int = 8) -> Path:
        if "model" not in loaded:
            import torch
            from transformers import AutoModelForCausalLM

            loaded["model"] = AutoModelForCausalLM.from_pretrained(
                base_model_dir, dtype=torch.float32, local_files_only=True
            )
        return make_random_adapter_at(
            Path(out_dir), seed, base_model_dir, rank=rank, base_model=loaded["model"]
        )

    yield make
    loaded.clear()
