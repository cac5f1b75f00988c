from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic_core import to_jsonable_python


class PublicModel(BaseModel):
    """Response models read attributes off ORM rows."""

    model_config = ConfigDict(from_attributes=True)


class ErrorBody(BaseModel):
    code: str = Field(description="A stable machine-readable word, e.g. not_found.")
    message: str = Field(description="What went wrong and what to do, in plain words.")
    details: Any | None = Field(
        default=None,
        description="Structured facts about the error, when there are any; a list longer than "
        "100 items is cut to 100 and `<name>_not_shown` says how many were left out.",
    )


class ErrorResponse(BaseModel):
    """Every error: {"error": {"code", "message", "details"?}}."""

    error: ErrorBody


def utc(ts: datetime) -> datetime:
    """`ts` in UTC with its zone: the database gives naive UTC on SQLite (it stores no zone)."""
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def is_none(value: Any) -> bool:
    """`exclude_if` for optional fields a response leaves out rather than writing null."""
    return value is None


# Every timestamp a response holds: UTC with its zone, whatever the database gave back.
Timestamp = Annotated[datetime, AfterValidator(utc)]


def json_ready(value: Any) -> Any:
    """`value` as JSON-ready Python, timestamps written as every response writes them: RFC 3339
    in UTC with a Z (pydantic's form, e.g. 2026-12-02T14:46:39.403951Z)."""
    return to_jsonable_python(_utc_everywhere(value))


def _utc_everywhere(value: Any) -> Any:
    if isinstance(value, datetime):
        return utc(value)
    if isinstance(value, dict):
        return {k: _utc_everywhere(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_utc_everywhere(v) for v in value]
    return value


# An absolute file path in a message (not the path part of a URL, which follows a host, nor
# one of this API's routes, /v1/...): '/srv/docadapt-data/files/workspaces/ws_1/adapters/ad_2'
# in an error from vLLM or the OS.
_SERVER_PATH = re.compile(r"(?<![\w:/.\-])/(?!v1/)(?:[\w.\-]+/)+([\w.\-]+)")


def without_paths(text: str | None) -> str | None:
    """`text` with the server's file paths cut to their last part ('.../ad_2'): error messages
    from vLLM or the OS name where files live on this machine, which no response should."""
    if not text:
        return text
    return _SERVER_PATH.sub(lambda m: f".../{m.group(1)}", text)
