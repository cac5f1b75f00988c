"""Database tables (SQLAlchemy 2 declarative). Every tenant-owned row carries workspace_id."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    event,
    false,
)
from sqlalchemy import text as sql_text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id(prefix: str) -> str:
    """A random, URL-safe identifier with a prefix that says what it names."""
    return f"{prefix}_{secrets.token_hex(8)}"


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class Timestamped:
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Workspace(Timestamped, Base):
    __tablename__ = "workspaces"
    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("ws"))
    name: Mapped[str] = mapped_column(String(200))


class ApiKey(Timestamped, Base):
    __tablename__ = "api_keys"
    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("key"))
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    # sha256 of the key: keys are high-entropy random strings, so a fast hash is enough.
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class Collection(Timestamped, Base):
    __tablename__ = "collections"
    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("col"))
    workspace_id: Mapped[str] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")


class Document(Timestamped, Base):
    __tablename__ = "documents"
    __table_args__ = (UniqueConstraint("collection_id", "text_sha256"),)
    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("doc"))
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    collection_id: Mapped[str] = mapped_column(
        ForeignKey("collections.id", ondelete="CASCADE"), index=True
    )
    filename: Mapped[str] = mapped_column(String(255))
    media_type: Mapped[str] = mapped_column(String(120))
    # How a text or Markdown file's bytes were read (service/collections/ingest/decode.py); None
    # otherwise.
    text_encoding: Mapped[str | None] = mapped_column(String(40), nullable=True)
    size_bytes: Mapped[int] = mapped_column(Integer)
    content_sha256: Mapped[str] = mapped_column(String(64))
    text_sha256: Mapped[str] = mapped_column(String(64))
    char_count: Mapped[int] = mapped_column(Integer)
    passage_count: Mapped[int] = mapped_column(Integer)
    sentence_count: Mapped[int] = mapped_column(Integer)
    token_count: Mapped[int] = mapped_column(Integer)
    storage_key: Mapped[str] = mapped_column(String(300))


class Passage(Base):
    __tablename__ = "passages"
    __table_args__ = (UniqueConstraint("document_id", "index"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    document_id: Mapped[str] = mapped_column(
        ForeignKey("documents.id", ondelete="CASCADE"), index=True
    )
    index: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    sentences: Mapped[list[Any]] = mapped_column(JSON)
    token_count: Mapped[int] = mapped_column(Integer)


class Job(Timestamped, Base):
    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_claim", "status", "lease_expires_at"),)
    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("job"))
    workspace_id: Mapped[str] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(40))
    subject_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(20), default="queued")
    progress_done: Mapped[int] = mapped_column(Integer, default=0)
    progress_total: Mapped[int | None] = mapped_column(Integer, nullable=True)
    eta_seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
    message: Mapped[str] = mapped_column(Text, default="")
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    result: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    lease_owner: Mapped[str | None] = mapped_column(String(80), nullable=True)
    lease_expires_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), nullable=True
    )
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # Bumped on every change so SSE listeners can tell cheaply that something moved.
    version: Mapped[int] = mapped_column(Integer, default=0)


class Augmentation(Timestamped, Base):
    __tablename__ = "augmentations"
    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("aug"))
    workspace_id: Mapped[str] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    collection_id: Mapped[str] = mapped_column(ForeignKey("collections.id", ondelete="CASCADE"))
    job_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Template texts used, frozen at creation so a resumed job renders the same prompts.
    templates: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    stats: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    document_ids: Mapped[list[Any]] = mapped_column(JSON, default=list)
    source: Mapped[str] = mapped_column(String(20), default="teacher")  # teacher | uploaded
    status: Mapped[str] = mapped_column(String(20), default="queued")
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class AugmentationUnit(Base):
    """One unit of augmentation work that finished; a resumed job skips these."""

    __tablename__ = "augmentation_units"
    __table_args__ = (UniqueConstraint("augmentation_id", "strategy", "unit_key"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    augmentation_id: Mapped[str] = mapped_column(
        ForeignKey("augmentations.id", ondelete="CASCADE"), index=True
    )
    strategy: Mapped[str] = mapped_column(String(20))
    unit_key: Mapped[str] = mapped_column(String(120))
    status: Mapped[str] = mapped_column(String(20))  # done | failed
    stats: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)


REVIEW_STATES = ("pending", "approved", "rejected")


class AugmentedExample(Timestamped, Base):
    """One generated (or uploaded) statement. A person's review is a state on the row, never a
    delete, so every decision can be changed and every adapter's training set traced."""

    __tablename__ = "augmented_examples"
    __table_args__ = (Index("ix_augmented_examples_review", "augmentation_id", "review"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    augmentation_id: Mapped[str] = mapped_column(
        ForeignKey("augmentations.id", ondelete="CASCADE"), index=True
    )
    strategy: Mapped[str] = mapped_column(String(20))
    unit_key: Mapped[str] = mapped_column(String(120))
    document_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    text: Mapped[str] = mapped_column(Text)
    provenance: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Verification: estimated probability the statement is true; flagged = needs a person.
    score: Mapped[float | None] = mapped_column(Float, nullable=True)
    flagged: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    review: Mapped[str] = mapped_column(String(20), default="pending", server_default="pending")
    reviewed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    review_note: Mapped[str | None] = mapped_column(Text, nullable=True)


class Adapter(Timestamped, Base):
    __tablename__ = "adapters"
    # A name is unique among the workspace's live adapters; the index, not a read before the
    # insert, is what makes two concurrent requests for one name end in one 201 and one 409.
    __table_args__ = (
        Index(
            "uq_adapters_live_name",
            "workspace_id",
            "name",
            unique=True,
            sqlite_where=sql_text("status != 'deleted'"),
            postgresql_where=sql_text("status != 'deleted'"),
        ),
    )
    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("ad"))
    workspace_id: Mapped[str] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    # What users call it (unique among the workspace's live adapters).
    name: Mapped[str] = mapped_column(String(120))
    # The name vLLM knows it by: globally unique and never reused for other weights, since
    # vLLM keys its prefix cache on it; users never see another workspace's.
    served_name: Mapped[str] = mapped_column(String(120), unique=True)
    collection_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    augmentation_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    job_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    source: Mapped[str] = mapped_column(String(20))  # trained | imported
    status: Mapped[str] = mapped_column(String(20), default="queued")
    status_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    base_model: Mapped[str] = mapped_column(String(300))
    # "sha256:" and 64 hex digits (adapters.base_model.model_fingerprint)
    base_model_hash: Mapped[str] = mapped_column(String(80))
    dataset_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    document_versions: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Which augmented examples it trains on, resolved when it was requested
    # (service/augment/examples.py): the review filter, the exact example ids and the counts; None
    # for plain fine-tuning.
    example_selection: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    hyperparameters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    rank: Mapped[int | None] = mapped_column(Integer, nullable=True)
    artifact_key: Mapped[str | None] = mapped_column(String(300), nullable=True)
    artifact_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    ready_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class EvalSet(Timestamped, Base):
    __tablename__ = "evalsets"
    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("es"))
    workspace_id: Mapped[str] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    collection_id: Mapped[str] = mapped_column(ForeignKey("collections.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    items: Mapped[list[Any]] = mapped_column(JSON, default=list)
    item_count: Mapped[int] = mapped_column(Integer)
    # uploaded (JSONL) | generated (a job writes the items from the documents)
    source: Mapped[str] = mapped_column(String(20), default="uploaded", server_default="uploaded")
    # generating | ready | failed | cancelled; an uploaded set is ready at once
    status: Mapped[str] = mapped_column(String(20), default="ready", server_default="ready")
    job_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    # A generated set's request, counts and each item's sources (service/evaluate/evalsets.py).
    generation: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    # The sentences a generated set holds out of training: share, seed and each sentence's key,
    # hash and text; an adapter requested with this set's id trains without them.
    holdout: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)


class Evaluation(Timestamped, Base):
    __tablename__ = "evaluations"
    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("ev"))
    workspace_id: Mapped[str] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    collection_id: Mapped[str] = mapped_column(ForeignKey("collections.id", ondelete="CASCADE"))
    evalset_id: Mapped[str] = mapped_column(ForeignKey("evalsets.id", ondelete="CASCADE"))
    job_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(20), default="queued")
    report: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    # Cold/warm latency probes per mode, kept so a resumed job does not probe twice.
    latency: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class EvalResult(Base):
    __tablename__ = "eval_results"
    __table_args__ = (UniqueConstraint("evaluation_id", "mode", "item_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    evaluation_id: Mapped[str] = mapped_column(
        ForeignKey("evaluations.id", ondelete="CASCADE"), index=True
    )
    mode: Mapped[str] = mapped_column(String(120))
    item_id: Mapped[str] = mapped_column(String(120))
    category: Mapped[str | None] = mapped_column(String(200), nullable=True)
    correct: Mapped[bool] = mapped_column(Boolean)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    prompt_tokens: Mapped[int] = mapped_column(Integer, default=0)
    completion_tokens: Mapped[int] = mapped_column(Integer, default=0)
    latency_s: Mapped[float] = mapped_column(Float, default=0.0)


class QueryRecord(Timestamped, Base):
    """One answered query, for cost reports and /metrics."""

    __tablename__ = "query_records"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    workspace_id: Mapped[str] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    mode: Mapped[str] = mapped_column(String(20))  # base | icl | adapter
    model: Mapped[str] = mapped_column(String(160))
    adapter_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    collection_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    prompt_tokens: Mapped[int] = mapped_column(Integer, default=0)
    completion_tokens: Mapped[int] = mapped_column(Integer, default=0)
    latency_s: Mapped[float] = mapped_column(Float, default=0.0)
    context_truncated: Mapped[bool] = mapped_column(Boolean, default=False)


class AuditEvent(Base):
    """One admin or destructive action: who (the admin, or a workspace's key by id, never the key
    itself), what (action and resource), when, and how it ended. No foreign keys: the record
    outlives what it names. Written once, never changed."""

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_workspace", "workspace_id", "at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(20))  # admin | api_key | cli
    workspace_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    key_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    action: Mapped[str] = mapped_column(String(40))  # e.g. collection.delete
    resource_type: Mapped[str] = mapped_column(String(40))
    resource_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    outcome: Mapped[str] = mapped_column(String(20))  # succeeded | failed
    status_code: Mapped[int] = mapped_column(Integer)
    error_code: Mapped[str | None] = mapped_column(String(60), nullable=True)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


# SQLite stores timestamps without their zone and gives them back naive; every timestamp here is
# UTC, so rows come back from either database with tzinfo=UTC and every response writes one
# format (service.core.schemas.json_ready).
@event.listens_for(Base, "load", propagate=True)
def _utc_on_load(target: Base, _context: Any) -> None:
    _with_utc(target, None)


@event.listens_for(Base, "refresh", propagate=True)
def _utc_on_refresh(target: Base, _context: Any, attrs: Any) -> None:
    _with_utc(target, attrs)


def _with_utc(target: Base, only: Any) -> None:
    state = target.__dict__
    for column in target.__mapper__.columns:
        if not isinstance(column.type, DateTime) or (only is not None and column.key not in only):
            continue
        value = state.get(column.key)
        if isinstance(value, datetime) and value.tzinfo is None:
            state[column.key] = value.replace(tzinfo=UTC)  # no change event: it is the same time
