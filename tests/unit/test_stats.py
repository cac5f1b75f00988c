"""Statistics against published and hand-computed values."""

from __future__ import annotations

import pytest

from service.evaluate.scoring import ItemResult, ModeKind
from service.evaluate.stats import (
    accuracy,
    compute_stats,
    mcnemar_exact,
    paired_test,
    percentile,
    wilson_interval,
)


# Newcombe (1998), "Two-sided confidence intervals for the single proportion", Table I, method 3.
@pytest.mark.parametrize(
    ("k", "n", "low", "high"),
    [
        (81, 263, 0.2553, 0.3662),
        (15, 148, 0.0624, 0.1605),
        (0, 20, 0.0, 0.1611),
        (1, 29, 0.0061, 0.1718),
    ],
)
def test_wilson_interval_matches_newcombe(k: int, n: int, low: float, high: float) -> None:
    lo, hi = wilson_interval(k, n)  # type: ignore[misc]
    assert lo == pytest.approx(low, abs=5e-5) and hi == pytest.approx(high, abs=5e-5)


def test_wilson_edge_cases() -> None:
    assert wilson_interval(0, 0) is None
    lo, hi = wilson_interval(10, 10)  # type: ignore[misc]
    assert hi == pytest.approx(1.0) and lo == pytest.approx(0.7225, abs=5e-5)
    with pytest.raises(ValueError):
        wilson_interval(3, 2)
    acc = accuracy([True, True, False, True, True, True, True, True, False, True])
    assert (acc.correct, acc.n, acc.accuracy) == (8, 10, 0.8)
    assert acc.ci_low == pytest.approx(0.4902, abs=5e-5)
    assert acc.ci_high == pytest.approx(0.9433, abs=5e-5)
    empty = accuracy([])
    assert empty.n == 0 and empty.accuracy is None and empty.ci_low is None


def test_exact_mcnemar_by_hand() -> None:
    # 10 vs 2 discordant: p = 2 * (C(12,0) + C(12,1) + C(12,2)) / 2^12 = 158 / 4096
    assert mcnemar_exact(10, 2) == pytest.approx(158 / 4096)
    assert mcnemar_exact(2, 10) == pytest.approx(158 / 4096)
    assert mcnemar_exact(0, 5) == pytest.approx(2 / 32)
    assert mcnemar_exact(3, 3) == pytest.approx(1.0)
    assert mcnemar_exact(0, 0) == 1.0


def result(
    mode: str,
    kind: ModeKind,
    item: str,
    correct: bool,
    *,
    category: str | None = None,
    mc: bool = True,
    latency: float = 1.0,
    prompt: int = 10,
    completion: int = 2,
    cacheable: int = 0,
    error: str | None = None,
    norm: bool | None = None,
) -> ItemResult:
    scores = (
        {"mc_sum": correct, "mc_norm": correct if norm is None else norm}
        if mc
        else {"exact": correct, "contains": correct}
    )
    return ItemResult(
        item_id=item,
        mode=mode,
        mode_kind=kind,
        model="m",
        category=category,
        kind="multiple_choice" if mc else "generation",
        correct=correct,
        scores=scores,
        answer="a",
        prompt_tokens=prompt,
        completion_tokens=completion,
        cacheable_tokens=cacheable,
        latency_s=latency,
        error=error,
    )


def test_paired_test_counts_discordant_pairs_on_shared_items() -> None:
    icl = [result("icl", "icl", f"i{j}", ok) for j, ok in enumerate([1, 1, 1, 0, 0, 1, 0])]
    ada = [result("ft", "adapter", f"i{j}", ok) for j, ok in enumerate([1, 0, 1, 1, 1, 1, 0])]
    ada.append(result("ft", "adapter", "only-in-adapter", True))
    t = paired_test(ada, icl)
    assert (t.n, t.both_correct, t.only_mode, t.only_reference, t.both_wrong) == (7, 3, 2, 1, 1)
    assert t.mode == "ft" and t.reference == "icl"
    assert t.accuracy_mode == pytest.approx(5 / 7) and t.accuracy_reference == pytest.approx(4 / 7)
    assert t.difference == pytest.approx(1 / 7)
    assert t.p_value == pytest.approx(1.0)  # 2 vs 1 discordant: binomial p = 1


def test_percentile_is_linear_interpolation() -> None:
    values = [float(v) for v in range(1, 11)]
    assert percentile(values, 50) == pytest.approx(5.5)
    assert percentile(values, 95) == pytest.approx(9.55)
    assert percentile([], 50) is None


def test_compute_stats_per_mode_category_usage_and_pairs() -> None:
    rs: list[ItemResult] = []
    for j in range(10):  # icl: 8/10 right; adapter: right on all but items 0 and 1
        cat = "rev" if j < 5 else "syl"
        rs.append(
            result(
                "icl",
                "icl",
                f"i{j}",
                j not in (3, 7),
                category=cat,
                latency=float(j + 1),
                prompt=1000,
                cacheable=900,
                norm=True,
            )
        )
        rs.append(
            result("ft", "adapter", f"i{j}", j not in (0, 1), category=cat, latency=0.5, prompt=20)
        )
    rs.append(result("base", "base", "i0", False, error="too long", prompt=0, latency=0.0))
    rs.append(result("base", "base", "i1", True, prompt=30, latency=2.0))
    stats = compute_stats(rs)

    assert stats.modes == ["icl", "ft", "base"]
    assert stats.metrics == ["correct", "mc_sum", "mc_norm"]
    icl = stats.accuracy["icl"]
    assert (icl["correct"].correct, icl["correct"].n) == (8, 10)
    assert icl["mc_norm"].correct == 10
    assert stats.by_category["icl"]["rev"]["correct"].correct == 4
    assert stats.by_category["ft"]["rev"]["correct"].correct == 3
    assert stats.by_category["ft"]["syl"]["correct"].correct == 5
    # the failed base item counts as wrong but not in tokens and latency
    assert stats.accuracy["base"]["correct"].correct == 1
    assert stats.accuracy["base"]["correct"].n == 2
    assert stats.usage["base"].errors == 1
    assert stats.usage["base"].mean_prompt_tokens == 30
    assert stats.usage["icl"].latency_p50_s == pytest.approx(5.5)
    assert stats.usage["icl"].latency_p95_s == pytest.approx(9.55)
    assert stats.usage["icl"].mean_cacheable_tokens == 900
    # one paired test per metric, only adapters against icl
    assert [(p.mode, p.metric) for p in stats.paired] == [
        ("ft", "correct"),
        ("ft", "mc_sum"),
        ("ft", "mc_norm"),
    ]
    primary = stats.paired[0]
    assert (primary.only_mode, primary.only_reference) == (2, 2)


def test_no_icl_means_no_paired_tests() -> None:
    stats = compute_stats(
        [result("ft", "adapter", "i0", True), result("base", "base", "i0", False)]
    )
    assert stats.paired == []
