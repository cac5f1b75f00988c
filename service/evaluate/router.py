from __future__ import annotations

import json
from typing import Literal

from fastapi import APIRouter, Query, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError

from service.core.deps import (
    CurrentCaller,
    CurrentWorkspace,
    JobBudget,
    RuntimeDep,
    SessionDep,
    read_jsonl_body,
    spend_job_budget,
)
from service.core.errors import (
    PayloadTooLarge,
    ServiceUnavailable,
    Unprocessable,
    UnsupportedMediaType,
)
from service.core.openapi import binary_body, errors, inline_schema, text_body
from service.evaluate import evalsets
from service.evaluate import records as svc
from service.evaluate.evalset_schemas import (
    EvalSetGenerate,
    EvalSetGenerating,
    EvalSetPublic,
    EvalSetsPublic,
)
from service.evaluate.schemas import (
    EvaluationCreate,
    EvaluationPublic,
    EvaluationsPublic,
    ResultsPage,
)
from service.jobs import records
from service.report.schemas import EvaluationReport

router = APIRouter(tags=["evaluations"])


_EVALSET_BODY = {
    "requestBody": {
        "required": True,
        "description": 'JSONL, one item per line: {"question", "answer", "choices"?: [...], '
        '"category"?, "id"?}; as the raw body or as the multipart part `file`. Or JSON '
        '(application/json) {"name"?, "generate": {...}}: generate one from the documents '
        "(a job; answered 202).",
        "content": {
            "application/json": {"schema": inline_schema(EvalSetGenerate)},
            "application/x-ndjson": {"schema": {"type": "string"}},
            "text/plain": {"schema": {"type": "string"}},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"file": {"type": "string", "format": "binary"}},
                    "required": ["file"],
                }
            },
        },
    }
}


