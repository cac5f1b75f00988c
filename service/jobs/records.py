"""Job records: create, claim under a lease, report progress, finish, cancel.

A worker claims a queued job, or a running one whose lease lapsed (its worker died), with a
compare-and-set update, so two workers never run one job at once. On PostgreSQL the candidate
row is locked with FOR UPDATE SKIP LOCKED; SQLite has a single writer on one machine."""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from service.core.errors import Conflict, TooManyRequests
from service.core.owned import get_owned
from service.core.schemas import without_paths
from service.db.tables import Job, Workspace, utcnow
from service.jobs.schemas import JobPublic

TERMINAL = {"succeeded", "failed", "cancelled"}
ACTIVE = ("queued", "running")
# Retry-After for a full workspace when no running job has an ETA yet.
_CAP_RETRY_S = 60


def create_job(
    session: Session,
    workspace_id: str,
    kind: str,
    params: dict[str, Any],
    subject_id: str | None,
    *,
    max_active: int | None = None,
) -> Job:
    """Queue a job. With `max_active`, a workspace that already has that many queued or running
    jobs gets a 429 instead (the caller's transaction then rolls back, so nothing is created)."""
    if max_active:
        _check_room(session, workspace_id, max_active)
    job = Job(workspace_id=workspace_id, kind=kind, params=params, subject_id=subject_id)
    session.add(job)
    session.flush()
    return job


def _check_room(session: Session, workspace_id: str, max_active: int) -> None:
    # A write to the workspace's row first: concurrent creates for one workspace take turns here
    # until each commits (a row lock on PostgreSQL, the write lock on SQLite), so the count
    # below sees every job created before and two requests cannot both take the last place.
    session.execute(
        update(Workspace)
        .where(Workspace.id == workspace_id)
        .values(name=Workspace.name)
        .execution_options(synchronize_session=False)
    )
    active = session.scalar(
        select(func.count())
        .select_from(Job)
        .where(Job.workspace_id == workspace_id, Job.status.in_(ACTIVE))
    )
    if (active or 0) < max_active:
        return
    soonest = session.scalar(
        select(func.min(Job.eta_seconds)).where(
            Job.workspace_id == workspace_id, Job.status == "running", Job.eta_seconds.is_not(None)
        )
    )
    wait = _CAP_RETRY_S if soonest is None else min(3600, max(1, math.ceil(soonest)))
    raise TooManyRequests(
        f"this workspace has {active} active jobs (queued or running) and may have at most "
        f"{max_active} (DOCADAPT_MAX_ACTIVE_JOBS_PER_WORKSPACE); nothing was created. Retry once "
        f"one has finished (in about {wait} s), or cancel one (POST /v1/jobs/{{id}}/cancel)",
        code="too_many_active_jobs",
        retry_after_s=wait,
        details={"active_jobs": active, "max_active_jobs": max_active},
    )


def get_job(session: Session, workspace_id: str, job_id: str) -> Job:
    return get_owned(session, Job, job_id, workspace_id, "job")


def list_jobs(
    session: Session,
    workspace_id: str,
    *,
    status: str | None = None,
    kind: str | None = None,
    limit: int = 50,
) -> list[Job]:
    """The workspace's jobs, newest first."""
    query = select(Job).where(Job.workspace_id == workspace_id)
    if status is not None:
        query = query.where(Job.status == status)
    if kind is not None:
        query = query.where(Job.kind == kind)
    return list(session.scalars(query.order_by(Job.created_at.desc(), Job.id).limit(limit)))


def request_cancel(session: Session, workspace_id: str, job_id: str) -> Job:
    """Cancel: a queued job stops at once; a running one at its next progress report."""
    job = get_job(session, workspace_id, job_id)
    if job.status in TERMINAL:
        raise Conflict(f"job {job_id} already {job.status}")
    now = utcnow()
    if job.status == "queued":
        job.status, job.finished_at, job.message = "cancelled", now, "cancelled before it started"
    job.cancel_requested = True
    job.updated_at = now
    job.version += 1
    session.flush()
    return job


