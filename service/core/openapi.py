"""What the OpenAPI schema says about responses, so the schema is the contract.

Routes name the errors only they can give with `errors(409, 413, ...)` in their decorator;
`complete_openapi` adds what follows from a route's shape: 401 on every route behind the bearer
scheme, 404 on every route with an id in its path, 507 (disk full) on every route that writes,
and the error envelope (not FastAPI's
HTTPValidationError) on every 422. Non-JSON bodies are declared with `text_body`, `binary_body`
and friends."""

from __future__ import annotations

from typing import Any

from service.core.schemas import ErrorResponse

ERROR_DESCRIPTIONS = {
    400: "The request cannot be taken as it is (the message names the parameter).",
    401: "No API key, a malformed Authorization header, or a key that is not valid here.",
    404: "Not found in this workspace (another workspace's resources answer the same).",
    409: "The resource is not in a state that allows this (the message says which).",
    413: "The body is larger than this service accepts.",
    415: "The body's type is not one this endpoint reads.",
    422: "The request is invalid; the message says which field and why.",
    429: "A limit was reached (this key's rate, or the workspace's active jobs); the message "
    "names it, and Retry-After says in how many seconds to try again.",
    503: "A service this needs (vLLM, the adapter runtime) is not available.",
    507: "The service's disk is full: nothing of the request was stored; try again once an "
    "operator has freed space.",
}
# Methods that write (a database row or a file), so a full disk can stop them.
_WRITES = {"post", "put", "patch", "delete"}
_ERROR_SCHEMA = {"$ref": "#/components/schemas/ErrorResponse"}


_RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before trying again.",
        "schema": {"type": "integer", "minimum": 1},
    }
}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` entries for error statuses, each with the error envelope's schema (and a 429
    with its Retry-After header)."""
    return {
        s: {
            "model": ErrorResponse,
            "description": ERROR_DESCRIPTIONS[s],
            **({"headers": _RETRY_AFTER} if s == 429 else {}),
        }
        for s in statuses
    }


def text_body(media_type: str, description: str) -> dict[str, Any]:
    return {"description": description, "content": {media_type: {"schema": {"type": "string"}}}}


def event_stream(
    description: str, events: list[str] | None = None, json_data: bool = True
) -> dict[str, Any]:
    """A text/event-stream response; its schema describes one event (what SSE clients and
    schemathesis read): the event's name and its data, JSON where `json_data`."""
    data: dict[str, Any] = {"type": "string"}
    if json_data:
        data["contentMediaType"] = "application/json"
    properties: dict[str, Any] = {"data": data}
    if events:
        properties["event"] = {"type": "string", "enum": events}
    return {
        "description": description,
        "content": {
            "text/event-stream": {
                "schema": {"type": "object", "properties": properties, "required": ["data"]}
            }
        },
    }


def binary_body(media_type: str, description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {media_type: {"schema": {"type": "string", "format": "binary"}}},
    }


def inline_schema(model: type) -> dict[str, Any]:
    """A pydantic model's JSON schema with its nested models written in place (no `$defs`), for
    bodies declared by hand (openapi_extra, `responses` content)."""
    schema = model.model_json_schema()  # type: ignore[attr-defined]
    defs = schema.pop("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return inline(defs[ref.rsplit("/", 1)[-1]])
            return {k: inline(v) for k, v in node.items()}
        if isinstance(node, list):
            return [inline(v) for v in node]
        return node

    return inline(schema)


def complete_openapi(schema: dict[str, Any]) -> dict[str, Any]:
    """Add the error statuses that follow from each route's shape, and the envelope's schema."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for name, model_schema in _error_schemas().items():
        components.setdefault(name, model_schema)
    for path, item in schema.get("paths", {}).items():
        for method, operation in item.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses = operation["responses"]
            if operation.get("security"):
                _add(responses, 401)
            if "{" in path:
                _add(responses, 404)
            if method in _WRITES:
                _add(responses, 507)
            if "422" in responses:
                responses["422"] = _error_response(422)
    text = str(schema.get("paths"))
    for unused in ("HTTPValidationError", "ValidationError"):
        if f"#/components/schemas/{unused}" not in text:
            components.pop(unused, None)
    return schema


def _add(responses: dict[str, Any], status: int) -> None:
    responses.setdefault(str(status), _error_response(status))


def _error_response(status: int) -> dict[str, Any]:
    return {
        "description": ERROR_DESCRIPTIONS[status],
        "content": {"application/json": {"schema": _ERROR_SCHEMA}},
    }


def _error_schemas() -> dict[str, Any]:
    schema = ErrorResponse.model_json_schema(ref_template="#/components/schemas/{model}")
    defs = schema.pop("$defs", {})
    return {"ErrorResponse": schema, **defs}
