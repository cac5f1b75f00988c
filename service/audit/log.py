"""The audit log: admin and destructive actions, who did them, when, and how they ended.

Recorded: workspace creation (admin key or `docadapt admin create-workspace`), deletes of
collections, documents and adapters, and job cancellation. Review decisions on examples are not:
they never delete and can be changed back, and each example keeps its own decision and time.
Refusals before a caller is known (no key, an invalid key) are not recorded either."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from service.db.tables import AuditEvent

log = logging.getLogger("docadapt")

AuditAction = Literal[
    "workspace.create", "collection.delete", "document.delete", "adapter.delete", "job.cancel"
]
Actor = Literal["admin", "api_key", "cli"]


@dataclass
class AuditEntry:
    """An action being audited; the route fills in what it learns (the resolved id, details)."""

    action: AuditAction
    resource_type: str
    actor: Actor
    workspace_id: str | None = None
    key_id: str | None = None
    resource_id: str | None = None
    outcome: Literal["succeeded", "failed"] = "succeeded"
    status_code: int = 200
    error_code: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


def record(session: Session, entry: AuditEntry) -> None:
    """Store the entry and commit. A failure to store it is logged, never raised: the action it
    describes has already happened or been refused, and its answer must not change."""
    try:
        session.add(
            AuditEvent(
                actor=entry.actor,
                workspace_id=entry.workspace_id,
                key_id=entry.key_id,
                action=entry.action,
                resource_type=entry.resource_type,
                resource_id=(entry.resource_id or None) and entry.resource_id[:200],
                outcome=entry.outcome,
                status_code=entry.status_code,
                error_code=entry.error_code,
                details=entry.details,
            )
        )
        session.commit()
    except SQLAlchemyError:
        session.rollback()
        log.exception("could not record the audit event %s", entry)


def list_events(
    session: Session,
    *,
    workspace_id: str | None = None,
    action: str | None = None,
    since: datetime | None = None,
    offset: int = 0,
    limit: int = 100,
) -> tuple[list[AuditEvent], int]:
    """One page of events, newest first, and how many match in all."""
    query = select(AuditEvent)
    if workspace_id is not None:
        query = query.where(AuditEvent.workspace_id == workspace_id)
    if action is not None:
        query = query.where(AuditEvent.action == action)
    if since is not None:
        # Stored in UTC (SQLite keeps no zone); a time without a zone is taken as UTC.
        since = since.replace(tzinfo=UTC) if since.tzinfo is None else since.astimezone(UTC)
        query = query.where(AuditEvent.at >= since)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(
        query.order_by(AuditEvent.at.desc(), AuditEvent.id.desc()).offset(offset).limit(limit)
    )
    return list(rows), total
