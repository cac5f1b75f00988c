"""`docadapt` command line: serve, worker, stack, jobs, admin, and the reports and benchmarks. One
module per command group; each imports what it runs only when it runs, so `--help` is quick."""

from __future__ import annotations

import typer

from service.cli import admin, bench, jobs, perf, reports, server, stack

app = typer.Typer(
    help="docadapt: documents in, a LoRA adapter that generalizes like ICL out.",
    no_args_is_help=True,
)
app.command()(server.serve)
app.command()(server.worker)
app.command()(reports.report)
app.command()(bench.bench)
app.command()(stack.stack)
app.add_typer(admin.app, name="admin")
app.add_typer(perf.app, name="perf")
app.add_typer(jobs.app, name="jobs")

__all__ = ["app"]
