"""Run-time LoRA adapters in one vLLM: loaded and unloaded by name, one operation per name at a
time (in this process and across processes), refusing a rank vLLM would reject."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections import defaultdict
from pathlib import Path
from typing import Any, Literal

from filelock import AsyncFileLock

from adapters.peft_validation import adapter_rank
from adapters.vllm.client import VLLMClient, VLLMRequestError, VLLMUnavailable
from adapters.vllm.config import BASE_MODEL_NAME


class AdapterRefused(ValueError):
    """The adapter cannot be loaded into this vLLM (the message says why); nothing was sent."""


class AdapterLoadError(RuntimeError):
    """vLLM refused or failed to load the adapter; `detail` is its message."""

    def __init__(self, name: str, detail: str) -> None:
        super().__init__(f"vLLM could not load adapter {name!r}: {detail}")
        self.detail = detail


LoadOutcome = Literal["loaded", "already_loaded"]
_ADAPTER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")


class AdapterLoader:
    """Loads and unloads run-time LoRA adapters in one vLLM, one operation per name at a time.

    Names must be immutable: vLLM's prefix cache keys on the name, so one name must never point
    at other weights. Loading a name vLLM already has is therefore a success ("already_loaded").
    """

    def __init__(
        self,
        client: VLLMClient,
        *,
        max_lora_rank: int,
        lock_dir: Path | None = None,
        base_model_name: str = BASE_MODEL_NAME,
        remote_root: str | None = None,
    ) -> None:
        self.client = client
        # s3://bucket/prefix: vLLM is sent `remote_root/key` for adapters loaded with a storage
        # key (docadapt's vLLM plugin fetches it, adapters/vllm/remote_load.py); else local paths.
        self.remote_root = remote_root.rstrip("/") if remote_root else None
        self.max_lora_rank = max_lora_rank
        self.lock_dir = lock_dir
        self.base_model_name = base_model_name
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)

    @contextlib.asynccontextmanager
    async def _name_lock(self, name: str) -> Any:
        async with self._locks[name]:
            if self.lock_dir is None:
                yield
                return
            self.lock_dir.mkdir(parents=True, exist_ok=True)
            safe = re.sub(r"[^A-Za-z0-9._-]", "_", name)
            async with AsyncFileLock(str(self.lock_dir / f"adapter-{safe}.lock")):
                yield

    def check(self, name: str, adapter_dir: Path) -> None:
        """Raise AdapterRefused when vLLM would refuse the adapter (bad name, rank too high)."""
        if not _ADAPTER_NAME.match(name) or name == self.base_model_name:
            raise AdapterRefused(
                f"adapter name {name!r} is not allowed (letters, digits, '.', '_', ':', '-'; "
                f"at most 128 characters; not {self.base_model_name!r})"
            )
        if not (Path(adapter_dir) / "adapter_config.json").is_file():
            raise AdapterRefused(f"{adapter_dir} has no adapter_config.json")
        rank = adapter_rank(Path(adapter_dir))
        if rank > self.max_lora_rank:
            raise AdapterRefused(
                f"adapter rank {rank} is greater than the server's maximum LoRA rank "
                f"{self.max_lora_rank}"
            )

    def source(self, adapter_dir: Path, key: str | None = None) -> str:
        """What vLLM is told to load: the bucket URL of storage key `key` with a remote root,
        else the local folder's absolute path."""
        if self.remote_root and key:
            return f"{self.remote_root}/{key}"
        return str(Path(adapter_dir).resolve())

    async def load(self, name: str, adapter_dir: Path, *, key: str | None = None) -> LoadOutcome:
        """Load `adapter_dir` under `name`; idempotent for a name vLLM already serves. The local
        folder is what is checked; with `remote_root` and the folder's storage `key`, vLLM loads
        the same files from the bucket."""
        self.check(name, adapter_dir)
        async with self._name_lock(name):
            if name in await self.client.models():
                return "already_loaded"
            try:
                await self.client.load_lora_adapter(name, self.source(adapter_dir, key))
            except VLLMRequestError as exc:
                if "has already been loaded" in exc.detail:
                    return "already_loaded"
                raise AdapterLoadError(name, exc.detail) from exc
            except VLLMUnavailable as exc:
                # vLLM answers 500 for adapters its engine rejects; tell that from a dead server.
                if await self.client.is_ready():
                    raise AdapterLoadError(name, str(exc)) from exc
                raise
            return "loaded"

    async def unload(self, name: str) -> bool:
        """Unload `name`; False when vLLM did not have it."""
        async with self._name_lock(name):
            try:
                await self.client.unload_lora_adapter(name)
            except VLLMRequestError as exc:
                if exc.status_code == 404:
                    return False
                raise
            return True
