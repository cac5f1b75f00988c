"""The bench's driver: `run_bench` makes (or uses) a workspace and `BenchRun` drives one run
through the REST API: upload, augmentations, adapters per column and seed, the evaluation, then
the files. Jobs run in the order they are created, so augmentations come first and each augmented
adapter is asked for as soon as its augmentation succeeds."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import httpx

from service.benchmark.bench.formatting import pct
from service.benchmark.bench.options import (
    ADAPTER_COLUMNS,
    COLUMN_LABELS,
    STRATEGY_JOBS,
    TEACHER_WRITTEN,
    BenchOptions,
)
from service.benchmark.bench.outputs import write_outputs
from service.benchmark.bench.result import bench_result, training_summary
from service.benchmark.datasets import BenchmarkDataset, generate_suite
from service.benchmark.live_service import BenchError, job_seconds
from service.benchmark.truth import AugmentedStatement, TruthJudge, TruthReport
from service.client import TERMINAL, ServiceClient, ServiceError

log = logging.getLogger("docadapt.bench")


class Reporter(Protocol):
    """Where the driver reports: one-line notes, and every poll of a job it waits for."""

    def note(self, message: str) -> None: ...

    def job(self, key: str, label: str, job: dict[str, Any]) -> None: ...


class LogReporter:
    """Reports to the `docadapt.bench` logger (tests, non-interactive runs)."""

    def __init__(self) -> None:
        self._last: dict[str, tuple[str, int]] = {}

    def note(self, message: str) -> None:
        log.info("%s", message)

    def job(self, key: str, label: str, job: dict[str, Any]) -> None:
        state = (job["status"], int(job["progress"]["done"] or 0))
        if self._last.get(key) != state:
            self._last[key] = state
            log.info(
                "%s: %s %s/%s %s",
                label,
                job["status"],
                job["progress"]["done"],
                job["progress"]["total"],
                job.get("message") or "",
            )


# -- the run ------------------------------------------------------------------------------------


@dataclass
class _Watch:
    key: str
    label: str
    job_id: str
    on_end: Callable[[dict[str, Any]], None]
    job: dict[str, Any] = field(default_factory=dict)


class BenchRun:
    """One run of the benchmark against a live service; `run()` does everything and returns the
    result that was written to `options.out_dir`."""

    def __init__(
        self,
        api: ServiceClient,
        options: BenchOptions,
        reporter: Reporter,
        workspace_id: str | None = None,
    ) -> None:
        self.api = api
        self.options = options
        self.reporter = reporter
        self.started = time.monotonic()
        self.stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        self.tag = f"bench-{options.size}-{self.stamp}"
        self.workspace_id = workspace_id
        self.suite: list[BenchmarkDataset] = []
        self.collection_id = ""
        self.evalset_id = ""
        self.doc_ids: dict[str, str] = {}  # service document id -> generator document id
        self.augmentations: dict[str, dict[str, Any]] = {}  # column or strategy -> public record
        self.adapters: dict[tuple[str, int], dict[str, Any]] = {}  # (column, seed) -> record
        self.examples: dict[str, list[dict[str, Any]]] = {}  # column -> kept examples
        self.failures: dict[str, str] = {}  # column -> why it has no numbers
        self.jobs: dict[str, dict[str, Any]] = {}  # watch key -> final job record
        self.phases: dict[str, float] = {}
        self.evaluation: dict[str, Any] = {}
        self.results: list[dict[str, Any]] = []
        self.report: dict[str, Any] = {}
        self._watches: list[_Watch] = []

    # -- helpers --

    def _elapsed(self) -> float:
        return time.monotonic() - self.started

    def _check_deadline(self) -> None:
        limit = self.options.timeout_s
        if limit is not None and self._elapsed() > limit:
            pending = ", ".join(w.label for w in self._watches) or "nothing"
            raise BenchError(f"the run took longer than {limit:.0f} s (waiting for {pending})")

    def _watch(
        self, key: str, label: str, job_id: str, on_end: Callable[[dict[str, Any]], None]
    ) -> None:
        self._watches.append(_Watch(key, label, job_id, on_end))

    def _wait_all(self) -> None:
        """Poll every watched job until none is left; a job's end may start new ones."""
        while self._watches:
            for watch in list(self._watches):
                job = self.api.job(watch.job_id)
                watch.job = job
                self.reporter.job(watch.key, watch.label, job)
                if job["status"] in TERMINAL:
                    self._watches.remove(watch)
                    self.jobs[watch.key] = job
                    watch.on_end(job)
            if self._watches:
                self._check_deadline()
                time.sleep(self.options.poll_s)

    def _cancel_pending(self) -> None:
        for watch in self._watches:
            try:
                self.api.cancel_job(watch.job_id)
                self.reporter.note(f"cancelled {watch.label} ({watch.job_id})")
            except ServiceError as exc:
                self.reporter.note(f"could not cancel {watch.label}: {exc}")
        self._watches.clear()

    def _fail(self, column: str, why: str) -> None:
        self.failures.setdefault(column, why)
        self.reporter.note(f"[{column}] dropped: {why}")

    # -- phases --

    def run(self) -> dict[str, Any]:
        o = self.options
        self.reporter.note(
            f"docadapt bench: size {o.size}, seed {o.seed}, {o.seeds} training seed(s), "
            f"columns {', '.join(COLUMN_LABELS[c] for c in o.table_columns)}"
        )
        self.suite = generate_suite(o.size, o.seed, o.datasets)
        t = time.monotonic()
        self._upload()
        self.phases["upload_s"] = time.monotonic() - t
        try:
            t = time.monotonic()
            self._start_jobs()
            self._wait_all()
            self.phases["augment_and_train_s"] = time.monotonic() - t
            ready = {key: a for key, a in self.adapters.items() if key[0] not in self.failures}
            t = time.monotonic()
            self._evaluate(ready)
            self.phases["evaluation_s"] = time.monotonic() - t
        except BaseException:
            self._cancel_pending()  # a stopped run leaves no work queued on the service
            raise
        t = time.monotonic()
        truth = self._teacher_quality()
        self.phases["truth_s"] = time.monotonic() - t
        self.phases["total_s"] = self._elapsed()
        result = bench_result(self, truth)
        write_outputs(result, o.out_dir)
        self.reporter.note(
            f"wrote {o.out_dir / 'bench.json'}, bench.md and bench.png "
            f"({self.phases['total_s'] / 60:.1f} min in all)"
        )
        return result

    def _upload(self) -> None:
        o = self.options
        n_docs = sum(len(d.documents) for d in self.suite)
        collection = self.api.post(
            "/v1/collections",
            json={
                "name": self.tag,
                "description": f"docadapt bench: generated suite, size {o.size}, seed {o.seed}",
            },
        )
        self.collection_id = collection["id"]
        files = [
            (f"{d.name}/{name}", name, text)
            for d in self.suite
            for name, text in d.documents_as_files()
        ]
        for start in range(0, len(files), o.upload_batch):
            batch = files[start : start + o.upload_batch]
            got = self.api.post(
                f"/v1/collections/{self.collection_id}/documents",
                files=[("files", (name, text.encode(), "text/plain")) for _, name, text in batch],
            )["data"]
            if len(got) != len(batch):
                raise BenchError(f"uploaded {len(batch)} files, the service answered {len(got)}")
            for (_, name, _), doc in zip(batch, got, strict=True):
                self.doc_ids.setdefault(doc["id"], name.removesuffix(".txt"))
        jsonl = "".join(d.to_evalset_jsonl() for d in self.suite)
        evalset = self.api.post(
            f"/v1/collections/{self.collection_id}/evalsets",
            params={"name": f"{self.tag} test items"},
            content=jsonl.encode(),
            headers={"Content-Type": "application/x-ndjson"},
        )
        self.evalset_id = evalset["id"]
        self.reporter.note(
            f"collection {self.collection_id}: {n_docs} documents; eval set "
            f"{self.evalset_id}: {evalset['item_count']} items"
        )

    def _strategy_jobs(self) -> list[str]:
        """The augmentation jobs the columns need: their own, and local and global for both."""
        cols = self.options.columns
        return [
            job
            for job in STRATEGY_JOBS
            if job in cols or (job in ("local", "global") and "both" in cols)
        ]

    def _start_jobs(self) -> None:
        """Augmentations first (rule-made before the teacher's), then the adapters that need
        none; each augmented adapter follows its augmentation (see `_on_augmentation`)."""
        jobs = sorted(self._strategy_jobs(), key=lambda j: j in TEACHER_WRITTEN)
        for job in jobs:
            body: dict[str, Any] = dict(self.options.augmentation_params)
            strategies = STRATEGY_JOBS[job]
            if strategies is not None:
                body["strategies"] = strategies
            aug = self.api.post(f"/v1/collections/{self.collection_id}/augmentations", json=body)
            self.augmentations[job] = aug
            self._watch(
                f"augment:{job}",
                f"augment {job}",
                aug["job"]["id"],
                lambda j, name=job: self._on_augmentation(name, j),
            )
        self._train_all("ft", None)
        if "oracle" in self.options.columns:
            lines = []
            by_generator_id = {g: s for s, g in self.doc_ids.items()}
            for dataset in self.suite:
                for inference in dataset.true_inferences:
                    record: dict[str, Any] = {"text": inference.statement}
                    sources = [
                        by_generator_id[g] for g in inference.source_doc_ids if g in by_generator_id
                    ]
                    if sources:
                        record["document_id"] = sources[0]
                    lines.append(json.dumps(record))
            self._upload_set("oracle", "\n".join(lines) + "\n")

    def _upload_set(self, column: str, jsonl: str) -> None:
        aug = self.api.post(
            f"/v1/collections/{self.collection_id}/augmentations/upload",
            content=jsonl.encode(),
            headers={"Content-Type": "application/x-ndjson"},
        )
        self.augmentations[column] = aug
        self.examples[column] = self.api.examples(aug["id"])
        self._train_all(column, aug["id"])

    def _train_all(self, column: str, augmentation_id: str | None) -> None:
        """One adapter of `column` per training seed."""
        for seed in self.options.training_seeds:
            self._train(column, seed, augmentation_id)

    def _train(self, column: str, seed: int, augmentation_id: str | None) -> None:
        body: dict[str, Any] = {
            "name": f"{self.tag}-{column}-s{seed}",
            "hyperparameters": self.options.train_config_for(seed),
        }
        if augmentation_id:
            body["augmentation_id"] = augmentation_id
            body["examples"] = "not_rejected"  # nobody reviews here; flagged ones count too
        adapter = self.api.post(f"/v1/collections/{self.collection_id}/adapters", json=body)
        self.adapters[(column, seed)] = adapter
        self._watch(
            f"train:{column}:s{seed}",
            f"train {COLUMN_LABELS[column]} (seed {seed})",
            adapter["job"]["id"],
            lambda job, c=column, s=seed: self._on_training(c, s, job),
        )

    def _on_augmentation(self, name: str, job: dict[str, Any]) -> None:
        cols = self.options.columns
        users = [name] if name in cols else []
        if name in ("local", "global") and "both" in cols:
            users.append("both")
        if job["status"] != "succeeded":
            for column in users:
                self._fail(column, f"augmentation {name} {job['status']}: {job.get('error')}")
            return
        aug = self.api.get(f"/v1/augmentations/{self.augmentations[name]['id']}")
        self.augmentations[name] = aug
        self.examples[name] = self.api.examples(aug["id"])
        self.reporter.note(
            f"augmentation {name}: {len(self.examples[name])} examples "
            f"kept in {job_seconds(job):.0f} s"
        )
        if name in cols:
            if self.examples[name]:
                self._train_all(name, aug["id"])
            else:
                self._fail(name, f"the {name} augmentation kept no examples")
        other = {"local": "global", "global": "local"}.get(name)
        if (
            "both" in cols
            and other
            and "both" not in self.failures
            and self.jobs.get(f"augment:{other}", {}).get("status") == "succeeded"
        ):
            union = self.examples["local"] + self.examples["global"]
            if not union:
                self._fail("both", "the local and global augmentations kept no examples")
                return
            self._upload_set("both", "".join(json.dumps(e) + "\n" for e in union))

    def _on_training(self, column: str, seed: int, job: dict[str, Any]) -> None:
        adapter = self.api.get(f"/v1/adapters/{self.adapters[(column, seed)]['id']}")
        self.adapters[(column, seed)] = adapter
        if job["status"] != "succeeded" or adapter["status"] != "ready":
            self._fail(
                column,
                f"training (seed {seed}) {job['status']}, adapter {adapter['status']}: "
                f"{job.get('error') or adapter.get('status_reason')}",
            )
            return
        summary = training_summary(adapter, job)
        self.reporter.note(
            f"adapter {COLUMN_LABELS[column]} (seed {seed}) ready after "
            f"{job_seconds(job):.0f} s: {summary['steps']} steps, knowledge check "
            f"{pct(summary['knowledge'])} (base {pct(summary['knowledge_base'])})"
        )

    def _teacher_costs(self) -> dict[str, dict[str, int]]:
        """The "both" set was uploaded: its teacher cost is what local and global cost."""
        if "both" in self.failures or not any(c == "both" for c, _ in self.adapters):
            return {}
        totals = {
            "teacher_prompt_tokens": 0,
            "teacher_completion_tokens": 0,
            "teacher_cached_prompt_tokens": 0,
        }
        for strategy in ("local", "global"):
            stats = self.augmentations[strategy].get("stats") or {}
            totals["teacher_prompt_tokens"] += int(stats.get("prompt_tokens") or 0)
            totals["teacher_completion_tokens"] += int(stats.get("completion_tokens") or 0)
            totals["teacher_cached_prompt_tokens"] += sum(
                int(s.get("cached_prompt_tokens") or 0)
                for s in (stats.get("strategies") or {}).values()
            )
        return {a["id"]: totals for (c, _), a in self.adapters.items() if c == "both"}

    def _evaluate(self, ready: dict[tuple[str, int], dict[str, Any]]) -> None:
        body = {
            "collection_id": self.collection_id,
            "evalset_id": self.evalset_id,
            "modes": ["base", "icl"],
            "adapter_ids": [a["id"] for a in ready.values()],
            "adapter_costs": self._teacher_costs(),
            **self.options.evaluation_params,
        }
        evaluation = self.api.post("/v1/evaluations", json=body)
        self._watch("evaluate", "evaluate", evaluation["job"]["id"], lambda job: None)
        self._wait_all()
        job = self.jobs["evaluate"]
        if job["status"] != "succeeded":
            raise BenchError(f"the evaluation {job['status']}: {job.get('error')}")
        self.evaluation = self.api.get(f"/v1/evaluations/{evaluation['id']}")
        offset = 0
        while True:
            page = self.api.get(
                f"/v1/evaluations/{evaluation['id']}/results",
                params={"offset": offset, "limit": 1000},
            )
            self.results.extend(page["data"])
            offset += len(page["data"])
            if not page["data"] or offset >= page["total"]:
                break
        self.report = self.api.get(
            f"/v1/evaluations/{evaluation['id']}/report", params={"format": "json"}
        )

    def column_modes(self) -> dict[str, list[str]]:
        """Table column -> the evaluation's mode names for it, one per training seed (one for
        base and ICL); a dropped column has none."""
        by_adapter = {m.get("adapter_id"): m["name"] for m in self.evaluation.get("modes", [])}
        out: dict[str, list[str]] = {"base": ["base"], "icl": ["icl"]}
        for column in ADAPTER_COLUMNS:
            if column in self.failures:
                continue
            names = [
                by_adapter.get(self.adapters[(column, s)]["id"])
                for s in self.options.training_seeds
                if (column, s) in self.adapters
            ]
            if names and all(names):
                out[column] = [n for n in names if n]
        return out

    def _teacher_quality(self) -> TruthReport:
        statements = [
            AugmentedStatement(
                text=e["text"],
                strategy=column,
                source_doc_id=self.doc_ids.get(e.get("document_id") or ""),
            )
            for column in (*STRATEGY_JOBS, "both", "oracle")
            if column in self.examples
            for e in self.examples[column]
        ]
        return TruthJudge(self.suite).score(statements)


def run_bench(
    client: httpx.Client,
    options: BenchOptions,
    *,
    api_key: str | None = None,
    admin_key: str | None = None,
    reporter: Reporter | None = None,
) -> dict[str, Any]:
    """Run the benchmark against the service behind `client` (its base URL set) and write the
    outputs to `options.out_dir`; returns the result (what bench.json holds).

    With `admin_key`, a new workspace "bench-<timestamp>" is created for the run; else
    `api_key` names the workspace to use. Raises ServiceError when the service refuses a step
    the run cannot do without, BenchError when the run cannot go on (a failed augmentation or
    training only drops its column)."""
    reporter = reporter or LogReporter()
    workspace_id = None
    if admin_key:
        name = f"bench-{datetime.now(UTC).strftime('%Y%m%d-%H%M%S')}"
        workspace_id, api_key = ServiceClient(client).create_workspace(admin_key, name)
        reporter.note(f"workspace {name} ({workspace_id}); its API key: {api_key}")
    if not api_key:
        raise BenchError("pass an API key or the admin key (to create a workspace for the run)")
    return BenchRun(ServiceClient(client, api_key), options, reporter, workspace_id).run()
