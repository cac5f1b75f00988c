from __future__ import annotations

from fastapi import APIRouter, status

from service.deps import AdminDep, SessionDep
from service.schemas.workspaces import WorkspaceCreate, WorkspaceCreated, WorkspacePublic
from service.workspaces import create_workspace

router = APIRouter(prefix="/v1/workspaces", tags=["workspaces"])


@router.post("", status_code=status.HTTP_201_CREATED, response_model=WorkspaceCreated)
def post_workspace(body: WorkspaceCreate, session: SessionDep, _: AdminDep) -> WorkspaceCreated:
    workspace, key = create_workspace(session, body.name)
    session.commit()
    return WorkspaceCreated(workspace=WorkspacePublic.model_validate(workspace), api_key=key)
