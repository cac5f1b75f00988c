from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, status

from service.audit.log import AuditEntry
from service.core.deps import AdminDep, SessionDep, audited_admin
from service.workspaces.records import create_workspace, first_key_id
from service.workspaces.schemas import WorkspaceCreate, WorkspaceCreated, WorkspacePublic

router = APIRouter(prefix="/v1/workspaces", tags=["workspaces"])


@router.post("", status_code=status.HTTP_201_CREATED, response_model=WorkspaceCreated)
def post_workspace(
    body: WorkspaceCreate,
    session: SessionDep,
    _: AdminDep,
    audit: Annotated[AuditEntry, audited_admin("workspace.create", "workspace")],
) -> WorkspaceCreated:
    workspace, key = create_workspace(session, body.name)
    key_id = first_key_id(session, workspace.id)
    session.commit()
    audit.workspace_id = audit.resource_id = workspace.id
    audit.details = {"name": workspace.name, "api_key_id": key_id}
    return WorkspaceCreated(workspace=WorkspacePublic.model_validate(workspace), api_key=key)
