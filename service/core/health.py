from __future__ import annotations

import asyncio
from typing import Any, Literal

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field
from sqlalchemy import text

from service.core.openapi import text_body
from service.core.runtime import Runtime

router = APIRouter(tags=["health"])


class Liveness(BaseModel):
    status: Literal["ok"]


@router.get("/healthz")
def healthz() -> Liveness:
    """Liveness: the process answers."""
    return Liveness(status="ok")


class Readiness(BaseModel):
    status: str = Field(description="ready, starting or not_ready")
    checks: dict[str, str] = Field(
        description="database, storage, vllm, adapters (and workers): ok, disabled or what is wrong"
    )
    phase: dict[str, Any] | None = Field(
        default=None,
        description="While `docadapt serve` starts: the phase (name, step of steps, elapsed_s, "
        "expected_s and eta_s from the last start or null, detail), or failed with its error.",
    )


@router.get(
    "/readyz",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "Not ready yet: the checks say why."}},
)
async def readyz(request: Request) -> JSONResponse:
    """Readiness: the service has started, the database and the file storage answer and, where
    configured, vLLM serves the base model. While it starts: 503 with the start-up phase and its
    progress."""
    startup = getattr(request.app.state, "startup", None)
    if startup is not None and not startup.ready:
        phase = startup.snapshot()
        status = "not_ready" if phase["name"] == "failed" else "starting"
        checks = {"startup": phase["name"]}
        return JSONResponse({"status": status, "checks": checks, "phase": phase}, status_code=503)
    runtime: Runtime = request.app.state.runtime
    checks: dict[str, str] = {}
    try:
        with runtime.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # noqa: BLE001 - any failure means not ready
        checks["database"] = f"error: {exc}"
    checks["storage"] = await _storage_check(runtime)
    if runtime.vllm is None:
        checks["vllm"] = "disabled"
    else:
        checks["vllm"] = "ok" if await runtime.vllm.is_ready() else "unavailable"
        replicas = getattr(runtime.vllm, "replicas", None)  # a ReplicaClient (several URLs)
        if replicas is not None:
            up, total = len(replicas.healthy), len(replicas.replicas)
            checks["vllm_replicas"] = "ok" if up == total else f"{up} of {total} serving"
    checks["adapters"] = (
        "ok" if runtime.adapters_enabled else f"disabled: {runtime.adapters_disabled_reason}"
    )
    teacher = runtime.extras.get("teacher_vllm_server")
    if teacher is not None:  # informational: augmentation waits for it, queries never do
        checks["teacher_vllm"] = "ok" if teacher.state == "ready" else teacher.state
    if runtime.worker_pool is not None:
        # Informational: a worker that died is restarted within seconds (service.jobs.pool).
        alive, total = len(runtime.worker_pool.pids), len(runtime.worker_pool.slots)
        checks["workers"] = "ok" if alive == total else f"{alive} of {total} running"
    ready = (
        checks["database"] == "ok"
        and checks["storage"] == "ok"
        and checks["vllm"] in ("ok", "disabled")
    )
    return JSONResponse(
        {"status": "ready" if ready else "not_ready", "checks": checks},
        status_code=200 if ready else 503,
    )


async def _storage_check(runtime: Runtime) -> str:
    """The storage's check: "ok", or what is wrong with it (a bucket that is unreachable or
    refuses the credentials) and what to fix."""
    from service.core.storage import StorageUnavailable

    try:
        await asyncio.to_thread(runtime.storage.check)
    except StorageUnavailable as exc:
        return f"error: {exc.message}"
    except Exception as exc:  # noqa: BLE001 - any failure means not ready
        return f"error: {type(exc).__name__}: {exc}"
    return "ok"


@router.get(
    "/metrics",
    response_class=PlainTextResponse,
    responses={200: text_body("text/plain", "Prometheus metrics, text exposition format 0.0.4.")},
)
def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
