"""`docadapt bench`: the controlled generalization benchmark of Lampinen et al. (2025), run against
a live docadapt service through its REST API only, exactly as a user would drive it.

    from service.benchmark.bench import BenchOptions, run_bench
    with httpx.Client(base_url="http://127.0.0.1:8000", timeout=120) as client:
        result = run_bench(client, BenchOptions(size="small", out_dir=Path("bench")),
                           admin_key="...")

One run: the generated suite (simple reversals, syllogisms, semantic structure) goes into ONE
collection and one eval set (items categorised "<dataset>/<split>"); the teacher augments it with
the local, global and decomposed strategies; "both" is the union of the local and global sets
(the same examples a job with strategies local+global keeps, without paying the teacher twice);
"oracle" is the generator's own true inferences, uploaded as an augmentation set, which
separates the method from the teacher's quality. Adapters with identical hyperparameters: plain
fine-tuning (FT, documents only) and one per augmentation set. One evaluation scores base, ICL
and every adapter. Out come one accuracy table like the paper's (rows: dataset/split, cells
"acc% [95% Wilson interval]"), the teacher's quality against the generator's truth (precision,
contradiction rate, recall per strategy), and bench.json (everything, per-item results
included), bench.md (the tables) and bench.png (grouped bars with interval whiskers).

Jobs run in the order they are created (one worker runs them one at a time), so the driver
creates every augmentation first, then the adapters that need no teacher, then each augmented
adapter as soon as its augmentation succeeds, and the evaluation once every adapter is ready.
A failed augmentation or training drops its column (reported, never hidden); the rest goes on.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import httpx

from service.benchmark.datasets import BenchmarkDataset, generate_suite
from service.benchmark.truth import REVERSAL, AugmentedStatement, TruthJudge, TruthReport
from service.evaluate.stats import wilson_interval
from service.jobs.watch import TERMINAL, RichReporter

log = logging.getLogger("docadapt.bench")

# Table columns, in the paper's order; "decomposed" is our precise local variant.
COLUMNS: tuple[str, ...] = ("base", "icl", "ft", "local", "global", "both", "decomposed", "oracle")
COLUMN_LABELS: dict[str, str] = {
    "base": "base",
    "icl": "ICL",
    "ft": "FT",
    "local": "aug local",
    "global": "aug global",
    "both": "aug both",
    "decomposed": "aug decomposed",
    "oracle": "oracle",
}
# Columns that are adapters trained on an augmentation set (the --strategies choices).
AUGMENTED: tuple[str, ...] = ("local", "global", "both", "decomposed", "oracle")
TEACHER_STRATEGIES: tuple[str, ...] = ("local", "global", "decomposed")
OVERALL = "all"


@dataclass(frozen=True)
class SizePreset:
    """What one size runs with: the same training hyperparameters for every adapter, the
    augmentation request's parameters, and the evaluation request's extras."""

    train: dict[str, Any]
    augmentation: dict[str, Any]
    evaluation: dict[str, Any]


# Why these numbers. Training is the bulk of a CPU run: 6 adapters, one after another, at about
# 110-130 tokens/s here (SmolLM2-135M, LoRA r16, fp32 on AVX2 cores), so a step of batch x
# seq_length packed tokens costs batch x seq / 120 s. "small" (the suite is ~1,600 document
# tokens, about 13 packed rows of 128) gets 32 steps of 4 x 128: ~10 passes over the documents for
# FT and several over each augmented set, ~150 s per adapter, so augmentation (~10 min), 6
# trainings and the evaluation (its ICL mode scores through the prefix cache) fit about 30
# minutes on 2 cores. lr 1e-3 is high for LoRA but needed to learn facts in that few steps. "tiny"
# only proves the pipeline (tests). "medium"/"large" are for GPU hosts and follow the paper's
# recipe (batch 8-16, lr 3e-4, hundreds of steps).
PRESETS: dict[str, SizePreset] = {
    "tiny": SizePreset(
        train={
            "max_steps": 4,
            "batch_size": 2,
            "max_seq_length": 64,
            "learning_rate": 2e-3,
            "rank": 8,
            "alpha": 16,
            "checkpoint_every": 0,
            "eval_every": 0,
        },
        augmentation={
            "outputs_per_unit": 1,
            "temperature": 0.7,
            "max_tokens": 48,
            "global_max_tokens": 96,
        },
        evaluation={"measure_latency": False, "concurrency": 8},
    ),
    "small": SizePreset(
        train={
            "max_steps": 32,
            "batch_size": 4,
            "max_seq_length": 128,
            "learning_rate": 1e-3,
            "rank": 16,
            "alpha": 32,
            "checkpoint_every": 16,
            "eval_every": 0,
        },
        augmentation={"outputs_per_unit": 2, "temperature": 0.7, "max_tokens": 96},
        evaluation={"measure_latency": True, "latency_samples": 1, "concurrency": 8},
    ),
    "medium": SizePreset(
        train={
            "max_steps": 300,
            "batch_size": 8,
            "max_seq_length": 256,
            "learning_rate": 3e-4,
            "rank": 16,
            "alpha": 32,
            "checkpoint_every": 100,
            "eval_every": 100,
        },
        augmentation={"outputs_per_unit": 3, "temperature": 0.7},
        evaluation={"measure_latency": True, "latency_samples": 3, "concurrency": 16},
    ),
    "large": SizePreset(
        train={
            "max_steps": 1000,
            "batch_size": 16,
            "max_seq_length": 256,
            "learning_rate": 3e-4,
            "rank": 16,
            "alpha": 32,
            "checkpoint_every": 200,
            "eval_every": 200,
        },
        augmentation={"outputs_per_unit": 4, "temperature": 0.7},
        evaluation={"measure_latency": True, "latency_samples": 3, "concurrency": 32},
    ),
}


@dataclass
class BenchOptions:
    """One bench run. `columns` are the augmented columns to run (base, ICL and FT always run);
    `train` overrides the size's training hyperparameters, `augmentation` and `evaluation` its
    request parameters."""

    size: str = "small"
    seed: int = 0
    out_dir: Path = Path("bench-results")
    columns: Sequence[str] = AUGMENTED
    train: dict[str, Any] = field(default_factory=dict)
    augmentation: dict[str, Any] = field(default_factory=dict)
    evaluation: dict[str, Any] = field(default_factory=dict)
    poll_s: float = 1.5
    timeout_s: float | None = None  # the whole run; None: no limit
    upload_batch: int = 16  # files per upload request

    def __post_init__(self) -> None:
        if self.size not in PRESETS:
            raise ValueError(f"unknown size {self.size!r}; one of {', '.join(PRESETS)}")
        unknown = [c for c in self.columns if c not in AUGMENTED]
        if unknown:
            raise ValueError(f"unknown strategies {unknown}; choose from {', '.join(AUGMENTED)}")
        self.columns = tuple(c for c in AUGMENTED if c in self.columns)
        self.out_dir = Path(self.out_dir)

    @property
    def train_config(self) -> dict[str, Any]:
        return {**PRESETS[self.size].train, **self.train}

    @property
    def augmentation_params(self) -> dict[str, Any]:
        return {**PRESETS[self.size].augmentation, **self.augmentation}

    @property
    def evaluation_params(self) -> dict[str, Any]:
        return {**PRESETS[self.size].evaluation, **self.evaluation}

    @property
    def table_columns(self) -> tuple[str, ...]:
        return ("base", "icl", "ft", *self.columns)


class BenchError(RuntimeError):
    """The service refused a request or the run cannot go on; the message says why."""


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


# -- the REST client ----------------------------------------------------------------------------


class ServiceAPI:
    """The few REST calls the bench makes, with the workspace's key; any non-2xx answer raises
    BenchError carrying the service's own error message."""

    def __init__(self, client: httpx.Client, api_key: str) -> None:
        self.client = client
        self.headers = {"Authorization": f"Bearer {api_key}"}

    def call(self, method: str, path: str, *, expect_json: bool = True, **kwargs: Any) -> Any:
        headers = {**self.headers, **kwargs.pop("headers", {})}
        try:
            response = self.client.request(method, path, headers=headers, **kwargs)
        except httpx.HTTPError as exc:
            raise BenchError(f"{method} {path}: the service did not answer ({exc})") from exc
        if response.status_code >= 400:
            raise BenchError(
                f"{method} {path}: HTTP {response.status_code}: {_error_message(response)}"
            )
        return response.json() if expect_json else response.text

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.call("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Any:
        return self.call("POST", path, **kwargs)

    def examples(self, augmentation_id: str) -> list[dict[str, Any]]:
        text = self.get(f"/v1/augmentations/{augmentation_id}/examples", expect_json=False)
        return [json.loads(line) for line in text.splitlines() if line.strip()]


def _error_message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:500]
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return f"{error.get('code')}: {error.get('message')}"
    return json.dumps(body)[:500]


