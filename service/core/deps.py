"""FastAPI dependencies as Annotated aliases: a handler's signature says what it needs."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from service.audit import log as audit
from service.core.errors import (
    DocadaptError,
    InsufficientStorage,
    PayloadTooLarge,
    Unauthorized,
    Unprocessable,
    UnsupportedMediaType,
)
from service.core.jsonl import JSONL_TYPES
from service.core.runtime import Runtime
from service.core.security import keys_match
from service.core.storage import disk_full
from service.db.session import session_scope
from service.db.tables import Workspace
from service.workspaces.records import workspace_for_key


def get_runtime(request: Request) -> Runtime:
    return request.app.state.runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def get_session(runtime: RuntimeDep) -> Iterator[Session]:
    """One session per request: committed when the route returns, rolled back when it raises."""
    with session_scope(runtime.session_factory) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


# The OpenAPI schema declares one bearer security scheme; the checks and their messages are ours
# (auto_error=False), so every refusal is a 401 in the error envelope.
_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="apiKey",
    description="A workspace API key (dak_...), or the admin key for POST /v1/workspaces and "
    "GET /v1/audit.",
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


@dataclass(frozen=True)
class Caller:
    """Who sent a request with a workspace API key: the workspace, and the key's id."""

    workspace: Workspace
    key_id: str


def current_caller(session: SessionDep, runtime: RuntimeDep, token: TokenDep) -> Caller:
    try:
        workspace, key_id = workspace_for_key(session, token)
    except Unauthorized:
        if keys_match(token, runtime.admin_key):
            raise Unauthorized(
                "this is the admin key, which only creates workspaces (POST /v1/workspaces) and "
                "reads the audit log (GET /v1/audit); workspace endpoints take a workspace's API "
                "key (dak_...)",
                code="admin_key_not_accepted",
            ) from None
        raise
    # End the read transaction: its pooled connection goes back now, so a query holds none while
    # vLLM answers (50 concurrent chats exhausted the pool and got 500s). Loaded rows stay usable.
    session.commit()
    return Caller(workspace, key_id)


CurrentCaller = Annotated[Caller, Depends(current_caller)]


def current_workspace(caller: CurrentCaller) -> Workspace:
    return caller.workspace


CurrentWorkspace = Annotated[Workspace, Depends(current_workspace)]


def require_admin(runtime: RuntimeDep, token: TokenDep) -> None:
    if not keys_match(token, runtime.admin_key):
        hint = " (this is a workspace API key)" if token.startswith("dak_") else ""
        raise Unauthorized(f"this endpoint needs the admin key{hint}")


AdminDep = Annotated[None, Depends(require_admin)]


def spend_query_budget(runtime: RuntimeDep, caller: CurrentCaller) -> None:
    """One token of the key's query budget, or a 429 (service.core.limits)."""
    runtime.limiter.take("queries", caller.key_id)


def spend_job_budget(runtime: RuntimeDep, caller: CurrentCaller) -> None:
    """One token of the key's job-creating budget, or a 429; called by a route that creates a
    job only for some requests (eval set generation)."""
    runtime.limiter.take("jobs", caller.key_id)


# In a route's `dependencies`: the request spends one token of its key's budget, or is a 429.
QueryBudget = Depends(spend_query_budget)
JobBudget = Depends(spend_job_budget)


def _answered(exc: BaseException) -> tuple[int, str]:
    """The status and error code the app's handlers answer `exc` with (service.main)."""
    if isinstance(exc, DocadaptError):
        return exc.status_code, exc.code
    if isinstance(exc, StarletteHTTPException) and exc.status_code != 400:
        return exc.status_code, "http_error"
    if isinstance(exc, RequestValidationError | StarletteHTTPException):
        return 422, "invalid_request"  # a framework 400 (a body it cannot decode) is one too
    if disk_full(exc):
        return InsufficientStorage.status_code, InsufficientStorage.code
    return 500, "internal_error"


def _audit(request: Request, session: Session, entry: audit.AuditEntry) -> Iterator[Any]:
    try:
        yield entry
    except BaseException as exc:
        entry.outcome = "failed"
        entry.status_code, entry.error_code = _answered(exc)
        session.rollback()  # the request's own changes, so the record cannot wait on its lock
        audit.record(session, entry)
        raise
    route = request.scope.get("route")
    entry.status_code = getattr(route, "status_code", None) or 200
    audit.record(session, entry)


def audited(action: audit.AuditAction, resource_type: str, id_param: str | None = None) -> Any:
    """A dependency that records the request's action in the audit log once the route is done,
    as a workspace's key did it: outcome, status and error code included. The route gets the
    entry to fill in (the resolved id, details). Recorded before the response is sent."""

    def dependency(
        request: Request, session: SessionDep, caller: CurrentCaller
    ) -> Iterator[audit.AuditEntry]:
        entry = audit.AuditEntry(
            action=action,
            resource_type=resource_type,
            actor="api_key",
            workspace_id=caller.workspace.id,
            key_id=caller.key_id,
            resource_id=request.path_params.get(id_param) if id_param else None,
        )
        yield from _audit(request, session, entry)

    return Depends(dependency, scope="function")


def audited_admin(action: audit.AuditAction, resource_type: str) -> Any:
    """`audited` for a route behind the admin key."""

    def dependency(
        request: Request, session: SessionDep, _: AdminDep
    ) -> Iterator[audit.AuditEntry]:
        entry = audit.AuditEntry(action=action, resource_type=resource_type, actor="admin")
        yield from _audit(request, session, entry)

    return Depends(dependency, scope="function")


async def read_jsonl_body(
    request: Request, max_bytes: int, what: str, *, multipart: bool = False
) -> tuple[bytes, str | None]:
    """The JSONL bytes of an upload and the file's name: the raw body, or with `multipart` also
    the form part `file`. 415 for another content type, 413 past `max_bytes`."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    filename = None
    if multipart and content_type == "multipart/form-data":
        part = (await request.form()).get("file")
        if not isinstance(part, UploadFile):
            raise Unprocessable("multipart upload without a `file` part holding the JSONL")
        data = await part.read(max_bytes + 1)
        filename = part.filename
    elif not content_type or content_type in JSONL_TYPES:
        data = b""
        async for chunk in request.stream():
            data += chunk
            if len(data) > max_bytes:
                break
    else:
        also = " or as the multipart part `file`" if multipart else ""
        raise UnsupportedMediaType(
            f"send the {what} as JSONL (content-type application/x-ndjson or text/plain){also}, "
            f"not {content_type}"
        )
    if len(data) > max_bytes:
        raise PayloadTooLarge(f"the {what} is larger than {max_bytes} bytes")
    return data, filename
