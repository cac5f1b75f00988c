from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from service.core.schemas import PublicModel, Timestamp


class AuditEventPublic(PublicModel):
    id: int
    at: Timestamp = Field(description="When the action ended (RFC 3339, UTC).")
    actor: Literal["admin", "api_key", "cli"] = Field(
        description="admin: the admin key; api_key: a workspace's key (key_id); cli: "
        "`docadapt admin` on the service's machine."
    )
    workspace_id: str | None = Field(
        description="The workspace acted in (an API key's), or created (by the admin)."
    )
    key_id: str | None = Field(description="The API key's id (never the key); null for admin.")
    action: str = Field(
        description="workspace.create, collection.delete, document.delete, adapter.delete or "
        "job.cancel."
    )
    resource_type: str
    resource_id: str | None = Field(
        description="The resource's id (as resolved when the action succeeded, else as sent)."
    )
    outcome: Literal["succeeded", "failed"]
    status_code: int = Field(description="The HTTP status the request was answered with.")
    error_code: str | None = Field(description="The error's code when it failed.")
    details: dict[str, Any]


class AuditEventsPublic(BaseModel):
    data: list[AuditEventPublic]
    total: int = Field(description="Events matching the filters, on every page.")
    offset: int
    limit: int