def create_workspace(client: httpx.Client, admin_key: str, name: str) -> tuple[str, str]:
    """A new workspace named `name` through the admin API: (workspace id, its API key)."""
    response = client.post(
        "/v1/workspaces", json={"name": name}, headers={"Authorization": f"Bearer {admin_key}"}
    )
    if response.status_code >= 400:
        raise BenchError(
            f"creating workspace {name!r}: HTTP {response.status_code}: {_error_message(response)}"
        )
    body = response.json()
    return body["workspace"]["id"], body["api_key"]


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
        api: ServiceAPI,
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
        self.adapters: dict[str, dict[str, Any]] = {}  # column -> public record
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
                job = self.api.get(f"/v1/jobs/{watch.job_id}")
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
                self.api.post(f"/v1/jobs/{watch.job_id}/cancel")
                self.reporter.note(f"cancelled {watch.label} ({watch.job_id})")
            except BenchError as exc:
                self.reporter.note(f"could not cancel {watch.label}: {exc}")
        self._watches.clear()

    def _fail(self, column: str, why: str) -> None:
        self.failures[column] = why
        self.reporter.note(f"[{column}] dropped: {why}")

    # -- phases --

    def run(self) -> dict[str, Any]:
        o = self.options
        self.reporter.note(
            f"docadapt bench: size {o.size}, seed {o.seed}, "
            f"columns {', '.join(COLUMN_LABELS[c] for c in o.table_columns)}"
        )
        self.suite = generate_suite(o.size, o.seed)
        t = time.monotonic()
        self._upload()
        self.phases["upload_s"] = time.monotonic() - t
        try:
            t = time.monotonic()
            self._start_jobs()
            self._wait_all()
            self.phases["augment_and_train_s"] = time.monotonic() - t
            ready = {c: a for c, a in self.adapters.items() if c not in self.failures}
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
        result = self._result(truth)
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

    def _start_jobs(self) -> None:
        """Augmentations first (the teacher), then the adapters that need none; each augmented
        adapter follows its augmentation (see `_on_augmentation`)."""
        cols = self.options.columns
        needed = [
            s
            for s in TEACHER_STRATEGIES
            if s in cols or (s in ("local", "global") and "both" in cols)
        ]
        for strategy in needed:
            aug = self.api.post(
                f"/v1/collections/{self.collection_id}/augmentations",
                json={"strategies": [strategy], **self.options.augmentation_params},
            )
            self.augmentations[strategy] = aug
            self._watch(
                f"augment:{strategy}",
                f"augment {strategy}",
                aug["job"]["id"],
                lambda job, s=strategy: self._on_augmentation(s, job),
            )
        self._train("ft", None)
        if "oracle" in cols:
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
        self._train(column, aug["id"])

    def _train(self, column: str, augmentation_id: str | None) -> None:
        body: dict[str, Any] = {
            "name": f"{self.tag}-{column}",
            "hyperparameters": self.options.train_config,
        }
        if augmentation_id:
            body["augmentation_id"] = augmentation_id
        adapter = self.api.post(f"/v1/collections/{self.collection_id}/adapters", json=body)
        self.adapters[column] = adapter
        self._watch(
            f"train:{column}",
            f"train {COLUMN_LABELS[column]}",
            adapter["job"]["id"],
            lambda job, c=column: self._on_training(c, job),
        )

    def _on_augmentation(self, strategy: str, job: dict[str, Any]) -> None:
        cols = self.options.columns
        users = [strategy] if strategy in cols else []
        if strategy in ("local", "global") and "both" in cols:
            users.append("both")
        if job["status"] != "succeeded":
            for column in users:
                self._fail(column, f"augmentation {strategy} {job['status']}: {job.get('error')}")
            return
        aug = self.api.get(f"/v1/augmentations/{self.augmentations[strategy]['id']}")
        self.augmentations[strategy] = aug
        self.examples[strategy] = self.api.examples(aug["id"])
        self.reporter.note(
            f"augmentation {strategy}: {len(self.examples[strategy])} examples "
            f"kept in {job_seconds(job):.0f} s"
        )
        if strategy in cols:
            if self.examples[strategy]:
                self._train(strategy, aug["id"])
            else:
                self._fail(strategy, f"the {strategy} augmentation kept no examples")
        other = {"local": "global", "global": "local"}.get(strategy)
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

    def _on_training(self, column: str, job: dict[str, Any]) -> None:
        adapter = self.api.get(f"/v1/adapters/{self.adapters[column]['id']}")
        self.adapters[column] = adapter
        if job["status"] != "succeeded" or adapter["status"] != "ready":
            self._fail(
                column,
                f"training {job['status']}, adapter {adapter['status']}: "
                f"{job.get('error') or adapter.get('status_reason')}",
            )
            return
        self.reporter.note(f"adapter {COLUMN_LABELS[column]} ready after {job_seconds(job):.0f} s")

    def _teacher_costs(self) -> dict[str, dict[str, int]]:
        """The "both" set was uploaded: its teacher cost is what local and global cost."""
        if "both" not in self.adapters or "both" in self.failures:
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
        return {self.adapters["both"]["id"]: totals}

    def _evaluate(self, ready: dict[str, dict[str, Any]]) -> None:
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

    def column_modes(self) -> dict[str, str]:
        """Table column -> the evaluation's mode name for it."""
        by_adapter = {m.get("adapter_id"): m["name"] for m in self.evaluation.get("modes", [])}
        out = {"base": "base", "icl": "icl"}
        for column, adapter in self.adapters.items():
            if adapter["id"] in by_adapter:
                out[column] = by_adapter[adapter["id"]]
        return out

    def _teacher_quality(self) -> TruthReport:
        statements = [
            AugmentedStatement(
                text=e["text"],
                strategy=column,
                source_doc_id=self.doc_ids.get(e.get("document_id") or ""),
            )
            for column in (*TEACHER_STRATEGIES, "both", "oracle")
            if column in self.examples
            for e in self.examples[column]
        ]
        return TruthJudge(self.suite).score(statements)

    def _result(self, truth: TruthReport) -> dict[str, Any]:
        o = self.options
        columns = list(o.table_columns)
        modes = self.column_modes()
        rows = table_rows(self.suite)
        table = accuracy_table(self.results, rows, columns, modes)
        return {
            "schema": "docadapt.bench/1",
            "created_at": self.stamp,
            "options": {
                "size": o.size,
                "seed": o.seed,
                "columns": list(o.columns),
                "train": o.train_config,
                "augmentation": o.augmentation_params,
                "evaluation": o.evaluation_params,
            },
            "workspace_id": self.workspace_id,
            "collection_id": self.collection_id,
            "evalset_id": self.evalset_id,
            "evaluation_id": self.evaluation.get("id"),
            "datasets": {
                d.name: {
                    "documents": len(d.documents),
                    "test_items": len(d.test_items),
                    "splits": d.splits(),
                    "true_inferences": len(d.true_inferences),
                }
                for d in self.suite
            },
            "columns": columns,
            "column_labels": {c: COLUMN_LABELS[c] for c in columns},
            "column_modes": modes,
            "rows": rows,
            "chance": chance_levels(self.suite, rows),
            "table": table,
            "report_check": report_check(table, self.report, modes),
            "teacher_quality": teacher_quality_rows(truth),
            "truth": truth.to_dict(),
            "augmentations": {
                k: {
                    "id": a["id"],
                    "source": a.get("source"),
                    "params": a.get("params"),
                    "stats": a.get("stats"),
                    "kept": len(self.examples.get(k, [])),
                }
                for k, a in self.augmentations.items()
            },
            "adapters": {
                c: {
                    "id": a["id"],
                    "name": a.get("name"),
                    "status": a.get("status"),
                    "augmentation_id": a.get("augmentation_id"),
                    "hyperparameters": a.get("hyperparameters"),
                    "metrics": a.get("metrics"),
                }
                for c, a in self.adapters.items()
            },
            "jobs": {
                k: {
                    "id": j["id"],
                    "status": j["status"],
                    "seconds": job_seconds(j),
                    "attempts": j.get("attempts"),
                    "error": j.get("error"),
                }
                for k, j in self.jobs.items()
            },
            "failures": self.failures,
            "timings": {k: round(v, 1) for k, v in self.phases.items()},
            "results": self.results,
            "report": self.report,
        }


