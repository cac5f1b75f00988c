"""What a user probably meant when a name matched nothing: the id behind a collection's name given
where an id belongs (`icl:handbook`), a collection given as an adapter, an adapter's name in
another case. Only the caller's own workspace is searched, so a hint never reveals another's."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from service.db.tables import Adapter, Collection

ICL_PREFIX = "icl:"


def _collections_named(session: Session, workspace_id: str, name: str) -> list[Collection]:
    return list(
        session.scalars(
            select(Collection)
            .where(Collection.workspace_id == workspace_id, Collection.name == name)
            .order_by(Collection.created_at.desc())
            .limit(3)
        )
    )


def collection_hint(session: Session, workspace_id: str, given: str, *, as_model: bool) -> str:
    """A sentence for an unknown collection id that is a collection's name, else ''."""
    found = _collections_named(session, workspace_id, given)
    if not found:
        return ""
    ids = [c.id for c in found]
    shown = " or ".join(f"'{ICL_PREFIX}{i}'" if as_model else f"'{i}'" for i in ids)
    kind = "model" if as_model else "collection_id"
    return f" '{given}' is the name of a collection; {kind} takes its id: {shown}."


def adapter_hint(session: Session, workspace_id: str, given: str) -> str:
    """A sentence for an adapter id or name that matched nothing, else ''."""
    if given.startswith(ICL_PREFIX):
        rest = given[len(ICL_PREFIX) :]
        hint = collection_hint(session, workspace_id, rest, as_model=True)
        return (
            f" '{given}' is not an adapter: 'icl:<collection id>' is a model for "
            "/v1/chat/completions (the collection's documents in the prompt)." + hint
        )
    same_case = session.scalars(
        select(Adapter).where(
            Adapter.workspace_id == workspace_id,
            func.lower(Adapter.name) == given.lower(),
            Adapter.status != "deleted",
        )
    ).first()
    if same_case is not None:
        return f" Did you mean adapter '{same_case.name}' ({same_case.id})?"
    collection = session.get(Collection, given)
    if collection is not None and collection.workspace_id == workspace_id:
        return (
            f" '{given}' is a collection: GET /v1/adapters?collection_id={given} lists its "
            f"adapters, and model '{ICL_PREFIX}{given}' answers from its documents."
        )
    named = _collections_named(session, workspace_id, given)
    if named:
        return (
            f" '{given}' is the name of a collection ({named[0].id}); its documents answer as "
            f"model '{ICL_PREFIX}{named[0].id}'."
        )
    return ""
