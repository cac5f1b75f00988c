"""The cost model: what an adapter costs once, what a query costs per mode, and when they cross.

All money is USD. Token prices are per million tokens; compute prices per hour.

- One-time cost of an adapter = teacher tokens of its augmentation, priced as tokens (input,
  cached input, output) + training compute (wall time x the hourly price of the hardware it trained
  on) + training tokens x `training_per_mtok` (a hosted fine-tuning price; 0 when self-hosted).
- Per-query cost of a mode = its measured mean prompt tokens at the input price (or, under the
  prefix-caching assumption, the shared context tokens at the cached-input price and the rest at
  the input price) + mean completion tokens at the output price + (when `serving_hardware` is set)
  the measured single-request latency x that hardware's hourly price. Without caching the latency
  is the cold one, with caching the warm one. rag and adapter+rag prompts carry each question's
  own retrieved passages, so their cacheable prefix is 0 and caching changes only their latency.
- An adapter+rag mode (the adapter with rag's passages in its prompt) costs its adapter's one-time
  cost plus its own per-query cost: `one_time + n * r`, with r measured like rag's.
- Break-even: the adapter costs `one_time + n * a` after n queries, a reference mode
  `reference_one_time + n * r` (ICL and rag: no one-time cost; an adapter+rag mode: its adapter's);
  the adapter is no more expensive from n* = ceil((one_time - reference_one_time) / (r - a))
  queries on (0 when that is negative), and never when a > r, or a = r with the larger one-time
  cost. Whether the adapter answers as well as the reference is the report's question, not this
  module's (service/report/build.py withholds the verdict where it does not).
- Cost per correct answer = cost per query / accuracy: what one right answer costs when the wrong
  ones are paid for too (one-time costs excluded; none at 0% accuracy).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING, Any, Literal

from service.report.schemas import QueryCost

if TYPE_CHECKING:
    from service.core.config import Settings

Hardware = Literal["cpu", "accelerator"]
_MILLION = 1_000_000
_HOUR_S = 3600.0
# Relative slack for the ceiling in `break_even_queries`: 3.0000000000004 queries is 3, not 4.
_CEIL_SLACK = 1e-9


@dataclass(frozen=True)
class Prices:
    """Prices in USD.

    Defaults (the same as `Settings.price_*`): the token prices are OpenAI's list prices for
    GPT-4.1 nano (April 2025: $0.10 input, $0.025 cached input, $0.40 output per million tokens),
    a small hosted model comparable in role to the default base; $2.50 per accelerator-hour is in
    the range of on-demand H100 rental; $0.05 per CPU-hour is roughly one on-demand cloud vCPU
    with its memory. They are illustrative, not quotes: pass your own.
    """

    input_per_mtok: float = 0.10
    """Prompt tokens, per million."""
    cached_input_per_mtok: float = 0.025
    """Prompt tokens served from a cached prefix, per million."""
    output_per_mtok: float = 0.40
    """Completion tokens, per million."""
    accelerator_hour: float = 2.50
    """One accelerator (GPU) for one hour."""
    cpu_hour: float = 0.05
    """One CPU (host) for one hour."""
    training_per_mtok: float = 0.0
    """Hosted fine-tuning price per million training tokens; 0 when training is self-hosted and
    priced by wall time only."""
    serving_hardware: Hardware | None = None
    """When set, each query also pays its measured latency at this hardware's hourly price
    (self-hosted serving); None: queries are priced by tokens only (a hosted API)."""

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, float | int) and (value < 0 or not math.isfinite(value)):
                raise ValueError(f"price {f.name} must be a finite number >= 0, got {value}")
        if self.serving_hardware not in (None, "cpu", "accelerator"):
            raise ValueError("serving_hardware must be 'cpu', 'accelerator' or None")

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> Prices:
        """Prices from the service settings, with request-level overrides (None values ignored)."""
        base = {
            "input_per_mtok": settings.price_input_per_mtok,
            "cached_input_per_mtok": settings.price_cached_input_per_mtok,
            "output_per_mtok": settings.price_output_per_mtok,
            "accelerator_hour": settings.price_accelerator_hour,
            "cpu_hour": settings.price_cpu_hour,
        }
        base.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**base)

    def hourly(self, hardware: Hardware) -> float:
        return self.accelerator_hour if hardware == "accelerator" else self.cpu_hour

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


PRICE_DESCRIPTIONS: dict[str, str] = {
    "input_per_mtok": "USD per million prompt tokens",
    "cached_input_per_mtok": "USD per million prompt tokens read from a cached prefix",
    "output_per_mtok": "USD per million completion tokens",
    "accelerator_hour": "USD per accelerator-hour (training on a GPU; serving if chosen)",
    "cpu_hour": "USD per CPU-hour (training on CPU; serving if chosen)",
    "training_per_mtok": "USD per million training tokens (hosted fine-tuning; 0 = self-hosted)",
    "serving_hardware": (
        "hardware whose hourly price each query's latency pays (none = tokens only)"
    ),
}


@dataclass(frozen=True)
class AdapterCostInputs:
    """What an adapter's records say it consumed (from its augmentation and training jobs)."""

    teacher_prompt_tokens: int = 0
    teacher_completion_tokens: int = 0
    teacher_cached_prompt_tokens: int = 0
    """Of `teacher_prompt_tokens`, those read from a cached prefix (the global strategy repeats
    the corpus in every prompt); 0 prices them all at the input price."""
    training_tokens: int = 0
    training_wall_s: float = 0.0
    training_hardware: Hardware = "cpu"

    def __post_init__(self) -> None:
        if self.teacher_cached_prompt_tokens > self.teacher_prompt_tokens:
            raise ValueError("teacher_cached_prompt_tokens exceeds teacher_prompt_tokens")
        for name in (
            "teacher_prompt_tokens",
            "teacher_completion_tokens",
            "teacher_cached_prompt_tokens",
            "training_tokens",
            "training_wall_s",
        ):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0")


