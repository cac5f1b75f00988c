"""`docadapt bench`: the controlled generalization benchmark against a running service."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def bench(
    size: Annotated[
        str,
        typer.Option(
            help="tiny (tests), small (2-core CPU, <= 30 min: simple reversals and syllogisms; "
            "FT, default and oracle), medium, large (GPU hosts: every dataset and column)."
        ),
    ] = "small",
    url: Annotated[
        str, typer.Option(help="The running docadapt service.")
    ] = "http://127.0.0.1:8000",
    api_key: Annotated[str | None, typer.Option(help="Run in this key's workspace.")] = None,
    admin_key: Annotated[
        str | None,
        typer.Option(
            help="Create a workspace for the run (default: the local "
            "service's admin key, if readable here)."
        ),
    ] = None,
    out: Annotated[Path, typer.Option(help="Folder for bench.json, bench.md, bench.png.")] = Path(
        "bench-results"
    ),
    seed: Annotated[int, typer.Option(help="Seed of the generated datasets.")] = 0,
    seeds: Annotated[
        int,
        typer.Option(
            min=1,
            max=20,
            help="Train every adapter this many times (training seeds 0..N-1, same data); "
            "cells show the mean and min-max, paired tests run per seed.",
        ),
    ] = 1,
    strategies: Annotated[
        list[str] | None,
        typer.Option(
            help="Augmented columns: local, global, both, decomposed, linked, default, oracle "
            "(repeat or comma-separate; default: the size's own list)."
        ),
    ] = None,
) -> None:
    """Controlled generalization benchmark (Lampinen et al. 2025) against a running service."""
    from service.benchmark.bench.terminal import cli_main

    raise typer.Exit(cli_main(size, url, api_key, admin_key, out, seed, strategies, seeds))
