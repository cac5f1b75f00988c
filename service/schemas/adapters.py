from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field


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
    )
