"""FastAPI dependencies as Annotated aliases: a handler's signature says what it needs."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Header, Request
from sqlalchemy.orm import Session

from service.db.tables import Workspace
from service.errors import Unauthorized
from service.runtime import Runtime
from service.security import keys_match
from service.workspaces import workspace_for_key


def get_runtime(request: Request) -> Runtime:
    return request.app.state.runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def get_session(runtime: RuntimeDep) -> Iterator[Session]:
    session = runtime.session_factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


SessionDep = Annotated[Session, Depends(get_session)]


def bearer_token(authorization: Annotated[str | None, Header()] = None) -> str:
    if not authorization:
        raise Unauthorized("missing Authorization header: send `Authorization: Bearer <api key>`")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("malformed Authorization header: expected `Bearer <api key>`")
    return token.strip()


TokenDep = Annotated[str, Depends(bearer_token)]


def current_workspace(session: SessionDep, token: TokenDep) -> Workspace:
    return workspace_for_key(session, token)


CurrentWorkspace = Annotated[Workspace, Depends(current_workspace)]


def require_admin(runtime: RuntimeDep, token: TokenDep) -> None:
    if not keys_match(token, runtime.admin_key):
        raise Unauthorized("this endpoint needs the admin key")


AdminDep = Annotated[None, Depends(require_admin)]
