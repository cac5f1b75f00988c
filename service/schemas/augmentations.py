from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, field_validator

Strategy = Literal["local", "decomposed", "global"]


class TeacherOverride(BaseModel):
    """Another OpenAI-compatible endpoint to use as the teacher for this job."""

    base_url: str | None = None
    model: str | None = None
    api_key: str | None = None


class AugmentationCreate(BaseModel):
    strategies: list[Strategy] | Literal["both", "all"] = Field(
        default=["decomposed", "global"],
        description=(
            "local (free-form rephrasings and inferences per unit), decomposed (extract each "
            "relation, invert it, compose: precise with small teachers), global (links each "
            "document to the rest of the corpus). 'both' = local + global; 'all' = all three."
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

    @field_validator("strategies")
    @classmethod
    def _expand(cls, value: list[str] | str) -> list[str]:
        if value == "both":
            return ["local", "global"]
        if value == "all":
            return ["local", "decomposed", "global"]
        if not value:
            raise ValueError("name at least one strategy")
        return list(dict.fromkeys(value))
