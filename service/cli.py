"""`docadapt` command line: serve, worker, jobs, admin, and the reports and benchmarks."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

app = typer.Typer(
    help="docadapt: documents in, a LoRA adapter that generalizes like ICL out.",
    no_args_is_help=True,
)
admin_app = typer.Typer(help="Administrative commands.", no_args_is_help=True)
app.add_typer(admin_app, name="admin")
perf_app = typer.Typer(
    help="Benchmarks that print figures and ratios (`docadapt perf query --help`).",
    no_args_is_help=True,
)
app.add_typer(perf_app, name="perf")
_PASS_THROUGH = {"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []}


@perf_app.command("query", context_settings=_PASS_THROUGH)
def perf_query(ctx: typer.Context) -> None:
    """Adapter vs ICL (cold and warm) latency and prompt tokens on one vLLM."""
    from service.benchmark.query_perf import main

    raise typer.Exit(main(ctx.args))


@perf_app.command("train", context_settings=_PASS_THROUGH)
def perf_train(ctx: typer.Context) -> None:
    """LoRA training throughput, packing efficiency and peak memory."""
    from service.benchmark.train_perf import main

    raise typer.Exit(main(ctx.args))


@perf_app.command("ready", context_settings=_PASS_THROUGH)
def perf_ready(ctx: typer.Context) -> None:
    """Wall time from "train" to "ready" for a 20-document collection with its augmentations."""
    from service.benchmark.ready_perf import main

    raise typer.Exit(main(ctx.args))


@perf_app.command("load", context_settings=_PASS_THROUGH)
def perf_load(ctx: typer.Context) -> None:
    """Many chat queries at once across adapters and icl: through the REST API: errors, p50/p95."""
    from service.benchmark.load_perf import main

    raise typer.Exit(main(ctx.args))


@perf_app.command("augment", context_settings=_PASS_THROUGH)
def perf_augment(ctx: typer.Context) -> None:
    """Teacher concurrency speed-up, global prefix-cache reuse and reversal precision."""
    from service.benchmark.augment_perf import main

    raise typer.Exit(main(ctx.args))


@perf_app.command("quality", context_settings=_PASS_THROUGH)
def perf_quality(ctx: typer.Context) -> None:
    """Augmentation precision on the real-prose development set and the synthetic sets."""
    from service.benchmark.quality_perf import main

    raise typer.Exit(main(ctx.args))


@perf_app.command("evalset", context_settings=_PASS_THROUGH)
def perf_evalset(ctx: typer.Context) -> None:
    """Generated eval sets on the development set: share of items with one right answer."""
    from service.benchmark.evalset_perf import main

    raise typer.Exit(main(ctx.args))


@perf_app.command("score", context_settings=_PASS_THROUGH)
def perf_score(ctx: typer.Context) -> None:
    """Evaluation scoring behind a shared context: prompt logprobs vs cached requests."""
    from service.benchmark.score_perf import main

    raise typer.Exit(main(ctx.args))


def _logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")


DataDirOption = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        help="The service's data folder (default: DOCADAPT_DATA_DIR, else ./docadapt-data).",
        show_default=False,
    ),
]


def _settings(data_dir: Path | None) -> Any:
    """The service's settings as `serve` reads them, with `--data-dir` over DOCADAPT_DATA_DIR."""
    from service.config import Settings

    return Settings(data_dir=data_dir) if data_dir is not None else Settings()


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    data_dir: DataDirOption = None,
) -> None:
    """Start the REST API (and, by default, a local vLLM and one job worker).

    It answers at once: /healthz 200, /readyz 503 with the start-up phase and its progress
    until everything is ready; the terminal logs the same phases."""
    import uvicorn

    from service.main import create_app
    from service.quiet_logs import quiet_routine_polls

    _logging()
    settings = _settings(data_dir)
    server: uvicorn.Server | None = None

    def stop_on_failure() -> None:
        if server is not None:
            server.should_exit = True

    fastapi_app = create_app(settings, wait_until_ready=False, on_start_failure=stop_on_failure)
    config = uvicorn.Config(fastapi_app, host=host, port=port, log_level="info")
    quiet_routine_polls()  # after uvicorn configured its loggers
    server = uvicorn.Server(config)
    server.run()
    startup = getattr(fastapi_app.state, "startup", None)
    if startup is not None and startup.error is not None:
        typer.echo(f"docadapt: the service did not start: {startup.error}", err=True)
        raise typer.Exit(1)


