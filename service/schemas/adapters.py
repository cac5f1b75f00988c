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
    mode: Literal["independent", "cumulative"] = Field(
        default="independent",
        description="One example per sentence; cumulative keeps the earlier sentences as context.",
    )
    hyperparameters: dict[str, Any] = Field(
        default_factory=dict,
        description="Fields of adapters.train.TrainConfig (rank, alpha, learning_rate, epochs, "
        "max_steps, batch_size, ...); unknown or invalid values are refused with 422.",
    )
