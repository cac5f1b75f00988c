"""The FastAPI application. `create_app()` builds nothing at import time: the lifespan builds
the runtime (database, storage, model, vLLM, workers) once and tears it down on shutdown."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from service.config import Settings
from service.errors import DocadaptError
from service.runtime import Runtime, build_core, start_worker_pool, stop_worker_pool

log = logging.getLogger("docadapt")


def error_response(status: int, code: str, message: str, details: object = None) -> JSONResponse:
    body: dict[str, object] = {"code": code, "message": message}
    if details is not None:
        body["details"] = jsonable_encoder(details)  # details may hold datetimes (records)
    return JSONResponse({"error": body}, status_code=status)


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
    return app


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
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
            problems.append(f"{where}: {err.get('msg')}" if where else str(err.get("msg")))
        return error_response(422, "invalid_request", "; ".join(problems) or "invalid request")

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return error_response(exc.status_code, code, str(exc.detail))

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return error_response(500, "internal_error", "internal error; see the service log")


__all__ = ["Runtime", "create_app"]
