"""Evaluation sets: JSONL parsing and validation.

One JSON object per line: `{"question", "answer", "choices"?, "category"?, "id"?}`. A set is
accepted whole or refused whole: `parse_evalset_jsonl` either returns every item or raises
`EvalSetError` naming every bad line, so nothing partial is ever stored.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from service.core.jsonl import LineError, json_objects

ALLOWED_FIELDS = ("question", "answer", "choices", "category", "id")
MAX_ID_LENGTH = 200


class EvalSetError(ValueError):
    """The eval set was refused; `errors` names every bad line (sorted by line)."""

    def __init__(self, errors: list[LineError]) -> None:
        self.errors = sorted(errors, key=lambda e: e.line)
        shown = "; ".join(f"line {e.line}: {e.message}" for e in self.errors[:10])
        more = f" (and {len(self.errors) - 10} more)" if len(self.errors) > 10 else ""
        super().__init__(f"invalid eval set: {shown}{more}")


class EvalItem(BaseModel):
    """One evaluation question.

    With `choices` it is a multiple-choice item (scored by log-likelihood; `answer` is one of the
    choices); without, a generation item (scored by normalized exact match and containment).
    Strings are stripped of surrounding whitespace; numbers are accepted as strings.
    """

    model_config = ConfigDict(
        extra="forbid", frozen=True, str_strip_whitespace=True, coerce_numbers_to_str=True
    )

    id: str = Field(min_length=1, max_length=MAX_ID_LENGTH)
    question: str = Field(min_length=1)
    answer: str = Field(min_length=1)
    choices: tuple[str, ...] | None = None
    category: str | None = None

    @field_validator("category")
    @classmethod
    def _empty_category_is_none(cls, value: str | None) -> str | None:
        return value or None

    @model_validator(mode="after")
    def _check_choices(self) -> EvalItem:
        if self.choices is None:
            return self
        if any(not c for c in self.choices):
            raise ValueError("choices must be non-empty strings")
        seen: set[str] = set()
        for c in self.choices:
            if c in seen:
                raise ValueError(f"choice {c!r} appears more than once; choices must be distinct")
            seen.add(c)
        if len(self.choices) < 2:
            raise ValueError("choices needs at least 2 distinct options")
        if self.answer not in self.choices:
            raise ValueError(f"answer {self.answer!r} is not one of the choices")
        return self

    @property
    def is_multiple_choice(self) -> bool:
        return self.choices is not None

    @property
    def answer_index(self) -> int | None:
        """Index of the answer among the choices (None for generation items)."""
        return None if self.choices is None else self.choices.index(self.answer)


def generated_id(fields: dict[str, Any]) -> str:
    """A stable id from an item's content: same question, answer and choices, same id."""
    key = json.dumps(
        [fields.get("question"), fields.get("answer"), fields.get("choices")],
        ensure_ascii=False,
        separators=(",", ":"),
        default=str,
    )
    return "item-" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:12]


def parse_evalset_jsonl(data: bytes) -> list[EvalItem]:
    """Parse a JSONL eval set; all items, in file order, or `EvalSetError` naming every bad line.

    Blank lines are skipped. An item without an `id` gets `generated_id` of its content; ids must
    be unique (two id-less items with identical content are reported as duplicates).
    """
    objects, errors = json_objects(data)
    items: list[EvalItem] = []
    first_line_of_id: dict[str, int] = {}
    for number, obj in objects:
        had_id = "id" in obj and obj["id"] is not None
        fields = dict(obj)
        if not had_id:
            fields["id"] = generated_id(obj)
        try:
            item = EvalItem.model_validate(fields)
        except ValidationError as exc:
            errors.append(LineError(line=number, message=_describe(exc)))
            continue
        previous = first_line_of_id.get(item.id)
        if previous is not None:
            what = (
                f"duplicate id {item.id!r}"
                if had_id
                else "duplicate item (same question, answer and choices)"
            )
            errors.append(LineError(line=number, message=f"{what}, first seen on line {previous}"))
            continue
        first_line_of_id[item.id] = number
        items.append(item)
    if not items and not errors:
        errors.append(LineError(line=0, message="the file contains no items"))
    if errors:
        raise EvalSetError(errors)
    return items


def _describe(exc: ValidationError) -> str:
    """One readable sentence per problem pydantic found, joined with '; '."""
    parts: list[str] = []
    for err in exc.errors(include_url=False):
        loc = [str(p) for p in err["loc"]]
        field = loc[0] if loc else ""
        kind = err["type"]
        if kind == "missing":
            parts.append(f"missing field {field!r}")
        elif kind == "extra_forbidden":
            parts.append(f"unknown field {field!r} (allowed: {', '.join(ALLOWED_FIELDS)})")
        elif kind == "value_error":
            parts.append(str(err["ctx"]["error"]) if "ctx" in err else err["msg"])
        elif kind == "string_too_short":
            parts.append(f"{field!r} must not be empty")
        elif field == "choices" and len(loc) == 1:
            parts.append("'choices' must be a list of strings")
        elif field == "choices":
            parts.append(f"choice {int(loc[1]) + 1} must be a string")
        elif kind == "string_type":
            parts.append(f"{field!r} must be a string")
        elif kind == "string_too_long":
            parts.append(f"{field!r} is too long (at most {MAX_ID_LENGTH} characters)")
        else:
            parts.append(f"{field!r}: {err['msg']}" if field else err["msg"])
    return "; ".join(parts)