def job_seconds(job: dict[str, Any]) -> float:
    """Wall time of a finished job from its start and end stamps (0 when it never started)."""
    try:
        start = datetime.fromisoformat(job["started_at"])
        end = datetime.fromisoformat(job["finished_at"])
    except (KeyError, TypeError, ValueError):
        return 0.0
    return max(0.0, (end - start).total_seconds())


# -- tables -------------------------------------------------------------------------------------


def table_rows(suite: Sequence[BenchmarkDataset]) -> list[str]:
    """ "<dataset>/<split>" for every split of every dataset, in generator order, then "all"."""
    return [f"{d.name}/{split}" for d in suite for split in d.splits()] + [OVERALL]


def chance_levels(suite: Sequence[BenchmarkDataset], rows: Sequence[str]) -> dict[str, float]:
    """Expected accuracy of guessing, per row: the mean of 1 / number of choices."""
    items = [i for d in suite for i in d.test_items]
    out = {}
    for row in rows:
        mine = [i for i in items if row == OVERALL or i.category == row]
        out[row] = sum(1 / len(i.choices) for i in mine) / len(mine) if mine else math.nan
    return out


def cell(correct: int, n: int) -> dict[str, Any]:
    """k of n with its 95% Wilson interval (None fields when n is 0)."""
    interval = wilson_interval(correct, n)
    return {
        "correct": correct,
        "n": n,
        "accuracy": correct / n if n else None,
        "ci_low": interval[0] if interval else None,
        "ci_high": interval[1] if interval else None,
    }


