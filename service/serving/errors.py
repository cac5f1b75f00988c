"""Errors of the query layer. Each is a `service.core.errors.DocadaptError`, so the API renders it
as {"error": {"code", "message"}} with its status; `param` names the offending request field."""

from __future__ import annotations

from service.core.errors import BadRequest, NotFound, ServiceUnavailable


class RequestRejected(BadRequest):
    """A request parameter is invalid or one the engine cannot take safely (400)."""

    code = "invalid_parameter"

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message, details={"param": param} if param else None)
        self.param = param


class ModelNotFound(NotFound):
    """`model` names nothing this workspace may use (404); another workspace's adapter included."""

    code = "model_not_found"

    def __init__(self, model: str, reason: str | None = None) -> None:
        message = reason or (
            f"The model '{model}' does not exist or you do not have access to it. Use 'base', "
            "'icl:<collection id>' or the name of an adapter of your workspace."
        )
        super().__init__(message, details={"param": "model"})
        self.param = "model"


class CollectionNotFound(NotFound):
    """`retrieval.collection_id` names no collection of this workspace (404)."""

    code = "collection_not_found"

    def __init__(self, collection_id: str) -> None:
        super().__init__(
            f"The collection '{collection_id}' does not exist or you do not have access to it.",
            details={"param": "retrieval"},
        )
        self.param = "retrieval"


class EngineUnavailable(ServiceUnavailable):
    """The inference engine is down, restarting or failed on this request (503)."""

    code = "engine_unavailable"


class EngineRejected(BadRequest):
    """The engine refused the request (its 4xx), with the engine's own message (400)."""

    code = "invalid_request"
