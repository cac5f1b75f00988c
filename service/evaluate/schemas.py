from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from service.core.schemas import Timestamp, is_none
from service.evaluate.scoring import ItemResult
from service.jobs.schemas import JobPublic

EvalMode = Literal["base", "icl", "rag", "adapter", "adapter+rag"]


class PriceOverrides(BaseModel):
    """Prices for this evaluation's report (USD); unset fields take the service's settings."""

    model_config = ConfigDict(extra="forbid")

    input_per_mtok: float | None = Field(
        default=None, ge=0, description="Per million prompt tokens."
    )
    cached_input_per_mtok: float | None = Field(
        default=None, ge=0, description="Per million prompt tokens read from a cached prefix."
    )
    output_per_mtok: float | None = Field(
        default=None, ge=0, description="Per million completion tokens."
    )
    accelerator_hour: float | None = Field(default=None, ge=0, description="Per GPU-hour.")
    cpu_hour: float | None = Field(default=None, ge=0, description="Per CPU-hour.")
    training_per_mtok: float | None = Field(
        default=None, ge=0, description="Hosted fine-tuning price per million training tokens."
    )
    serving_hardware: Literal["cpu", "accelerator"] | None = Field(
        default=None,
        description="Also price each query's measured latency at this hardware's hourly price "
        "(self-hosted serving); unset: queries are priced by tokens only.",
    )


class AdapterCostOverride(BaseModel):
    """An adapter's one-time cost inputs, for adapters trained elsewhere (imported) or to
    correct its records; set fields replace what the records say."""

    model_config = ConfigDict(extra="forbid")

    teacher_prompt_tokens: int | None = Field(default=None, ge=0)
    teacher_completion_tokens: int | None = Field(default=None, ge=0)
    teacher_cached_prompt_tokens: int | None = Field(default=None, ge=0)
    training_tokens: int | None = Field(default=None, ge=0)
    training_wall_s: float | None = Field(default=None, ge=0)
    training_hardware: Literal["cpu", "accelerator"] | None = None


class EvaluationCreate(BaseModel):
    """Score an eval set of a collection under the chosen modes and adapters, then report."""

    model_config = ConfigDict(extra="forbid")

    collection_id: str
    evalset_id: str
    modes: list[EvalMode] = Field(
        default=["base", "icl"],
        description="base: the base model alone; icl: the collection's documents in the prompt "
        "(the query API's `icl:` policy); rag: the base model with the question's top `rag_top_k` "
        "passages by BM25 in the prompt; adapter: each adapter of `adapter_ids` alone (also "
        "scored when not listed); adapter+rag: each adapter of `adapter_ids` again, with the rag "
        "mode's passages in its prompt (same retrieval, same `rag_top_k`), its results and report "
        "rows named `<adapter>+rag`, priced per query like rag plus the adapter's one-time cost. "
        "adapter and adapter+rag need at least one adapter.",
    )
    adapter_ids: list[str] = Field(
        default_factory=list, description="Ready adapters of this workspace (ids or names)."
    )
    prices: PriceOverrides = Field(default_factory=PriceOverrides)
    adapter_costs: dict[str, AdapterCostOverride] = Field(
        default_factory=dict,
        description="Per adapter (id or name, as in adapter_ids): one-time cost inputs that "
        "replace its records, e.g. for an imported adapter.",
    )
    measure_latency: bool = Field(
        default=True,
        description="Probe each mode's single-request latency, cold (nothing cached) and warm "
        "(the documents' prefix cached), for the per-query costs.",
    )
    latency_samples: int = Field(default=3, ge=1, le=10, description="Cold/warm pairs per mode.")
    rag_top_k: int = Field(
        default=3, ge=1, le=50, description="Passages the rag and adapter+rag modes retrieve."
    )
    max_tokens: int = Field(
        default=64, ge=1, le=1024, description="Answer length of generation items and probes."
    )
    concurrency: int = Field(default=8, ge=1, le=64, description="Requests in flight at once.")

    @field_validator("modes")
    @classmethod
    def _unique_modes(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))

    @field_validator("adapter_ids")
    @classmethod
    def _unique_adapters(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))


class ModeSpec(BaseModel):
    """One scored mode: its name in results and the report, its kind, and its adapter."""

    name: str
    kind: EvalMode
    adapter_id: str | None = Field(default=None, exclude_if=is_none)


class ModeAccuracy(BaseModel):
    correct: int
    n: int
    accuracy: float | None
    ci_low: float | None = Field(description="95% Wilson interval, lower end.")
    ci_high: float | None


class EvaluationSummary(BaseModel):
    source: Literal["report", "results so far"]
    n_items: int | None
    modes: dict[str, ModeAccuracy] = Field(description="Primary accuracy per mode.")


class EvaluationPublic(BaseModel):
    id: str
    collection_id: str
    evalset_id: str
    status: Literal["queued", "running", "succeeded", "failed", "cancelled"]
    modes: list[ModeSpec]
    params: dict[str, Any] = Field(description="The request's other settings (prices, ...).")
    summary: EvaluationSummary
    report_ready: bool
    job: JobPublic | None
    created_at: Timestamp
    finished_at: Timestamp | None


class EvaluationsPublic(BaseModel):
    data: list[EvaluationPublic]


class ResultsPage(BaseModel):
    """One page of per-item results, in the order they were stored."""

    data: list[ItemResult]
    total: int
    offset: int
    limit: int
