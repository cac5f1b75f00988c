"""Everything the service builds once at start and shares: settings, database, storage, the base
model's tokenizer, the vLLM connection and the worker processes. Built by the app's lifespan
(service.main) — never at import time."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from adapters.tokens import TokenCounter
from service.core.config import Settings
from service.core.limits import RateLimiter
from service.core.security import resolve_admin_key, resolve_secret_key
from service.core.storage import Storage, open_storage, private_dir, storage_env
from service.db.session import make_engine, make_session_factory, migrate

log = logging.getLogger("docadapt")


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    session_factory: sessionmaker[Session]
    storage: Storage
    admin_key: str
    secret_key: str = ""  # seals secrets at rest (service.core.security.seal)
    model_dir: Path | None = None
    base_model_name: str = ""  # what responses call the base model; never a path
    tokenizer: Any = None
    # Set by start_model_services when a vLLM is configured or started.
    vllm: Any = None  # adapters.vllm.client.VLLMClient
    vllm_server: Any = None  # adapters.vllm.server.LocalVLLMServer (only when we started it)
    adapter_loader: Any = None  # adapters.vllm.loader.AdapterLoader
    adapters_enabled: bool = True
    adapters_disabled_reason: str | None = None
    worker_pool: Any = None  # service.jobs.pool.WorkerPool (when `docadapt serve` runs workers)
    limiter: RateLimiter = field(default_factory=RateLimiter)  # per-key rate limits
    extras: dict[str, Any] = field(default_factory=dict)

    def count_tokens(self, text: str) -> int:
        return TokenCounter(self.tokenizer).text(text)


def build_core(settings: Settings, phase: Callable[[str], None] | None = None) -> Runtime:
    """Database (migrated), storage (checked), admin key and base model tokenizer; `phase` hears
    "converting the model" as that (on a first start, slow) step begins."""
    private_dir(settings.data_dir)
    storage = open_storage(settings)
    storage.check()  # a bucket that is unreachable or refuses the credentials stops the start
    engine = make_engine(settings.sqlalchemy_url)
    migrate(engine)
    admin_key, generated = resolve_admin_key(settings)
    if generated:
        # Printed once, on the start that generated it; later starts read the file.
        print(
            f"docadapt: generated admin key {admin_key} "
            f"(kept in {settings.data_dir / 'admin_key'}, readable by the owner only)",
            flush=True,
        )
    from adapters.base_model import base_model_name, load_tokenizer, materialize_base_model

    if phase is not None:
        phase("converting the model")
    model_dir = materialize_base_model(settings.data_dir, settings.base_model_path)
    return Runtime(
        settings=settings,
        engine=engine,
        session_factory=make_session_factory(engine),
        storage=storage,
        admin_key=admin_key,
        secret_key=resolve_secret_key(settings),
        model_dir=model_dir,
        base_model_name=settings.base_model_name or base_model_name(model_dir),
        tokenizer=load_tokenizer(model_dir),
        limiter=RateLimiter.from_settings(settings),
    )


def start_worker_pool(runtime: Runtime, count: int) -> None:
    """Start `count` supervised `docadapt worker` processes that share this service's database
    and vLLM (service.jobs.pool)."""
    from service.jobs.pool import WorkerPool, worker_env

    server = runtime.vllm_server
    env = worker_env(
        data_dir=runtime.settings.data_dir,
        database_url=runtime.settings.sqlalchemy_url,
        base_model_path=runtime.settings.base_model_path,
        vllm_url=runtime.extras.get("vllm_url"),
        vllm_api_key=runtime.extras.get("vllm_api_key"),
        block_size=server.config.resolved_block_size if server else None,
        teacher_vllm_url=runtime.extras.get("teacher_vllm_url"),
    )
    env.update(storage_env(runtime.settings))  # workers read and write the same files
    runtime.worker_pool = WorkerPool(
        count, env, runtime.settings.data_dir / "logs", runtime.session_factory
    )
    runtime.worker_pool.start()


def stop_worker_pool(runtime: Runtime) -> None:
    if runtime.worker_pool is not None:
        runtime.worker_pool.stop()
        runtime.worker_pool = None
