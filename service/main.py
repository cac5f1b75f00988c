"""The FastAPI application. `create_app()` builds nothing at import time: the lifespan builds
the runtime (database, storage, model, vLLM, workers) once and tears it down on shutdown."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from service.config import Settings
from service.errors import (
    MAX_DETAIL_ITEMS,
    DocadaptError,
    capped_details,
    capped_message,
    validation_problems,
)
from service.runtime import Runtime, build_core, start_worker_pool, stop_worker_pool
from service.schemas.common import json_ready

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


def create_app(settings: Settings | None = None) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        resolved = settings or Settings()
        runtime = build_core(resolved)
        app.state.runtime = runtime
        from service.model_services import start_model_services, stop_model_services

        await start_model_services(runtime)
        if resolved.workers > 0:
            start_worker_pool(runtime, resolved.workers)
        try:
            yield
        finally:
            stop_worker_pool(runtime)
            await stop_model_services(runtime)
            runtime.engine.dispose()

    app = FastAPI(
        title="docadapt",
        version="0.1.0",
        description="Documents in, a LoRA adapter that generalizes like in-context learning out.",
        lifespan=lifespan,
    )
    _install_error_handlers(app)
    _include_routers(app)
    _install_openapi(app)
    return app


def _install_openapi(app: FastAPI) -> None:
    from service.api.responses import complete_openapi

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


def _include_routers(app: FastAPI) -> None:
    from service.api import (
        adapters,
        augmentations,
        collections,
        evaluations,
        health,
        jobs,
        queries,
        workspaces,
    )

    for module in (
        health,
        workspaces,
        collections,
        jobs,
        augmentations,
        adapters,
        queries,
        evaluations,
    ):
        app.include_router(module.router)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DocadaptError)
    async def _docadapt_error(_: Request, exc: DocadaptError) -> JSONResponse:
        return error_response(exc.status_code, exc.code, exc.message, exc.details)

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
        if exc.status_code == 405:
            allowed = _allowed_methods(request)
            headers["Allow"] = ", ".join(allowed)
            message = f"{request.method} is not allowed here; allowed: {', '.join(allowed)}"
        return error_response(exc.status_code, code, message, headers=headers)

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
