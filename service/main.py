"""The FastAPI application. `create_app()` builds nothing at import time: the lifespan builds
the runtime (database, storage, model, vLLM, workers) once and tears it down on shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from service.core.config import Settings
from service.core.errors import (
    DISK_FULL_MESSAGE,
    MAX_DETAIL_ITEMS,
    DocadaptError,
    InsufficientStorage,
    capped_details,
    capped_message,
    validation_problems,
)
from service.core.runtime import Runtime, stop_worker_pool
from service.core.schemas import json_ready
from service.core.storage import disk_full

if TYPE_CHECKING:
    from service.core.startup import Startup

log = logging.getLogger("docadapt")


def error_response(
    status: int,
    code: str,
    message: str,
    details: object = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """The error envelope. Details may hold records (datetimes, written as every response writes
    them); their lists and the message are capped, so no error grows with its input."""
    body: dict[str, object] = {"code": code, "message": capped_message(message)}
    if details is not None:
        body["details"] = json_ready(capped_details(details))
    if status == 401:
        headers = {"WWW-Authenticate": "Bearer", **(headers or {})}
    return JSONResponse({"error": body}, status_code=status, headers=headers)


def create_app(
    settings: Settings | None = None,
    *,
    wait_until_ready: bool = True,
    on_start_failure: Callable[[], None] | None = None,
) -> FastAPI:
    """The app. With `wait_until_ready` (in-process use, tests) the lifespan returns once
    everything started; without it (`docadapt serve`) the app answers at once: /healthz 200,
    /readyz 503 with the start-up phase, /v1 503 `starting`, while the start runs behind it
    (service.core.startup); a failed start logs why and calls `on_start_failure`."""

    app = FastAPI(
        title="docadapt",
        version="0.1.0",
        description="Documents in, a LoRA adapter that generalizes like in-context learning out.",
        lifespan=_lifespan(settings, wait_until_ready, on_start_failure),
    )
    _install_error_handlers(app)
    from service.core import health
    from service.core.startup import StartingGate
    from service.web import router as web

    app.include_router(health.router)
    app.include_router(web.router)  # the dashboard at / (out of the OpenAPI schema)
    if wait_until_ready:
        _include_routers(app, _router_modules())
    app.add_middleware(StartingGate)
    _install_openapi(app)
    return app


def _lifespan(
    settings: Settings | None,
    wait_until_ready: bool,
    on_start_failure: Callable[[], None] | None,
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """Start everything (waiting for it, or behind the open port), stop it all on shutdown."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from service.core.model_services import stop_model_services
        from service.core.startup import Startup, start_service

        resolved = settings or Settings()
        startup = Startup(resolved.data_dir)
        app.state.startup = startup

        async def start_all() -> None:
            if not wait_until_ready:
                # The routers import most of the service (seconds): after the port is open.
                startup.begin("loading the service")
                modules = await asyncio.to_thread(_router_modules)
                _include_routers(app, modules)
            await start_service(app.state, resolved, startup)

        start = asyncio.create_task(start_all())
        if wait_until_ready:
            try:
                await start
            except BaseException:
                await _stop(app, start, stop_model_services)
                raise
        else:
            start.add_done_callback(_start_ended(startup, on_start_failure))
        ticker = asyncio.create_task(startup.tick())
        try:
            yield
        finally:
            ticker.cancel()
            await _stop(app, start, stop_model_services)

    return lifespan


