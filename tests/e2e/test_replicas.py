"""Two real vLLM servers as one serving tier (adapters.vllm.replicas): the service is given both
URLs; an imported adapter is loaded on each, queries through the API reach both and answer what
each replica answers directly; one replica is killed under queries (none fails), its supervisor
starts it again, and the keeper puts the adapter back on it."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from adapters.vllm.client import VLLMClient
from adapters.vllm.config import VLLMServerConfig, cpu_share, is_vllm_cpu_build
from adapters.vllm.server import LocalVLLMServer
from service.main import create_app
from tests.e2e.service_fixtures import LiveService
from tests.e2e.test_query_api import import_adapter

pytestmark = pytest.mark.e2e

PROMPT = "The capital of France is"


@pytest.fixture(scope="module")
def second_vllm(session_dir: Path, base_model_dir: Path, vllm_server: Any) -> Iterator[Any]:
    """A second vLLM like the session's, with its key, on the other CPU (vllm-cpu)."""
    env = {"VLLM_CPU_OMP_THREADS_BIND": str(cpu_share(1, 2))} if is_vllm_cpu_build() else {}
    config = VLLMServerConfig(
        model_dir=base_model_dir,
        data_dir=session_dir / "vllm-data-2",
        max_lora_rank=16,
        max_loras=4,
        max_model_len=8192,
        kv_cache_gb=2,
        start_timeout_s=900,
        api_key=vllm_server.config.api_key,
        env=env,
    )
    server = LocalVLLMServer(config)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def replica_service(
    make_settings: Any, vllm_server: Any, second_vllm: Any
) -> Iterator[LiveService]:
    settings = make_settings(
        vllm_url=f"{vllm_server.url},{second_vllm.url}",
        vllm_api_key=vllm_server.config.api_key,
        vllm_block_size=vllm_server.config.resolved_block_size,
        vllm_isolation_check=False,
        vllm_keeper_interval_s=2.0,
    )
    with TestClient(create_app(settings)) as client:
        yield LiveService(client, settings)


def _direct(server: Any, model: str) -> tuple[list[str], str]:
    """The replica's own model list and its answer to PROMPT under `model` (temperature 0)."""

    async def go() -> tuple[list[str], str]:
        client = VLLMClient(server.url, api_key=server.config.api_key)
        try:
            models = await client.models()
            out = await client.completion(
                {"model": model, "prompt": PROMPT, "max_tokens": 8, "temperature": 0}
            )
            return models, out["choices"][0]["text"]
        finally:
            await client.aclose()

    return asyncio.run(go())


def _ask_many(svc: LiveService, auth: dict[str, str], model: str, n: int) -> list[str]:
    def ask(_: int) -> str:
        r = svc.client.post(
            "/v1/completions",
            headers=auth,
            json={"model": model, "prompt": PROMPT, "max_tokens": 8, "temperature": 0},
        )
        assert r.status_code == 200, r.text
        return r.json()["choices"][0]["text"]

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(ask, range(n)))


def _served_name(svc: LiveService, adapter_id: str) -> str:
    from service.db.tables import Adapter

    with svc.client.app.state.runtime.session_factory() as session:
        adapter = session.get(Adapter, adapter_id)
        assert adapter is not None
        return adapter.served_name


def _sent(svc: LiveService) -> list[int]:
    return [r.sent for r in svc.client.app.state.runtime.vllm.replicas.replicas]


def test_an_adapter_answers_through_each_replica_and_survives_a_killed_one(
    replica_service: LiveService,
    vllm_server: Any,
    second_vllm: Any,
    make_random_adapter: Any,
    tmp_path: Path,
) -> None:
    svc = replica_service
    auth = svc.new_workspace("replicas")
    r = import_adapter(svc, auth, make_random_adapter(tmp_path / "ad", seed=21), "ops")
    assert r.status_code == 201, r.text
    served = _served_name(svc, r.json()["id"])
    models_a, answer_a = _direct(vllm_server, served)
    models_b, answer_b = _direct(second_vllm, served)
    assert served in models_a and served in models_b  # loaded on every replica
    assert answer_a == answer_b  # the same weights on both

    before = _sent(svc)
    answers = _ask_many(svc, auth, "ops", 8)
    assert set(answers) == {answer_a}
    after = _sent(svc)
    assert all(b > a for a, b in zip(before, after, strict=True)), (before, after)

    # Kill the second replica's whole process group, as a crash; queries go on.
    os.killpg(os.getpgid(second_vllm.pid), signal.SIGKILL)
    assert set(_ask_many(svc, auth, "ops", 6)) == {answer_a}

    # Its supervisor starts it again on the same port; the keeper loads the adapter back.
    deadline = time.monotonic() + 900
    while True:
        try:
            models_b, answer_b = _direct(second_vllm, served)
            if served in models_b:
                break
        except Exception:  # noqa: BLE001 - down or starting
            pass
        assert time.monotonic() < deadline, "the restarted replica never got the adapter back"
        time.sleep(2)
    assert answer_b == answer_a
    before = _sent(svc)
    assert set(_ask_many(svc, auth, "ops", 8)) == {answer_a}
    after = _sent(svc)
    assert all(b > a for a, b in zip(before, after, strict=True)), (before, after)
