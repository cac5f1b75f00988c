from __future__ import annotations

from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from service.augment.types import StrategyName
from service.core.schemas import PublicModel, Timestamp
from service.jobs.schemas import JobPublic

Strategy = StrategyName


class TeacherOverride(BaseModel):
    """Another teacher for this job: one of the operator's named teachers, or an
    OpenAI-compatible endpoint that the operator's allow-list admits (a URL the settings do not
    allow, or one whose host resolves to a loopback, link-local or private address, is a 422)."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(
        default=None, max_length=100, description="A teacher the operator configured by name."
    )
    base_url: str | None = Field(
        default=None,
        max_length=2000,
        description="An http(s) endpoint on the operator's allow-list (DOCADAPT_TEACHER_ALLOWED_"
        "URLS); a bare host gets /v1.",
    )
    model: str | None = Field(default=None, max_length=200)
    api_key: str | None = Field(
        default=None,
        max_length=4000,
        description="Sent to the teacher as a bearer token; stored encrypted, never shown.",
    )


class AugmentationCreate(BaseModel):
    strategies: list[Strategy] | Literal["both", "all"] = Field(
        default=["decomposed", "linked", "qa"],
        description=(
            "decomposed (each sentence's parse rewritten by rule: the reversed direction of its "
            "relation, a relative clause as its own sentence, an opening pronoun resolved; a "
            "sentence whose structure is uncertain gives nothing), linked (inferences across "
            "sentences and documents by explicit steps: inheritance along 'is a', syllogisms, "
            "chains; each cites the sentences it rests on), qa (each fact as the question that "
            "asks for it and its answer, trained as a chat turn so the adapter answers questions; "
            "made by rule, both directions and across documents), local (free-form rephrasings and "
            "inferences per unit by the teacher) and global (the teacher links each document to "
            "the rest of the corpus in one prompt; for strong teachers). "
            "'both' = local + global; 'all' = every strategy."
        ),
    )
    unit: Literal["sentence", "passage"] = "sentence"
    outputs_per_unit: int = Field(default=3, ge=1, le=16)
    temperature: float = Field(default=0.7, ge=0.0, le=2.0)
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    max_tokens: int = Field(default=128, ge=1, le=4096, description="Per local completion.")
    global_max_tokens: int = Field(
        default=256, ge=1, le=4096, description="Per global completion (a paragraph of links)."
    )
    gate: bool = Field(default=True, description="Drop outputs that contradict their source.")
    context_budget_tokens: int = Field(default=6000, ge=256)
    templates: dict[str, str] = Field(
        default_factory=dict,
        description="Custom prompt templates by kind (local, global, decomposed_extract, "
        "decomposed_inverse); validated before the job starts.",
    )
    teacher: TeacherOverride | None = None
    redact_pii: bool | None = Field(
        default=None,
        description="Take personal data (names, e-mail addresses, phone, IBAN, account and card "
        "numbers) out of the text sent to the teacher and put it back in its answers. null: the "
        "operator's policy (DOCADAPT_REDACT_PII; by default on for any teacher but this "
        "service's own vLLM). Only local, global and decomposed with use_rules=false send text "
        "to a teacher. The augmentation's stats.redaction reports what was redacted.",
    )

    @field_validator("strategies")
    @classmethod
    def _expand(cls, value: list[str] | str) -> list[str]:
        if value == "both":
            return ["local", "global"]
        if value == "all":
            return list(get_args(StrategyName))
        if not value:
            raise ValueError("name at least one strategy")
        return list(dict.fromkeys(value))


# Review of an augmentation's examples (approve / reject before training).

ReviewState = Literal["pending", "approved", "rejected"]
ReviewDecision = Literal["approve", "reject", "reset"]
# Strategies an example can come from: the engine's, plus statements uploaded as a set.
EXAMPLE_STRATEGIES: tuple[str, ...] = (*get_args(StrategyName), "uploaded")


class ExampleFilter(BaseModel):
    """Which examples of one augmentation; every field given must match. An example without a
    score matches neither score bound."""

    model_config = ConfigDict(extra="forbid")

    strategy: str | None = Field(default=None, description=", ".join(EXAMPLE_STRATEGIES))
    review: ReviewState | None = None
    flagged: bool | None = None
    score_below: float | None = Field(
        default=None, allow_inf_nan=False, description="Only examples with score < this."
    )
    score_above: float | None = Field(
        default=None, allow_inf_nan=False, description="Only examples with score > this."
    )

    @field_validator("strategy")
    @classmethod
    def _known_strategy(cls, value: str | None) -> str | None:
        if value is not None and value not in EXAMPLE_STRATEGIES:
            raise ValueError(f"strategy must be one of {', '.join(EXAMPLE_STRATEGIES)}")
        return value


class ExampleReviewCreate(BaseModel):
    """A person's decision on one example: approve, reject, or reset to pending."""

    model_config = ConfigDict(extra="forbid")

    decision: ReviewDecision
    note: str | None = Field(default=None, max_length=2000, description="Why; kept on the row.")


class ExamplesReviewCreate(ExampleReviewCreate):
    """The same decision on many examples: named by `example_ids`, or every example that
    matches `filter` (exactly one of the two)."""

    example_ids: list[int] | None = Field(default=None, min_length=1, max_length=100_000)
    filter: ExampleFilter | None = None

    @model_validator(mode="after")
    def _ids_or_filter(self) -> ExamplesReviewCreate:
        if (self.example_ids is None) == (self.filter is None):
            raise ValueError("give exactly one of `example_ids` and `filter`")
        return self


class ReviewCounts(BaseModel):
    """Examples of the whole augmentation by review state."""

    pending: int = 0
    approved: int = 0
    rejected: int = 0
    total: int = 0


class ExamplePublic(PublicModel):
    id: int
    text: str
    strategy: str
    unit_id: str
    document_id: str | None
    source_text: str | None = Field(
        description="The sentence, passage or document the statement was written from."
    )
    score: float | None
    flagged: bool
    review: ReviewState
    reviewed_at: Timestamp | None
    review_note: str | None
    provenance: dict[str, Any]
    created_at: Timestamp | None


class ExamplesPublic(BaseModel):
    data: list[ExamplePublic]
    total: int = Field(description="Examples that match the filters.")
    offset: int
    limit: int
    counts: ReviewCounts


class ExamplesReviewPublic(BaseModel):
    updated: int
    counts: ReviewCounts


class AugmentationPublic(BaseModel):
    id: str
    collection_id: str
    status: Literal["queued", "running", "succeeded", "failed", "cancelled"]
    source: Literal["teacher", "uploaded"] = Field(
        description="teacher: written by the service; uploaded: examples sent as JSONL."
    )
    params: dict[str, Any] = Field(
        description="The request it was made with (strategies, filters, limits), secrets left out."
    )
    document_count: int = Field(description="Documents of the collection it was made from.")
    stats: dict[str, Any] = Field(
        description="Figures per stage and strategy (candidates, kept, dropped and why, teacher "
        "tokens, redactions); live while the job runs."
    )
    job: JobPublic | None = Field(description="The job that makes it; none for an upload.")
    created_at: Timestamp
    finished_at: Timestamp | None


class AugmentationsPublic(BaseModel):
    data: list[AugmentationPublic]
