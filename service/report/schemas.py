"""The evaluation report (`GET /v1/evaluations/{id}/report`, schema docadapt.evaluation-report/2):
accuracy with intervals, paired tests, tokens and latency, costs per query and one-time, the
break-even point, the cost curve and a recommendation. Reports stored under /1 lack the fields
marked "(/2)"; they are served as stored."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from service.evaluate import stats


class Summary(BaseModel):
    n_items: int
    modes: list[str]
    mode_kinds: dict[str, str] = Field(description="Mode -> base, icl, rag, adapter, adapter+rag.")
    metrics: list[str]
    metric_labels: dict[str, str]
    confidence: float
    primary_accuracy: dict[str, float | None]


class PairedTest(stats.PairedTest):
    """A mode against the reference (the most accurate mode) on the items both scored."""

    verdict: str | None = Field(default=None, description="(/2) within the margin or not.")


class Usage(stats.ModeUsage):
    """Tokens and latency per query of one mode, and the single-request latency probe."""

    latency_cold_s: float | None
    latency_warm_s: float | None
    latency_source: str | None


class QueryCost(BaseModel):
    """One query's price under one caching assumption."""

    usd: float
    input_usd: float
    cached_input_usd: float
    output_usd: float
    compute_usd: float
    prefix_cached: bool
    latency_s: float | None
    assumption: str
    usd_per_correct: float | None = Field(default=None, description="(/2)")


class OneTimeCost(BaseModel):
    teacher_usd: float
    training_compute_usd: float
    training_tokens_usd: float
    total_usd: float
    inputs: dict[str, Any] = Field(description="The token counts, wall time and hardware priced.")


class BreakEven(BaseModel):
    """From how many queries an adapter's one-time cost is paid back against a reference."""

    adapter: str
    reference: str
    prefix_cached: bool
    assumption: str
    adapter_per_query_usd: float
    saving_per_query_usd: float
    one_time_usd: float | None = Field(description="None: the adapter has no cost records.")
    n_queries: int | None
    status: str
    adapter_kind: str | None = None
    reference_kind: str | None = None
    reference_per_query_usd: float | None = Field(default=None, description="(/2)")
    icl_per_query_usd: float | None = Field(default=None, description="(/1 name of the above)")
    adapter_per_correct_usd: float | None = None
    reference_per_correct_usd: float | None = None
    reference_one_time_usd: float | None = None
    quality: dict[str, Any] | None = Field(
        default=None, description="(/2) the paired test behind the comparison, and its words."
    )
    cost_n_queries: int | None = None
    cost_status: str | None = None
    verdict: str | None = None


class CostCurveLine(BaseModel):
    label: str
    mode: str
    prefix_cached: bool
    one_time_usd: float
    per_query_usd: float
    usd_per_correct: float | None = None
    accuracy: float | None = None
    less_accurate: bool | None = None


class CostCurve(BaseModel):
    n_max: int
    x_scale: str
    lines: list[CostCurveLine]
    best: str | None = None
    alpha: float | None = None


class ModeRecommendation(BaseModel):
    kind: str
    accuracy: float | None
    correct: int
    n: int
    verdict: str
    difference: float | None
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    candidate: bool
    as_accurate: bool
    per_query_usd: dict[str, float]
    per_correct_usd: dict[str, float | None]
    one_time_usd: float | None


class Recommendation(BaseModel):
    """(/2) Which mode to use, and why, in figures and in words (`lines`)."""

    best: str | None
    best_accuracy: float | None
    modes: dict[str, ModeRecommendation]
    candidates: list[str]
    as_accurate: list[str]
    less_accurate: list[str]
    recommended: dict[str, str | None] = Field(description="uncached / cached -> mode.")
    payback: dict[str, Any]
    cheapest_not_worse: dict[str, str | None]
    alternative_break_even: dict[str, Any]
    metric: str
    confidence: float
    alpha: float
    margin: float
    test: str
    interval: str
    lines: list[str]


class EvaluationReport(BaseModel):
    schema_: str = Field(alias="schema", description="docadapt.evaluation-report/2 (or /1).")
    meta: dict[str, str] = Field(description="What was evaluated, in words (title, eval set, ...).")
    summary: Summary
    recommendation: Recommendation | None = None
    accuracy: dict[str, dict[str, stats.Accuracy]] = Field(
        description="Mode -> metric -> accuracy."
    )
    accuracy_by_category: dict[str, dict[str, dict[str, stats.Accuracy]]] = Field(
        description="Mode -> category -> metric -> accuracy."
    )
    paired_tests: list[PairedTest]
    knowledge: dict[str, dict[str, Any]] | None = Field(
        default=None,
        description="Adapter mode -> its knowledge check (sentences it completes, and base's); "
        "absent from reports stored before the check existed.",
    )
    usage: dict[str, Usage]
    per_query_cost: dict[str, dict[str, QueryCost]] = Field(
        description="Mode -> uncached / cached -> price of one query."
    )
    one_time_cost: dict[str, OneTimeCost]
    break_even: list[BreakEven]
    cost_curve: CostCurve
    prices: dict[str, float | str | None]
    price_descriptions: dict[str, str]
    notes: list[str]
