"""FastAPI dependencies as Annotated aliases: a handler's signature says what it needs."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
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


# The OpenAPI schema declares one bearer security scheme; the checks and their messages are ours
# (auto_error=False), so every refusal is a 401 in the error envelope.
_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="apiKey",
    description="A workspace API key (dak_...), or the admin key for POST /v1/workspaces.",
)


def bearer_token(
    request: Request,
    _: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str:
    authorization = request.headers.get("authorization")
    if not authorization:
        raise Unauthorized("missing Authorization header: send `Authorization: Bearer <api key>`")
    scheme, _sep, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("malformed Authorization header: expected `Bearer <api key>`")
    return token.strip()


TokenDep = Annotated[str, Depends(bearer_token)]


def current_workspace(session: SessionDep, runtime: RuntimeDep, token: TokenDep) -> Workspace:
    try:
        return workspace_for_key(session, token)
    except Unauthorized:
        if keys_match(token, runtime.admin_key):
            raise Unauthorized(
                "this is the admin key, which only creates workspaces (POST /v1/workspaces); "
                "workspace endpoints take a workspace's API key (dak_...)",
                code="admin_key_not_accepted",
            ) from None
        raise


CurrentWorkspace = Annotated[Workspace, Depends(current_workspace)]


def require_admin(runtime: RuntimeDep, token: TokenDep) -> None:
    if not keys_match(token, runtime.admin_key):
        hint = " (this is a workspace API key)" if token.startswith("dak_") else ""
        raise Unauthorized(f"this endpoint needs the admin key{hint}")


AdminDep = Annotated[None, Depends(require_admin)]
