from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from service.audit import log as audit
from service.audit.schemas import AuditEventPublic, AuditEventsPublic
from service.core.deps import AdminDep, SessionDep

router = APIRouter(prefix="/v1/audit", tags=["audit"])


@router.get("")
def list_audit_events(
    session: SessionDep,
    _: AdminDep,
    workspace_id: Annotated[
        str | None, Query(max_length=40, description="Only this workspace's events.")
    ] = None,
    action: Annotated[audit.AuditAction | None, Query(description="Only this action.")] = None,
    since: Annotated[
        datetime | None,
        Query(description="Only events at or after this time (RFC 3339; no zone: UTC)."),
    ] = None,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> AuditEventsPublic:
    """The audit log, newest first (admin key): workspace creation, deletes of collections,
    documents and adapters, and job cancellations, each with who (the admin, or a workspace's
    key by id), what, when and how it ended, refusals included."""
    rows, total = audit.list_events(
        session, workspace_id=workspace_id, action=action, since=since, offset=offset, limit=limit
    )
    return AuditEventsPublic(
        data=[AuditEventPublic.model_validate(r) for r in rows],
        total=total,
        offset=offset,
        limit=limit,
    )
