"""What the job routes answer: a job's state, progress and outcome."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from service.core.schemas import Timestamp

JobKind = Literal["augmentation", "training", "evaluation", "evalset_generation"]
JobStatus = Literal["queued", "running", "succeeded", "failed", "cancelled"]


class JobProgress(BaseModel):
    done: int = Field(description="Units of work done (examples, steps or items, by kind).")
    total: int | None = Field(description="Units in all, once known.")
    fraction: float | None = Field(description="done / total, once total is known.")


class JobPublic(BaseModel):
    id: str
    kind: JobKind
    subject_id: str | None = Field(
        description="What the job works on: an augmentation, adapter, evaluation or eval set id."
    )
    status: JobStatus
    progress: JobProgress
    eta_seconds: float | None = Field(description="Seconds left, estimated from the pace so far.")
    message: str | None = Field(description="What it is doing now, in words.")
    metrics: dict[str, Any] | None = Field(
        description="Live figures of its kind (training: step, loss, learning rate, ...)."
    )
    error: str | None = Field(description="Why it failed, when it did.")
    result: dict[str, Any] | None = Field(description="What it produced, once it succeeded.")
    attempts: int = Field(description="Times a worker has started it (more than 1 after a crash).")
    cancel_requested: bool
    params: dict[str, Any] | None = Field(
        description="The request it runs, secrets masked ('***')."
    )
    created_at: Timestamp
    started_at: Timestamp | None
    finished_at: Timestamp | None
    updated_at: Timestamp | None


class JobsPublic(BaseModel):
    data: list[JobPublic]
