"""`docadapt perf ready`: wall time from "train" to "ready" on a running service.

Walks the REST API as a user would: a collection of the real-text development set's documents
(`--devset dev|heldout|all`, service/benchmark/devset) or of `--documents N` synthetic ones (five
nonsense-word facts each, as `docadapt perf train` uses), an augmentation of it (the service's
default strategies unless --strategies), then two adapters with the default hyperparameters, one
after the other: plain (the documents only) and augmented (documents plus the augmentation). For
each it reports the seconds from the POST that asks for it to the adapter's status "ready" (queue,
training, load into vLLM, canary check, knowledge check), the training job's own wall time, the
steps trained of the planned upper bound (early stopping ends sooner), and the knowledge check:
the share of probes from its own documents the adapter and the base model answer right. Progress
bars while it runs; the collection and adapters are deleted at the end unless --keep.
"""

from __future__ import annotations

import sys
import time
import uuid
from pathlib import Path
from typing import Any

from service.benchmark.live_service import BenchError, job_seconds, run_workspace_key
from service.benchmark.perf_cli import add_service_options, perf_parser, print_figures
from service.benchmark.train_perf import synthetic_documents
from service.client import ServiceClient, ServiceError
from service.jobs.watch import watch_job


def upload_files(devset: str | None, documents: int) -> list[tuple[str, tuple[str, bytes, str]]]:
    """The multipart files of the collection: the dev set's documents of `devset` as they are,
    else `documents` synthetic ones."""
    if devset is not None:
        from service.benchmark.devset import load_devset

        chosen = load_devset(None if devset == "all" else devset).documents
        return [("files", (d.path.name, d.path.read_bytes(), "text/plain")) for d in chosen]
    return [
        ("files", (f"{doc.document_id}.txt", " ".join(doc.sentences).encode(), "text/plain"))
        for doc in synthetic_documents(n_sentences=5 * documents, seed=1)
    ]


def run_ready_benchmark(
    api: ServiceClient,
    *,
    documents: int = 20,
    devset: str | None = None,
    strategies: tuple[str, ...] | None = None,
    keep: bool = False,
) -> dict[str, Any]:
    """Create, augment and train as described above; returns the measured figures."""
    nonce = uuid.uuid4().hex[:6]
    collection = api.post("/v1/collections", json={"name": f"perf-ready-{nonce}"})["id"]
    files = upload_files(devset, documents)
    uploaded = api.post(f"/v1/collections/{collection}/documents", files=files)["data"]
    figures: dict[str, Any] = {
        "documents": len(uploaded),
        "sentences": sum(d["sentence_count"] for d in uploaded),
        "source": f"devset:{devset}" if devset else "synthetic",
    }
    adapters: list[str] = []
    try:
        started = time.monotonic()
        request = {"strategies": list(strategies)} if strategies else {}
        augmentation = api.post(f"/v1/collections/{collection}/augmentations", json=request)
        job = watch_job(api, augmentation["job"]["id"])
        if job["status"] != "succeeded":
            raise BenchError(f"augmentation {job['status']}: {job.get('error')}")
        record = api.get(f"/v1/augmentations/{augmentation['id']}")
        stats = record["stats"]
        figures["augmentation"] = {
            "strategies": (record.get("params") or {}).get("strategies") or list(strategies or ()),
            "wall_seconds": round(time.monotonic() - started, 1),
            "examples": stats.get("examples"),
        }
        for label, augmentation_id in (("plain", None), ("augmented", augmentation["id"])):
            body: dict[str, Any] = {"name": f"perf-ready-{nonce}-{label}"}
            if augmentation_id:
                body["augmentation_id"] = augmentation_id
            asked = time.monotonic()
            adapter = api.post(f"/v1/collections/{collection}/adapters", json=body)
            adapters.append(adapter["id"])
            job = watch_job(api, adapter["job"]["id"])
            adapter = api.get(f"/v1/adapters/{adapter['id']}")
            if adapter["status"] != "ready":
                raise BenchError(
                    f"{label} adapter {adapter['status']}: "
                    f"{job.get('error') or adapter.get('status_reason')}"
                )
            metrics = adapter["metrics"]
            knowledge = metrics.get("knowledge") or {}
            figures[label] = {
                "knowledge_adapter": knowledge.get("adapter"),
                "knowledge_base": knowledge.get("base"),
                "knowledge_probes": knowledge.get("probes"),
                "knowledge_curve": metrics.get("knowledge_curve"),
                "planned_steps": metrics.get("planned_steps"),
                "stopped_early_at": metrics.get("stopped_early_at"),
                "train_to_ready_seconds": round(time.monotonic() - asked, 1),
                "job_seconds": round(job_seconds(job), 1),
                "training_examples": metrics.get("training_examples"),
                "steps": metrics.get("steps"),
                "tokens_trained": metrics.get("tokens_trained"),
                "tokens_per_second": round(metrics.get("tokens_per_second") or 0.0, 1),
                "final_loss": metrics.get("final_loss"),
            }
    finally:
        if not keep:
            for adapter_id in adapters:
                api.delete(f"/v1/adapters/{adapter_id}")
            api.delete(f"/v1/collections/{collection}")
    return figures


def format_report(figures: dict[str, Any]) -> str:
    aug = figures["augmentation"]
    lines = [
        f"collection: {figures['documents']} documents, {figures['sentences']} sentences; "
        f"augmentation ({', '.join(aug['strategies'])}): {aug['examples']} statements "
        f"in {aug['wall_seconds']:.0f} s",
        "",
        f"{'adapter':<10} {'examples':>8} {'steps/max':>10} {'knows':>6} {'base':>5} "
        f"{'tok/s':>7} {'job s':>7} {'train -> ready s':>17}",
    ]
    for label in ("plain", "augmented"):
        f = figures[label]
        steps = f"{f['steps']}/{f['planned_steps']}"
        lines.append(
            f"{label:<10} {f['training_examples']:>8} {steps:>10} "
            f"{_pct(f['knowledge_adapter']):>6} {_pct(f['knowledge_base']):>5} "
            f"{f['tokens_per_second']:>7.1f} {f['job_seconds']:>7.1f} "
            f"{f['train_to_ready_seconds']:>17.1f}"
        )
    lines.append(f"knowledge check: {figures['plain'].get('knowledge_probes')} probes per adapter")
    return "\n".join(lines)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def main(argv: list[str] | None = None) -> int:
    parser = perf_parser("ready", __doc__)
    add_service_options(parser)
    parser.add_argument(
        "--documents", type=int, default=20, help="synthetic documents (without --devset)"
    )
    parser.add_argument(
        "--devset",
        choices=("dev", "heldout", "all"),
        help="use this split of the real-text development set instead of synthetic documents",
    )
    parser.add_argument(
        "--strategies",
        default="",
        help="comma-separated augmentation strategies (default: the service's defaults)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the collection and adapters")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    with ServiceClient.connect(args.url, timeout_s=300) as admin:
        try:
            api_key = args.api_key or run_workspace_key(admin, args.admin_key, "perf-ready")
            figures = run_ready_benchmark(
                ServiceClient(admin.http, api_key),
                documents=args.documents,
                devset=args.devset,
                strategies=tuple(s.strip() for s in args.strategies.split(",") if s.strip())
                or None,
                keep=args.keep,
            )
        except (BenchError, ServiceError) as exc:
            print(f"docadapt perf ready: {exc}", file=sys.stderr)
            return 1
    print(format_report(figures))
    print_figures(figures, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
