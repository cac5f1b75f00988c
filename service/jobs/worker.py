"""The worker loop: claim a job, run its executor under a renewed lease, record the outcome.

A worker killed mid-job stops renewing its lease; once the lease lapses, the job is claimed
again (by this worker after a restart or by another) and its executor resumes from what it
recorded. A job that has been started `job_max_attempts` times is failed with that reason."""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import traceback
import uuid

from sqlalchemy.exc import SQLAlchemyError

from service.core.config import Settings
from service.core.errors import DocadaptError
from service.core.storage import disk_full, open_storage, private_dir
from service.db.session import make_engine, make_session_factory, migrate
from service.jobs import records
from service.jobs.context import JobCancelled, JobContext, WorkerStopping
from service.jobs.executors import Executor, load_executors

log = logging.getLogger("docadapt.worker")

DISK_FULL_JOB_MESSAGE = (
    "the service's data disk is full (no space left on device): the job could not write its "
    "results and stopped; free space in the data folder (DOCADAPT_DATA_DIR) or the database's "
    "disk, then submit it again"
)


def owner_prefix(pid: int) -> str:
    """How the lease owner names of the worker process `pid` on this host begin."""
    return f"{socket.gethostname()}:{pid}:"


class Worker:
    def __init__(self, settings: Settings, executors: dict[str, Executor] | None = None) -> None:
        """`executors` by kind: the service's own (load_executors) unless given; the queue's
        tests and `docadapt perf queue` give a no-op kind to drive the real claim loop cheaply."""
        from adapters.base_model import materialize_base_model

        self.settings = settings
        private_dir(settings.data_dir)
        self.engine = make_engine(settings.sqlalchemy_url)
        migrate(self.engine)
        self.session_factory = make_session_factory(self.engine)
        self.storage = open_storage(settings)
        self.model_dir = materialize_base_model(settings.data_dir, settings.base_model_path)
        self.owner = f"{owner_prefix(os.getpid())}{uuid.uuid4().hex[:6]}"
        self.executors: dict[str, Executor] = load_executors() if executors is None else executors
        self.stopping = threading.Event()

    def run(self, *, poll_s: float = 1.0, once: bool = False) -> None:
        log.info("worker %s ready for jobs: %s", self.owner, ", ".join(self.executors))
        while not self.stopping.is_set():
            try:
                with self.session_factory() as session:
                    job = records.claim_next(
                        session, self.owner, self.settings.job_lease_s, list(self.executors)
                    )
            except SQLAlchemyError as exc:
                # The database is unreachable or its disk full: wait and ask again rather than
                # die (a dead worker is restarted, and one that dies too often is left down).
                log.error("cannot claim a job (%s); asking again in %.0f s", exc, 10 * poll_s)
                if once:
                    return
                self.stopping.wait(10 * poll_s)
                continue
            if job is None:
                if once:
                    return
                self.stopping.wait(poll_s)
                continue
            self.run_job(job)
            if once:
                return

    def run_job(self, job) -> None:  # type: ignore[no-untyped-def]
        executor = self.executors[job.kind]
        ctx = JobContext(
            job_id=job.id,
            workspace_id=job.workspace_id,
            kind=job.kind,
            subject_id=job.subject_id,
            params=dict(job.params or {}),
            attempt=job.attempts,
            settings=self.settings,
            session_factory=self.session_factory,
            storage=self.storage,
            model_dir=self.model_dir,
            vllm_url=self.settings.vllm_url,
            stopping=self.stopping,
        )
        if job.attempts > self.settings.job_max_attempts:
            reason = (
                f"the job's worker stopped {job.attempts - 1} times while running it; "
                "giving up (see the worker logs)"
            )
            self._end(ctx, executor, "failed", error=reason)
            return
        if job.attempts > 1:
            log.info("resuming job %s (attempt %d)", job.id, job.attempts)
        heartbeat = threading.Event()
        beat = threading.Thread(target=self._heartbeat, args=(job.id, heartbeat), daemon=True)
        beat.start()
        try:
            result = executor.run(ctx)
        except JobCancelled:
            self._end(ctx, executor, "cancelled", message="cancelled by request")
        except WorkerStopping:
            # Hand the job back at once rather than waiting for the lease to lapse.
            with self.session_factory() as session:
                from sqlalchemy import update

                from service.db.tables import Job

                session.execute(
                    update(Job)
                    .where(Job.id == job.id, Job.lease_owner == self.owner)
                    .values(status="queued", lease_owner=None, lease_expires_at=None)
                )
                session.commit()
        except Exception as exc:  # noqa: BLE001 - a job's failure must not kill the worker
            if disk_full(exc):
                log.error("job %s failed, the disk is full: %s", job.id, exc)
                self._end(ctx, executor, "failed", error=DISK_FULL_JOB_MESSAGE)
            elif isinstance(exc, DocadaptError):
                self._end(ctx, executor, "failed", error=exc.message)
            else:
                log.error("job %s failed:\n%s", job.id, traceback.format_exc())
                self._end(ctx, executor, "failed", error=f"{type(exc).__name__}: {exc}")
        else:
            self._end(ctx, executor, "succeeded", result=result or {})
        finally:
            heartbeat.set()
            beat.join(timeout=5)

    def _end(self, ctx: JobContext, executor: Executor, status: str, **kw) -> None:  # type: ignore[no-untyped-def]
        try:
            executor.on_end(ctx, status, kw.get("error"))
        except Exception:  # noqa: BLE001
            log.error("on_end of job %s failed:\n%s", ctx.job_id, traceback.format_exc())
        try:
            with self.session_factory() as session:
                records.finish(session, ctx.job_id, self.owner, status, **kw)
        except SQLAlchemyError as exc:  # e.g. the database's disk is full
            log.error(
                "could not record that job %s %s (%s); it is claimed again when its lease lapses",
                ctx.job_id,
                status,
                exc,
            )
            return
        log.info("job %s %s", ctx.job_id, status)

    def _heartbeat(self, job_id: str, done: threading.Event) -> None:
        interval = max(1.0, self.settings.job_lease_s / 3)
        while not done.wait(interval):
            with self.session_factory() as session:
                if not records.renew_lease(session, job_id, self.owner, self.settings.job_lease_s):
                    log.warning("lost the lease on job %s", job_id)
                    return


def run_worker(settings: Settings | None = None) -> None:
    worker = Worker(settings or Settings())

    def _stop(signum, _frame) -> None:  # type: ignore[no-untyped-def]
        log.info("worker %s stopping (signal %d)", worker.owner, signum)
        worker.stopping.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    worker.run()
