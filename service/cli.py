"""`docadapt` command line: serve, worker, admin, and the reports and benchmarks."""

from __future__ import annotations

import logging
from typing import Annotated

import typer

app = typer.Typer(help="docadapt: documents in, a LoRA adapter that generalizes like ICL out.",
                  no_args_is_help=True)
admin_app = typer.Typer(help="Administrative commands.", no_args_is_help=True)
app.add_typer(admin_app, name="admin")


def _logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
) -> None:
    """Start the REST API (and, by default, a local vLLM and one job worker)."""
    import uvicorn

    from service.main import create_app

    _logging()
    uvicorn.run(create_app(), host=host, port=port, log_level="info")


@app.command()
def worker() -> None:
    """Run a job worker: claims queued jobs (augmentation, training, evaluation) and runs them."""
    from service.jobs.worker import run_worker

    _logging()
    run_worker()


@admin_app.command("create-workspace")
def create_workspace_cmd(name: str) -> None:
    """Create a workspace and print its first API key (shown once)."""
    from service.config import Settings
    from service.db.session import make_engine, make_session_factory, migrate, session_scope
    from service.workspaces import create_workspace

    settings = Settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.sqlalchemy_url)
    migrate(engine)
    with session_scope(make_session_factory(engine)) as session:
        workspace, key = create_workspace(session, name)
        ws_id = workspace.id
    engine.dispose()
    typer.echo(f"workspace_id: {ws_id}")
    typer.echo(f"api_key: {key}")


if __name__ == "__main__":
    app()