@app.command()
def worker() -> None:
    """Run a job worker: claims queued jobs (augmentation, training, evaluation) and runs them."""
    from service.jobs.worker import run_worker

    _logging()
    run_worker()


def _service_data(data_dir: Path | None) -> Any:
    """The settings of the service whose data is in `--data-dir` (or where `serve` looks);
    exits with one sentence, creating nothing, when no service has data there."""
    settings = _settings(data_dir)
    where = settings.data_dir
    has_db = settings.database_url is not None or (where / "docadapt.db").is_file()
    if not where.is_dir() or not has_db:
        typer.echo(
            f"docadapt: no service data in {where}: run this where `docadapt serve` runs, or "
            "point --data-dir (or DOCADAPT_DATA_DIR) at the service's data folder.",
            err=True,
        )
        raise typer.Exit(2)
    return settings


@app.command()
def report(
    evaluation_id: Annotated[str, typer.Argument(help="The evaluation's id (ev_...).")],
    format: Annotated[
        str, typer.Option("--format", "-f", help="md (default), json or html.")
    ] = "md",
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write to this file instead of stdout.")
    ] = None,
    url: Annotated[str, typer.Option(help="The running docadapt service.")] = (
        "http://127.0.0.1:8000"
    ),
    api_key: Annotated[
        str | None,
        typer.Option(
            envvar="DOCADAPT_API_KEY",
            help="A workspace API key: read the report from the service at --url. Without "
            "one, read it from the service's data folder (--data-dir).",
            show_default=False,
        ),
    ] = None,
    data_dir: DataDirOption = None,
) -> None:
    """Print an evaluation's report: from the running service (with an API key), else from
    the service's data folder on this machine."""
    if format not in ("md", "json", "html"):
        raise typer.BadParameter("use md, json or html", param_hint="--format")
    if api_key is not None:
        from service.jobs.watch import fetch

        def get(http: Any, headers: dict[str, str]) -> bytes:
            path = f"/v1/evaluations/{evaluation_id}/report"
            return fetch(http, path, headers, params={"format": format})

        body = _call_service(url, api_key, get)
    else:
        body = _local_report(_service_data(data_dir), evaluation_id, format)
    if out is None:
        typer.echo(body.decode(), nl=not body.endswith(b"\n"))
    else:
        out.write_bytes(body)
        typer.echo(f"wrote {out}", err=True)


def _local_report(settings: Any, evaluation_id: str, format: str) -> bytes:
    from service.db.session import make_engine, make_session_factory, migrate
    from service.db.tables import Evaluation
    from service.errors import DocadaptError
    from service.evaluations import finished_report, render_report

    engine = make_engine(settings.sqlalchemy_url)
    migrate(engine)
    try:
        with make_session_factory(engine)() as session:
            evaluation = session.get(Evaluation, evaluation_id)
            if evaluation is None:
                typer.echo(f"evaluation {evaluation_id} not found in {settings.data_dir}", err=True)
                raise typer.Exit(1)
            try:
                body, _ = render_report(finished_report(evaluation), format)
                return body
            except DocadaptError as exc:
                typer.echo(exc.message, err=True)
                raise typer.Exit(1) from exc
    finally:
        engine.dispose()


