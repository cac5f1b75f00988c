"""`docadapt perf X`: the benchmarks that print figures and ratios. Each command hands its
arguments to the `main(argv)` of its module in service/benchmark, which parses them itself (so
`docadapt perf X --help` is that module's)."""

from __future__ import annotations

import importlib
from collections.abc import Callable

import typer

app = typer.Typer(
    help="Benchmarks that print figures and ratios (`docadapt perf query --help`).",
    no_args_is_help=True,
)
_PASS_THROUGH = {"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []}

# name -> (module with `main(argv) -> int`, one line of help)
COMMANDS: dict[str, tuple[str, str]] = {
    "query": (
        "service.benchmark.query_perf",
        "Adapter vs ICL (cold and warm) latency and prompt tokens on one vLLM.",
    ),
    "train": (
        "service.benchmark.train_perf",
        "LoRA training throughput, packing efficiency and peak memory.",
    ),
    "ready": (
        "service.benchmark.ready_perf",
        'Wall time from "train" to "ready" for a 20-document collection with its augmentations.',
    ),
    "load": (
        "service.benchmark.load_perf",
        "Many chat queries at once across adapters and icl: through the REST API: errors, p50/p95.",
    ),
    "augment": (
        "service.benchmark.augment_perf",
        "Teacher concurrency speed-up, global prefix-cache reuse and reversal precision.",
    ),
    "quality": (
        "service.benchmark.quality_perf",
        "Augmentation precision on the real-prose development set and the synthetic sets.",
    ),
    "evalset": (
        "service.benchmark.evalset_perf",
        "Generated eval sets on the development set: share of items with one right answer.",
    ),
    "score": (
        "service.benchmark.score_perf",
        "Evaluation scoring behind a shared context: prompt logprobs vs cached requests.",
    ),
    "queue": (
        "service.benchmark.queue_perf",
        "Job queue on PostgreSQL: claims/s and exactly-once, 4 workers, against procrastinate.",
    ),
}


def _forward(module: str) -> Callable[[typer.Context], None]:
    """A command that runs `module.main` on the arguments it was given (imported only then)."""

    def command(ctx: typer.Context) -> None:
        raise typer.Exit(importlib.import_module(module).main(ctx.args))

    return command


for _name, (_module, _help) in COMMANDS.items():
    app.command(_name, help=_help, context_settings=_PASS_THROUGH)(_forward(_module))