def accuracy_table(
    results: Sequence[dict[str, Any]],
    rows: Sequence[str],
    columns: Sequence[str],
    modes: dict[str, str],
) -> dict[str, dict[str, Any]]:
    """row -> column -> cell, recomputed from the per-item results (`correct`, the primary
    metric); a column without a mode (dropped) has None cells."""
    table: dict[str, dict[str, Any]] = {}
    for row in rows:
        table[row] = {}
        for column in columns:
            mode = modes.get(column)
            if mode is None:
                table[row][column] = None
                continue
            mine = [
                r
                for r in results
                if r["mode"] == mode and (row == OVERALL or r.get("category") == row)
            ]
            table[row][column] = cell(sum(bool(r["correct"]) for r in mine), len(mine))
    return table


def report_check(
    table: dict[str, dict[str, Any]], report: dict[str, Any], modes: dict[str, str]
) -> dict[str, Any]:
    """Whether the service's report says the same k of n as the table, cell by cell."""
    by_category = report.get("accuracy_by_category") or {}
    overall = report.get("accuracy") or {}
    mismatches = []
    compared = 0
    for row, cells in table.items():
        for column, value in cells.items():
            if value is None:
                continue
            mode = modes[column]
            source = overall.get(mode) if row == OVERALL else by_category.get(mode, {}).get(row)
            theirs = (source or {}).get("correct")
            if theirs is None:
                continue
            compared += 1
            if (theirs["correct"], theirs["n"]) != (value["correct"], value["n"]):
                mismatches.append(
                    {
                        "row": row,
                        "column": column,
                        "table": [value["correct"], value["n"]],
                        "report": [theirs["correct"], theirs["n"]],
                    }
                )
    return {"compared": compared, "mismatches": mismatches, "agrees": not mismatches}


