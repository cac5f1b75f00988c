"""Start and stop what serves the model: a local vLLM child process (or a remote vLLM), the
adapter loader, the isolation self-check, and the keeper that puts the registry's ready adapters
back into a vLLM that lost them (a restarted local child, or a restarted remote server)."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from adapters.vllm.client import VLLMClient
from adapters.vllm.config import VLLMServerConfig
from adapters.vllm.loader import AdapterLoader
from adapters.vllm.server import LocalVLLMServer
from service.core.runtime import Runtime
from service.core.startup import Startup, last_log_line
from service.training.registry import reload_ready_adapters

log = logging.getLogger("docadapt")

KEEPER_INTERVAL_S = 30.0


async def start_model_services(runtime: Runtime, startup: Startup | None = None) -> None:
    settings = runtime.settings
    startup = startup or Startup()
    api_key = settings.vllm_api_key.get_secret_value() if settings.vllm_api_key else None
    if settings.vllm_url:
        url = settings.vllm_url
    elif settings.start_vllm:
        config = VLLMServerConfig.from_settings(settings, runtime.model_dir)
        server = LocalVLLMServer(
            config,
            on_restart=lambda: _reload(runtime),
            on_phase=lambda phase: startup.begin(
                phase, lambda: last_log_line(config.resolved_log_path)
            ),
        )
        runtime.vllm_server = server  # before it starts: a shutdown meanwhile stops it
        await server.astart()
        url, api_key = server.url, server.config.api_key
    else:
        log.warning("no vLLM configured: model requests will answer 503")
        return
    runtime.extras["vllm_url"] = url
    runtime.extras["vllm_api_key"] = api_key
    runtime.vllm = VLLMClient(url, api_key=api_key)
    runtime.adapter_loader = AdapterLoader(
        runtime.vllm,
        max_lora_rank=settings.vllm_max_lora_rank,
        lock_dir=settings.data_dir / "locks",
    )
    from service.serving.records import build_query_service

    runtime.extras["query_service"] = build_query_service(runtime)
    if settings.vllm_isolation_check:
        startup.begin("isolation check")
        await _isolation_self_check(runtime)
    startup.begin("loading adapters")
    await _reload(runtime)
    runtime.extras["keeper"] = asyncio.create_task(_keeper(runtime))


async def _reload(runtime: Runtime) -> None:
    n = await reload_ready_adapters(
        runtime.session_factory, runtime.storage, runtime.adapter_loader
    )
    if n:
        log.info("loaded %d ready adapter(s) into vLLM", n)


async def _keeper(runtime: Runtime) -> None:
    """Every so often, put back any ready adapter vLLM does not have (it restarted)."""
    while True:
        await asyncio.sleep(KEEPER_INTERVAL_S)
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
    if runtime.vllm_server is not None:
        await asyncio.to_thread(runtime.vllm_server.stop)
