"""Start and stop what serves the model: a local vLLM child process (or a remote vLLM), the
adapter registry's reload into it, and the isolation self-check."""

from __future__ import annotations

import logging

from adapters.vllm_client import VLLMClient
from service.runtime import Runtime

log = logging.getLogger("docadapt")


async def start_model_services(runtime: Runtime) -> None:
    settings = runtime.settings
    api_key = settings.vllm_api_key.get_secret_value() if settings.vllm_api_key else None
    if settings.vllm_url:
        url = settings.vllm_url
    elif settings.start_vllm:
        url = await _start_local_vllm(runtime)
    else:
        log.warning("no vLLM configured: model requests will answer 503")
        return
    runtime.extras["vllm_url"] = url
    runtime.vllm = VLLMClient(url, api_key=api_key)


async def _start_local_vllm(runtime: Runtime) -> str:
    raise RuntimeError("local vLLM start is wired in a later step")


async def stop_model_services(runtime: Runtime) -> None:
    if runtime.vllm is not None:
        await runtime.vllm.aclose()
    if runtime.vllm_server is not None:
        runtime.vllm_server.stop()
