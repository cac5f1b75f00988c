"""An augmentation's examples: filtered listing, a person's review (approve, reject, reset), and
the exact set an adapter trains on.

A review is a state on the example row, never a delete: a rejected example stays listed and can
be approved again. An adapter's examples are resolved into ids when it is requested, so a review
made while its job waits in the queue does not change what it trains on."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import ColumnElement, Select, func, select, update
from sqlalchemy.orm import Session

from service.augment.schemas import ExampleFilter, ExamplePublic, ReviewCounts
from service.core.errors import Conflict, NotFound, Unprocessable
from service.db.tables import REVIEW_STATES, Augmentation, AugmentedExample, utcnow

TrainingExamples = Literal["not_flagged", "not_rejected", "approved", "all"]
DECISION_STATE = {"approve": "approved", "reject": "rejected", "reset": "pending"}
# Ids per IN (...) clause: well under SQLite's bound-parameter limit.
_ID_CHUNK = 500
_IDS_NAMED = 20


def _as_utc(ts: datetime | None) -> datetime | None:
    # SQLite returns naive datetimes; everything stored is UTC.
    return ts.replace(tzinfo=UTC) if ts is not None and ts.tzinfo is None else ts


def example_public(row: AugmentedExample) -> ExamplePublic:
    provenance = row.provenance or {}
    source = provenance.get("source_text")
    return ExamplePublic(
        id=row.id,
        text=row.text,
        strategy=row.strategy,
        unit_id=row.unit_key,
        document_id=row.document_id,
        source_text=source if isinstance(source, str) else None,
        score=row.score,
        flagged=bool(row.flagged),
        review=row.review,  # type: ignore[arg-type]
        reviewed_at=_as_utc(row.reviewed_at),
        review_note=row.review_note,
        provenance=provenance,
        created_at=_as_utc(row.created_at),
    )


def filter_conditions(augmentation_id: str, f: ExampleFilter | None) -> list[ColumnElement[bool]]:
    """WHERE terms for the examples of one augmentation that match `f` (None: all of them)."""
    ex = AugmentedExample
    terms: list[ColumnElement[bool]] = [ex.augmentation_id == augmentation_id]
    if f is None:
        return terms
    if f.strategy is not None:
        terms.append(ex.strategy == f.strategy)
    if f.review is not None:
        terms.append(ex.review == f.review)
    if f.flagged is not None:
        terms.append(ex.flagged.is_(True) if f.flagged else ex.flagged.is_(False))
    if f.score_below is not None:
        terms.append(ex.score.is_not(None) & (ex.score < f.score_below))
    if f.score_above is not None:
        terms.append(ex.score.is_not(None) & (ex.score > f.score_above))
    return terms


def examples_query(
    augmentation_id: str, f: ExampleFilter | None
) -> Select[tuple[AugmentedExample]]:
    return (
        select(AugmentedExample)
        .where(*filter_conditions(augmentation_id, f))
        .order_by(AugmentedExample.id)
    )


def count_matching(session: Session, augmentation_id: str, f: ExampleFilter | None) -> int:
    return int(
        session.scalar(
            select(func.count(AugmentedExample.id)).where(*filter_conditions(augmentation_id, f))
        )
        or 0
    )


def review_counts(session: Session, augmentation_id: str) -> ReviewCounts:
    """Examples of the whole augmentation by review state."""
    counts = ReviewCounts()
    for state, n in session.execute(
        select(AugmentedExample.review, func.count(AugmentedExample.id))
        .where(AugmentedExample.augmentation_id == augmentation_id)
        .group_by(AugmentedExample.review)
    ):
        if state in REVIEW_STATES:
            setattr(counts, state, int(n))
        counts.total += int(n)
    return counts


def get_example(session: Session, aug: Augmentation, example_id: int) -> AugmentedExample:
    row = session.get(AugmentedExample, example_id)
    if row is None or row.augmentation_id != aug.id:
        raise NotFound(f"example {example_id} not found in augmentation {aug.id}")
    return row


def require_reviewable(aug: Augmentation) -> None:
    """Only a finished, successful augmentation's examples can be reviewed (409 otherwise)."""
    if aug.status in ("queued", "running"):
        raise Conflict(
            f"augmentation {aug.id} is still {aug.status}: its examples can be reviewed once it "
            "has succeeded",
            code="augmentation_not_finished",
        )
    if aug.status != "succeeded":
        raise Conflict(
            f"augmentation {aug.id} is {aug.status}: only a succeeded augmentation's examples "
            "can be reviewed",
            code="augmentation_not_succeeded",
        )


def _review_values(decision: str, note: str | None) -> dict[str, Any]:
    state = DECISION_STATE[decision]
    return {
        "review": state,
        "reviewed_at": None if state == "pending" else utcnow(),
        "review_note": note,
    }


