"""`docadapt perf load`: many chat queries at once across several adapters and `icl:`, through
the service's REST API, as users under load would send them.

It makes a workspace (or uses `--api-key`), a collection of a few synthetic documents, and
`--adapters` random peft LoRA adapters (r=8, imported through `POST /v1/adapters/import`, so
no training is needed: the serving cost of an adapter does not depend on what it learned). Then
it sends `--queries` chat completions with at most `--concurrency` in flight, round-robin over
the adapters and `icl:<collection>`, each generating `--max-tokens` tokens (temperature 0), and
reports errors (any non-200, with the first messages), throughput (queries/s and generated
tokens/s over the wall time of the burst), and latency p50/p95/max per model kind and overall.
The queries count against the workspace's rate limit like any others: raise
DOCADAPT_RATE_LIMIT_QUERIES_BURST on the service for a bigger burst than its default. The
collection and adapters are deleted at the end unless --keep.
"""

from __future__ import annotations

import asyncio
import io
import json
import sys
import tarfile
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from service.benchmark.live_service import BenchError, run_workspace_key
from service.benchmark.perf_cli import add_service_options, perf_parser
from service.benchmark.random_lora import make_random_lora
from service.benchmark.ready_perf import upload_files
from service.client import ServiceClient, ServiceError, async_client

QUESTIONS = (
    "Which team owns the dashboard?",
    "Who leads the Platform team?",
    "What does the handbook say about expenses?",
    "Where is the head office?",
    "Which tool is used for deployments?",
)


def adapter_archive(folder: Path) -> bytes:
    """A .tar.gz of a PEFT adapter folder, as `POST /v1/adapters/import` takes it."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for path in sorted(folder.iterdir()):
            tar.add(path, arcname=path.name)
    return buffer.getvalue()


def latency_summary(seconds: list[float]) -> dict[str, float | int]:
    """Count, p50, p95 and max of latencies in seconds (rounded to ms)."""
    if not seconds:
        return {"n": 0}
    values = np.asarray(seconds)
    return {
        "n": len(seconds),
        "p50_s": round(float(np.percentile(values, 50)), 3),
        "p95_s": round(float(np.percentile(values, 95)), 3),
        "max_s": round(float(values.max()), 3),
    }


def setup(
    api: ServiceClient, model_dir: Path, adapters: int, documents: int
) -> tuple[str, list[str]]:
    """The collection and the imported adapters' names."""
    nonce = uuid.uuid4().hex[:6]
    collection = api.post("/v1/collections", json={"name": f"perf-load-{nonce}"})["id"]
    api.post(f"/v1/collections/{collection}/documents", files=upload_files(None, documents))
    names = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(adapters):
            folder = make_random_lora(model_dir, Path(tmp) / f"lora-{i}", seed=i)
            name = f"perf-load-{nonce}-{i}"
            api.post(
                "/v1/adapters/import",
                data={"name": name},
                files={"file": (f"{name}.tar.gz", adapter_archive(folder), "application/gzip")},
            )
            names.append(name)
    return collection, names


async def burst(
    url: str,
    api_key: str,
    models: list[str],
    *,
    queries: int,
    concurrency: int,
    max_tokens: int,
    timeout_s: float,
) -> dict[str, Any]:
    """Send the queries, at most `concurrency` at a time; the figures described above."""
    gate = asyncio.Semaphore(concurrency)
    latencies: dict[str, list[float]] = {}
    errors: list[str] = []
    generated = 0

    async def one(client: httpx.AsyncClient, i: int) -> None:
        nonlocal generated
        model = models[i % len(models)]
        kind = "icl" if model.startswith("icl:") else "adapter"
        body = {
            "model": model,
            "messages": [{"role": "user", "content": QUESTIONS[i % len(QUESTIONS)]}],
            "max_tokens": max_tokens,
            "temperature": 0,
        }
        async with gate:
            started = time.perf_counter()
            try:
                response = await client.post("/v1/chat/completions", json=body)
            except httpx.HTTPError as exc:
                errors.append(f"{model}: no answer ({exc.__class__.__name__}: {exc})")
                return
            elapsed = time.perf_counter() - started
        if response.status_code != 200:
            errors.append(f"{model}: HTTP {response.status_code} {response.text[:200]}")
            return
        generated += int(response.json().get("usage", {}).get("completion_tokens") or 0)
        latencies.setdefault(kind, []).append(elapsed)

    async with async_client(
        url, api_key, timeout_s=timeout_s, max_connections=concurrency
    ) as client:
        started = time.perf_counter()
        await asyncio.gather(*(one(client, i) for i in range(queries)))
        wall = time.perf_counter() - started
    answered = sum(len(v) for v in latencies.values())
    return {
        "queries": queries,
        "concurrency": concurrency,
        "models": models,
        "max_tokens": max_tokens,
        "errors": len(errors),
        "error_messages": errors[:10],
        "wall_s": round(wall, 2),
        "queries_per_s": round(answered / wall, 2) if wall else None,
        "generated_tokens_per_s": round(generated / wall, 1) if wall else None,
        "latency": {
            "all": latency_summary([s for v in latencies.values() for s in v]),
            **{kind: latency_summary(v) for kind, v in sorted(latencies.items())},
        },
    }


