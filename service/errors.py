"""Errors a user can cause. Each carries its HTTP status and a stable code; the API renders
them as {"error": {"code", "message"}}. Plain Python, so workers can raise them too."""

from __future__ import annotations

from typing import Any


class DocadaptError(Exception):
    status_code = 400
    code = "bad_request"

    def __init__(self, message: str, *, code: str | None = None, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details = details


class BadRequest(DocadaptError):
    status_code, code = 400, "bad_request"


class Unauthorized(DocadaptError):
    status_code, code = 401, "unauthorized"


class Forbidden(DocadaptError):
    status_code, code = 403, "forbidden"


class NotFound(DocadaptError):
    status_code, code = 404, "not_found"


class Conflict(DocadaptError):
    status_code, code = 409, "conflict"


class PayloadTooLarge(DocadaptError):
    status_code, code = 413, "too_large"


class UnsupportedMediaType(DocadaptError):
    status_code, code = 415, "unsupported_type"


class Unprocessable(DocadaptError):
    status_code, code = 422, "unprocessable"


class ServiceUnavailable(DocadaptError):
    status_code, code = 503, "unavailable"
