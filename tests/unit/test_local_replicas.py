"""`DOCADAPT_VLLM_REPLICAS=N` (docadapt serve --vllm-replicas N): N local vLLM children, one key,
one log and one share of the CPUs each, and one client that routes over all of them. The
children are stood in for here (what they are started with is the point); the real processes are
tests/e2e/test_stack.py (separate processes behind the API)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from adapters.vllm.routing import ReplicaClient
from service.core import model_services
from service.core.startup import Startup


class _Child:
    started: list[_Child] = []

    def __init__(self, config: Any, **_: Any) -> None:
        self.config = config
        self.url = f"http://127.0.0.1:{9100 + len(_Child.started)}"
        _Child.started.append(self)

    async def astart(self) -> None:
        return None


def test_n_local_replicas_share_a_key_and_split_the_cpus(
    monkeypatch: pytest.MonkeyPatch, make_settings: Any, tmp_path: Path
) -> None:
    _Child.started = []
    monkeypatch.setattr(model_services, "LocalVLLMServer", _Child)
    monkeypatch.setattr(model_services, "is_vllm_cpu_build", lambda: True)
    monkeypatch.setattr(model_services, "cpu_share", lambda i, n: f"cpu{i}of{n}")
    settings = make_settings(start_vllm=True, vllm_replicas=2)

    class _Runtime:
        model_dir = tmp_path

    runtime: Any = _Runtime()
    runtime.settings = settings
    runtime.extras = {}
    urls, key = asyncio.run(model_services._start_local(runtime, Startup()))
    first, second = _Child.started
    assert urls == [first.url, second.url] and runtime.vllm_server is first
    assert runtime.extras["vllm_servers"] == [first, second]
    assert first.config.api_key == second.config.api_key == key and key
    assert first.config.resolved_log_path != second.config.resolved_log_path
    assert [c.config.env["VLLM_CPU_OMP_THREADS_BIND"] for c in _Child.started] == [
        "cpu0of2",
        "cpu1of2",
    ]

    async def client_type() -> type:
        client = model_services.connect(urls, api_key=key)
        await client.aclose()
        return type(client)

    assert asyncio.run(client_type()) is ReplicaClient
