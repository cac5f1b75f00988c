from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Query, Request
from sse_starlette.sse import EventSourceResponse

from service.audit.log import AuditEntry
from service.core.deps import CurrentWorkspace, RuntimeDep, SessionDep, audited
from service.core.openapi import errors, event_stream
from service.jobs import records
from service.jobs.schemas import JobKind, JobPublic, JobsPublic, JobStatus

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])


@router.get("")
def list_jobs(
    session: SessionDep,
    workspace: CurrentWorkspace,
    status: JobStatus | None = None,
    kind: JobKind | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> JobsPublic:
    """This workspace's jobs, newest first; filter by status and kind."""
    rows = records.list_jobs(session, workspace.id, status=status, kind=kind, limit=limit)
    return JobsPublic(data=[records.job_public(job) for job in rows])


@router.get("/{job_id}")
def get_job(job_id: str, session: SessionDep, workspace: CurrentWorkspace) -> JobPublic:
    return records.job_public(records.get_job(session, workspace.id, job_id))


@router.post("/{job_id}/cancel", responses=errors(409))
def cancel_job(
    job_id: str,
    session: SessionDep,
    workspace: CurrentWorkspace,
    audit: Annotated[AuditEntry, audited("job.cancel", "job", "job_id")],
) -> JobPublic:
    job = records.request_cancel(session, workspace.id, job_id)
    audit.details = {"kind": job.kind, "subject_id": job.subject_id}
    session.commit()
    return records.job_public(job)


@router.get(
    "/{job_id}/events",
    response_class=EventSourceResponse,
    responses={
        200: event_stream(
            "Server-sent events: `progress` with the job (as GET /v1/jobs/{id}) on every change, "
            "then `end` with the job at its final status; a comment every 15 s keeps it open.",
            events=["progress", "end"],
        )
    },
)
async def job_events(
    job_id: str, request: Request, runtime: RuntimeDep, workspace: CurrentWorkspace
) -> EventSourceResponse:
    """Server-sent events: one `progress` event per change, then `end` at a final status."""
    with runtime.session_factory() as session:
        records.get_job(session, workspace.id, job_id)  # 404 before the stream opens

    async def stream() -> AsyncIterator[dict[str, str]]:
        last_version = -1
        while not await request.is_disconnected():
            with runtime.session_factory() as session:
                job = records.get_job(session, workspace.id, job_id)
                version, public = job.version, records.job_public(job)
            if version != last_version:
                last_version = version
                yield {"event": "progress", "data": public.model_dump_json()}
            if public.status in records.TERMINAL:
                yield {"event": "end", "data": public.model_dump_json()}
                return
            await asyncio.sleep(0.5)

    return EventSourceResponse(stream(), ping=15)