def review_example(
    session: Session, aug: Augmentation, example_id: int, decision: str, note: str | None
) -> AugmentedExample:
    """Set one example's review state; `note` replaces the previous note (None clears it)."""
    require_reviewable(aug)
    row = get_example(session, aug, example_id)
    for name, value in _review_values(decision, note).items():
        setattr(row, name, value)
    session.flush()
    return row


def _chunks(ids: Sequence[int]) -> Iterable[Sequence[int]]:
    for start in range(0, len(ids), _ID_CHUNK):
        yield ids[start : start + _ID_CHUNK]


def review_examples(
    session: Session,
    aug: Augmentation,
    decision: str,
    note: str | None,
    *,
    example_ids: Sequence[int] | None = None,
    example_filter: ExampleFilter | None = None,
) -> int:
    """Apply one decision to the named examples (all of them, or none if any id is not an
    example of `aug`: 404 naming those) or to every example matching the filter. Returns how
    many examples the decision was applied to."""
    require_reviewable(aug)
    values = _review_values(decision, note)
    ex = AugmentedExample
    if example_ids is not None:
        wanted = sorted(set(example_ids))
        found: set[int] = set()
        for chunk in _chunks(wanted):
            found.update(
                session.scalars(select(ex.id).where(ex.augmentation_id == aug.id, ex.id.in_(chunk)))
            )
        missing = [i for i in wanted if i not in found]
        if missing:
            named = ", ".join(str(i) for i in missing[:_IDS_NAMED])
            more = f" and {len(missing) - _IDS_NAMED} more" if len(missing) > _IDS_NAMED else ""
            raise NotFound(
                f"not examples of augmentation {aug.id}: {named}{more}; nothing was changed",
                details={"missing_example_ids": missing},
            )
        for chunk in _chunks(wanted):
            session.execute(
                update(ex)
                .where(ex.augmentation_id == aug.id, ex.id.in_(chunk))
                .values(**values)
                .execution_options(synchronize_session=False)
            )
        updated = len(wanted)
    else:
        result = session.execute(
            update(ex)
            .where(*filter_conditions(aug.id, example_filter))
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        updated = int(result.rowcount or 0)  # type: ignore[attr-defined]
    session.expire_all()
    return updated


def ids_sha256(ids: Sequence[int]) -> str:
    """sha256 (hex) of the ascending ids written in decimal, joined by commas."""
    return hashlib.sha256(",".join(str(i) for i in sorted(ids)).encode()).hexdigest()


def select_training_examples(
    session: Session, aug: Augmentation, choice: TrainingExamples
) -> dict[str, Any]:
    """The examples of `aug` an adapter trains on, resolved now into ids, with the counts its
    lineage shows.

    not_flagged: approved, plus pending ones that are not flagged; never rejected.
    not_rejected: approved and pending, flagged included.
    approved: approved only (422 if there is none).
    all: every example, rejected included.
    The counts partition the augmentation: trained (approved + pending + rejected) plus
    excluded_rejected, excluded_flagged (pending and flagged) and excluded_pending (pending, not
    flagged: only "approved" leaves those out)."""
    rows = session.execute(
        select(AugmentedExample.id, AugmentedExample.review, AugmentedExample.flagged)
        .where(AugmentedExample.augmentation_id == aug.id)
        .order_by(AugmentedExample.id)
    ).all()

    def kept(review: str, flagged: bool) -> bool:
        if choice == "all":
            return True
        if choice == "approved":
            return review == "approved"
        if review == "rejected":
            return False
        return choice == "not_rejected" or review == "approved" or not flagged

    ids: list[int] = []
    counts = {"approved": 0, "pending": 0, "rejected": 0}
    excluded = {"rejected": 0, "flagged": 0, "pending": 0}
    for example_id, review, flagged in rows:
        if kept(review, bool(flagged)):
            ids.append(example_id)
            counts[review] = counts.get(review, 0) + 1
        elif review == "rejected":
            excluded["rejected"] += 1
        elif flagged:
            excluded["flagged"] += 1
        else:
            excluded["pending"] += 1
    if choice == "approved" and not ids:
        raise Unprocessable(
            f"augmentation {aug.id} has no approved examples: approve some "
            f'(POST /v1/augmentations/{aug.id}/review) or choose examples "not_flagged"',
            code="no_approved_examples",
        )
    return {
        "examples": choice,
        "trained_examples": len(ids),
        "approved": counts["approved"],
        "pending": counts["pending"],
        "rejected": counts["rejected"],
        "excluded_rejected": excluded["rejected"],
        "excluded_flagged": excluded["flagged"],
        "excluded_pending": excluded["pending"],
        "example_ids_sha256": ids_sha256(ids),
        "example_ids": ids,
    }
