"""`docadapt serve` and `docadapt worker`: the processes of a running service."""

from __future__ import annotations

from typing import Annotated

import typer

from service.cli.common import DataDirOption, settings, setup_logging


def serve(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    data_dir: DataDirOption = None,
    vllm_replicas: Annotated[
        int | None,
        typer.Option(
            min=1, help="Local vLLM replicas to start (DOCADAPT_VLLM_REPLICAS; no vLLM URL set)."
        ),
    ] = None,
) -> None:
    """Start the REST API (and, by default, a local vLLM and one job worker).

    It answers at once: /healthz 200, /readyz 503 with the start-up phase and its progress
    until everything is ready; the terminal logs the same phases."""
    import uvicorn

    from service.core.quiet_logs import quiet_routine_polls
    from service.main import create_app

    setup_logging()
    server: uvicorn.Server | None = None

    def stop_on_failure() -> None:
        if server is not None:
            server.should_exit = True

    config = settings(data_dir)
    if vllm_replicas is not None:
        config.vllm_replicas = vllm_replicas
    fastapi_app = create_app(config, wait_until_ready=False, on_start_failure=stop_on_failure)
    uvicorn_config = uvicorn.Config(fastapi_app, host=host, port=port, log_level="info")
    quiet_routine_polls()  # after uvicorn configured its loggers
    server = uvicorn.Server(uvicorn_config)
    server.run()
    startup = getattr(fastapi_app.state, "startup", None)
    if startup is not None and startup.error is not None:
        typer.echo(f"docadapt: the service did not start: {startup.error}", err=True)
        raise typer.Exit(1)


def worker() -> None:
    """Run a job worker: claims queued jobs (augmentation, training, evaluation) and runs them."""
    from service.jobs.worker import run_worker

    setup_logging()
    run_worker()