def _start_ended(
    startup: Startup, on_start_failure: Callable[[], None] | None
) -> Callable[[asyncio.Task[None]], None]:
    """What a start behind the open port does when it ends: a failure is logged and reported."""

    def ended(task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            startup.fail(str(exc) or type(exc).__name__)
            if on_start_failure is not None:
                on_start_failure()

    return ended


async def _stop(
    app: FastAPI,
    start: asyncio.Task[None],
    stop_model_services: Callable[[Runtime], Awaitable[None]],
) -> None:
    """Stop a start still running (and the vLLM it starts), then the workers, the model
    services and the database engine."""
    runtime = getattr(app.state, "runtime", None)
    if runtime is not None and runtime.vllm_server is not None and not start.done():
        for server in runtime.extras.get("vllm_servers") or [runtime.vllm_server]:
            server.stop(timeout=10.0)  # unblocks a vLLM start in progress
    if not start.done():
        start.cancel()
    with contextlib.suppress(BaseException):
        await start
    runtime = getattr(app.state, "runtime", None)  # set meanwhile, perhaps
    if runtime is not None:
        stop_worker_pool(runtime)
        await stop_model_services(runtime)
        runtime.engine.dispose()


def _install_openapi(app: FastAPI) -> None:
    from service.core.openapi import complete_openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = complete_openapi(
                get_openapi(
                    title=app.title,
                    version=app.version,
                    description=app.description,
                    routes=app.routes,
                )
            )
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _router_modules() -> list[Any]:
    """Every stage's router module but health's (which is there from the start)."""
    from service.audit import router as audit
    from service.augment import router as augment
    from service.collections import router as collections
    from service.evaluate import router as evaluate
    from service.jobs import router as jobs
    from service.serving import router as serving
    from service.training import router as training
    from service.workspaces import router as workspaces

    return [workspaces, collections, jobs, augment, training, serving, evaluate, audit]


def _include_routers(app: FastAPI, modules: list[Any]) -> None:
    for module in modules:
        app.include_router(module.router)
    app.openapi_schema = None  # a schema asked for before now lacked these routes


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DocadaptError)
    async def _docadapt_error(_: Request, exc: DocadaptError) -> JSONResponse:
        return error_response(
            exc.status_code, exc.code, exc.message, exc.details, headers=exc.headers
        )

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = validation_problems(list(exc.errors()))
        shown = "; ".join(problems[:MAX_DETAIL_ITEMS]) or "invalid request"
        if len(problems) > MAX_DETAIL_ITEMS:
            shown += f"; and {len(problems) - MAX_DETAIL_ITEMS} more problems"
        return error_response(422, "invalid_request", shown)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        headers = dict(exc.headers or {})
        message = str(exc.detail)
        if exc.status_code == 400:
            # Only the framework raises these (ours are DocadaptErrors): a body it cannot decode
            # (JSON that is not UTF-8, broken multipart). The same 422 as any invalid body.
            return error_response(
                422,
                "invalid_request",
                f"the request body cannot be read ({message.rstrip('.')}): send JSON in UTF-8, "
                "or a well-formed multipart form where the endpoint takes files",
            )
        if exc.status_code == 405:
            allowed = _allowed_methods(request)
            headers["Allow"] = ", ".join(allowed)
            message = f"{request.method} is not allowed here; allowed: {', '.join(allowed)}"
        return error_response(exc.status_code, code, message, headers=headers)

    # A full disk (the data folder's or the database's) surfaces as an OSError or a database
    # error anywhere a request writes: a 507 that says so, not a 500. The request's session has
    # been rolled back by then, and the storage removed the files it had written.
    @app.exception_handler(OSError)
    @app.exception_handler(SQLAlchemyError)
    async def _maybe_disk_full(_: Request, exc: Exception) -> JSONResponse:
        if disk_full(exc):
            log.error("a request failed, the disk is full: %s", exc)
            return error_response(507, InsufficientStorage.code, DISK_FULL_MESSAGE)
        log.error("unhandled error", exc_info=exc)
        return error_response(500, "internal_error", "internal error; see the service log")

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return error_response(500, "internal_error", "internal error; see the service log")


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at this path (Starlette's own 405 names only the first
    route that matched the path, while e.g. GET and POST /v1/collections are two routes)."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        match, _ = route.matches(request.scope)
        if match in (Match.PARTIAL, Match.FULL):
            methods |= set(getattr(route, "methods", None) or ())
    if "GET" in methods:
        methods.add("HEAD")
    return sorted(methods)


__all__ = ["Runtime", "create_app"]
