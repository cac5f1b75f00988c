"""OpenAI-compatible query endpoints: `model` is an adapter name, `icl:<collection>` or `base`;
`retrieval` ({"collection_id", "top_k"}) adds a collection's top passages to an adapter's or base's
prompt (modes adapter+rag and rag)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, StreamingResponse

from service.core.deps import CurrentWorkspace, QueryBudget, RuntimeDep
from service.core.errors import BadRequest, ServiceUnavailable
from service.core.openapi import errors, event_stream, inline_schema
from service.serving.protocol import ChatCompletionRequest, CompletionRequest
from service.serving.schemas import ChatCompletion, Completion, ModelPublic, ModelsPublic
from service.serving.serving import JSONResult

router = APIRouter(tags=["queries"])


async def _body(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError as exc:
        raise BadRequest("the request body is not valid JSON", code="invalid_json") from exc
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object", code="invalid_json")
    return body


def _openapi(request_model: type, response_model: type, what: str) -> dict[str, Any]:
    """The request body (read by the query layer itself, so a refusal is a 400 naming the field)
    and both answers: JSON, or server-sent chunks with stream=true."""
    return {
        "openapi_extra": {
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": inline_schema(request_model)}},
            }
        },
        "responses": {
            200: {
                "model": response_model,
                "description": f"The {what} (OpenAI's format); with stream=true, server-sent "
                "chunks ending in `data: [DONE]`.",
                # One chunk per event, its data a JSON chunk or, last, "[DONE]".
                "content": event_stream("", json_data=False)["content"],
            },
            **errors(400, 404, 429, 503),
        },
    }


def _respond(result: Any) -> JSONResponse | StreamingResponse:
    if isinstance(result, JSONResult):
        return JSONResponse(result.body, headers=result.headers)
    return StreamingResponse(result.chunks, media_type=result.media_type, headers=result.headers)


def _service(runtime: RuntimeDep) -> Any:
    service = runtime.extras.get("query_service")
    if service is None:
        raise ServiceUnavailable(
            "no vLLM server is configured on this service", code="engine_unavailable"
        )
    return service


@router.post(
    "/v1/chat/completions",
    response_model=None,
    dependencies=[QueryBudget],
    **_openapi(ChatCompletionRequest, ChatCompletion, "chat completion"),
)
async def chat_completions(
    request: Request, runtime: RuntimeDep, workspace: CurrentWorkspace
) -> JSONResponse | StreamingResponse:
    return _respond(await _service(runtime).chat(workspace.id, await _body(request)))


@router.post(
    "/v1/completions",
    response_model=None,
    dependencies=[QueryBudget],
    **_openapi(CompletionRequest, Completion, "completion"),
)
async def completions(
    request: Request, runtime: RuntimeDep, workspace: CurrentWorkspace
) -> JSONResponse | StreamingResponse:
    return _respond(await _service(runtime).completion(workspace.id, await _body(request)))


@router.get("/v1/models")
def list_models(runtime: RuntimeDep, workspace: CurrentWorkspace) -> ModelsPublic:
    """What `model` may name for this workspace: base, icl:<collection>, ready adapters."""
    from service.collections.records import list_collections
    from service.training.registry import list_adapters

    with runtime.session_factory() as session:
        models = [ModelPublic(id="base", owned_by="docadapt")]
        models += [
            ModelPublic(id=f"icl:{c.id}", owned_by=workspace.id)
            for c in list_collections(session, workspace.id)
        ]
        models += [
            ModelPublic(id=a.name, owned_by=workspace.id)
            for a in list_adapters(session, workspace.id)
            if a.status == "ready"
        ]
    return ModelsPublic(data=models)
