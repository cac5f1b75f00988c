"""`docadapt perf queue`: the job queue's throughput and exactly-once on PostgreSQL, docadapt's
hand-written claim loop against procrastinate (a maintained PostgreSQL task queue).

Both sides run the same no-op job from the same number of worker processes against the same
PostgreSQL. The docadapt side runs the real worker (service.jobs.worker.Worker: claim under a
lease with SELECT ... FOR UPDATE SKIP LOCKED, heartbeat thread, executor, finish) with an
executor that only records its run; procrastinate's side runs `App.run_worker` (concurrency 1,
LISTEN/NOTIFY on) with a task that records the same. Every run of a job writes (job, worker pid,
attempt) to a table, so the figures say whether each job ran exactly once and how the jobs
spread over the workers.

Each repeat uses a fresh database: the jobs are queued first, then the workers start and, once
all are connected and ready, begin together; the clock runs from that moment until the queue's
own table shows every job finished. Figures are per repeat plus the median claims/s.

A PostgreSQL server is started for the run (pgserver, in a temporary folder) unless
--database-url names one (a maintenance database; each repeat creates a database there).
procrastinate is an optional extra (`pip install 'docadapt[queue-bench]'`); without it only the
docadapt side runs. Exits 1 if any job ran other than exactly once.
"""

from __future__ import annotations

import contextlib
import datetime
import multiprocessing
import os
import signal
import statistics
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from multiprocessing.process import BaseProcess
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any

from sqlalchemy import text

from service.benchmark.perf_cli import perf_parser, print_figures
from service.core.config import Settings
from service.db.scratch import new_database, scratch_postgres
from service.db.session import make_engine, make_session_factory, migrate
from service.db.tables import Workspace
from service.jobs import records
from service.jobs.context import JobContext

PROBE_KIND = "queue_probe"
RUNS_TABLE = "queue_probe_runs"
_RUNS_DDL = (
    f"CREATE TABLE IF NOT EXISTS {RUNS_TABLE} "
    "(job_key text NOT NULL, pid integer NOT NULL, attempt integer NOT NULL)"
)
_RECORD = f"INSERT INTO {RUNS_TABLE} (job_key, pid, attempt) VALUES (:job, :pid, :attempt)"


class ProbeExecutor:
    """A job kind that only records that it ran: (job id, worker pid, attempt). A first attempt
    then waits `params["hold_s"]` seconds (none by default): a job to kill a worker in."""

    kind = PROBE_KIND

    def run(self, ctx: JobContext) -> dict[str, Any]:
        with ctx.session_factory() as session:
            session.execute(
                text(_RECORD), {"job": ctx.job_id, "pid": os.getpid(), "attempt": ctx.attempt}
            )
            session.commit()
        if ctx.attempt == 1 and ctx.params.get("hold_s"):
            time.sleep(float(ctx.params["hold_s"]))
        return {"pid": os.getpid()}

    def on_end(self, ctx: JobContext, status: str, error: str | None) -> None:
        return None


# --- PostgreSQL databases ---------------------------------------------------------------------


@contextlib.contextmanager
def postgres_server(database_url: str | None) -> Iterator[str]:
    """The SQLAlchemy URL of a PostgreSQL maintenance database: `database_url`, or a pgserver
    started in a temporary folder for the duration."""
    if database_url:
        yield database_url
        return
    with (
        tempfile.TemporaryDirectory(prefix="docadapt-queue-pg-") as folder,
        scratch_postgres(folder) as url,
    ):
        yield url


def libpq_url(sqlalchemy_url: str) -> str:
    """The libpq connection string of a postgresql+psycopg:// SQLAlchemy URL."""
    return sqlalchemy_url.replace("postgresql+psycopg://", "postgresql://", 1)


def sql_rows(url: str, query: str) -> list[tuple[Any, ...]]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(row) for row in conn.execute(text(query))]
    finally:
        engine.dispose()


def executions(url: str) -> list[tuple[str, int, int]]:
    """Every recorded run of a probe job: (job key, worker pid, attempt)."""
    return [(str(k), int(p), int(a)) for k, p, a in sql_rows(url, f"SELECT * FROM {RUNS_TABLE}")]


# --- worker processes -------------------------------------------------------------------------


def start_processes(
    target: Callable[..., None], args: tuple[Any, ...], count: int
) -> tuple[list[BaseProcess], Barrier]:
    """`count` fresh interpreters (spawned, not forked) running `target(*args, start)`; each waits
    on the barrier `start` once ready, and the caller's own wait releases them all together."""
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Barrier(count + 1)
    procs = [ctx.Process(target=target, args=(*args, start), daemon=True) for _ in range(count)]
    for proc in procs:
        proc.start()
    return procs, start


def stop_processes(procs: list[BaseProcess], timeout_s: float = 15.0) -> None:
    """SIGTERM each (a worker finishes or hands back its job), SIGKILL what is left after."""
    for proc in procs:
        if proc.is_alive():
            proc.terminate()
    deadline = time.monotonic() + timeout_s
    for proc in procs:
        proc.join(max(0.1, deadline - time.monotonic()))
        if proc.is_alive():
            proc.kill()
            proc.join()


