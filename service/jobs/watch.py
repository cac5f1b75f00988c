"""Jobs seen from a terminal: a rich progress bar per job (or plain lines into a pipe), as
`docadapt jobs watch`, `docadapt bench` and `docadapt perf ready` show them."""

from __future__ import annotations

import sys
import time
from typing import Any

from service.client import TERMINAL, ServiceClient


class RichReporter:
    """A rich progress bar per job and notes printed above the bars. At 80 columns the kind,
    bar, done/total, status and ETA keep their room; the message is cut first."""

    def __init__(self, console: Any = None) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
        from rich.table import Column

        self.console = console or Console()
        self.progress = Progress(
            TextColumn("{task.description}", table_column=Column(no_wrap=True, max_width=22)),
            BarColumn(bar_width=12),
            MofNCompleteColumn(table_column=Column(no_wrap=True, min_width=7)),
            TextColumn("{task.fields[status]:<9}", table_column=Column(no_wrap=True)),
            TextColumn("eta {task.fields[eta]:>6}", table_column=Column(no_wrap=True)),
            TextColumn(
                "[dim]{task.fields[message]}",
                table_column=Column(ratio=1, no_wrap=True, overflow="ellipsis", min_width=0),
            ),
            console=self.console,
            expand=True,
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
        fields = {
            "status": job["status"],
            "eta": eta_text(job),
            "message": escape(job_summary(job)[:200]),
        }
        if key not in self.tasks:
            self.tasks[key] = self.progress.add_task(label, total=p["total"], **fields)
        self.progress.update(self.tasks[key], completed=p["done"] or 0, total=p["total"], **fields)


class PlainReporter:
    """Plain lines for a pipe or a file: one whenever a job's status, count or message changes
    (at most every `every_s` seconds while only the count moves), so a log shows progress
    without terminal control codes."""

    def __init__(self, out: Any = None, every_s: float = 10.0) -> None:
        self.out = out or sys.stdout
        self.every_s = every_s
        self._last: dict[str, tuple[Any, ...]] = {}
        self._last_at: dict[str, float] = {}

    def __enter__(self) -> PlainReporter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.out.flush()

    def note(self, message: str) -> None:
        print(message, file=self.out, flush=True)

    def job(self, key: str, label: str, job: dict[str, Any]) -> None:
        p = job["progress"]
        seen = (job["status"], job.get("message"), p["total"])
        now = time.monotonic()
        if seen == self._last.get(key, (None,))[:3]:
            count_moved = p["done"] != self._last[key][3]
            if not count_moved or now - self._last_at[key] < self.every_s:
                return
        self._last[key], self._last_at[key] = (*seen, p["done"]), now
        print(plain_line(label, job), file=self.out, flush=True)


def plain_line(label: str, job: dict[str, Any]) -> str:
    """`HH:MM:SS label status done/total (pct) eta X  summary`."""
    p = job["progress"]
    done = f"{p['done']}/{p['total']}" if p["total"] else str(p["done"] or 0)
    if p["total"]:
        done += f" ({100 * (p['done'] or 0) / p['total']:.0f}%)"
    line = f"{time.strftime('%H:%M:%S')} {label} {job['status']} {done}"
    if job["status"] not in TERMINAL:
        line += f" eta {eta_text(job)}"
    summary = job_summary(job)
    return f"{line}  {summary}" if summary else line


def eta_text(job: dict[str, Any]) -> str:
    """The service's ETA as `45s`, `3m10s` or `1h05m`; `~3m?` when the job says it is rough
    (units of different cost not all timed yet), `?` when it has none yet, `-` once ended."""
    if job["status"] in TERMINAL:
        return "-"
    eta = job.get("eta_seconds")
    rough = bool((job.get("metrics") or {}).get("eta_note"))
    if eta is None:
        return "?" if rough or job["status"] == "running" else "-"
    text = _duration(eta)
    return f"~{text}?" if rough else text


def _duration(seconds: float) -> str:
    s = round(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def job_summary(job: dict[str, Any]) -> str:
    """The error of a failed job, else its latest loss and speed and, while it runs, its
    message (an ended job's last message, such as "loading into vLLM", is stale)."""
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
    if job.get("message") and job["status"] not in TERMINAL:
        parts.append(str(job["message"]))
    return " · ".join(parts)


def watch_job(
    api: ServiceClient,
    job_id: str,
    *,
    poll_s: float = 1.0,
    timeout_s: float | None = None,
    console: Any = None,
) -> dict[str, Any]:
    """Show `job_id`'s progress until it ends (or `timeout_s` passes: TimeoutError): a
    progress bar on a terminal (or on `console`), plain lines on a pipe or file. Returns the
    final job."""
    reporter: RichReporter | PlainReporter
    if console is not None or sys.stdout.isatty():
        reporter = RichReporter(console)
    else:
        reporter = PlainReporter()
    with reporter:
        return api.follow_job(
            job_id,
            lambda job: reporter.job(job_id, f"{job['kind']} {job_id[-8:]}", job),
            poll_s=poll_s,
            timeout_s=timeout_s,
        )