@dataclass(frozen=True)
class OneTimeCost:
    """An adapter's one-time cost and its parts."""

    teacher_usd: float
    training_compute_usd: float
    training_tokens_usd: float
    total_usd: float
    inputs: AdapterCostInputs


def token_cost(
    prompt_tokens: float,
    completion_tokens: float,
    prices: Prices,
    *,
    cached_prompt_tokens: float = 0.0,
) -> float:
    """Price of tokens: cached prompt tokens at the cached rate, the other prompt tokens at the
    input rate, completion tokens at the output rate."""
    cached = min(max(cached_prompt_tokens, 0.0), prompt_tokens)
    return (
        (prompt_tokens - cached) * prices.input_per_mtok
        + cached * prices.cached_input_per_mtok
        + completion_tokens * prices.output_per_mtok
    ) / _MILLION


def one_time_cost(inputs: AdapterCostInputs, prices: Prices) -> OneTimeCost:
    """Teacher tokens priced as tokens + training wall time x hourly price + training tokens."""
    teacher = token_cost(
        inputs.teacher_prompt_tokens,
        inputs.teacher_completion_tokens,
        prices,
        cached_prompt_tokens=inputs.teacher_cached_prompt_tokens,
    )
    compute = inputs.training_wall_s / _HOUR_S * prices.hourly(inputs.training_hardware)
    train_tokens = inputs.training_tokens * prices.training_per_mtok / _MILLION
    return OneTimeCost(
        teacher_usd=teacher,
        training_compute_usd=compute,
        training_tokens_usd=train_tokens,
        total_usd=teacher + compute + train_tokens,
        inputs=inputs,
    )


@dataclass(frozen=True)
class QueryProfile:
    """Measured means per query of one mode."""

    prompt_tokens: float
    completion_tokens: float
    cacheable_tokens: float = 0.0  # the repeated (shared context) prefix of the prompt
    latency_cold_s: float | None = None
    latency_warm_s: float | None = None


