"""`docadapt jobs watch | list | cancel`: a running service's jobs, from any host."""

from __future__ import annotations

from typing import Annotated

import typer

from service.cli.common import KeyOption, UrlOption, call_service

JobIdArgument = Annotated[str, typer.Argument(help="The job's id (job_...).")]
app = typer.Typer(
    help="Follow, list and cancel the jobs of a running service.", no_args_is_help=True
)


@app.command("watch")
def jobs_watch(
    job_id: JobIdArgument,
    api_key: KeyOption,
    url: UrlOption = "http://127.0.0.1:8000",
) -> None:
    """Show a job's progress bar (step/total, ETA, loss, tokens/s) until it ends.

    Exit status: 0 when it succeeded, 1 when it failed or was cancelled, 2 when the service
    refused or could not be reached."""
    from service.jobs.watch import job_summary, watch_job

    job = call_service(url, api_key, lambda api: watch_job(api, job_id))
    typer.echo(f"{job['id']}: {job['status']}  {job_summary(job)}")
    raise typer.Exit(0 if job["status"] == "succeeded" else 1)


@app.command("list")
def jobs_list(
    api_key: KeyOption,
    url: UrlOption = "http://127.0.0.1:8000",
    status: Annotated[str | None, typer.Option(help="queued, running, succeeded, ...")] = None,
    kind: Annotated[str | None, typer.Option(help="augmentation, training, evaluation")] = None,
) -> None:
    """This workspace's jobs, newest first."""
    from service.jobs.watch import job_summary

    jobs = call_service(url, api_key, lambda api: api.jobs(status=status, kind=kind))
    for job in jobs:
        p = job["progress"]
        done = f"{p['done']}/{p['total']}" if p["total"] else str(p["done"])
        typer.echo(
            f"{job['id']}  {job['kind']:<12} {job['status']:<10} {done:>9}  {job_summary(job)}"
        )


@app.command("cancel")
def jobs_cancel(
    job_id: JobIdArgument,
    api_key: KeyOption,
    url: UrlOption = "http://127.0.0.1:8000",
) -> None:
    """Ask a job to stop: a queued job is cancelled at once, a running one at its next step."""
    job = call_service(url, api_key, lambda api: api.cancel_job(job_id))
    typer.echo(f"{job['id']}: {job['status']}")
