"""`docadapt perf query`: what a query costs with the documents in the prompt (`icl:`) versus an
adapter, on the same vLLM.

It drives `QueryService` (the code behind `/v1/chat/completions`: model resolution, ICL context,
guard, usage records) directly against vLLM, so what is timed is the real query path minus HTTP
and auth (milliseconds). It builds synthetic collections of about `context_tokens` tokens whose
text differs from the first token on (a run nonce), loads an adapter (a random peft LoRA unless one
already loaded is named), and measures, one request at a time:
- adapter: the question alone, answered by the adapter;
- ICL cold: the first query on each of several collections (their prefix is not in vLLM's cache);
- ICL warm: repeated queries on one collection (its prefix is cached).
- base: the question alone, answered by the base model (what an adapter token costs over a base
  token: the LoRA layers' own overhead).
The modes are interleaved (base, adapter, cold, warm, base, ...) so that changes in the machine's
load during the run affect all of them alike.
Every answer generates exactly `max_tokens` tokens (min_tokens = max_tokens, temperature 0), so the
modes differ only in their prompts. Reported: prompt tokens per query, latency p50/p95, and the
ratios with their targets: adapter p50 <= 0.15 of cold ICL p50 and <= 0.5 of warm ICL p50, an
adapter query <= 1.2x a base query, >= 20x fewer prompt tokens. The random adapter has the training
recipe's shape (r=16 on all seven linear layers), since that is what users serve.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from adapters.vllm.client import VLLMClient
from service.benchmark.perf_cli import perf_parser
from service.benchmark.query_collections import Fact, synthetic_collection
from service.benchmark.random_lora import make_random_lora
from service.serving.icl_context import PassageRef
from service.serving.serving import JSONResult, QueryService, UsageRecord

LATENCY_RATIO_TARGET = 0.15  # adapter p50 / cold ICL p50
WARM_RATIO_TARGET = 0.5  # adapter p50 / warm ICL p50
ADAPTER_OVER_BASE_TARGET = 1.2  # adapter p50 / base p50: the LoRA path's own cost
RECIPE_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
PROMPT_RATIO_TARGET = 20.0  # ICL prompt tokens / adapter prompt tokens
ADAPTER_ALIAS = "perf-adapter"  # the adapter's name as the benchmark's "user" calls it


@dataclass
class ModeStats:
    """Latency and token figures of one mode."""

    mode: str
    latencies_s: list[float] = field(default_factory=list)
    prompt_tokens: list[int] = field(default_factory=list)
    completion_tokens: list[int] = field(default_factory=list)

    @property
    def n(self) -> int:
        return len(self.latencies_s)

    @property
    def p50_s(self) -> float:
        return float(np.percentile(self.latencies_s, 50)) if self.latencies_s else float("nan")

    @property
    def p95_s(self) -> float:
        return float(np.percentile(self.latencies_s, 95)) if self.latencies_s else float("nan")

    @property
    def prompt_tokens_mean(self) -> float:
        return float(np.mean(self.prompt_tokens)) if self.prompt_tokens else float("nan")

    @property
    def completion_tokens_mean(self) -> float:
        return float(np.mean(self.completion_tokens)) if self.completion_tokens else float("nan")

    def summary(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "queries": self.n,
            "prompt_tokens_per_query": self.prompt_tokens_mean,
            "completion_tokens_per_query": self.completion_tokens_mean,
            "p50_s": self.p50_s,
            "p95_s": self.p95_s,
            "latencies_s": self.latencies_s,
        }


@dataclass
class QueryBenchmarkResult:
    """Everything `run_query_benchmark` measured."""

    vllm_url: str
    adapter: str  # vLLM-side adapter name
    adapter_made_here: bool
    context_tokens: int  # tokens of one collection's rendered documents
    max_tokens: int
    adapter_stats: ModeStats
    icl_cold: ModeStats
    icl_warm: ModeStats
    base_stats: ModeStats = field(default_factory=lambda: ModeStats("base"))

    @property
    def latency_ratio_cold(self) -> float:
        """Adapter p50 / cold ICL p50 (target <= LATENCY_RATIO_TARGET)."""
        return self.adapter_stats.p50_s / self.icl_cold.p50_s

    @property
    def latency_ratio_warm(self) -> float:
        """Adapter p50 / warm ICL p50 (target <= WARM_RATIO_TARGET)."""
        return self.adapter_stats.p50_s / self.icl_warm.p50_s

    @property
    def adapter_over_base(self) -> float:
        """Adapter p50 / base p50, same prompt (target <= ADAPTER_OVER_BASE_TARGET)."""
        return self.adapter_stats.p50_s / self.base_stats.p50_s

    def targets(self) -> dict[str, bool]:
        return {
            "cold": self.latency_ratio_cold <= LATENCY_RATIO_TARGET,
            "warm": self.latency_ratio_warm <= WARM_RATIO_TARGET,
            "adapter_over_base": self.adapter_over_base <= ADAPTER_OVER_BASE_TARGET,
            "prompt": self.prompt_token_ratio >= PROMPT_RATIO_TARGET,
        }

    @property
    def prompt_token_ratio(self) -> float:
        """ICL prompt tokens / adapter prompt tokens per query (target >= PROMPT_RATIO_TARGET)."""
        return self.icl_cold.prompt_tokens_mean / self.adapter_stats.prompt_tokens_mean

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for key in ("adapter_stats", "icl_cold", "icl_warm", "base_stats"):
            out[key] = getattr(self, key).summary()
        met = self.targets()
        out.update(
            latency_ratio_cold=self.latency_ratio_cold,
            latency_ratio_warm=self.latency_ratio_warm,
            adapter_over_base=self.adapter_over_base,
            prompt_token_ratio=self.prompt_token_ratio,
            latency_target_met=met["cold"],
            warm_target_met=met["warm"],
            adapter_over_base_target_met=met["adapter_over_base"],
            prompt_target_met=met["prompt"],
        )
        return out


# ---- the benchmark ------------------------------------------------------------------------


def run_query_benchmark(
    vllm_url: str,
    *,
    model_dir: Path | None = None,
    adapter: str | None = None,
    base_model: str = "base",
    collections: int = 5,
    queries: int = 8,
    context_tokens: int = 4000,
    max_tokens: int = 32,
    api_key: str | None = None,
    log: Callable[[str], None] = print,
) -> QueryBenchmarkResult:
    """Measure adapter vs ICL (cold and warm) query cost on the vLLM at `vllm_url`.

    `model_dir`: the served base model's folder (tokenizer; random adapter); default: the folder
    vLLM reports for `base_model`, which must be readable here. `adapter`: the vLLM-side name of an
    adapter already loaded; default: a random r=8 LoRA made here, loaded as `perf-<random>`, and
    unloaded at the end (vLLM must be able to read this machine's temp folder).
    """
    return asyncio.run(
        _run(
            vllm_url,
            model_dir=model_dir,
            adapter=adapter,
            base_model=base_model,
            collections=collections,
            queries=queries,
            context_tokens=context_tokens,
            max_tokens=max_tokens,
            api_key=api_key,
            log=log,
        )
    )


async def _run(
    vllm_url: str,
    *,
    model_dir: Path | None,
    adapter: str | None,
    base_model: str,
    collections: int,
    queries: int,
    context_tokens: int,
    max_tokens: int,
    api_key: str | None,
    log: Callable[[str], None],
) -> QueryBenchmarkResult:
    from transformers import AutoTokenizer

    if collections < 2 or queries < 2:
        raise ValueError("need at least 2 collections and 2 queries per mode")
    client = VLLMClient(vllm_url, api_key=api_key)
    tmp: tempfile.TemporaryDirectory[str] | None = None
    made_adapter = False
    try:
        info = await served_model_info(client, base_model)
        model_dir = model_dir or Path(info["root"])
        max_model_len = int(info.get("max_model_len") or 8192)
        tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)

        if adapter is None:
            tmp = tempfile.TemporaryDirectory(prefix="docadapt-perf-")
            adapter = await _load_random_lora(client, model_dir, Path(tmp.name), log)
            made_adapter = True

        def count(text: str) -> int:
            return len(tokenizer.encode(text, add_special_tokens=False))

        nonce = uuid.uuid4().hex[:8]  # so no collection's prefix is cached from an earlier run
        corpora = {
            f"perf-{nonce}-{i}": synthetic_collection(f"{nonce}{i}", context_tokens, count)
            for i in range(collections)
        }
        records: list[UsageRecord] = []
        service = QueryService(
            client,
            tokenizer,
            resolve_adapter=lambda _ws, name: adapter if name == ADAPTER_ALIAS else None,
            load_collection_passages=lambda _ws, cid: corpora[cid][0] if cid in corpora else None,
            record_usage=records.append,
            max_model_len=max_model_len,
            icl_budget_tokens=max_model_len,  # the whole collection goes in: this measures ICL
            base_model=base_model,
        )
        asker = _Asker(service, max_tokens, records)
        stats = await _timed_rounds(asker, corpora, queries=queries, log=log)
        await asker.service.aclose()
        return QueryBenchmarkResult(
            vllm_url=vllm_url,
            adapter=adapter,
            adapter_made_here=made_adapter,
            context_tokens=int(np.mean(asker.context_sizes)),
            max_tokens=max_tokens,
            adapter_stats=stats["adapter"],
            icl_cold=stats["icl_cold"],
            icl_warm=stats["icl_warm"],
            base_stats=stats["base"],
        )
    finally:
        if made_adapter and adapter is not None:
            try:
                await client.unload_lora_adapter(adapter)
            except Exception as exc:  # the figures are still worth printing
                log(f"could not unload {adapter}: {exc}")
        if tmp is not None:
            tmp.cleanup()
        await client.aclose()


async def _load_random_lora(
    client: VLLMClient, model_dir: Path, tmp: Path, log: Callable[[str], None]
) -> str:
    """A random r=16 LoRA on every linear layer (what the recipe trains), loaded; its name."""
    adapter = f"perf-{uuid.uuid4().hex[:10]}"
    log(f"making a random LoRA (r=16, all linear layers), loaded as {adapter}")
    path = await asyncio.to_thread(
        make_random_lora, model_dir, tmp / "lora", r=16, target_modules=RECIPE_TARGETS
    )
    await client.load_lora_adapter(adapter, str(path))
    return adapter


class _Asker:
    """Chat queries through the service's own query layer, each generating exactly `max_tokens`
    at temperature 0; returns each query's usage record and keeps the ICL context sizes."""

    def __init__(self, service: QueryService, max_tokens: int, records: list[UsageRecord]) -> None:
        self.service = service
        self.max_tokens = max_tokens
        self.records = records  # the service appends each query's record here
        self.context_sizes: list[int] = []

    async def ask(self, model: str, question: str) -> UsageRecord:
        result = await self.service.chat(
            "perf",
            {
                "model": model,
                "messages": [{"role": "user", "content": question}],
                "max_tokens": self.max_tokens,
                "min_tokens": self.max_tokens,
                "temperature": 0,
            },
        )
        assert isinstance(result, JSONResult)
        info = result.body["docadapt"]
        if info["mode"] == "icl":
            if info["context_truncated"]:
                raise RuntimeError("a collection did not fit the context; lower context_tokens")
            self.context_sizes.append(info["context_tokens"])
        return self.records[-1]


async def _timed_rounds(
    asker: _Asker,
    corpora: dict[str, tuple[list[PassageRef], list[Fact]]],
    *,
    queries: int,
    log: Callable[[str], None],
) -> dict[str, ModeStats]:
    """After an untimed warm-up, `queries` adapter queries, one cold ICL query per collection
    and `queries` warm ones on the first collection, in interleaved rounds."""
    ask = asker.ask
    collections = len(corpora)
    first_ids = list(corpora)
    warm_id = first_ids[0]
    facts = corpora[warm_id][1]
    questions = [facts[(i * 7) % len(facts)].question() for i in range(queries + 1)]

    log("warming up (base and adapter, not timed)")
    await ask("base", "Say hello.")
    await ask(ADAPTER_ALIAS, "Say hello.")

    stats = {m: ModeStats(m) for m in ("adapter", "icl_cold", "icl_warm", "base")}

    def keep(mode: str, rec: UsageRecord, label: str) -> None:
        s = stats[mode]
        s.latencies_s.append(rec.latency_s)
        s.prompt_tokens.append(rec.prompt_tokens)
        s.completion_tokens.append(rec.completion_tokens)
        log(
            f"  {label:<16} prompt {rec.prompt_tokens:>5} tokens, "
            f"completion {rec.completion_tokens:>3}, {rec.latency_s:6.2f} s"
        )

    # Interleaved rounds, so a change in the machine's load during the run hits every mode.
    for i in range(max(queries, collections)):
        if i < queries:
            rec = await ask("base", questions[i])
            keep("base", rec, f"base {i + 1}/{queries}")
            rec = await ask(ADAPTER_ALIAS, questions[i])
            keep("adapter", rec, f"adapter {i + 1}/{queries}")
        if i < collections:
            cid = first_ids[i]
            rec = await ask(f"icl:{cid}", corpora[cid][1][0].question())
            keep("icl_cold", rec, f"icl cold {i + 1}/{collections}")
        if i < queries:  # collection 0 had its cold query in round 0
            rec = await ask(f"icl:{warm_id}", questions[i + 1])
            keep("icl_warm", rec, f"icl warm {i + 1}/{queries}")
    return stats


async def served_model_info(client: VLLMClient, base_model: str) -> dict[str, Any]:
    data = (await client.request("GET", "/v1/models")).json()
    for entry in data.get("data", []):
        if entry.get("id") == base_model:
            return entry
    raise RuntimeError(f"vLLM at {client.base_url} does not serve a model named {base_model!r}")


def format_report(result: QueryBenchmarkResult) -> str:
    """The benchmark's figures as a plain-text table with the ratios and their targets."""
    rows = [
        ("adapter", result.adapter_stats),
        ("icl cold", result.icl_cold),
        ("icl warm", result.icl_warm),
        ("base", result.base_stats),
    ]
    lines = [
        f"query cost: adapter vs documents in context (vLLM {result.vllm_url}, "
        f"adapter {result.adapter}, collection {result.context_tokens} tokens, "
        f"{result.max_tokens} tokens generated per answer)",
        "",
        f"{'mode':<10} {'queries':>7} {'prompt tok/query':>17} {'p50 s':>8} {'p95 s':>8}",
    ]
    for name, s in rows:
        lines.append(
            f"{name:<10} {s.n:>7} {s.prompt_tokens_mean:>17,.0f} {s.p50_s:>8.2f} {s.p95_s:>8.2f}"
        )
    lc, lw, pr = result.latency_ratio_cold, result.latency_ratio_warm, result.prompt_token_ratio
    ab, met = result.adapter_over_base, result.targets()

    def verdict(key: str) -> str:
        return "met" if met[key] else "NOT met"

    base = result.base_stats.p50_s
    lines += [
        "",
        f"adapter p50 / cold ICL p50: {lc:.3f} = 1/{1 / lc:.1f}  "
        f"(target <= {LATENCY_RATIO_TARGET}: {verdict('cold')}; "
        f"an adapter as cheap as base: {base / result.icl_cold.p50_s:.3f})",
        f"adapter p50 / warm ICL p50: {lw:.3f} = 1/{1 / lw:.1f}  "
        f"(target <= {WARM_RATIO_TARGET}: {verdict('warm')}; "
        f"an adapter as cheap as base: {base / result.icl_warm.p50_s:.3f})",
        f"adapter p50 / base p50 (same prompt): {ab:.3f}  "
        f"(target <= {ADAPTER_OVER_BASE_TARGET}: {verdict('adapter_over_base')})",
        f"prompt tokens, ICL / adapter: {pr:.1f}x  (target >= {PROMPT_RATIO_TARGET:.0f}x: "
        f"{verdict('prompt')})",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit status (1 with --check if a target is missed)."""
    parser = perf_parser("query", __doc__)
    parser.add_argument("--vllm-url", default="http://127.0.0.1:8000", help="vLLM server URL")
    parser.add_argument("--base-model", default="base", help="vLLM's name of the base model")
    parser.add_argument("--model-dir", type=Path, help="base model folder (default: from vLLM)")
    parser.add_argument("--adapter", help="vLLM name of a loaded adapter (default: random LoRA)")
    parser.add_argument("--collections", type=int, default=5, help="cold ICL collections")
    parser.add_argument("--queries", type=int, default=8, help="adapter and warm ICL queries")
    parser.add_argument("--context-tokens", type=int, default=4000, help="tokens per collection")
    parser.add_argument("--max-tokens", type=int, default=32, help="tokens generated per answer")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    parser.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    parser.add_argument(
        "--vllm-api-key",
        default=os.environ.get("DOCADAPT_VLLM_API_KEY"),
        help="vLLM's API key (default: $DOCADAPT_VLLM_API_KEY)",
    )
    args = parser.parse_args(argv)
    # Stopped with SIGTERM as with Ctrl-C, so the adapter it loaded is unloaded on the way out.
    signal.signal(signal.SIGTERM, signal.default_int_handler)

    started = time.perf_counter()
    result = run_query_benchmark(
        args.vllm_url,
        model_dir=args.model_dir,
        adapter=args.adapter,
        base_model=args.base_model,
        collections=args.collections,
        queries=args.queries,
        context_tokens=args.context_tokens,
        max_tokens=args.max_tokens,
        api_key=args.vllm_api_key,
    )
    print()
    print(format_report(result))
    print(f"\n(took {time.perf_counter() - started:.0f} s)")
    if args.json:
        args.json.write_text(json.dumps(result.as_dict(), indent=2))
    missed = not all(result.targets().values())
    return 1 if args.check and missed else 0


if __name__ == "__main__":
    sys.exit(main())