def burst_as_asked(args: Any, url: str, api_key: str, models: list[str]) -> dict[str, Any]:
    """One `burst` with the command line's size, concurrency, answer length and timeout."""
    return asyncio.run(
        burst(
            url,
            api_key,
            models,
            queries=args.queries,
            concurrency=args.concurrency,
            max_tokens=args.max_tokens,
            timeout_s=args.timeout,
        )
    )


def format_report(result: dict[str, Any]) -> str:
    lines = [
        f"{result['queries']} chat queries, {result['concurrency']} at once, over "
        f"{len(result['models'])} models ({result['max_tokens']} tokens each): "
        f"{result['errors']} errors in {result['wall_s']} s; {result['queries_per_s']} queries/s, "
        f"{result['generated_tokens_per_s']} generated tokens/s",
        f"{'model':<8} {'n':>4} {'p50 s':>7} {'p95 s':>7} {'max s':>7}",
    ]
    for kind, s in result["latency"].items():
        if s.get("n"):
            lines.append(
                f"{kind:<8} {s['n']:>4} {s['p50_s']:>7.2f} {s['p95_s']:>7.2f} {s['max_s']:>7.2f}"
            )
    lines.extend(f"error: {m}" for m in result["error_messages"])
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = perf_parser("load", __doc__)
    add_service_options(parser)
    parser.add_argument("--model-dir", type=Path, help="base model folder (default: the service's)")
    parser.add_argument("--adapters", type=int, default=5, help="random adapters to import")
    parser.add_argument("--queries", type=int, default=50, help="chat queries in the burst")
    parser.add_argument("--concurrency", type=int, default=50, help="queries in flight at most")
    parser.add_argument("--max-tokens", type=int, default=16, help="tokens generated per answer")
    parser.add_argument("--documents", type=int, default=4, help="synthetic documents for icl:")
    parser.add_argument("--timeout", type=float, default=600, help="seconds per query at most")
    parser.add_argument("--keep", action="store_true", help="keep the collection and adapters")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    _add_stack_options(parser)
    args = parser.parse_args(argv)
    if args.adapters < 1 or args.queries < 1 or args.concurrency < 1:
        parser.error("--adapters, --queries and --concurrency must be at least 1")
    from adapters.base_model import materialize_base_model
    from service.core.config import Settings

    settings = Settings()
    model_dir = args.model_dir or materialize_base_model(
        settings.data_dir, settings.base_model_path
    )
    if args.stack:
        return _stack_main(args, model_dir)
    with ServiceClient.connect(args.url, timeout_s=600) as admin:
        try:
            api_key = args.api_key or run_workspace_key(admin, args.admin_key, "perf-load")
            api = ServiceClient(admin.http, api_key)
            print(f"importing {args.adapters} random adapters ...", file=sys.stderr)
            collection, names = setup(api, model_dir, args.adapters, args.documents)
            models = [*names, f"icl:{collection}"]
            print(f"sending {args.queries} queries over {len(models)} models ...", file=sys.stderr)
            result = burst_as_asked(args, args.url, api_key, models)
            if not args.keep:
                for name in names:
                    api.delete(f"/v1/adapters/{name}")
                api.delete(f"/v1/collections/{collection}")
        except (BenchError, ServiceError) as exc:
            print(f"docadapt perf load: {exc}", file=sys.stderr)
            return 1
    print(format_report(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0 if result["errors"] == 0 else 1


def _add_stack_options(parser: Any) -> None:
    parser.add_argument(
        "--stack",
        type=int,
        default=0,
        metavar="N",
        help="start PostgreSQL, N vLLM replicas and the API here (not --url) and compare the "
        "burst on N replicas with the same burst on one (service/benchmark/load_stack.py)",
    )
    parser.add_argument("--kv-cache-gb", type=int, default=2, help="per replica, with --stack")
    parser.add_argument("--repeats", type=int, default=3, help="with --stack: rounds of bursts")
    parser.add_argument(
        "--kill-replica", action="store_true", help="with --stack: kill a replica mid-burst"
    )
    parser.add_argument("--kill-after-s", type=float, default=5.0, help="when to kill it")
    parser.add_argument(
        "--router", type=Path, help="with --stack: also burst through this vllm-router executable"
    )
    parser.add_argument("--router-policy", default="cache_aware", help="vllm-router's --policy")


def _stack_main(args: Any, model_dir: Path) -> int:
    from service.benchmark.load_stack import format_stack_report, run_stack_load

    if args.stack < 2:
        print("docadapt perf load: --stack needs at least 2 replicas", file=sys.stderr)
        return 2
    result = run_stack_load(args, model_dir)
    print(format_stack_report(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    keys = ("one_replica", "replica_set", "via_router", "replica_set_one_killed")
    bursts = [result.get(k) for k in keys]
    return 0 if all(b is None or b["errors"] == 0 for b in bursts) else 1


if __name__ == "__main__":
    raise SystemExit(main())
