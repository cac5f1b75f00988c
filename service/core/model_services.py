"""Start and stop what serves the model: local vLLM child processes (`vllm_replicas` of them) or
remote vLLM servers (one URL or several), one client over them (a `ReplicaClient` routes each
request to a replica that has its model), the adapter loader, the isolation self-check, and the
keeper that puts the registry's ready adapters back into any replica that lost them (a restarted
local child, a restarted or added remote server)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path

from sqlalchemy import select

from adapters.artifacts_s3 import MANIFEST
from adapters.vllm.config import VLLMServerConfig, cpu_share, is_vllm_cpu_build
from adapters.vllm.loader import AdapterLoader
from adapters.vllm.replicas import split_urls
from adapters.vllm.routing import connect
from adapters.vllm.server import LocalVLLMServer
from service.core.config import Settings
from service.core.runtime import Runtime
from service.core.startup import Startup, last_log_line
from service.core.storage import storage_env, vllm_adapter_root
from service.db.tables import Adapter
from service.training.registry import reload_ready_adapters

log = logging.getLogger("docadapt")


async def start_model_services(runtime: Runtime, startup: Startup | None = None) -> None:
    settings = runtime.settings
    startup = startup or Startup()
    api_key = settings.vllm_api_key.get_secret_value() if settings.vllm_api_key else None
    if settings.vllm_url:
        urls = split_urls(settings.vllm_url)
    elif settings.start_vllm:
        urls, api_key = await _start_local(runtime, startup)
    else:
        log.warning("no vLLM configured: model requests will answer 503")
        return
    # Workers get the same list (service.jobs.pool passes it on as DOCADAPT_VLLM_URL).
    runtime.extras["vllm_url"] = ",".join(urls)
    runtime.extras["vllm_api_key"] = api_key
    runtime.vllm = connect(
        urls,
        api_key=api_key,
        copies=settings.vllm_adapter_copies,
        resolver=_resolver(runtime) if len(urls) > 1 and settings.vllm_adapter_copies else None,
    )
    runtime.adapter_loader = AdapterLoader(
        runtime.vllm,
        max_lora_rank=settings.vllm_max_lora_rank,
        lock_dir=settings.data_dir / "locks",
        remote_root=vllm_adapter_root(settings),
    )
    from service.serving.records import build_query_service

    runtime.extras["query_service"] = build_query_service(runtime)
    if settings.vllm_isolation_check:
        startup.begin("isolation check")
        await _isolation_self_check(runtime)
    startup.begin("loading adapters")
    await _reload(runtime)
    runtime.extras["keeper"] = asyncio.create_task(_keeper(runtime))


async def _start_local(runtime: Runtime, startup: Startup) -> tuple[list[str], str | None]:
    """Start `vllm_replicas` local vLLM children (one key for all, each on its own CPUs) and
    wait for all of them; returns their URLs and the key."""
    settings = runtime.settings
    count = settings.vllm_replicas
    key = secrets.token_urlsafe(24)
    servers: list[LocalVLLMServer] = []
    for index in range(count):
        config = VLLMServerConfig.from_settings(settings, runtime.model_dir, api_key=key)
        if vllm_adapter_root(settings):  # the children fetch adapters from the same bucket
            config.env.update(storage_env(settings))
        if count > 1:
            config.log_path = settings.data_dir / "logs" / f"vllm-{index}.log"
            share = cpu_share(index, count)
            if share is not None and is_vllm_cpu_build():
                config.env["VLLM_CPU_OMP_THREADS_BIND"] = share
        log_path = config.resolved_log_path
        servers.append(
            LocalVLLMServer(
                config,
                on_restart=lambda: _reload(runtime),
                on_phase=(
                    (lambda phase, p=log_path: startup.begin(phase, lambda: last_log_line(p)))
                    if index == 0
                    else None
                ),
            )
        )
    teacher = _teacher_server(runtime, key)
    # Before they start: a shutdown meanwhile stops them.
    runtime.vllm_server = servers[0]
    runtime.extras["vllm_servers"] = servers + ([teacher] if teacher else [])
    await asyncio.gather(*(server.astart() for server in runtime.extras["vllm_servers"]))
    if teacher is not None:
        runtime.extras["teacher_vllm_url"] = teacher.url
        runtime.extras["teacher_vllm_server"] = teacher
        log.info("teacher-only vLLM (%s) at %s", teacher.config.dtype, teacher.url)
    return [server.url for server in servers], key


def _teacher_server(runtime: Runtime, key: str) -> LocalVLLMServer | None:
    """The teacher-only vLLM of DOCADAPT_TEACHER_VLLM_DTYPE (None when not asked for)."""
    settings = runtime.settings
    if settings.teacher_vllm_dtype is None:
        return None
    return LocalVLLMServer(
        teacher_server_config(settings, runtime.model_dir, key, settings.teacher_vllm_dtype)
    )


def teacher_server_config(
    settings: Settings, model_dir: Path, key: str | None, dtype: str
) -> VLLMServerConfig:
    """A teacher-only vLLM: the base model in `dtype`, LoRA off, so no adapter ever runs on it
    and it needs no isolation check; augmentation jobs send their default teacher's requests
    there. `docadapt perf augment --parts teacher` starts the same one."""
    return VLLMServerConfig.from_settings(
        settings,
        model_dir,
        api_key=key,
        port=0,  # DOCADAPT_VLLM_PORT is the serving vLLM's
        dtype=dtype,
        enable_lora=False,
        served_model_name=settings.teacher_model,
        log_path=settings.data_dir / "logs" / "vllm-teacher.log",
        warmup=False,  # the warm-up compiles prompt log-probabilities, which a teacher never asks
    )


def _resolver(runtime: Runtime) -> Callable[[str], Awaitable[Path | str | None]]:
    """Where a ready adapter's files are, by served name (for loading on demand): a local
    folder, or with DOCADAPT_VLLM_ADAPTER_SOURCE=bucket the folder's s3:// URL."""
    root = vllm_adapter_root(runtime.settings)

    def find(name: str) -> Path | str | None:
        with runtime.session_factory() as session:
            row = session.scalars(
                select(Adapter).where(Adapter.served_name == name, Adapter.status == "ready")
            ).first()
            if row is None or not row.artifact_key:
                return None
            key = row.artifact_key
        try:
            if root:  # checked when it was activated; vLLM's plugin verifies what it fetches
                if not runtime.storage.exists(f"{key}/{MANIFEST}"):
                    raise FileNotFoundError(key)
                return f"{root}/{key}"
            # The storage's own folder, or a verified local copy of the bucket's.
            return runtime.storage.local_folder(key)
        except FileNotFoundError:
            log.error("ready adapter %s has no files in %s", name, runtime.storage.describe())
            return None

    async def resolve(name: str) -> Path | str | None:
        if not runtime.adapters_enabled:
            return None
        return await asyncio.to_thread(find, name)

    return resolve


