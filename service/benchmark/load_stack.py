"""`docadapt perf load --stack N`: the load burst against a stack of N vLLM replicas it starts
(service/stack: PostgreSQL, the replicas, the API as separate processes), and the same burst
against one replica, as the ratio the README quotes.

Both figures come from the same processes: a second API on the same database serves from replica
0 only, so the one-replica burst runs on the same machine, model and loaded adapters, with the
other replicas idle. After one untimed warm-up burst through each API, `--repeats` rounds run
one burst through each in turn; each figure is the run with the median queries/s. With
`--kill-replica`, one more N-replica burst runs while the last replica is killed (SIGKILL)
`--kill-after-s` seconds in; it must still end with 0 errors. With `--router` (the `vllm-router`
executable: PyPI `vllm-router`, vLLM's Rust router) the same burst also goes through an API whose
only vLLM URL is that router in front of the replicas, and an adapter loaded on one replica only
is asked for through both routers, for a comparison with docadapt's own routing.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from service.benchmark.load_perf import burst_as_asked, format_report, setup
from service.client import ServiceClient


def run_stack_load(args: Any, model_dir: Path) -> dict[str, Any]:
    """Start the stack, import the adapters, run the bursts; every process is stopped after."""
    from service.stack.processes import Stack, StackConfig

    root = Path(tempfile.mkdtemp(prefix="docadapt-perf-load-"))
    config = StackConfig(
        root=root,
        replicas=args.stack,
        workers=0,
        base_model_path=args.model_dir,
        kv_cache_gb=args.kv_cache_gb,
        isolation_check=False,
        env={
            "DOCADAPT_RATE_LIMIT_QUERIES_BURST": str(max(1000, 4 * args.queries)),
            "DOCADAPT_RATE_LIMIT_QUERIES_PER_MINUTE": "100000",
        },
    )
    print(f"starting PostgreSQL, {args.stack} vLLM replicas and the API ...", file=sys.stderr)
    with Stack(config) as stack:
        with ServiceClient.connect(stack.api_url, timeout_s=600) as admin:
            api_key = admin.create_workspace(config.admin_key, "perf-load")[1]
            api = ServiceClient(admin.http, api_key)
            print(f"importing {args.adapters} random adapters ...", file=sys.stderr)
            collection, names = setup(api, model_dir, args.adapters, args.documents)
        models = [*names, f"icl:{collection}"]
        apis = {"one_replica": stack.start_api(replicas=[0], name="api-one-replica")[1]}
        apis["replica_set"] = stack.api_url
        if args.router:
            apis["via_router"] = _start_router(args, stack)
        result: dict[str, Any] = {"stack": stack.timings, "replicas": args.stack}
        result.update(_measure(args, apis, api_key, models))
        if args.router:
            result["via_router"]["router"] = f"vllm-router --policy {args.router_policy}"
            result["adapter_on_one_replica"] = asyncio.run(_one_replica_probe(stack, model_dir))
        if args.kill_replica:
            print(f"burst on {args.stack} replicas, one killed ...", file=sys.stderr)
            killer = _killer(stack, args)
            result["replica_set_one_killed"] = burst_as_asked(args, stack.api_url, api_key, models)
            killer.join()
            result["killed_replica_at_s"] = args.kill_after_s
    result["ratio"] = ratios(result["one_replica"], result["replica_set"])
    if args.keep:
        print(f"the stack's logs and data: {root}", file=sys.stderr)
    else:
        shutil.rmtree(root, ignore_errors=True)
    return result


def _measure(
    args: Any, apis: dict[str, str], api_key: str, models: list[str]
) -> dict[str, dict[str, Any]]:
    """One untimed warm-up burst through each API (compiled kernels, prefix caches), then
    `--repeats` rounds of one burst each, in turn; per API the run with the median queries/s,
    with every run's queries/s and p95 beside it."""
    for name, url in apis.items():
        print(f"warm-up burst ({name}) ...", file=sys.stderr)
        burst_as_asked(args, url, api_key, models)
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in apis}
    for round_ in range(args.repeats):
        for name, url in apis.items():
            print(f"burst {round_ + 1}/{args.repeats} ({name}) ...", file=sys.stderr)
            runs[name].append(burst_as_asked(args, url, api_key, models))
    out = {}
    for name, bursts in runs.items():
        ranked = sorted(bursts, key=lambda b: b["queries_per_s"] or 0)
        out[name] = {
            **ranked[len(ranked) // 2],
            "runs_queries_per_s": [b["queries_per_s"] for b in bursts],
            "runs_p95_s": [b["latency"]["all"].get("p95_s") for b in bursts],
            "runs_errors": [b["errors"] for b in bursts],
        }
    return out


def _start_router(args: Any, stack: Any) -> str:
    """Start `args.router` (vllm-router's executable) in front of the replicas and an API whose
    one vLLM URL is that router; returns the API's URL."""
    from service.stack.processes import Proc, _free_port

    port = _free_port()
    cmd = [str(args.router), "--worker-urls", *(r.url for r in stack.replicas)]
    cmd += ["--port", str(port), "--policy", args.router_policy, "--api-key", stack.vllm_key]
    router = Proc("vllm-router", cmd, stack.env(), stack.logs / "vllm-router.log").start()
    stack.extra_apis.append(router)
    url = f"http://127.0.0.1:{port}"
    stack.extras["router_url"] = url
    stack.config.env["DOCADAPT_VLLM_URL"] = url
    try:
        return stack.start_api(name="api-via-router")[1]
    finally:
        del stack.config.env["DOCADAPT_VLLM_URL"]


async def _one_replica_probe(stack: Any, model_dir: Path, n: int = 10) -> dict[str, Any]:
    """An adapter loaded on replica 0 only (as after a restart, before the keeper ran): `n`
    completions for it through vllm-router and through docadapt's routing; the errors of each."""
    from adapters.vllm.client import VLLMClient
    from adapters.vllm.routing import ReplicaClient
    from service.benchmark.random_lora import make_random_lora

    folder = make_random_lora(model_dir, stack.root / "probe-lora", seed=99)
    first = VLLMClient(stack.replicas[0].url, api_key=stack.vllm_key)
    await first.load_lora_adapter("probe-on-replica-0", str(folder))
    await first.aclose()
    body = {"model": "probe-on-replica-0", "prompt": "Hello", "max_tokens": 2}
    router = VLLMClient(stack.extras["router_url"], api_key=stack.vllm_key)
    ours = ReplicaClient([r.url for r in stack.replicas], api_key=stack.vllm_key)
    out: dict[str, Any] = {"requests": n}
    for name, client in (("vllm_router_errors", router), ("docadapt_errors", ours)):
        results = await asyncio.gather(
            *(client.completion(body) for _ in range(n)), return_exceptions=True
        )
        out[name] = sum(isinstance(r, Exception) for r in results)
        await client.aclose()
    return out


def _killer(stack: Any, args: Any) -> threading.Thread:
    """A thread that kills the last replica `--kill-after-s` seconds into the burst."""

    def kill() -> None:
        time.sleep(args.kill_after_s)
        stack.kill_replica(len(stack.replicas) - 1)
        thread.name = str(args.kill_after_s)

    thread = threading.Thread(target=kill, daemon=True)
    thread.start()
    return thread


def ratios(one: dict[str, Any], many: dict[str, Any]) -> dict[str, float | None]:
    """Throughput and p95 of the replica set over the one-replica figures."""

    def div(a: float | None, b: float | None) -> float | None:
        return round(a / b, 2) if a and b else None

    return {
        "queries_per_s": div(many["queries_per_s"], one["queries_per_s"]),
        "generated_tokens_per_s": div(
            many["generated_tokens_per_s"], one["generated_tokens_per_s"]
        ),
        "p95_s": div(many["latency"]["all"].get("p95_s"), one["latency"]["all"].get("p95_s")),
    }


def format_stack_report(result: dict[str, Any]) -> str:
    n = result["replicas"]
    lines = [
        f"{key}: queries/s per run {b['runs_queries_per_s']}, p95 {b['runs_p95_s']}"
        for key, b in result.items()
        if isinstance(b, dict) and "runs_queries_per_s" in b
    ]
    lines += ["one replica (median run):", format_report(result["one_replica"]), f"{n} replicas:"]
    lines.append(format_report(result["replica_set"]))
    if "via_router" in result:
        lines += [f"{n} replicas behind {result['via_router']['router']}:"]
        lines.append(format_report(result["via_router"]))
        lines.append(f"adapter on replica 0 only: {result['adapter_on_one_replica']}")
    if "replica_set_one_killed" in result:
        lines.append(f"{n} replicas, replica {n - 1} killed {result['killed_replica_at_s']} s in:")
        lines.append(format_report(result["replica_set_one_killed"]))
    r = result["ratio"]
    lines.append(
        f"{n} replicas / one: throughput x{r['queries_per_s']} (queries/s), "
        f"x{r['generated_tokens_per_s']} (tokens/s); p95 x{r['p95_s']}"
    )
    return "\n".join(lines)