def per_query_cost(profile: QueryProfile, prices: Prices, *, prefix_cached: bool) -> QueryCost:
    """Cost of one query of a mode.

    prefix_cached=False: every prompt token at the input price, cold latency.
    prefix_cached=True: the shared context prefix at the cached-input price (every query hits the
    cache: the steady state), the rest at the input price, warm latency.
    """
    cached = min(profile.cacheable_tokens, profile.prompt_tokens) if prefix_cached else 0.0
    input_usd = (profile.prompt_tokens - cached) * prices.input_per_mtok / _MILLION
    cached_usd = cached * prices.cached_input_per_mtok / _MILLION
    output_usd = profile.completion_tokens * prices.output_per_mtok / _MILLION
    latency = profile.latency_warm_s if prefix_cached else profile.latency_cold_s
    compute = 0.0
    parts = [
        f"{profile.prompt_tokens - cached:.1f} prompt tokens at the input price",
        f"{profile.completion_tokens:.1f} completion tokens at the output price",
    ]
    if prefix_cached:
        parts.insert(1, f"{cached:.1f} cached prefix tokens at the cached-input price")
    if prices.serving_hardware is not None:
        if latency is None:
            raise ValueError("serving_hardware is set but the mode has no measured latency")
        compute = latency / _HOUR_S * prices.hourly(prices.serving_hardware)
        which = "warm (prefix cached)" if prefix_cached else "cold (no prefix cache)"
        parts.append(f"{which} latency {latency:.3f} s at the {prices.serving_hardware}-hour price")
    head = "prefix caching: " if prefix_cached else "no prefix caching: "
    return QueryCost(
        usd=input_usd + cached_usd + output_usd + compute,
        input_usd=input_usd,
        cached_input_usd=cached_usd,
        output_usd=output_usd,
        compute_usd=compute,
        prefix_cached=prefix_cached,
        latency_s=latency,
        assumption=head + "; ".join(parts),
    )


def break_even_queries(
    one_time_usd: float,
    adapter_per_query_usd: float,
    icl_per_query_usd: float,
    *,
    reference_one_time_usd: float = 0.0,
) -> int | None:
    """Smallest n from which the adapter's total (one_time + n * a) is at most the reference's
    (reference_one_time + n * i; ICL's has no one-time cost).

    n* = ceil((one_time - reference_one_time) / (i - a)), at least 0; None ("never") when the
    adapter is not cheaper per query, unless it is as cheap per query and costs no more once.
    """
    if one_time_usd < 0 or reference_one_time_usd < 0:
        raise ValueError("one-time cost must be >= 0")
    extra = one_time_usd - reference_one_time_usd
    saving = icl_per_query_usd - adapter_per_query_usd
    if saving <= 0:
        return 0 if saving == 0 and extra <= 0 else None
    ratio = extra / saving
    if not math.isfinite(ratio):
        return None
    return max(0, math.ceil(ratio - _CEIL_SLACK * max(1.0, abs(ratio))))


def cost_per_correct(per_query_usd: float, accuracy: float | None) -> float | None:
    """Cost per query / accuracy: the price of one right answer; None at 0% (or no) accuracy."""
    if accuracy is None or accuracy <= 0:
        return None
    return per_query_usd / accuracy


def cumulative_cost(one_time_usd: float, per_query_usd: float, n_queries: float) -> float:
    """Total cost after `n_queries` queries."""
    return one_time_usd + per_query_usd * n_queries


def curve_plan(
    break_evens: list[int | None], *, default_n: int = 10_000
) -> tuple[int, Literal["linear", "log"]]:
    """The query range and x scale of a cumulative cost plot.

    Up to twice the largest finite break-even (at least 10; `default_n` when there is none);
    a log axis when the break-evens (or the range) span more than two decades, so every
    crossing stays visible.
    """
    finite = [n for n in break_evens if n is not None and n > 0]
    if not finite:
        return default_n, "linear"
    n_max = max(10, 2 * max(finite))
    return n_max, ("log" if n_max / min(finite) > 100 else "linear")
