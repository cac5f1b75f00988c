"""bench.json's content: everything a run produced, gathered from the driver (`BenchRun`) once
it has finished, with each cell and p-value recomputable from the per-item results."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from service.benchmark.bench.options import ADAPTER_COLUMNS, COLUMN_LABELS, COLUMNS, BenchOptions
from service.benchmark.bench.tables import (
    accuracy_table,
    chance_levels,
    paired_summary,
    paired_tests,
    report_check,
    table_rows,
    teacher_quality_rows,
)
from service.benchmark.live_service import job_seconds
from service.benchmark.truth import TruthReport

if TYPE_CHECKING:
    from service.benchmark.bench.run import BenchRun


def bench_result(run: BenchRun, truth: TruthReport) -> dict[str, Any]:
    """What bench.json holds for the finished `run`, with the teacher's quality `truth`."""
    o = run.options
    columns = list(o.table_columns)
    modes = run.column_modes()
    rows = table_rows(run.suite)
    paired = paired_tests(run.results, rows, columns, modes)
    return {
        "schema": "docadapt.bench/2",
        "created_at": run.stamp,
        "options": _options(o),
        "workspace_id": run.workspace_id,
        "collection_id": run.collection_id,
        "evalset_id": run.evalset_id,
        "evaluation_id": run.evaluation.get("id"),
        "datasets": {
            d.name: {
                "documents": len(d.documents),
                "test_items": len(d.test_items),
                "splits": d.splits(),
                "true_inferences": len(d.true_inferences),
            }
            for d in run.suite
        },
        "columns": columns,
        "column_labels": {c: COLUMN_LABELS[c] for c in columns},
        "column_modes": modes,
        "rows": rows,
        "chance": chance_levels(run.suite, rows),
        "table": accuracy_table(run.results, rows, columns, modes),
        "paired_tests": paired,
        "paired_summary": paired_summary(paired),
        "report_check": report_check(run.results, run.report, rows, modes),
        "teacher_quality": teacher_quality_rows(truth),
        "truth": truth.to_dict(),
        "augmentations": _augmentations(run),
        "adapters": _adapters(run),
        "training": _training(run),
        "jobs": _jobs(run),
        "failures": run.failures,
        "timings": {k: round(v, 1) for k, v in run.phases.items()},
        "results": run.results,
        "report": run.report,
    }


def _options(o: BenchOptions) -> dict[str, Any]:
    return {
        "size": o.size,
        "seed": o.seed,
        "seeds": o.seeds,
        "datasets": list(o.datasets),
        "columns": list(o.columns or ()),
        "train": o.train_config,
        "augmentation": o.augmentation_params,
        "evaluation": o.evaluation_params,
    }


def _augmentations(run: BenchRun) -> dict[str, dict[str, Any]]:
    return {
        k: {
            "id": a["id"],
            "source": a.get("source"),
            "params": a.get("params"),
            "stats": a.get("stats"),
            "kept": len(run.examples.get(k, [])),
        }
        for k, a in run.augmentations.items()
    }


def _adapters(run: BenchRun) -> dict[str, list[dict[str, Any]]]:
    """Adapter column -> its adapters' records, one per training seed."""
    return {
        column: [
            {
                "seed": seed,
                "id": a["id"],
                "name": a.get("name"),
                "status": a.get("status"),
                "augmentation_id": a.get("augmentation_id"),
                "hyperparameters": a.get("hyperparameters"),
                "metrics": a.get("metrics"),
            }
            for (c, seed), a in sorted(run.adapters.items())
            if c == column
        ]
        for column in ADAPTER_COLUMNS
        if any(c == column for c, _ in run.adapters)
    }


def _training(run: BenchRun) -> list[dict[str, Any]]:
    """The training table's rows, in column order, then seed order."""
    return [
        {
            "column": c,
            "seed": seed,
            **training_summary(a, run.jobs.get(f"train:{c}:s{seed}", {})),
        }
        for (c, seed), a in sorted(
            run.adapters.items(), key=lambda kv: (COLUMNS.index(kv[0][0]), kv[0][1])
        )
    ]


def _jobs(run: BenchRun) -> dict[str, dict[str, Any]]:
    return {
        k: {
            "id": j["id"],
            "status": j["status"],
            "seconds": job_seconds(j),
            "attempts": j.get("attempts"),
            "error": j.get("error"),
        }
        for k, j in run.jobs.items()
    }


def training_summary(adapter: dict[str, Any], job: dict[str, Any]) -> dict[str, Any]:
    """What the training table shows of one adapter: examples, steps (and the cap), where early
    stopping ended it, training and job seconds, the knowledge check after training (adapter
    and base) and its curve during training."""
    metrics = adapter.get("metrics") or {}
    knowledge = metrics.get("knowledge") or {}
    return {
        "examples": metrics.get("examples"),
        "rows": metrics.get("rows"),
        "steps": metrics.get("steps"),
        "planned_steps": metrics.get("planned_steps"),
        "stopped_early_at": metrics.get("stopped_early_at"),
        "train_seconds": metrics.get("train_seconds"),
        "eval_seconds": metrics.get("eval_seconds"),
        "job_seconds": job_seconds(job) if job else None,
        "tokens_per_second": metrics.get("tokens_per_second"),
        "knowledge": knowledge.get("adapter"),
        "knowledge_base": knowledge.get("base"),
        "knowledge_probes": knowledge.get("probes"),
        "knowledge_curve": metrics.get("knowledge_curve"),
    }
