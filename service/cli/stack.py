"""`docadapt stack`: PostgreSQL, vLLM replicas, the API and workers as separate processes, walked
through upload -> augment -> train -> query -> evaluate with a worker and a replica killed."""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Annotated

import typer


def stack(
    root: Annotated[
        Path | None, typer.Option(help="Folder for the stack's database, data and logs.")
    ] = None,
    replicas: Annotated[int, typer.Option(min=1, help="vLLM replicas.")] = 2,
    workers: Annotated[int, typer.Option(min=2, help="Worker processes.")] = 2,
    kv_cache_gb: Annotated[int, typer.Option(min=1, help="KV cache per replica (GiB).")] = 2,
    isolation_check: Annotated[bool, typer.Option(help="The API's start-up check.")] = True,
    keep: Annotated[bool, typer.Option(help="Leave the stack running after the walk.")] = False,
) -> None:
    """Start the stack, walk it (a worker and a replica are killed on the way), print what it
    saw, and stop every process (with --keep: wait for Ctrl-C first)."""
    from service.cli.common import setup_logging
    from service.stack.processes import Stack, StackConfig
    from service.stack.walk import Walk

    setup_logging()
    folder = root or Path(tempfile.mkdtemp(prefix="docadapt-stack-"))
    config = StackConfig(
        root=folder,
        replicas=replicas,
        workers=workers,
        kv_cache_gb=kv_cache_gb,
        isolation_check=isolation_check,
    )
    t0 = time.monotonic()
    with Stack(config) as running:
        typer.echo(f"stack: API {running.api_url}, vLLM {[r.url for r in running.replicas]}")
        typer.echo(f"stack: logs in {running.logs}")
        seen = Walk(running, say=typer.echo).run()
        seen["stack"] = running.timings
        seen["wall_s"] = round(time.monotonic() - t0, 1)
        typer.echo(json.dumps(seen, indent=2))
        if keep:
            typer.echo(f"stack: running; admin key {config.admin_key}; Ctrl-C stops it")
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                pass
