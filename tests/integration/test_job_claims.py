"""Many workers, one PostgreSQL: separate worker processes (the real Worker and its claim loop,
each in its own interpreter) claim each job exactly once, spread the jobs between them, and a job
whose worker is SIGKILLed mid-run is claimed again by another once its lease lapses.

The jobs are probes (service/benchmark/queue_perf.py, also `docadapt perf queue`): each run of
one records (job id, worker pid, attempt) in a table, so a double claim shows as two rows."""

from __future__ import annotations

import os
import signal
from collections import Counter
from pathlib import Path

from sqlalchemy import select

from service.benchmark.queue_perf import (
    executions,
    finished_docadapt_jobs,
    queue_docadapt_jobs,
    start_docadapt_workers,
    stop_processes,
    wait_until,
)
from service.db.session import make_engine, make_session_factory
from service.db.tables import Job
from service.jobs.worker import owner_prefix
from tests.integration.test_postgres import database_url, postgres_server  # noqa: F401 - fixtures

JOBS, WORKERS = 50, 4


def _jobs(url: str) -> dict[str, Job]:
    engine = make_engine(url)
    try:
        with make_session_factory(engine)() as session:
            return {job.id: job for job in session.scalars(select(Job))}
    finally:
        engine.dispose()


def test_four_worker_processes_run_fifty_jobs_exactly_once(
    database_url: str,  # noqa: F811 - the fixture imported above
    base_model_dir: Path,
    tmp_path: Path,
) -> None:
    ids = queue_docadapt_jobs(database_url, JOBS)
    procs, start = start_docadapt_workers(
        database_url, tmp_path / "data", base_model_dir, WORKERS, lease_s=60.0, poll_s=0.2
    )
    try:
        start.wait(timeout=45)  # every worker process up, migrated and connected
        wait_until(lambda: finished_docadapt_jobs(database_url) == JOBS, 30, "all jobs finished")
    finally:
        stop_processes(procs)
    worker_pids = {proc.pid for proc in procs}
    assert all(proc.exitcode == 0 for proc in procs), [p.exitcode for p in procs]  # SIGTERM: clean

    jobs = _jobs(database_url)
    assert sorted(jobs) == sorted(ids)
    assert {job.status for job in jobs.values()} == {"succeeded"}
    assert {job.attempts for job in jobs.values()} == {1}
    runs = executions(database_url)
    per_job = Counter(job for job, _pid, _attempt in runs)
    assert sorted(per_job) == sorted(ids) and set(per_job.values()) == {1}, per_job.most_common(3)
    for job_id, pid, attempt in runs:
        assert pid in worker_pids and pid != os.getpid() and attempt == 1
        # The lease was held by the process that ran the job, and no other.
        assert jobs[job_id].lease_owner.startswith(owner_prefix(pid)), jobs[job_id].lease_owner
        assert jobs[job_id].result == {"pid": pid}
    per_worker = Counter(pid for _job, pid, _attempt in runs)
    assert len(per_worker) > 1, per_worker  # spread over the workers, not one taking all


def test_a_sigkilled_worker_s_job_is_claimed_again_after_its_lease_lapses(
    database_url: str,  # noqa: F811 - the fixture imported above
    base_model_dir: Path,
    tmp_path: Path,
) -> None:
    # The first job's first attempt hangs (a worker to kill); five quick ones follow it.
    params = [{"hold_s": 600}] + [{}] * 5
    held, *quick = queue_docadapt_jobs(database_url, len(params), params)
    procs, start = start_docadapt_workers(
        database_url, tmp_path / "data", base_model_dir, 2, lease_s=2.0, poll_s=0.2
    )
    try:
        start.wait(timeout=45)
        wait_until(lambda: any(j == held for j, _, _ in executions(database_url)), 30, "claimed")
        (victim,) = [pid for job, pid, _attempt in executions(database_url) if job == held]
        os.kill(victim, signal.SIGKILL)  # no pool here to expire its lease: it must lapse
        wait_until(lambda: finished_docadapt_jobs(database_url) == len(params), 30, "all done")
    finally:
        stop_processes(procs)

    jobs = _jobs(database_url)
    assert {job.status for job in jobs.values()} == {"succeeded"}
    (survivor,) = {proc.pid for proc in procs} - {victim}
    runs = executions(database_url)
    # The held job ran twice, one attempt each, the second in the surviving worker under its
    # lease; every other job once.
    assert sorted((pid, attempt) for job, pid, attempt in runs if job == held) == sorted(
        [(victim, 1), (survivor, 2)]
    )
    assert jobs[held].attempts == 2 and jobs[held].lease_owner.startswith(owner_prefix(survivor))
    assert Counter(job for job, _pid, _attempt in runs if job != held) == dict.fromkeys(quick, 1)
