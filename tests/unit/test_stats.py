"""Statistics against published and hand-computed values."""

from __future__ import annotations

import pytest

from service.evaluate.scoring import ItemResult, ModeKind
from service.evaluate.stats import (
    accuracy,
    compute_stats,
    mcnemar_exact,
    paired_difference_interval,
    paired_test,
    percentile,
    quality_verdict,
    reversed_test,
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


# Fagerland, Lydersen & Laake, "Statistical Analysis of Contingency Tables" (2017), ch. 8:
# complete response before and after consolidation therapy (Cavo et al. 2012), 59 / 6 / 16 / 80;
# the Newcombe square-and-add interval is -0.0621 (-0.1186 to -0.0046).
def test_paired_difference_interval_matches_the_published_example() -> None:
    lo, hi = paired_difference_interval(59, 6, 16, 80)  # type: ignore[misc]
    assert lo == pytest.approx(-0.1186, abs=5e-5) and hi == pytest.approx(-0.0046, abs=5e-5)


def test_paired_difference_interval_by_hand() -> None:
    # 10 pairs: 5 both right, 3 only the mode, 0 only the reference, 2 both wrong.
    # p1 = 8/10, Wilson [0.490162, 0.943318]; p2 = 5/10, Wilson [0.236593, 0.763407].
    # A = 5*2 - 3*0 = 10 > n/2 = 5, so phi = (10 - 5) / sqrt(8*2*5*5) = 0.25. D = 0.3;
    # low = 0.3 - sqrt(0.309838^2 - 2*0.25*0.309838*0.263407 + 0.263407^2) = 0.3 - 0.352953
    # high = 0.3 + sqrt(0.263407^2 - 2*0.25*0.263407*0.143318 + 0.143318^2) = 0.3 + 0.266548
    lo, hi = paired_difference_interval(5, 3, 0, 2)  # type: ignore[misc]
    assert lo == pytest.approx(-0.052953, abs=2e-6) and hi == pytest.approx(0.566548, abs=2e-6)
    # Mode right on 11 of 60, reference on all 60 (the reference margin is empty: phi = 0):
    # Wilson 11/60 = [0.105578, 0.299197], 60/60 = [0.939828, 1]; D = -0.816667;
    # low = D - (0.183333 - 0.105578); high = D + sqrt(0.060172^2 + 0.115864^2)
    lo, hi = paired_difference_interval(11, 0, 49, 0)  # type: ignore[misc]
    assert lo == pytest.approx(-0.894422, abs=2e-6) and hi == pytest.approx(-0.686110, abs=2e-6)
    # Swapping the modes mirrors the interval.
    lo2, hi2 = paired_difference_interval(11, 49, 0, 0)  # type: ignore[misc]
    assert (lo2, hi2) == (pytest.approx(-hi), pytest.approx(-lo))
    # No discordant pairs at all: the interval still has width (Wilson 10/10 = [0.7225, 1]).
    lo, hi = paired_difference_interval(10, 0, 0, 0)  # type: ignore[misc]
    assert hi == pytest.approx(1 - 0.722467, abs=2e-6) and lo == pytest.approx(-hi)
    assert paired_difference_interval(0, 0, 0, 0) is None
    with pytest.raises(ValueError):
        paired_difference_interval(1, -1, 0, 0)


def test_paired_test_carries_the_interval_and_reads_both_ways() -> None:
    mode = [result("ft", "adapter", f"i{j}", ok) for j, ok in enumerate([1] * 8 + [0] * 2)]
    ref = [result("icl", "icl", f"i{j}", ok) for j, ok in enumerate([1] * 5 + [0] * 3 + [1, 0])]
    t = paired_test(mode, ref)
    assert (t.both_correct, t.only_mode, t.only_reference, t.both_wrong) == (5, 3, 1, 1)
    assert (t.ci_low, t.ci_high) == paired_difference_interval(5, 3, 1, 1)
    back = reversed_test(t)
    assert (back.mode, back.reference, back.only_mode, back.only_reference) == ("icl", "ft", 1, 3)
    assert back.difference == pytest.approx(-t.difference)  # type: ignore[operator]
    assert (back.ci_low, back.ci_high) == (-t.ci_high, -t.ci_low)  # type: ignore[operator]
    assert back.p_value == t.p_value and back.accuracy_mode == t.accuracy_reference


def test_quality_verdict() -> None:
    def test(both: int, only_mode: int, only_ref: int, wrong: int) -> object:
        mode, ref = [], []
        flags = [(1, 1)] * both + [(1, 0)] * only_mode + [(0, 1)] * only_ref + [(0, 0)] * wrong
        for j, (a, b) in enumerate(flags):
            mode.append(result("m", "adapter", f"i{j}", bool(a)))
            ref.append(result("r", "icl", f"i{j}", bool(b)))
        return paired_test(mode, ref)

    def verdict(*counts: int, margin: float = 0.05) -> str:
        return quality_verdict(test(*counts), margin=margin, alpha=0.05)  # type: ignore[arg-type]

    assert verdict(11, 0, 49, 0) == "worse"  # p = 2 / 2^49
    assert verdict(11, 49, 0, 0) == "better"
    assert verdict(0, 0, 5, 1) == "not_shown_within_margin"  # p = 2/32 = 0.0625: not below 0.05
    assert verdict(0, 0, 6, 0) == "worse"  # p = 2/64
    assert verdict(159, 1, 1, 39) == "within_margin"  # [-2.0, +2.0] pp
    assert verdict(159, 1, 1, 39, margin=0.01) == "not_shown_within_margin"
    assert verdict(5, 1, 1, 3) == "not_shown_within_margin"  # ten items: too few to tell
    assert quality_verdict(None, margin=0.05, alpha=0.05) == "unknown"


def test_adapters_are_paired_with_rag_too() -> None:
    rs = []
    for j in range(4):
        rs.append(result("rag", "rag", f"i{j}", True))
        rs.append(result("ft", "adapter", f"i{j}", j == 0))
    stats = compute_stats(rs)
    assert stats.best_mode == "rag"
    assert {(p.mode, p.reference) for p in stats.paired} == {("ft", "rag")}  # not twice


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
    # one paired test per metric: the adapter against icl, then base against the most accurate
    # mode (icl, the first of the 8/10 tie), on the two items base has
    assert stats.best_mode == "icl"
    assert [(p.mode, p.reference, p.metric) for p in stats.paired] == [
        ("ft", "icl", "correct"),
        ("ft", "icl", "mc_sum"),
        ("ft", "icl", "mc_norm"),
        ("base", "icl", "correct"),
        ("base", "icl", "mc_sum"),
        ("base", "icl", "mc_norm"),
    ]
    primary = stats.paired[0]
    assert (primary.only_mode, primary.only_reference) == (2, 2)
    base = stats.paired[3]
    assert (base.n, base.both_correct, base.only_reference) == (2, 1, 1)


def test_without_icl_or_rag_only_the_best_mode_is_a_reference() -> None:
    stats = compute_stats(
        [result("ft", "adapter", "i0", True), result("base", "base", "i0", False)]
    )
    assert stats.best_mode == "ft"
    assert [(p.mode, p.reference) for p in stats.paired] == [("base", "ft")] * 3
