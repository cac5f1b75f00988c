from __future__ import annotations

from pydantic import BaseModel, Field

from service.core.schemas import PublicModel, Timestamp


class WorkspaceCreate(BaseModel):
    name: str = Field(min_length=1, max_length=200)


class WorkspacePublic(PublicModel):
    id: str
    name: str
    created_at: Timestamp


class WorkspaceCreated(BaseModel):
    workspace: WorkspacePublic
    api_key: str = Field(description="Shown once; store it now.")
