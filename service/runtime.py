"""Everything the service builds once at start and shares: settings, database, storage, the base
model's tokenizer, the vLLM connection and the worker processes. Built by the app's lifespan
(service.main) — never at import time."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from service.config import Settings
from service.db.session import make_engine, make_session_factory, migrate
from service.security import resolve_admin_key
from service.storage import LocalStorage

log = logging.getLogger("docadapt")


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    session_factory: sessionmaker[Session]
    storage: LocalStorage
    admin_key: str
    model_dir: Path | None = None
    tokenizer: Any = None
    # Set by start_model_services when a vLLM is configured or started.
    vllm: Any = None  # adapters.vllm_client.VLLMClient
    vllm_server: Any = None  # adapters.vllm.LocalVLLMServer (only when we started it)
    adapter_loader: Any = None  # adapters.vllm.AdapterLoader
    adapters_enabled: bool = True
    adapters_disabled_reason: str | None = None
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    extras: dict[str, Any] = field(default_factory=dict)

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer.encode(text, add_special_tokens=False))


def build_core(settings: Settings) -> Runtime:
    """Database (migrated), storage, admin key and base model tokenizer."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
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
    from adapters.base_model import load_tokenizer, materialize_base_model

    model_dir = materialize_base_model(settings.data_dir, settings.base_model_path)
    return Runtime(
        settings=settings,
        engine=engine,
        session_factory=make_session_factory(engine),
        storage=LocalStorage(settings.data_dir / "files"),
        admin_key=admin_key,
        model_dir=model_dir,
        tokenizer=load_tokenizer(model_dir),
    )


def spawn_workers(runtime: Runtime, count: int) -> None:
    """Start `docadapt worker` processes that share this service's database and vLLM."""
    env = dict(os.environ)
    env["DOCADAPT_DATA_DIR"] = str(runtime.settings.data_dir)
    env["DOCADAPT_DATABASE_URL"] = runtime.settings.sqlalchemy_url
    if runtime.settings.base_model_path:
        env["DOCADAPT_BASE_MODEL_PATH"] = str(runtime.settings.base_model_path)
    if runtime.extras.get("vllm_url"):
        # Workers use this service's vLLM (started here or remote) and never start their own.
        env["DOCADAPT_VLLM_URL"] = runtime.extras["vllm_url"]
        if runtime.extras.get("vllm_api_key"):
            env["DOCADAPT_VLLM_API_KEY"] = runtime.extras["vllm_api_key"]
        block_size = runtime.vllm_server and runtime.vllm_server.config.resolved_block_size
        if block_size:
            env["DOCADAPT_VLLM_BLOCK_SIZE"] = str(block_size)
    log_dir = runtime.settings.data_dir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        out = open(log_dir / f"worker-{i}.log", "ab")  # noqa: SIM115 - handed to the child
        proc = subprocess.Popen(
            [sys.executable, "-m", "service.cli", "worker"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        runtime.workers.append(proc)
        log.info("started worker %d (pid %d)", i, proc.pid)


def stop_workers(runtime: Runtime, timeout: float = 20.0) -> None:
    for proc in runtime.workers:
        if proc.poll() is None:
            proc.terminate()
    for proc in runtime.workers:
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
    runtime.workers.clear()
