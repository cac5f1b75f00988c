from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from service.core.schemas import Timestamp, is_none
from service.jobs.schemas import JobPublic


def _train_config_schema(schema: dict[str, Any]) -> None:
    """The OpenAPI schema of `hyperparameters`: TrainConfig's fields, types, bounds and defaults,
    from its own definition (the rank's maximum is the server's --max-lora-rank). Imported only
    when the document is built: importing `adapters.train` loads torch."""
    from adapters.train.config import TrainConfig

    schema["properties"] = TrainConfig.json_schema()["properties"]
    schema["additionalProperties"] = False  # unknown keys are refused with 422


class AdapterCreate(BaseModel):
    """Train an adapter on a collection: plain fine-tuning without `augmentation_id`, augmented
    fine-tuning with one."""

    name: str = Field(min_length=1, max_length=100, description="Unique in the workspace.")
    augmentation_id: str | None = Field(
        default=None, description="A finished augmentation of this collection; none: plain."
    )
    examples: Literal["not_flagged", "not_rejected", "approved", "all"] = Field(
        default="not_flagged",
        description="Which of the augmentation's examples it trains on, by review state: "
        "not_flagged = approved plus pending ones not flagged by verification (never rejected); "
        "not_rejected = approved and pending, flagged included; approved = approved only; "
        "all = every example, rejected included. Resolved into example ids when the adapter is "
        "requested, so a later review does not change what it trains on.",
    )
    holdout_evalset_id: str | None = Field(
        default=None,
        description="A generated eval set of this collection with held-out sentences: the "
        "adapter trains without those sentences and without the augmented examples made from "
        "them, so the eval set's `<category>/held-out` items test what it was never shown.",
    )
    mode: Literal["independent", "cumulative"] = Field(
        default="independent",
        description="One example per sentence; cumulative keeps the earlier sentences as context.",
    )
    hyperparameters: dict[str, Any] = Field(
        default_factory=dict,
        description="Fields of adapters.train.TrainConfig (rank, alpha, learning_rate, epochs, "
        "max_steps, batch_size, early_stopping, patience, ...); unknown or invalid values are "
        "refused with 422. None are needed: by default training stops once the knowledge check "
        "(probes from the documents) stops improving, with epochs (20) and max_steps as upper "
        "bounds.",
        json_schema_extra=_train_config_schema,
    )


class ReviewSelection(BaseModel):
    """Which of its augmentation's examples an adapter trains on, resolved into ids when it was
    requested (the ids stay in the record; their hash is here)."""

    examples: str = Field(description="The review filter it was requested with.")
    trained_examples: int = Field(description="How many examples that selected.")
    approved: int
    pending: int
    rejected: int
    excluded_rejected: int
    excluded_flagged: int
    excluded_pending: int
    example_ids_sha256: str
    excluded_held_out: int | None = Field(
        default=None,
        exclude_if=is_none,
        description="Examples left out because they were made from an eval set's held-out "
        "sentences (with `holdout_evalset_id` only).",
    )


class AdapterPublic(BaseModel):
    id: str
    name: str
    model: str = Field(description="What a query's `model` names to use it (its name).")
    status: Literal["queued", "training", "loading", "ready", "failed", "deleted"]
    status_reason: str | None = Field(description="Why it failed, when it did.")
    source: Literal["trained", "imported"]
    collection_id: str | None
    augmentation_id: str | None
    review: ReviewSelection | None = Field(
        description="Without an augmentation (or from before reviews existed): none."
    )
    job_id: str | None = Field(description="The training job; none for an import.")
    base_model: str = Field(description="The base model's name (never a server path).")
    base_model_hash: str | None
    dataset_hash: str | None = Field(description="Hash of exactly what it was trained on.")
    document_versions: dict[str, Any] | list[Any] | None = Field(
        description="The documents (and their content hashes) it was trained on."
    )
    hyperparameters: dict[str, Any] | None
    metrics: dict[str, Any] | None = Field(
        description="Training figures: loss, steps, the knowledge check and its base figures."
    )
    rank: int | None
    artifact_sha256: str | None = Field(description="Hash of the adapter's files, once trained.")
    created_at: Timestamp
    updated_at: Timestamp | None
    ready_at: Timestamp | None


class AdapterCreated(AdapterPublic):
    """A training request: the adapter (training) and its job."""

    job: JobPublic | None = None


class AdaptersPublic(BaseModel):
    data: list[AdapterPublic]
