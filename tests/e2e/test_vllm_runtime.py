"""The real vLLM server under LocalVLLMServer: adapters load, prove they change the model (or fail
the canary with the reason), and a too-large rank is refused before vLLM sees it. A killed vLLM
coming back with its adapters is walked through `docadapt serve` itself, with the registry's real
reload, in test_serve_process.py (one restart per session is enough of the suite's time)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from adapters.peft_validation import validate_peft_adapter
from adapters.vllm.checks import canary_check
from adapters.vllm.client import VLLMClient
from adapters.vllm.loader import AdapterLoader, AdapterRefused
from adapters.vllm.server import LocalVLLMServer
from tests.e2e.conftest import rename_adapter_modules

pytestmark = pytest.mark.e2e

QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


async def _chat(client: VLLMClient, model: str) -> str:
    data = await client.chat(
        {"model": model, "messages": QUESTION, "max_tokens": 12, "temperature": 0.0}
    )
    return str(data["choices"][0]["message"]["content"])


def _loader(server: LocalVLLMServer, client: VLLMClient, tmp_path: Path) -> AdapterLoader:
    return AdapterLoader(
        client, max_lora_rank=server.config.max_lora_rank, lock_dir=tmp_path / "locks"
    )


def test_random_adapter_loads_passes_canary_and_changes_answers(
    vllm_server: LocalVLLMServer, make_random_adapter: Callable[..., Path], tmp_path: Path
) -> None:
    adapter = make_random_adapter(tmp_path / "rand", seed=1)

    async def run() -> None:
        client = vllm_server.client()
        try:
            loader = _loader(vllm_server, client, tmp_path)
            assert await loader.load("rt-rand-1", adapter) == "loaded"
            assert await loader.load("rt-rand-1", adapter) == "already_loaded"
            assert "rt-rand-1" in await client.models()
            result = await canary_check(client, "rt-rand-1")
            assert result.passed, result.reason
            assert result.max_abs_diff > 0.01
            base_answer, tuned_answer = await asyncio.gather(
                _chat(client, "base"), _chat(client, "rt-rand-1")
            )
            assert "Paris" in base_answer
            assert tuned_answer != base_answer
            assert await loader.unload("rt-rand-1") is True
            assert "rt-rand-1" not in await client.models()
        finally:
            await client.aclose()

    asyncio.run(run())


def test_adapter_whose_modules_match_nothing_fails_the_canary(
    vllm_server: LocalVLLMServer,
    make_random_adapter: Callable[..., Path],
    base_model_dir: Path,
    tmp_path: Path,
) -> None:
    intact = make_random_adapter(tmp_path / "intact", seed=2)
    renamed = rename_adapter_modules(intact, tmp_path / "renamed")
    # The import path refuses it before loading...
    problems = validate_peft_adapter(renamed, base_model_dir, max_lora_rank=16)
    assert any("does not exist in the base model" in p for p in problems), problems

    async def run() -> None:
        client = vllm_server.client()
        try:
            # ...and vLLM itself loads it "successfully" and serves the base model: the canary
            # is what turns that into a failure with the reason.
            await _loader(vllm_server, client, tmp_path).load("rt-renamed", renamed)
            result = await canary_check(client, "rt-renamed")
            assert not result.passed
            assert result.max_abs_diff == 0.0
            assert "target modules match no layer of the base model" in result.reason
        finally:
            await client.aclose()

    asyncio.run(run())


def test_rank_above_the_server_maximum_is_refused_before_loading(
    vllm_server: LocalVLLMServer, make_random_adapter: Callable[..., Path], tmp_path: Path
) -> None:
    adapter = make_random_adapter(tmp_path / "r32", seed=3, rank=32)

    async def run() -> None:
        client = vllm_server.client()
        try:
            with pytest.raises(AdapterRefused, match="rank 32 is greater than .* 16"):
                await _loader(vllm_server, client, tmp_path).load("rt-rank32", adapter)
            assert "rt-rank32" not in await client.models()
            assert await client.is_ready()
        finally:
            await client.aclose()

    asyncio.run(run())