@router.post(
    "/v1/collections/{collection_id}/evalsets",
    status_code=status.HTTP_201_CREATED,
    openapi_extra=_EVALSET_BODY,
    response_model=None,
    responses={
        201: {"model": EvalSetPublic, "description": "The uploaded set."},
        202: {
            "model": EvalSetGenerating,
            "description": "A generation request: the set (generating) and its job.",
        },
        **errors(409, 413, 415, 429),
    },
)
async def create_evalset(
    collection_id: str,
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    workspace: CurrentWorkspace,
    caller: CurrentCaller,
    name: str | None = Query(None, max_length=200, description="Default: the file's name."),
) -> EvalSetPublic | JSONResponse:
    """Store an eval set whole, or refuse it (422) naming every bad line; nothing partial.
    With a JSON body, generate one from the documents instead: 202, the set ("generating")
    and its job; the set is ready once the job has succeeded."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "application/json":
        body = await _generate_request(request)
        spend_job_budget(runtime, caller)
        evalset = evalsets.request_generation(
            session,
            workspace.id,
            collection_id,
            body,
            max_active_jobs=runtime.settings.max_active_jobs_per_workspace,
        )
        session.commit()
        job = records.get_job(session, workspace.id, evalset.job_id or "")
        public = EvalSetGenerating(**dict(svc.evalset_public(evalset)), job=records.job_public(job))
        return JSONResponse(public.model_dump(mode="json"), status_code=status.HTTP_202_ACCEPTED)
    data, filename = await read_jsonl_body(
        request, runtime.settings.max_upload_bytes, "eval set", multipart=True
    )
    default_name = filename.rsplit("/", 1)[-1] if filename else None
    evalset = await run_in_threadpool(
        svc.create_evalset, session, workspace.id, collection_id, data, name or default_name
    )
    session.commit()
    return svc.evalset_public(evalset)


@router.get("/v1/collections/{collection_id}/evalsets")
def list_evalsets(
    collection_id: str, session: SessionDep, workspace: CurrentWorkspace
) -> EvalSetsPublic:
    rows = svc.list_evalsets(session, workspace.id, collection_id)
    return EvalSetsPublic(data=[svc.evalset_public(e) for e in rows])


@router.get("/v1/evalsets/{evalset_id}")
def read_evalset(
    evalset_id: str, session: SessionDep, workspace: CurrentWorkspace
) -> EvalSetPublic:
    return svc.evalset_public(svc.get_evalset(session, workspace.id, evalset_id), with_items=True)


@router.get(
    "/v1/evalsets/{evalset_id}/download",
    response_class=Response,
    responses={
        200: text_body("application/x-ndjson", "The items, one JSON object a line."),
        **errors(409),
    },
)
def download_evalset(
    evalset_id: str,
    session: SessionDep,
    workspace: CurrentWorkspace,
    format: Literal["jsonl"] = "jsonl",
) -> Response:
    """The items as JSONL, exactly what the upload accepts: download, edit, upload back."""
    evalset = svc.get_evalset(session, workspace.id, evalset_id)
    safe = "".join(c if c.isalnum() or c in "-_." else "-" for c in evalset.name)[:100]
    return Response(
        evalsets.evalset_jsonl(evalset),
        media_type="application/x-ndjson",
        headers={"Content-Disposition": f'attachment; filename="{safe or evalset.id}.jsonl"'},
    )


_MAX_GENERATE_BODY = 64 * 1024
_UPLOAD_HINT = (
    'send {"generate": {...}} as application/json to generate an eval set, or the items as '
    "JSONL (application/x-ndjson) to upload one"
)


async def _generate_request(request: Request) -> EvalSetGenerate:
    """A generation request from a JSON body; a JSON array (an eval set sent as JSON) is
    refused as before the generator existed (415)."""
    raw = await request.body()
    if len(raw) > _MAX_GENERATE_BODY:
        raise PayloadTooLarge(f"a generation request is at most {_MAX_GENERATE_BODY} bytes")
    try:
        value = json.loads(raw or b"{}")
    except ValueError as exc:
        raise Unprocessable(
            f"the body is not valid JSON: {_UPLOAD_HINT}", code="invalid_request"
        ) from exc
    if not isinstance(value, dict):
        raise UnsupportedMediaType(
            "send the eval set as JSONL (content-type application/x-ndjson or text/plain) or as "
            'the multipart part `file`; application/json takes a generation request, {"generate": '
            "{...}}, not a JSON array"
        )
    if {"question", "answer", "choices"} & set(value):
        raise Unprocessable(
            f"the body looks like an eval set item, not a generation request: {_UPLOAD_HINT}",
            code="invalid_request",
        )
    try:
        return EvalSetGenerate.model_validate(value)
    except ValidationError as exc:
        raise RequestValidationError(exc.errors()) from exc


@router.post(
    "/v1/evaluations",
    status_code=status.HTTP_201_CREATED,
    dependencies=[JobBudget],
    responses=errors(404, 409, 429, 503),
)
def create_evaluation(
    body: EvaluationCreate, session: SessionDep, runtime: RuntimeDep, workspace: CurrentWorkspace
) -> EvaluationPublic:
    """Validate, then queue the evaluation job; it shows as `job` and in /v1/jobs/{id}."""
    evaluation = svc.create_evaluation(session, workspace.id, body, runtime.settings)
    if runtime.vllm is None and not runtime.settings.vllm_url:
        raise ServiceUnavailable("no vLLM server is configured; nothing can be scored")
    if body.adapter_ids and not runtime.adapters_enabled:
        raise ServiceUnavailable(f"adapters are disabled: {runtime.adapters_disabled_reason}")
    session.commit()
    return svc.evaluation_public(session, evaluation)


@router.get("/v1/evaluations", responses=errors(404))
def list_evaluations(
    session: SessionDep, workspace: CurrentWorkspace, collection_id: str | None = None
) -> EvaluationsPublic:
    rows = svc.list_evaluations(session, workspace.id, collection_id)
    return EvaluationsPublic(data=[svc.evaluation_public(session, e) for e in rows])


@router.get("/v1/evaluations/{evaluation_id}")
def read_evaluation(
    evaluation_id: str, session: SessionDep, workspace: CurrentWorkspace
) -> EvaluationPublic:
    return svc.evaluation_public(session, svc.get_evaluation(session, workspace.id, evaluation_id))


@router.get("/v1/evaluations/{evaluation_id}/results")
def read_results(
    evaluation_id: str,
    session: SessionDep,
    workspace: CurrentWorkspace,
    mode: str | None = None,
    offset: int = Query(0, ge=0),
    limit: int = Query(100, ge=1, le=1000),
) -> ResultsPage:
    """Per-item results stored so far (also while the job runs), one page at a time."""
    evaluation = svc.get_evaluation(session, workspace.id, evaluation_id)
    return svc.list_results(session, evaluation, mode=mode, offset=offset, limit=limit)


@router.get(
    "/v1/evaluations/{evaluation_id}/report",
    response_model=None,
    responses={
        200: {
            "description": "The report: JSON, or with format md / html Markdown or an HTML page.",
            "model": EvaluationReport,
            "content": {
                "text/markdown": {"schema": {"type": "string"}},
                "text/html": {"schema": {"type": "string"}},
            },
        },
        **errors(409),
    },
)
def read_report(
    evaluation_id: str,
    session: SessionDep,
    workspace: CurrentWorkspace,
    format: Literal["json", "md", "html"] = "json",
) -> Response:
    """The report as JSON, Markdown or a self-contained HTML page; 409 until it succeeded."""
    report = svc.finished_report(svc.get_evaluation(session, workspace.id, evaluation_id))
    if format == "json":
        typed = EvaluationReport.model_validate(report)
        # As stored: a report of schema /1 lacks the fields /2 added.
        return JSONResponse(typed.model_dump(mode="json", by_alias=True, exclude_unset=True))
    body, media_type = svc.render_report(report, format)
    return Response(body, media_type=media_type)


@router.get(
    "/v1/evaluations/{evaluation_id}/cost-curve.png",
    response_class=Response,
    responses={200: binary_body("image/png", "The cost curve plot."), **errors(409)},
)
def read_cost_curve(
    evaluation_id: str, session: SessionDep, workspace: CurrentWorkspace
) -> Response:
    report = svc.finished_report(svc.get_evaluation(session, workspace.id, evaluation_id))
    return Response(svc.cost_curve_png(report), media_type="image/png")
