"""Jobs seen from a terminal: a rich progress bar per job, and `docadapt jobs watch | list |
cancel` against a running service's REST API (any host; only the URL and an API key needed)."""

from __future__ import annotations

import time
from typing import Any

import httpx

TERMINAL = ("succeeded", "failed", "cancelled")


class RichReporter:
    """A rich progress bar per job (done/total, status, the service's ETA, loss and tokens/s
    where the job reports them) and notes printed above the bars."""

    def __init__(self, console: Any = None) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        self.console = console or Console()
        self.progress = Progress(
            TextColumn("{task.description:<22}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[status]:<10} eta {task.fields[eta]:>6}"),
            TextColumn("[dim]{task.fields[message]}"),
            console=self.console,
        )
        self.tasks: dict[str, Any] = {}

    def __enter__(self) -> RichReporter:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def note(self, message: str) -> None:
        self.progress.console.print(message, markup=False, highlight=False)

    def job(self, key: str, label: str, job: dict[str, Any]) -> None:
        from rich.markup import escape

        p = job["progress"]
        eta = job.get("eta_seconds")
        fields = {
            "status": job["status"],
            "eta": "-" if eta is None or job["status"] in TERMINAL else f"{eta:.0f}s",
            "message": escape(job_summary(job)[:80]),
        }
        if key not in self.tasks:
            self.tasks[key] = self.progress.add_task(label, total=p["total"], **fields)
        self.progress.update(self.tasks[key], completed=p["done"] or 0, total=p["total"], **fields)


def job_summary(job: dict[str, Any]) -> str:
    """The error of a failed job, else its latest loss and speed and its message."""
    if job.get("error"):
        return str(job["error"])
    metrics = job.get("metrics") or {}
    parts = []
    if metrics.get("loss") is not None:
        parts.append(f"loss {metrics['loss']:.3f}")
    if metrics.get("held_out_loss") is not None:
        parts.append(f"held-out {metrics['held_out_loss']:.3f}")
    if metrics.get("tokens_per_second"):
        parts.append(f"{metrics['tokens_per_second']:.0f} tok/s")
    if job.get("message"):
        parts.append(str(job["message"]))
    return " · ".join(parts)


class JobRequestError(Exception):
    """The service refused a request about a job (the message is the service's)."""


def _call(http: httpx.Client, method: str, path: str, **kwargs: Any) -> Any:
    """The JSON body of a successful request; JobRequestError with the service's message, or
    saying the service cannot be reached, otherwise."""
    try:
        response = http.request(method, path, **kwargs)
    except httpx.TransportError as exc:
        raise JobRequestError(f"cannot reach the service at {http.base_url}: {exc}") from exc
    if response.is_success:
        return response.json()
    try:
        message = response.json()["error"]["message"]
    except (ValueError, KeyError, TypeError):
        message = response.text[:200]
    raise JobRequestError(f"HTTP {response.status_code}: {message}")


def watch_job(
    http: httpx.Client,
    job_id: str,
    headers: dict[str, str],
    *,
    poll_s: float = 1.0,
    timeout_s: float | None = None,
    console: Any = None,
) -> dict[str, Any]:
    """Show `job_id`'s progress bar until it ends (or `timeout_s` passes: JobRequestError);
    returns the final job."""
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    with RichReporter(console) as reporter:
        while True:
            job = _call(http, "GET", f"/v1/jobs/{job_id}", headers=headers)
            reporter.job(job_id, f"{job['kind']} {job_id[-8:]}", job)
            if job["status"] in TERMINAL:
                return dict(job)
            if deadline is not None and time.monotonic() > deadline:
                raise JobRequestError(f"job {job_id} still {job['status']} after {timeout_s} s")
            time.sleep(poll_s)


def list_jobs(
    http: httpx.Client,
    headers: dict[str, str],
    status: str | None = None,
    kind: str | None = None,
) -> list[dict[str, Any]]:
    params = {k: v for k, v in {"status": status, "kind": kind}.items() if v}
    return list(_call(http, "GET", "/v1/jobs", headers=headers, params=params)["data"])


def cancel_job(http: httpx.Client, job_id: str, headers: dict[str, str]) -> dict[str, Any]:
    return dict(_call(http, "POST", f"/v1/jobs/{job_id}/cancel", headers=headers))
