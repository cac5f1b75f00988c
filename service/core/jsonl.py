"""JSONL uploads, one rule for every route that takes them (eval sets, augmentation statements):
each line a JSON object or a problem naming the line, and a refusal that names every bad line,
so nothing partial is ever stored. The body itself is read by `core.deps.read_jsonl_body`."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict

from service.core.errors import MAX_DETAIL_ITEMS

JSONL_TYPES = (
    "application/x-ndjson",
    "application/jsonl",
    "application/json-lines",
    "text/plain",
    "application/octet-stream",
)
# Bad lines described one by one in a refusal's message; its details list up to MAX_DETAIL_ITEMS.
MAX_LINES_DESCRIBED = 50


class LineError(BaseModel):
    """What is wrong with one line; `line` is 1-based, 0 means the file as a whole."""

    model_config = ConfigDict(frozen=True)

    line: int
    message: str


def json_objects(data: bytes) -> tuple[list[tuple[int, dict[str, Any]]], list[LineError]]:
    """Each non-blank line's JSON object with its line number, and every line that is not one
    (not UTF-8, not JSON, not an object). A UTF-8 byte order mark is allowed."""
    objects: list[tuple[int, dict[str, Any]]] = []
    errors: list[LineError] = []
    for number, raw in enumerate(data.split(b"\n"), start=1):
        if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            errors.append(LineError(line=number, message=f"not valid UTF-8 (byte {exc.start})"))
            continue
        if not text.strip():
            continue
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            message = f"invalid JSON: {exc.msg} (column {exc.colno})"
            errors.append(LineError(line=number, message=message))
            continue
        if not isinstance(obj, dict):
            message = f"expected a JSON object, got {_json_type(obj)}"
            errors.append(LineError(line=number, message=message))
            continue
        objects.append((number, obj))
    return objects, errors


def refusal(errors: list[LineError], what: str) -> str:
    """The message of a refused upload: how many lines are bad and what is wrong with the first."""
    errors = sorted(errors, key=lambda e: e.line)
    if len(errors) == 1 and errors[0].line == 0:
        return f"invalid {what}: {errors[0].message}; nothing was stored"
    shown = "; ".join(f"line {e.line}: {e.message}" for e in errors[:MAX_LINES_DESCRIBED])
    rest = errors[MAX_LINES_DESCRIBED:]
    more = (
        f"; and {len(rest)} more bad lines from line {rest[0].line} on (details lists the first "
        f"{MAX_DETAIL_ITEMS})"
        if rest
        else ""
    )
    noun = "line" if len(errors) == 1 else "lines"
    return f"invalid {what}, {len(errors)} bad {noun} (nothing was stored): {shown}{more}"


def _json_type(value: Any) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return "null"
