from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from service.core.schemas import Timestamp, is_none
from service.jobs.schemas import JobPublic

Category = Literal["forward", "reversed", "cross-document"]


class EvalSetGenerateParams(BaseModel):
    """What to write: multiple-choice items from the collection's documents."""

    model_config = ConfigDict(extra="forbid")

    categories: list[Category] = Field(
        default=["forward", "reversed", "cross-document"],
        min_length=1,
        description="forward: a stated fact, asked in the direction it is written; reversed: "
        "the same relation asked from its other side; cross-document: a fact that follows from "
        "two sentences of different documents.",
    )
    max_items: int = Field(
        default=50, ge=1, le=1000, description="At most this many, taken in turn per category."
    )
    hold_out: float = Field(
        default=0.0,
        ge=0.0,
        le=0.9,
        description="Share of the sentences the items rest on that training leaves out (with "
        "every augmented example made from them) when an adapter names this eval set as "
        "`holdout_evalset_id`; their items get the category `<category>/held-out`. An adapter "
        "trained with the qa strategy has been asked the other items' questions in training; "
        "the held-out items are the ones that test it on facts it has not seen asked.",
    )
    seed: int = Field(default=0, description="Same documents and seed, same eval set.")
    choices: int = Field(
        default=4, ge=2, le=6, description="Options per item (fewer where the kind has fewer)."
    )

    @field_validator("categories")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))


class EvalSetGenerate(BaseModel):
    """`POST /v1/collections/{id}/evalsets` with a JSON body: generate an eval set (a job)."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, max_length=200)
    generate: EvalSetGenerateParams = Field(default_factory=EvalSetGenerateParams)


class EvalSetItemPublic(BaseModel):
    """One item as stored: what the upload accepts and the download gives back."""

    id: str
    question: str
    answer: str
    choices: list[str] | None = Field(default=None, exclude_if=is_none)
    category: str | None = Field(default=None, exclude_if=is_none)


class HoldoutPublic(BaseModel):
    share: float | None = Field(description="Share of the items' sentences held out.")
    seed: int | None
    sentence_count: int = Field(description="Sentences training leaves out.")
    held_out_items: int | None = Field(description="Items that rest on a held-out sentence.")
    sentences: list[Any] | None = Field(
        default=None,
        exclude_if=is_none,
        description="The held-out sentences (GET of one set only).",
    )


class EvalSetPublic(BaseModel):
    id: str
    collection_id: str
    name: str
    item_count: int
    multiple_choice_count: int
    categories: list[str]
    created_at: Timestamp
    source: Literal["uploaded", "generated"]
    status: Literal["ready", "generating", "failed", "cancelled"]
    job_id: str | None = Field(description="The generation job; none for an upload.")
    generation: dict[str, Any] | None = Field(
        default=None,
        exclude_if=is_none,
        description="A generated set's request and its counts by category.",
    )
    holdout: HoldoutPublic | None
    provenance: list[dict[str, Any]] | None = Field(
        default=None,
        exclude_if=is_none,
        description="A generated set's items' sources (the sentences each rests on); GET of "
        "one set only.",
    )
    items: list[EvalSetItemPublic] | None = Field(
        default=None, exclude_if=is_none, description="The items (GET of one set only)."
    )


class EvalSetGenerating(EvalSetPublic):
    """A generation request: the set (generating) and its job."""

    job: JobPublic


class EvalSetsPublic(BaseModel):
    data: list[EvalSetPublic]
