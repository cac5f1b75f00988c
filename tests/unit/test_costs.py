"""The cost model on hand-computed cases."""

from __future__ import annotations

import pytest

from service.core.config import Settings
from service.report.costs import (
    AdapterCostInputs,
    Prices,
    QueryProfile,
    break_even_queries,
    cost_per_correct,
    cumulative_cost,
    curve_plan,
    one_time_cost,
    per_query_cost,
    token_cost,
)

PRICES = Prices(
    input_per_mtok=0.10,
    cached_input_per_mtok=0.025,
    output_per_mtok=0.40,
    accelerator_hour=2.50,
    cpu_hour=0.05,
    training_per_mtok=3.0,
)


def test_token_cost() -> None:
    # 0.8M at 0.10 + 0.2M at 0.025 + 0.5M at 0.40
    assert token_cost(1_000_000, 500_000, PRICES, cached_prompt_tokens=200_000) == pytest.approx(
        0.08 + 0.005 + 0.20
    )
    assert token_cost(1_000_000, 0, PRICES) == pytest.approx(0.10)


def test_one_time_cost_adds_teacher_compute_and_training_tokens() -> None:
    inputs = AdapterCostInputs(
        teacher_prompt_tokens=1_000_000,
        teacher_cached_prompt_tokens=200_000,
        teacher_completion_tokens=500_000,
        training_tokens=2_000_000,
        training_wall_s=1800,
        training_hardware="accelerator",
    )
    cost = one_time_cost(inputs, PRICES)
    assert cost.teacher_usd == pytest.approx(0.285)
    assert cost.training_compute_usd == pytest.approx(0.5 * 2.50)
    assert cost.training_tokens_usd == pytest.approx(6.0)
    assert cost.total_usd == pytest.approx(0.285 + 1.25 + 6.0)
    cpu = one_time_cost(AdapterCostInputs(training_wall_s=7200), PRICES)
    assert cpu.total_usd == pytest.approx(2 * 0.05)


def test_per_query_cost_with_and_without_prefix_caching() -> None:
    icl = QueryProfile(
        prompt_tokens=5000,
        completion_tokens=20,
        cacheable_tokens=4900,
        latency_cold_s=18.0,
        latency_warm_s=1.8,
    )
    cold = per_query_cost(icl, PRICES, prefix_cached=False)
    warm = per_query_cost(icl, PRICES, prefix_cached=True)
    assert cold.usd == pytest.approx((5000 * 0.10 + 20 * 0.40) / 1e6)
    assert warm.usd == pytest.approx((100 * 0.10 + 4900 * 0.025 + 20 * 0.40) / 1e6)
    assert cold.compute_usd == 0 and cold.latency_s == 18.0 and warm.latency_s == 1.8
    assert "no prefix caching" in cold.assumption and "cached-input" in warm.assumption
    # self-hosted serving adds latency x hourly price: cold for uncached, warm for cached
    hosted = Prices(**{**PRICES.to_dict(), "serving_hardware": "accelerator"})
    cold_h = per_query_cost(icl, hosted, prefix_cached=False)
    warm_h = per_query_cost(icl, hosted, prefix_cached=True)
    assert cold_h.compute_usd == pytest.approx(18.0 / 3600 * 2.50)
    assert warm_h.compute_usd == pytest.approx(1.8 / 3600 * 2.50)
    assert cold_h.usd == pytest.approx(cold.usd + cold_h.compute_usd)
    assert "latency" in warm_h.assumption
    with pytest.raises(ValueError):
        per_query_cost(QueryProfile(10, 1), hosted, prefix_cached=False)


