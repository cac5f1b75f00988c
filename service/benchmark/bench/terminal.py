"""`docadapt bench` in a terminal: progress bars while it runs, then its tables with rich."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from service.benchmark.bench.formatting import format_cell, format_paired, pct, secs, seeds_note
from service.benchmark.bench.options import COLUMN_LABELS, BenchOptions
from service.benchmark.bench.run import run_bench
from service.benchmark.live_service import BenchError, read_admin_key
from service.client import ServiceClient, ServiceError
from service.jobs.watch import RichReporter


def rich_table(result: dict[str, Any]) -> Any:
    """The accuracy table as a rich Table, for the terminal."""
    from rich.table import Table

    o = result["options"]
    table = Table(title=f"docadapt bench, size {o['size']}, {seeds_note(o)}: accuracy")
    table.add_column("data / split")
    table.add_column("chance", justify="right")
    for column in result["columns"]:
        table.add_column(result["column_labels"][column], justify="right")
    for row in result["rows"]:
        table.add_row(
            row,
            pct(result["chance"][row]),
            *(format_cell(result["table"][row][c]) for c in result["columns"]),
        )
    return table


def rich_paired_table(result: dict[str, Any]) -> Any:
    """The paired tests' p-values as a rich Table: one column per (column, reference)."""
    from rich.table import Table

    summary = result.get("paired_summary") or {}
    labels = result["column_labels"]
    pairs = list(dict.fromkeys(k for entries in summary.values() for k in entries))
    table = Table(title="exact McNemar p (+column right only / -reference right only)")
    table.add_column("data / split")
    for pair in pairs:
        column, reference = pair.split(" vs ")
        table.add_column(f"{labels.get(column, column)} vs {labels.get(reference, reference)}")
    for row in result["rows"]:
        entries = summary.get(row, {})
        table.add_row(row, *(format_paired(entries.get(p)).replace("**", "") for p in pairs))
    return table


def rich_training_table(result: dict[str, Any]) -> Any:
    from rich.table import Table

    labels = result["column_labels"]
    table = Table(title="training to the knowledge check's plateau")
    for name in ("column", "seed", "steps (cap)", "stopped early", "train s", "knows", "base"):
        table.add_column(name, justify="left" if name == "column" else "right")
    for t in result.get("training") or []:
        table.add_row(
            labels.get(t["column"], t["column"]),
            str(t["seed"]),
            f"{t['steps']} ({t['planned_steps']})",
            "-" if t["stopped_early_at"] is None else str(t["stopped_early_at"]),
            secs(t["train_seconds"]),
            pct(t["knowledge"]),
            pct(t["knowledge_base"]),
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
            pct(q["precision"]),
            pct(q["contradiction_rate"]),
            pct(q["recall"]),
            pct(q["reversal_precision"]),
            pct(q["reversal_contradiction_rate"]),
            pct(q["reversal_recall"]),
        )
    return table


def cli_main(
    size: str,
    url: str,
    api_key: str | None,
    admin_key: str | None,
    out: Path,
    seed: int,
    strategies: Sequence[str] | None,
    seeds: int = 1,
) -> int:
    """`docadapt bench`: run, show progress and the tables; 0 on success, 1 with a message."""
    from rich.console import Console
    from rich.markup import escape

    console = Console()
    columns = [s.strip() for raw in (strategies or []) for s in raw.split(",") if s.strip()]
    try:
        options = BenchOptions(
            size=size,
            seed=seed,
            seeds=seeds,
            out_dir=out,
            columns=tuple(columns) if columns else None,
        )
    except ValueError as exc:
        console.print(f"[red]{escape(str(exc))}")
        return 1
    if not api_key and not admin_key:
        from service.core.config import Settings

        admin_key = read_admin_key(Settings())
        if admin_key is None:
            console.print(
                "[red]pass --api-key KEY or --admin-key KEY (or set DOCADAPT_ADMIN_KEY "
                "or DOCADAPT_DATA_DIR to the service's data folder)"
            )
            return 1
    try:
        with ServiceClient.connect(url, timeout_s=300) as api, RichReporter(console) as rep:
            result = run_bench(
                api.http, options, api_key=api_key, admin_key=admin_key, reporter=rep
            )
    except (BenchError, ServiceError) as exc:
        console.print(f"[red]bench failed: {escape(str(exc))}")
        return 1
    console.print(rich_table(result))
    console.print(rich_paired_table(result))
    console.print(rich_training_table(result))
    console.print(rich_quality_table(result))
    for line in (result.get("report", {}).get("recommendation") or {}).get("lines", []):
        console.print(escape(line))
    for column, why in result["failures"].items():
        console.print(f"[yellow]{COLUMN_LABELS.get(column, column)} dropped: {escape(why)}")
    console.print(
        f"total {result['timings'].get('total_s', 0) / 60:.1f} min; "
        f"results: {options.out_dir}/bench.json, bench.md, bench.png"
    )
    return 0
