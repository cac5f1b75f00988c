"""`docadapt perf augment --parts teacher`: augmentation throughput on the serving vLLM (float32,
LoRA on: the default teacher) against a teacher-only vLLM (DOCADAPT_TEACHER_VLLM_DTYPE, LoRA
off), both started here as `docadapt serve` starts them and both up for the whole run, the
throughput measurement alternated between them `repeats` times; medians and their ratio."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

from service.core.config import Settings

Measure = Callable[[str], Awaitable[dict[str, Any]]]


async def compare_teachers(
    settings: Settings, dtype: str, repeats: int, measure: Measure, log: Callable[[str], None]
) -> dict[str, Any]:
    """`measure(url)` (a throughput measurement) on each server in turn, `repeats` times."""
    from adapters.base_model import materialize_base_model
    from adapters.vllm.config import VLLMServerConfig
    from adapters.vllm.server import LocalVLLMServer
    from service.core.model_services import teacher_server_config

    model_dir = materialize_base_model(settings.data_dir, settings.base_model_path)
    servers = {
        "serving": LocalVLLMServer(
            VLLMServerConfig.from_settings(settings, model_dir, api_key=None, port=0, warmup=False)
        ),
        "teacher": LocalVLLMServer(teacher_server_config(settings, model_dir, None, dtype)),
    }
    for name, server in servers.items():  # not the logs of a service on the same data folder
        server.config.log_path = settings.data_dir / "logs" / f"perf-{name}-vllm.log"
    started = time.perf_counter()
    try:
        await asyncio.gather(*(s.astart() for s in servers.values()))
        log(f"both vLLMs up in {time.perf_counter() - started:.0f} s")
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name in servers}
        for i in range(repeats):
            for name, server in servers.items():
                runs[name].append(await measure(server.url))
                tps = {s: runs[name][-1][s]["tokens_per_second"] for s in ("global", "local")}
                log(f"run {i + 1}/{repeats}, {name}: {tps} tokens/s")
    finally:
        for server in servers.values():
            await asyncio.to_thread(server.stop)
    return summarize(runs, settings.vllm_dtype, dtype)


def summarize(
    runs: dict[str, list[dict[str, Any]]], serving_dtype: str, dtype: str
) -> dict[str, Any]:
    """Per server and strategy: every run's tokens/s and the median; the teacher's speed-up."""
    out: dict[str, Any] = {
        "serving": f"{serving_dtype}, LoRA on (the default teacher)",
        "teacher": f"{dtype}, LoRA off (DOCADAPT_TEACHER_VLLM_DTYPE={dtype})",
    }
    for name, results in runs.items():
        for strategy in ("global", "local"):
            figures = [r[strategy]["tokens_per_second"] for r in results]
            out[f"{name}_{strategy}_tokens_per_second"] = figures
            out[f"{name}_{strategy}_median"] = statistics.median(figures)
    for strategy in ("global", "local"):
        out[f"{strategy}_speedup"] = round(
            out[f"teacher_{strategy}_median"] / max(out[f"serving_{strategy}_median"], 1e-9), 2
        )
    return out
