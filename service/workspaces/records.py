"""Workspaces and their API keys."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.core.errors import Unauthorized
from service.core.security import generate_api_key, hash_api_key
from service.db.tables import ApiKey, Workspace


def create_workspace(session: Session, name: str) -> tuple[Workspace, str]:
    """Create a workspace and its first API key; the key is returned once and stored hashed."""
    workspace = Workspace(name=name)
    session.add(workspace)
    session.flush()
    key = generate_api_key()
    session.add(ApiKey(workspace_id=workspace.id, key_hash=hash_api_key(key), prefix=key[:12]))
    session.flush()
    return workspace, key


def workspace_for_key(session: Session, key: str) -> tuple[Workspace, str]:
    """The workspace an API key belongs to and the key's id; 401 for an unknown or revoked key."""
    row = session.execute(
        select(Workspace, ApiKey.id)
        .join(ApiKey, ApiKey.workspace_id == Workspace.id)
        .where(ApiKey.key_hash == hash_api_key(key), ApiKey.revoked_at.is_(None))
    ).one_or_none()
    if row is None:
        raise Unauthorized("invalid API key")
    return row[0], row[1]


def first_key_id(session: Session, workspace_id: str) -> str | None:
    """The id of a workspace's first API key (the one created with it)."""
    return session.scalar(
        select(ApiKey.id)
        .where(ApiKey.workspace_id == workspace_id)
        .order_by(ApiKey.created_at, ApiKey.id)
        .limit(1)
    )
