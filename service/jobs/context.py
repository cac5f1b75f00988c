"""What a running job sees: its parameters, a progress reporter that also notices cancellation,
and a work folder that survives a crash (for checkpoints)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from service.core.config import Settings
from service.core.storage import Storage
from service.db.tables import Job, utcnow


class JobCancelled(Exception):
    """Raised inside a job when a user asked to cancel it."""


class WorkerStopping(Exception):
    """Raised inside a job when its worker is shutting down; the job is handed back."""


@dataclass
class JobContext:
    job_id: str
    workspace_id: str
    kind: str
    subject_id: str | None
    params: dict[str, Any]
    attempt: int
    settings: Settings
    session_factory: sessionmaker[Session]
    storage: Storage
    model_dir: Path
    vllm_url: str | None
    stopping: Any = None  # threading.Event set when the worker is asked to stop
    _start_time: float = field(default_factory=time.monotonic)
    _start_done: int | None = None
    _last_cancel_check: float = 0.0

    @property
    def work_dir(self) -> Path:
        """A folder for this job's checkpoints; kept across attempts."""
        path = self.settings.data_dir / "jobs" / self.job_id
        path.mkdir(parents=True, exist_ok=True)
        return path

    def progress(
        self,
        done: int,
        total: int | None = None,
        message: str | None = None,
        *,
        eta_s: float | None = None,
        eta_note: str | None = None,
        **metrics: Any,
    ) -> None:
        """Record progress and an ETA (raise if cancelled): `eta_s` from a job that knows its
        units differ in cost, else from this attempt's units per second. `eta_note` says why
        an ETA is rough (kept in the job's metrics; None clears it)."""
        if self._start_done is None:
            self._start_done = done
        elapsed = time.monotonic() - self._start_time
        rate_done = done - self._start_done
        eta = eta_s
        if eta is None and eta_note is None and total is not None and rate_done > 0:
            eta = max(0.0, (total - done) * elapsed / rate_done) if elapsed > 0 else None
        if eta_s is not None or eta_note is not None:
            metrics["eta_note"] = eta_note
        values: dict[str, Any] = {
            "progress_done": done,
            "eta_seconds": eta,
            "updated_at": utcnow(),
            "version": Job.version + 1,
        }
        if total is not None:
            values["progress_total"] = total
        if message is not None:
            values["message"] = message
        with self.session_factory() as session:
            if metrics:
                current = session.scalar(select(Job.metrics).where(Job.id == self.job_id)) or {}
                values["metrics"] = {**current, **metrics}
            session.execute(
                update(Job)
                .where(Job.id == self.job_id)
                .values(**values)
                .execution_options(synchronize_session=False)
            )
            session.commit()
        self.check_cancelled(force=True)

    def check_cancelled(self, force: bool = False) -> None:
        """Raise JobCancelled if a user cancelled; WorkerStopping if the worker is stopping."""
        if self.stopping is not None and self.stopping.is_set():
            raise WorkerStopping()
        now = time.monotonic()
        if not force and now - self._last_cancel_check < 1.0:
            return
        self._last_cancel_check = now
        with self.session_factory() as session:
            if session.scalar(select(Job.cancel_requested).where(Job.id == self.job_id)):
                raise JobCancelled()

    def is_cancelled(self) -> bool:
        try:
            self.check_cancelled()
        except (JobCancelled, WorkerStopping):
            return True
        return False