@admin_app.command("create-workspace")
def create_workspace_cmd(
    name: Annotated[str, typer.Argument(help="The workspace's name.")],
    data_dir: DataDirOption = None,
) -> None:
    """Create a workspace in the service's database and print its first API key (shown once).

    Run it where `docadapt serve` runs (same settings), or point --data-dir at its data."""
    from service import audit
    from service.db.session import make_engine, make_session_factory, migrate, session_scope
    from service.storage import private_dir
    from service.workspaces import create_workspace, first_key_id

    settings = _service_data(data_dir)
    private_dir(settings.data_dir)
    engine = make_engine(settings.sqlalchemy_url)
    migrate(engine)
    with session_scope(make_session_factory(engine)) as session:
        workspace, key = create_workspace(session, name)
        ws_id = workspace.id
        entry = audit.AuditEntry(
            action="workspace.create",
            resource_type="workspace",
            actor="cli",
            workspace_id=ws_id,
            resource_id=ws_id,
            status_code=201,
            details={"name": name, "api_key_id": first_key_id(session, ws_id)},
        )
        session.commit()
        audit.record(session, entry)
    engine.dispose()
    typer.echo(f"workspace_id: {ws_id}")
    typer.echo(f"api_key: {key}")


jobs_app = typer.Typer(
    help="Follow, list and cancel the jobs of a running service.", no_args_is_help=True
)
app.add_typer(jobs_app, name="jobs")
UrlOption = Annotated[str, typer.Option(help="The running docadapt service.")]
KeyOption = Annotated[
    str, typer.Option(envvar="DOCADAPT_API_KEY", help="A workspace API key.", show_default=False)
]


def _call_service(url: str, api_key: str, request: Callable[[Any, dict[str, str]], Any]) -> Any:
    """`request(http, headers)` against the service at `url`; a refusal or an unreachable
    service prints the reason and exits with status 2."""
    import httpx

    from service.jobs.watch import JobRequestError

    with httpx.Client(base_url=url, timeout=60) as http:
        try:
            return request(http, {"Authorization": f"Bearer {api_key}"})
        except JobRequestError as exc:
            typer.echo(str(exc), err=True)
            raise typer.Exit(2) from exc


@jobs_app.command("watch")
def jobs_watch(
    job_id: Annotated[str, typer.Argument(help="The job's id (job_...).")],
    api_key: KeyOption,
    url: UrlOption = "http://127.0.0.1:8000",
) -> None:
    """Show a job's progress bar (step/total, ETA, loss, tokens/s) until it ends.

    Exit status: 0 when it succeeded, 1 when it failed or was cancelled, 2 when the service
    refused or could not be reached."""
    from service.jobs.watch import job_summary, watch_job

    job = _call_service(url, api_key, lambda http, headers: watch_job(http, job_id, headers))
    typer.echo(f"{job['id']}: {job['status']}  {job_summary(job)}")
    raise typer.Exit(0 if job["status"] == "succeeded" else 1)


@jobs_app.command("list")
def jobs_list(
    api_key: KeyOption,
    url: UrlOption = "http://127.0.0.1:8000",
    status: Annotated[str | None, typer.Option(help="queued, running, succeeded, ...")] = None,
    kind: Annotated[str | None, typer.Option(help="augmentation, training, evaluation")] = None,
) -> None:
    """This workspace's jobs, newest first."""
    from service.jobs.watch import job_summary, list_jobs

    jobs = _call_service(
        url, api_key, lambda http, headers: list_jobs(http, headers, status=status, kind=kind)
    )
    for job in jobs:
        p = job["progress"]
        done = f"{p['done']}/{p['total']}" if p["total"] else str(p["done"])
        typer.echo(
            f"{job['id']}  {job['kind']:<12} {job['status']:<10} {done:>9}  {job_summary(job)}"
        )


@jobs_app.command("cancel")
def jobs_cancel(
    job_id: Annotated[str, typer.Argument(help="The job's id (job_...).")],
    api_key: KeyOption,
    url: UrlOption = "http://127.0.0.1:8000",
) -> None:
    """Ask a job to stop: a queued job is cancelled at once, a running one at its next step."""
    from service.jobs.watch import cancel_job

    job = _call_service(url, api_key, lambda http, headers: cancel_job(http, job_id, headers))
    typer.echo(f"{job['id']}: {job['status']}")


@app.command()
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
    from service.benchmark.bench import cli_main

    raise typer.Exit(cli_main(size, url, api_key, admin_key, out, seed, strategies, seeds))


if __name__ == "__main__":
    app()