def wait_until(
    predicate: Callable[[], bool], timeout_s: float, what: str, interval_s: float = 0.005
) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout_s:.0f} s: {what}")
        time.sleep(interval_s)


def release_and_time(
    start: Barrier, finished: Callable[[], int], jobs: int, timeout_s: float
) -> float:
    """Release the waiting workers; seconds until `finished()` counts all `jobs`."""
    start.wait(timeout=timeout_s)  # every worker connected and ready
    began = time.perf_counter()
    wait_until(lambda: finished() >= jobs, timeout_s, f"{jobs} jobs finished")
    return time.perf_counter() - began


# --- docadapt's claim loop --------------------------------------------------------------------


def queue_docadapt_jobs(
    url: str, count: int, params: list[dict[str, Any]] | None = None
) -> list[str]:
    """Migrate the database, add the runs table and a workspace, queue `count` probe jobs (the
    i-th with `params[i]` when given); returns their ids in queue order."""
    engine = make_engine(url)
    migrate(engine)
    with engine.begin() as conn:
        conn.execute(text(_RUNS_DDL))
    ids = []
    with make_session_factory(engine)() as session:
        workspace = Workspace(name="queue-perf")
        session.add(workspace)
        session.flush()
        for i in range(count):
            job_params = params[i] if params else {}
            ids.append(records.create_job(session, workspace.id, PROBE_KIND, job_params, None).id)
            session.flush()  # one created_at each: the queue's order
        session.commit()
    engine.dispose()
    return ids


def docadapt_worker_main(
    url: str, data_dir: str, model_dir: str, lease_s: float, poll_s: float, start: Barrier
) -> None:
    """A worker process: the real Worker, claim loop and all, running only probe jobs."""
    from service.jobs.worker import Worker

    settings = Settings(
        database_url=url,
        data_dir=Path(data_dir),
        base_model_path=Path(model_dir),
        job_lease_s=lease_s,
        start_vllm=False,
        workers=0,
    )
    worker = Worker(settings, executors={PROBE_KIND: ProbeExecutor()})
    signal.signal(signal.SIGTERM, lambda _signum, _frame: worker.stopping.set())
    start.wait()
    worker.run(poll_s=poll_s)


def start_docadapt_workers(
    url: str, data_dir: Path, model_dir: Path, count: int, *, lease_s: float, poll_s: float
) -> tuple[list[BaseProcess], Barrier]:
    args = (url, str(data_dir), str(model_dir), lease_s, poll_s)
    return start_processes(docadapt_worker_main, args, count)


def finished_docadapt_jobs(url: str) -> int:
    query = "SELECT count(*) FROM jobs WHERE status IN ('succeeded', 'failed', 'cancelled')"
    return int(sql_rows(url, query)[0][0])


def run_docadapt(
    url: str, data_dir: Path, model_dir: Path, jobs: int, workers: int, timeout_s: float
) -> dict[str, Any]:
    """One measured run of docadapt's claim loop (real Worker processes, default 1 s poll)."""
    queue_docadapt_jobs(url, jobs)
    procs, start = start_docadapt_workers(
        url, data_dir, model_dir, workers, lease_s=60.0, poll_s=1.0
    )
    try:
        wall_s = release_and_time(start, lambda: finished_docadapt_jobs(url), jobs, timeout_s)
    finally:
        stop_processes(procs)
    (succeeded,) = sql_rows(url, "SELECT count(*) FROM jobs WHERE status = 'succeeded'")[0]
    return figures_of(executions(url), jobs, wall_s, int(succeeded))


# --- procrastinate ----------------------------------------------------------------------------


def procrastinate_version() -> str | None:
    try:
        from importlib.metadata import version

        return version("procrastinate")
    except Exception:  # noqa: BLE001 - not installed
        return None


def queue_procrastinate_jobs(url: str, count: int) -> None:
    """procrastinate's schema, the runs table, and `count` probe jobs."""
    import procrastinate

    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=libpq_url(url)))
    with app.open():
        app.schema_manager.apply_schema()
        app.configure_task(PROBE_KIND).batch_defer(*({} for _ in range(count)))
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text(_RUNS_DDL))
    engine.dispose()


def procrastinate_worker_main(url: str, start: Barrier) -> None:
    """A procrastinate worker process (concurrency 1) whose probe task records its run."""
    import procrastinate
    import psycopg

    conninfo = libpq_url(url)
    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=conninfo))
    runs = psycopg.connect(conninfo, autocommit=True)

    @app.task(name=PROBE_KIND, pass_context=True)
    def probe(context: procrastinate.JobContext) -> None:
        job = context.job
        runs.execute(
            f"INSERT INTO {RUNS_TABLE} (job_key, pid, attempt) VALUES (%s, %s, %s)",
            (str(job.id), os.getpid(), job.attempts + 1),
        )

    async def ready_then_run() -> None:
        async with app.open_async():
            await app.check_connection_async()
            start.wait()
            await app.run_worker_async(concurrency=1, install_signal_handlers=True)

    import asyncio

    asyncio.run(ready_then_run())