def claim_next(session: Session, owner: str, lease_s: float, kinds: list[str]) -> Job | None:
    """Claim one runnable job for `owner`, or None. Commits."""
    now = utcnow()
    runnable = or_(
        Job.status == "queued",
        (Job.status == "running") & (Job.lease_expires_at < now),
    )
    query = select(Job.id).where(runnable, Job.kind.in_(kinds)).order_by(Job.created_at).limit(1)
    if session.bind is not None and session.bind.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    job_id = session.scalar(query)
    if job_id is None:
        session.rollback()
        return None
    claimed = session.execute(
        update(Job)
        .where(Job.id == job_id, runnable)
        .values(
            status="running",
            lease_owner=owner,
            lease_expires_at=now + timedelta(seconds=lease_s),
            attempts=Job.attempts + 1,
            started_at=now,
            updated_at=now,
            version=Job.version + 1,
        )
        .execution_options(synchronize_session=False)
    ).rowcount
    session.commit()
    if claimed != 1:
        return None  # another worker won the race
    return session.get(Job, job_id, populate_existing=True)


def renew_lease(session: Session, job_id: str, owner: str, lease_s: float) -> bool:
    """Extend the lease; False when the job is no longer ours (e.g. lease lost)."""
    now = utcnow()
    n = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.lease_owner == owner, Job.status == "running")
        .values(lease_expires_at=now + timedelta(seconds=lease_s))
        .execution_options(synchronize_session=False)
    ).rowcount
    session.commit()
    return n == 1


def expire_leases(session: Session, owner_prefix: str) -> list[str]:
    """Lapse the leases of running jobs whose owner starts with `owner_prefix` (a worker known
    to be dead), so the next claim resumes them now instead of when the lease runs out.
    Returns their ids. Commits."""
    running = (Job.status == "running") & Job.lease_owner.startswith(owner_prefix, autoescape=True)
    job_ids = list(session.scalars(select(Job.id).where(running)))
    if job_ids:
        session.execute(
            update(Job)
            .where(Job.id.in_(job_ids), running)
            .values(lease_expires_at=utcnow() - timedelta(seconds=1))
            .execution_options(synchronize_session=False)
        )
    session.commit()
    return job_ids


def finish(
    session: Session,
    job_id: str,
    owner: str,
    status: str,
    *,
    error: str | None = None,
    result: dict[str, Any] | None = None,
    message: str | None = None,
) -> None:
    now = utcnow()
    values: dict[str, Any] = {
        "status": status,
        "finished_at": now,
        "updated_at": now,
        "lease_expires_at": None,
        "eta_seconds": 0.0 if status == "succeeded" else None,
        "version": Job.version + 1,
    }
    if error is not None:
        values["error"] = error
    if result is not None:
        values["result"] = result
    if message is not None:
        values["message"] = message
    session.execute(
        update(Job)
        .where(Job.id == job_id, Job.lease_owner == owner)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    session.commit()


def _redacted(value: Any) -> Any:
    """Job parameters as shown over the API: secrets (a per-request teacher key, stored sealed as
    api_key_encrypted) shown as api_key "***"."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            if k in ("api_key", "api_key_encrypted"):
                if v:
                    out["api_key"] = "***"
            else:
                out[k] = _redacted(v)
        return out
    if isinstance(value, list):
        return [_redacted(v) for v in value]
    return value


def job_public(job: Job) -> JobPublic:
    return JobPublic.model_validate(
        {
            "id": job.id,
            "kind": job.kind,
            "subject_id": job.subject_id,
            "status": job.status,
            "progress": {
                "done": job.progress_done,
                "total": job.progress_total,
                "fraction": (job.progress_done / job.progress_total)
                if job.progress_total
                else None,
            },
            "eta_seconds": job.eta_seconds,
            "message": without_paths(job.message),
            "metrics": job.metrics,
            "error": without_paths(job.error),
            "result": job.result,
            "attempts": job.attempts,
            "cancel_requested": job.cancel_requested,
            "params": _redacted(job.params),
            "created_at": job.created_at,
            "started_at": job.started_at,
            "finished_at": job.finished_at,
            "updated_at": job.updated_at,
        }
    )
