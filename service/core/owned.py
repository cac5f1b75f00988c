"""Get-or-404 for the rows a workspace owns: one rule, so another workspace's row answers exactly
as a missing one does (the 404 never reveals that it exists)."""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy.orm import Session

from service.core.errors import NotFound

Row = TypeVar("Row")


def get_owned(session: Session, model: type[Row], row_id: Any, workspace_id: str, what: str) -> Row:
    """The `model` row `row_id` of this workspace; NotFound ("<what> <id> not found") otherwise."""
    row = session.get(model, row_id)
    if row is None or getattr(row, "workspace_id", None) != workspace_id:
        raise NotFound(f"{what} {row_id} not found")
    return row