@pytest.mark.parametrize(
    ("one_time", "adapter", "icl", "expected"),
    [
        (10.0, 0.001, 0.003, 5000),  # 10 / 0.002 exactly
        (1.0, 0.1, 0.4, 4),  # 1 / 0.3 = 3.33 -> 4
        (0.3, 0.2, 0.3, 3),  # 0.3 / 0.09999999999999998 = 3.0000000000000004 -> 3, not 4
        (0.0, 0.1, 0.2, 0),  # nothing to recover
        (5.0, 0.002, 0.002, None),  # same per-query cost: never
        (5.0, 0.003, 0.002, None),  # adapter dearer per query: never
    ],
)
def test_break_even(one_time: float, adapter: float, icl: float, expected: int | None) -> None:
    n = break_even_queries(one_time, adapter, icl)
    assert n == expected
    if n is not None and n > 0:
        # from n on the adapter's total is at most ICL's; one query earlier it is more
        assert cumulative_cost(one_time, adapter, n) <= cumulative_cost(0, icl, n) + 1e-12
        assert cumulative_cost(one_time, adapter, n - 1) > cumulative_cost(0, icl, n - 1)


def test_break_even_refuses_negative_one_time() -> None:
    with pytest.raises(ValueError):
        break_even_queries(-1.0, 0.1, 0.2)
    with pytest.raises(ValueError):
        break_even_queries(1.0, 0.1, 0.2, reference_one_time_usd=-1.0)


@pytest.mark.parametrize(
    ("one_time", "adapter", "reference", "reference_once", "expected"),
    [
        (10.0, 0.001, 0.003, 4.0, 3000),  # (10 - 4) / 0.002
        (5.0, 0.001, 0.003, 5.0, 0),  # the same adapter with and without passages: shared once
        (4.0, 0.001, 0.003, 5.0, 0),  # cheaper once and per query: from the first query
        (5.0, 0.002, 0.002, 5.0, 0),  # the same in every way
        (5.0, 0.002, 0.002, 6.0, 0),  # as cheap per query, cheaper once
        (5.0, 0.003, 0.002, 6.0, None),  # cheaper at first, dearer from query 1,001 on: never
    ],
)
def test_break_even_against_a_reference_with_a_one_time_cost(
    one_time: float, adapter: float, reference: float, reference_once: float, expected: int | None
) -> None:
    n = break_even_queries(one_time, adapter, reference, reference_one_time_usd=reference_once)
    assert n == expected
    if n is not None and n > 0:
        assert (
            cumulative_cost(one_time, adapter, n)
            <= cumulative_cost(reference_once, reference, n) + 1e-12
        )
        assert cumulative_cost(one_time, adapter, n - 1) > cumulative_cost(
            reference_once, reference, n - 1
        )


def test_cost_per_correct_answer() -> None:
    assert cost_per_correct(3.66e-5, 1.0) == pytest.approx(3.66e-5)
    assert cost_per_correct(5.6e-6, 11 / 60) == pytest.approx(3.0545454e-5)  # 5.6e-6 * 60 / 11
    assert cost_per_correct(3.016e-4, 0.55) == pytest.approx(5.4836364e-4)
    assert cost_per_correct(1.0, 0.0) is None and cost_per_correct(1.0, None) is None


def test_curve_plan() -> None:
    assert curve_plan([None, None]) == (10_000, "linear")
    assert curve_plan([50, 120, None]) == (240, "linear")
    assert curve_plan([3]) == (10, "linear")
    assert curve_plan([100, 50_000]) == (100_000, "log")


def test_prices_from_settings_and_validation() -> None:
    settings = Settings(price_input_per_mtok=1.0, price_cpu_hour=0.2)
    prices = Prices.from_settings(settings, output_per_mtok=2.0, cached_input_per_mtok=None)
    assert (prices.input_per_mtok, prices.output_per_mtok, prices.cpu_hour) == (1.0, 2.0, 0.2)
    assert prices.cached_input_per_mtok == settings.price_cached_input_per_mtok
    assert Prices() == Prices.from_settings(Settings())  # documented defaults agree
    with pytest.raises(ValueError):
        Prices(input_per_mtok=-1)
    with pytest.raises(ValueError):
        AdapterCostInputs(teacher_prompt_tokens=5, teacher_cached_prompt_tokens=6)
