"""What scoring records: each item's result under a mode (with its usage), the log-likelihood of a
choice, and a mode's single-request latencies."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from statistics import median
from typing import Literal

from pydantic import BaseModel

from service.evaluate.modes import ModeKind

ItemKind = Literal["multiple_choice", "generation"]

# Metric names; the first of each kind is the primary one (`ItemResult.correct`).
MC_METRICS = ("mc_sum", "mc_norm")
GEN_METRICS = ("exact", "contains")
METRICS = MC_METRICS + GEN_METRICS
METRIC_LABELS = {
    "correct": "primary (mc_sum / exact)",
    "mc_sum": "multiple choice, summed log-likelihood",
    "mc_norm": "multiple choice, per-token log-likelihood",
    "exact": "generation, normalized exact match",
    "contains": "generation, answer contained",
}


@dataclass(frozen=True)
class ChoiceScore:
    """Log-likelihood of one choice as a continuation of the prompt."""

    text: str
    token_ids: list[int]  # the continuation's tokens only
    logprobs: list[float]  # one per continuation token
    total: float  # sum of `logprobs`

    @property
    def n_tokens(self) -> int:
        return len(self.token_ids)

    @property
    def per_token(self) -> float:
        return self.total / self.n_tokens


class ItemResult(BaseModel):
    """One item scored under one mode. JSON-serialisable; the lead stores it as is."""

    item_id: str
    mode: str
    mode_kind: ModeKind
    model: str
    category: str | None = None
    kind: ItemKind
    correct: bool  # the primary metric: mc_sum for multiple choice, exact for generation
    scores: dict[str, bool]  # metric name -> correct under it
    prediction: str | None = None  # the chosen choice (summed decision) or the generated text
    answer: str
    # multiple choice only
    choice_logprobs: list[float] | None = None  # summed log-likelihood per choice
    choice_logprobs_norm: list[float] | None = None  # per-token log-likelihood per choice
    choice_tokens: list[int] | None = None  # continuation tokens per choice
    pred_sum: int | None = None
    pred_norm: int | None = None
    answer_index: int | None = None
    # usage, for statistics and costs
    prompt_tokens: int = 0  # what a query sends: context + question
    completion_tokens: int = 0  # generated tokens; for multiple choice, the answer's tokens
    cacheable_tokens: int = 0  # leading prompt tokens identical for every query of the mode
    scoring_tokens: int = 0  # tokens vLLM prefilled to score the item (all choice requests)
    latency_s: float = 0.0  # wall time of the item's requests, under the run's concurrency
    error: str | None = None  # vLLM refused the request (e.g. too long); counted as wrong


class LatencyProbe(BaseModel):
    """Single-request latencies of one mode, nothing else in flight from this scorer.

    Cold: the prompt shares no cached prefix (a fresh vLLM `cache_salt`). Warm: a second question
    right after the first under the same salt, so the shared context prefix is cached and only the
    question is new, the steady state of a deployment that caches the prefix.
    """

    mode: str
    cold_s: list[float]
    warm_s: list[float]
    prompt_tokens: list[int]
    completion_tokens: list[int]

    @property
    def cold_median_s(self) -> float:
        return float(median(self.cold_s))

    @property
    def warm_median_s(self) -> float:
        return float(median(self.warm_s))


ResultCallback = Callable[[ItemResult], Awaitable[None] | None]