def format_cell(value: dict[str, Any] | None) -> str:
    """ "acc% [lo-hi]" in whole percent, or "-" for a dropped column."""
    if value is None or not value["n"]:
        return "-"
    return (
        f"{100 * value['accuracy']:.0f}% [{100 * value['ci_low']:.0f}-{100 * value['ci_high']:.0f}]"
    )


def teacher_quality_rows(truth: TruthReport) -> list[dict[str, Any]]:
    """Per strategy: kept, precision, contradiction rate and recall, over everything and on
    reversals (precision on the simple-reversals data, recall on every reversal split)."""
    out = []
    strategies = list(dict.fromkeys(q.strategy for q in truth.qualities))
    for strategy in strategies:
        overall = truth.get(strategy)
        try:
            reversal_data = truth.get(strategy, "simple_reversals")
        except KeyError:
            reversal_data = None
        out.append(
            {
                "strategy": strategy,
                "kept": overall.kept,
                "true": overall.true,
                "contradiction": overall.contradiction,
                "unknown": overall.unknown,
                "precision": overall.precision,
                "contradiction_rate": overall.contradiction_rate,
                "recall": overall.recall.get("all"),
                "reversal_kept": reversal_data.kept if reversal_data else 0,
                "reversal_precision": reversal_data.precision if reversal_data else None,
                "reversal_contradiction_rate": (
                    reversal_data.contradiction_rate if reversal_data else None
                ),
                "reversal_recall": overall.recall.get(REVERSAL),
            }
        )
    return out


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.0f}%"