async def _reload(runtime: Runtime) -> None:
    n = await reload_ready_adapters(
        runtime.session_factory, runtime.storage, runtime.adapter_loader
    )
    if n:
        log.info("loaded %d ready adapter(s) into vLLM", n)


async def _keeper(runtime: Runtime) -> None:
    """Every so often, put back any ready adapter vLLM does not have (it restarted)."""
    while True:
        await asyncio.sleep(runtime.settings.vllm_keeper_interval_s)
        try:
            if await runtime.vllm.is_ready():
                await _reload(runtime)
        except Exception as exc:  # noqa: BLE001 - keep watching
            log.warning("adapter keeper: %s", exc)


async def _isolation_self_check(runtime: Runtime) -> None:
    """A short mixed-batch check: if any request gets weights it did not ask for, serve no
    adapters (base and icl: still answer, on the base weights only)."""
    from adapters.selfcheck import run_isolation_self_check

    try:
        report = await run_isolation_self_check(runtime)
    except Exception as exc:  # noqa: BLE001 - an inconclusive check must not pass
        runtime.adapters_enabled = False
        runtime.adapters_disabled_reason = f"isolation self-check could not run: {exc}"
    else:
        runtime.adapters_enabled = report.passed
        if not report.passed:
            runtime.adapters_disabled_reason = f"isolation self-check failed: {report.summary()}"
    if runtime.adapters_enabled:
        log.info("start-up %s", report.summary())
    else:
        log.error("adapters disabled: %s", runtime.adapters_disabled_reason)


async def stop_model_services(runtime: Runtime) -> None:
    keeper = runtime.extras.pop("keeper", None)
    if keeper is not None:
        keeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await keeper
    query_service = runtime.extras.pop("query_service", None)
    if query_service is not None:
        await query_service.aclose()
    if runtime.vllm is not None:
        await runtime.vllm.aclose()
    servers = runtime.extras.pop("vllm_servers", None) or (
        [runtime.vllm_server] if runtime.vllm_server is not None else []
    )
    await asyncio.gather(*(asyncio.to_thread(server.stop) for server in servers))
