"""Errors a user can cause. Each carries its HTTP status and a stable code; the API renders
them as {"error": {"code", "message"}}. Plain Python, so workers can raise them too."""

from __future__ import annotations

import re
from typing import Any

# An error's details keep at most this many items per list; the message says how many more.
MAX_DETAIL_ITEMS = 100
# A longer message is cut (an input echoed back in full must not make a megabyte response).
MAX_MESSAGE_CHARS = 16_000


class DocadaptError(Exception):
    status_code = 400
    code = "bad_request"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        details: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details = details
        self.headers = headers


class BadRequest(DocadaptError):
    status_code, code = 400, "bad_request"


class Unauthorized(DocadaptError):
    status_code, code = 401, "unauthorized"


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


class TooManyRequests(DocadaptError):
    """A limit was reached; `Retry-After` (whole seconds) says when trying again can succeed."""

    status_code, code = 429, "rate_limited"

    def __init__(
        self, message: str, *, retry_after_s: int, code: str | None = None, details: Any = None
    ) -> None:
        super().__init__(
            message, code=code, details=details, headers={"Retry-After": str(retry_after_s)}
        )
        self.retry_after_s = retry_after_s


class ServiceUnavailable(DocadaptError):
    status_code, code = 503, "unavailable"


class InsufficientStorage(DocadaptError):
    status_code, code = 507, "insufficient_storage"


DISK_FULL_MESSAGE = (
    "the service's data disk is full, so this was not done and nothing of it was stored; "
    "free space in the data folder (DOCADAPT_DATA_DIR) or the database's disk, then try again"
)


def capped_details(details: Any) -> Any:
    """`details` with every list cut to MAX_DETAIL_ITEMS; a cut list `errors` gets a sibling
    `errors_not_shown` with the count left out."""
    if isinstance(details, list):
        return [capped_details(v) for v in details[:MAX_DETAIL_ITEMS]]
    if not isinstance(details, dict):
        return details
    out: dict[str, Any] = {}
    for key, value in details.items():
        out[key] = capped_details(value)
        if isinstance(value, list) and len(value) > MAX_DETAIL_ITEMS:
            out[f"{key}_not_shown"] = len(value) - MAX_DETAIL_ITEMS
    return out


def capped_message(message: str) -> str:
    if len(message) <= MAX_MESSAGE_CHARS:
        return message
    rest = len(message) - MAX_MESSAGE_CHARS
    return f"{message[:MAX_MESSAGE_CHARS]}... ({rest} more characters not shown)"


# Location parts pydantic adds for the branch of a union or a validator wrapper, such as
# "list[literal['local','decomposed']]", "function-after[...]" or a model's class name: they
# name pydantic's internals, not a field the user sent.
_INTERNAL_NAMES = frozenset(
    {"str", "int", "float", "bool", "bytes", "list", "dict", "set", "tuple", "none", "null"}
)
_CLASS_NAME = re.compile(r"^[A-Z][a-z0-9]+(?:[A-Z][A-Za-z0-9]*)+$|^[A-Z][a-z]+[A-Z]")
_PLAIN = {
    "missing": "is required",
    "extra_forbidden": "is not a field this request takes",
    "model_type": "should be a JSON object",
    "model_attributes_type": "should be a JSON object",
    "dict_type": "should be a JSON object",
    "list_type": "should be a list",
    "is_instance_of": "has the wrong type",
    "dataclass_type": "should be a JSON object",
}
_WHERE = {"query": "query parameter", "path": "path parameter", "header": "header"}


def validation_problems(errors: list[dict[str, Any]]) -> list[str]:
    """Pydantic's validation errors as sentences a user can act on: the field's path as they
    wrote it ("strategies[0]", "query parameter limit"), never pydantic's type names, and the
    branches of one union joined as alternatives ("... (or strategies: should be 'both')")."""
    entries: list[tuple[tuple[Any, ...] | None, list[str]]] = []
    for err in errors:
        loc = list(err.get("loc", ()))
        where = ""
        if loc and loc[0] == "body":
            loc = loc[1:]
        elif loc and loc[0] in _WHERE:
            where = _WHERE[loc[0]] + " "
            loc = loc[1:]
        branch = [i for i, part in enumerate(loc) if _is_internal(part)]
        path = _path([p for p in loc if not _is_internal(p)])
        text = f"{where}{path}: {_plain_message(err)}" if path else _plain_message(err)
        # Alternatives of one union share the location before the branch name.
        key = (where, *loc[: branch[0]]) if branch else None
        if key is not None and entries and entries[-1][0] == key:
            entries[-1][1].append(text)
        else:
            entries.append((key, [text]))
    return [
        alts[0] if len(alts) == 1 else f"{alts[0]} (or {'; or '.join(alts[1:])})"
        for _, alts in entries
    ]


def _is_internal(part: Any) -> bool:
    if not isinstance(part, str):
        return False
    return (
        "[" in part
        or "(" in part
        or part in _INTERNAL_NAMES
        or part.startswith(("function-", "json-or-python", "lax-or-strict", "tagged-union"))
        or bool(_CLASS_NAME.match(part))
    )


def _path(parts: list[Any]) -> str:
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _plain_message(err: dict[str, Any]) -> str:
    kind = str(err.get("type", ""))
    if kind in _PLAIN:
        return _PLAIN[kind]
    msg = str(err.get("msg", "is invalid"))
    for prefix in ("Value error, ", "Assertion failed, "):
        msg = msg.removeprefix(prefix)
    if msg.startswith("Input should"):
        msg = "should" + msg.removeprefix("Input should")
    return msg