def markdown(result: dict[str, Any]) -> str:
    """The tables of a bench result as Markdown."""
    o = result["options"]
    columns = result["columns"]
    labels = result["column_labels"]
    lines = [
        f"# docadapt bench: size {o['size']}, seed {o['seed']}",
        "",
        "Accuracy on held-out test items (multiple choice by log-likelihood, choices not shown), "
        "with 95% Wilson intervals; chance is the mean of 1/choices.",
        "",
        "| data / split | chance | " + " | ".join(labels[c] for c in columns) + " |",
        "|---|---|" + "---|" * len(columns),
    ]
    for row in result["rows"]:
        cells = [format_cell(result["table"][row][c]) for c in columns]
        n = next((v["n"] for v in result["table"][row].values() if v), 0)
        name = f"**{row}**" if row == OVERALL else row
        lines.append(
            f"| {name} (n={n}) | {_pct(result['chance'][row])} | " + " | ".join(cells) + " |"
        )
    lines += [
        "",
        "Columns: base = the model alone; ICL = the documents in the prompt; FT = fine-tuned on "
        "the documents; aug X = fine-tuned on the documents plus the X augmentation; aug both = "
        "the union of the local and global sets; aug decomposed = our precise local variant "
        "(extract, invert, compose); oracle = the generator's own true inferences as the "
        "augmentation set. Every adapter: the same hyperparameters "
        f"({', '.join(f'{k}={v}' for k, v in o['train'].items())}).",
        "",
        "## Teacher quality against the generator's truth",
        "",
        "| strategy | kept | precision | contradictions | recall | reversal data: kept | "
        "precision | contradictions | recall on reversal splits |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for q in result["teacher_quality"]:
        lines.append(
            f"| {q['strategy']} | {q['kept']} | {_pct(q['precision'])} | "
            f"{_pct(q['contradiction_rate'])} | {_pct(q['recall'])} | {q['reversal_kept']} | "
            f"{_pct(q['reversal_precision'])} | {_pct(q['reversal_contradiction_rate'])} | "
            f"{_pct(q['reversal_recall'])} |"
        )
    lines += [
        "",
        "Precision: share of kept statements that are true; contradictions: share that state "
        "something false; the rest says nothing the matcher can decide. Recall: share of the "
        "inferences the test items need that some true statement of the strategy states in words "
        "of its own. Reversal data: the statements about the simple-reversals dataset.",
        "",
        "## Run",
        "",
    ]
    for key, job in result["jobs"].items():
        lines.append(f"- {key}: {job['status']} in {job['seconds']:.0f} s")
    lines.append(f"- total: {result['timings'].get('total_s', 0) / 60:.1f} min")
    for column, why in result["failures"].items():
        lines.append(f"- **{labels.get(column, column)} dropped**: {why}")
    if not result["report_check"]["agrees"]:
        lines.append(
            f"- the service's report disagrees with the per-item results: "
            f"{result['report_check']['mismatches']}"
        )
    return "\n".join(lines) + "\n"


def plot_png(result: dict[str, Any], path: Path) -> None:
    """Grouped bars: one group per row, one bar per column, 95% interval whiskers, chance
    marked per group."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows, columns = result["rows"], result["columns"]
    width = 0.8 / len(columns)
    fig, ax = plt.subplots(figsize=(min(18.0, max(8.0, 0.25 * len(rows) * len(columns))), 4.8))
    colors = plt.get_cmap("tab10")
    for j, column in enumerate(columns):
        xs, ys, lo, hi = [], [], [], []
        for i, row in enumerate(rows):
            value = result["table"][row][column]
            if not value or not value["n"]:
                continue
            xs.append(i - 0.4 + width * (j + 0.5))
            ys.append(100 * value["accuracy"])
            lo.append(100 * (value["accuracy"] - value["ci_low"]))
            hi.append(100 * (value["ci_high"] - value["accuracy"]))
        ax.bar(
            xs,
            ys,
            width,
            yerr=[lo, hi],
            capsize=2,
            color=colors(j % 10),
            label=result["column_labels"][column],
            error_kw={"elinewidth": 0.8},
        )
    for i, row in enumerate(rows):
        chance = result["chance"][row]
        ax.hlines(
            100 * chance,
            i - 0.45,
            i + 0.45,
            colors="black",
            linestyles="dashed",
            linewidth=0.8,
            label="chance" if i == 0 else None,
        )
    ax.set_xticks(range(len(rows)))
    ax.set_xticklabels([r.replace("/", "\n") for r in rows], fontsize=8)
    ax.set_ylim(0, 105)
    ax.set_ylabel("accuracy (%)")
    o = result["options"]
    ax.set_title(f"docadapt bench, size {o['size']}, seed {o['seed']} (95% Wilson intervals)")
    ax.legend(fontsize=7, ncol=5, loc="upper center", bbox_to_anchor=(0.5, -0.16))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_outputs(result: dict[str, Any], out_dir: Path) -> None:
    """bench.json (everything), bench.md (the tables) and bench.png (the plot) in `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "bench.json").write_text(
        json.dumps(result, indent=1, ensure_ascii=False, default=str), encoding="utf-8"
    )
    (out_dir / "bench.md").write_text(markdown(result), encoding="utf-8")
    plot_png(result, out_dir / "bench.png")


# -- entry points -------------------------------------------------------------------------------


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
    `api_key` names the workspace to use. Raises BenchError when the service refuses a step
    the run cannot do without (a failed augmentation or training only drops its column)."""
    reporter = reporter or LogReporter()
    workspace_id = None
    if admin_key:
        name = f"bench-{datetime.now(UTC).strftime('%Y%m%d-%H%M%S')}"
        workspace_id, api_key = create_workspace(client, admin_key, name)
        reporter.note(f"workspace {name} ({workspace_id}); its API key: {api_key}")
    if not api_key:
        raise BenchError("pass an API key or the admin key (to create a workspace for the run)")
    return BenchRun(ServiceAPI(client, api_key), options, reporter, workspace_id).run()


def rich_table(result: dict[str, Any]) -> Any:
    """The accuracy table as a rich Table, for the terminal."""
    from rich.table import Table

    table = Table(
        title=f"docadapt bench, size {result['options']['size']}: accuracy [95% interval]"
    )
    table.add_column("data / split")
    table.add_column("chance", justify="right")
    for column in result["columns"]:
        table.add_column(result["column_labels"][column], justify="right")
    for row in result["rows"]:
        table.add_row(
            row,
            _pct(result["chance"][row]),
            *(format_cell(result["table"][row][c]) for c in result["columns"]),
        )
    return table


def rich_quality_table(result: dict[str, Any]) -> Any:
    from rich.table import Table

    table = Table(title="teacher quality against the truth")
    for name in (
        "strategy",
        "kept",
        "precision",
        "contradictions",
        "recall",
        "reversal precision",
        "reversal contradictions",
        "reversal recall",
    ):
        table.add_column(name, justify="left" if name == "strategy" else "right")
    for q in result["teacher_quality"]:
        table.add_row(
            q["strategy"],
            str(q["kept"]),
            _pct(q["precision"]),
            _pct(q["contradiction_rate"]),
            _pct(q["recall"]),
            _pct(q["reversal_precision"]),
            _pct(q["reversal_contradiction_rate"]),
            _pct(q["reversal_recall"]),
        )
    return table


def read_admin_key(settings: Any) -> str | None:
    """The admin key a local `docadapt serve` uses: DOCADAPT_ADMIN_KEY, else the key file it
    generated in its data folder; None when neither exists."""
    if settings.admin_key is not None:
        return str(settings.admin_key.get_secret_value())
    path = Path(settings.data_dir) / "admin_key"
    return path.read_text().strip() if path.exists() else None


def cli_main(
    size: str,
    url: str,
    api_key: str | None,
    admin_key: str | None,
    out: Path,
    seed: int,
    strategies: Sequence[str] | None,
) -> int:
    """`docadapt bench`: run, show progress and the tables; 0 on success, 1 with a message."""
    from rich.console import Console
    from rich.markup import escape

    console = Console()
    columns = [s.strip() for raw in (strategies or []) for s in raw.split(",") if s.strip()]
    try:
        options = BenchOptions(
            size=size, seed=seed, out_dir=out, columns=tuple(columns) if columns else AUGMENTED
        )
    except ValueError as exc:
        console.print(f"[red]{escape(str(exc))}")
        return 1
    if not api_key and not admin_key:
        from service.config import Settings

        admin_key = read_admin_key(Settings())
        if admin_key is None:
            console.print(
                "[red]pass --api-key KEY or --admin-key KEY (or set DOCADAPT_ADMIN_KEY "
                "or DOCADAPT_DATA_DIR to the service's data folder)"
            )
            return 1
    try:
        with httpx.Client(base_url=url, timeout=300) as client, RichReporter(console) as rep:
            result = run_bench(client, options, api_key=api_key, admin_key=admin_key, reporter=rep)
    except BenchError as exc:
        console.print(f"[red]bench failed: {escape(str(exc))}")
        return 1
    console.print(rich_table(result))
    console.print(rich_quality_table(result))
    for column, why in result["failures"].items():
        console.print(f"[yellow]{COLUMN_LABELS.get(column, column)} dropped: {escape(why)}")
    console.print(f"results: {options.out_dir}/bench.json, bench.md, bench.png")
    return 0


__all__ = [
    "AUGMENTED",
    "COLUMNS",
    "PRESETS",
    "BenchError",
    "BenchOptions",
    "BenchRun",
    "accuracy_table",
    "cli_main",
    "markdown",
    "run_bench",
    "table_rows",
]