def finished_procrastinate_jobs(url: str) -> int:
    query = "SELECT count(*) FROM procrastinate_jobs WHERE status IN ('succeeded', 'failed')"
    return int(sql_rows(url, query)[0][0])


def run_procrastinate(url: str, jobs: int, workers: int, timeout_s: float) -> dict[str, Any]:
    queue_procrastinate_jobs(url, jobs)
    procs, start = start_processes(procrastinate_worker_main, (url,), workers)
    try:
        wall_s = release_and_time(start, lambda: finished_procrastinate_jobs(url), jobs, timeout_s)
    finally:
        stop_processes(procs)
    query = "SELECT count(*) FROM procrastinate_jobs WHERE status = 'succeeded'"
    (succeeded,) = sql_rows(url, query)[0]
    return figures_of(executions(url), jobs, wall_s, int(succeeded))


# --- figures ----------------------------------------------------------------------------------


def figures_of(
    runs: list[tuple[str, int, int]], jobs: int, wall_s: float, succeeded: int
) -> dict[str, Any]:
    per_job = Counter(key for key, _pid, _attempt in runs)
    per_worker = Counter(pid for _key, pid, _attempt in runs)
    return {
        "jobs": jobs,
        "succeeded": succeeded,
        "wall_s": round(wall_s, 3),
        "claims_per_s": round(jobs / wall_s, 1),
        "executions": len(runs),
        "jobs_run_more_than_once": sum(1 for n in per_job.values() if n > 1),
        "jobs_never_run": jobs - len(per_job),
        "exactly_once": succeeded == jobs and len(per_job) == jobs and len(runs) == jobs,
        "jobs_per_worker": sorted(per_worker.values(), reverse=True),
    }


def machine() -> dict[str, Any]:
    """The CPU (lscpu's model name), its core count and the date, for the figures."""
    model = "unknown"
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "median_claims_per_s": statistics.median(r["claims_per_s"] for r in runs),
        "exactly_once_in_every_repeat": all(r["exactly_once"] for r in runs),
        "repeats": runs,
    }


def run_benchmark(
    admin_url: str, model_dir: Path, *, jobs: int, workers: int, repeats: int, timeout_s: float
) -> dict[str, Any]:
    """Alternate the two queues `repeats` times, each on a fresh database."""
    with_library = procrastinate_version() is not None
    mine: list[dict[str, Any]] = []
    theirs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="docadapt-queue-data-") as data_dir:
        for _ in range(repeats):
            url = new_database(admin_url, "q")
            mine.append(run_docadapt(url, Path(data_dir), model_dir, jobs, workers, timeout_s))
            if with_library:
                theirs.append(
                    run_procrastinate(new_database(admin_url, "q"), jobs, workers, timeout_s)
                )
    (server_version,) = sql_rows(admin_url, "SHOW server_version")[0]
    figures: dict[str, Any] = {
        **machine(),
        "postgresql": server_version,
        "jobs": jobs,
        "workers": workers,
        "docadapt": summary(mine),
    }
    if with_library:
        figures["procrastinate"] = {"version": procrastinate_version(), **summary(theirs)}
        figures["procrastinate_vs_docadapt_claims_per_s"] = round(
            figures["procrastinate"]["median_claims_per_s"]
            / figures["docadapt"]["median_claims_per_s"],
            2,
        )
    else:
        figures["procrastinate"] = "not installed: pip install 'docadapt[queue-bench]'"
    return figures


def main(argv: list[str] | None = None) -> int:
    from adapters.base_model import materialize_base_model

    parser = perf_parser("queue", __doc__)
    parser.add_argument("--jobs", type=int, default=500, help="no-op jobs per repeat")
    parser.add_argument("--workers", type=int, default=4, help="worker processes")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each queue")
    parser.add_argument(
        "--database-url",
        help="a PostgreSQL maintenance database (SQLAlchemy URL) to create databases on "
        "(default: start a pgserver)",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=Path("./docadapt-data"),
        help="the data folder whose base model the workers check at start",
    )
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per repeat")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    settings = Settings(data_dir=args.data_dir)
    model_dir = materialize_base_model(settings.data_dir, settings.base_model_path)
    with postgres_server(args.database_url) as admin_url:
        figures = run_benchmark(
            admin_url,
            model_dir,
            jobs=args.jobs,
            workers=args.workers,
            repeats=args.repeats,
            timeout_s=args.timeout,
        )
    print_figures(figures, args.json)
    ok = figures["docadapt"]["exactly_once_in_every_repeat"] and (
        not isinstance(figures["procrastinate"], dict)
        or figures["procrastinate"]["exactly_once_in_every_repeat"]
    )
    return 0 if ok else 1
