"""Statistics over scored items: accuracy with Wilson intervals, paired tests, tokens, latency.

Accuracy intervals are 95% Wilson score intervals (scipy's `BinomTestResult.proportion_ci`), which
behave at 0 and 100% where the normal approximation does not. Paired comparisons (each adapter and
adapter+rag mode with `icl` and `rag`, an adapter+rag mode with its adapter alone, and every mode
with the most accurate one) use the exact McNemar test: on the items both modes scored, only the
discordant pairs carry information, and under the null hypothesis each is equally likely to go
either way, so the p-value is a two-sided binomial test of `only_mode` successes in
`only_mode + only_reference` trials at p = 0.5. The difference of the two accuracies on those
items carries Newcombe's hybrid score interval for paired proportions (Newcombe 1998, Stat. Med.
17:2635, method 10): the two Wilson intervals combined with the pairs' correlation, which stays
inside [-1, 1] and does not collapse to a point when there are few discordant pairs.

`quality_verdict` reads a paired test as a decision: significantly better or worse (McNemar
p < alpha), otherwise within a stated margin (the interval's lower end at least -margin) or not
shown to be within it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Literal

import numpy as np
from pydantic import BaseModel
from scipy.stats import binomtest

from service.evaluate.scoring import METRICS, ItemResult, ModeKind

CONFIDENCE = 0.95
REFERENCE_MODE_KIND: ModeKind = "icl"
UNCATEGORIZED = "(none)"
DIFFERENCE_CI_METHOD = "Newcombe hybrid score interval for paired proportions (method 10)"
Verdict = Literal["better", "within_margin", "not_shown_within_margin", "worse", "unknown"]


class Accuracy(BaseModel):
    """k correct of n, with a two-sided Wilson score interval; all None when n is 0."""

    correct: int
    n: int
    accuracy: float | None
    ci_low: float | None
    ci_high: float | None
    confidence: float = CONFIDENCE


class PairedTest(BaseModel):
    """Exact McNemar test of `mode` against `reference` on the items both scored."""

    mode: str
    reference: str
    metric: str
    n: int  # items scored under both modes
    both_correct: int
    only_mode: int  # mode right, reference wrong
    only_reference: int  # reference right, mode wrong
    both_wrong: int
    accuracy_mode: float | None
    accuracy_reference: float | None
    difference: float | None  # accuracy_mode - accuracy_reference
    p_value: float
    test: str = "exact McNemar (two-sided binomial test on discordant pairs, p=0.5)"
    # The difference's interval (None when n is 0; absent from reports stored before it existed).
    ci_low: float | None = None
    ci_high: float | None = None
    confidence: float = CONFIDENCE
    ci_method: str = DIFFERENCE_CI_METHOD


class ModeUsage(BaseModel):
    """Tokens and latency per query of one mode (means over its items)."""

    mode: str
    mode_kind: ModeKind
    n: int
    errors: int
    mean_prompt_tokens: float
    mean_completion_tokens: float
    mean_cacheable_tokens: float
    mean_scoring_tokens: float
    latency_p50_s: float | None
    latency_p95_s: float | None
    latency_mean_s: float | None


class EvaluationStats(BaseModel):
    """Everything `compute_stats` derives from a list of results."""

    modes: list[str]
    mode_kinds: dict[str, ModeKind]
    metrics: list[str]  # "correct" (primary) plus every metric some result has
    accuracy: dict[str, dict[str, Accuracy]]  # mode -> metric -> accuracy
    by_category: dict[str, dict[str, dict[str, Accuracy]]]  # mode -> category -> metric -> acc.
    paired: list[PairedTest]
    usage: dict[str, ModeUsage]
    best_mode: str | None  # the most accurate mode on the primary metric (the first on ties)


def wilson_interval(
    correct: int, n: int, confidence: float = CONFIDENCE
) -> tuple[float, float] | None:
    """The Wilson score interval for `correct` successes in `n` trials (None when n is 0)."""
    if not 0 <= correct <= n:
        raise ValueError(f"need 0 <= correct <= n, got {correct} of {n}")
    if n == 0:
        return None
    ci = binomtest(correct, n).proportion_ci(confidence_level=confidence, method="wilson")
    return float(ci.low), float(ci.high)


def accuracy(flags: Iterable[bool], confidence: float = CONFIDENCE) -> Accuracy:
    """Accuracy of a sequence of correct/incorrect flags, with its Wilson interval."""
    values = list(flags)
    return accuracy_of(sum(bool(v) for v in values), len(values), confidence)


def accuracy_of(k: int, n: int, confidence: float = CONFIDENCE) -> Accuracy:
    """`k` correct of `n`, with its Wilson interval (all None when n is 0)."""
    interval = wilson_interval(k, n, confidence)
    return Accuracy(
        correct=k,
        n=n,
        accuracy=(k / n) if n else None,
        ci_low=interval[0] if interval else None,
        ci_high=interval[1] if interval else None,
        confidence=confidence,
    )


def mcnemar_exact(only_a: int, only_b: int) -> float:
    """Two-sided exact McNemar p-value from the discordant counts (1.0 when there are none)."""
    if only_a < 0 or only_b < 0:
        raise ValueError("discordant counts must be non-negative")
    if only_a + only_b == 0:
        return 1.0
    return float(binomtest(only_a, only_a + only_b, 0.5, alternative="two-sided").pvalue)


def paired_difference_interval(
    both_correct: int,
    only_mode: int,
    only_reference: int,
    both_wrong: int,
    confidence: float = CONFIDENCE,
) -> tuple[float, float] | None:
    """Interval for accuracy(mode) - accuracy(reference) on paired items (None when n is 0).

    Newcombe's method 10: with p1 = (both + only_mode) / n, p2 = (both + only_reference) / n and
    their Wilson intervals [l1, u1], [l2, u2],
    low = D - sqrt((p1 - l1)^2 - 2 phi (p1 - l1)(u2 - p2) + (u2 - p2)^2),
    high = D + sqrt((p2 - l2)^2 - 2 phi (p2 - l2)(u1 - p1) + (u1 - p1)^2), where D = p1 - p2 and
    phi is the correlation of the pairs, with Newcombe's continuity correction (A = ad - bc;
    phi = (A - n/2) / sqrt(margins) when A > n/2, 0 when 0 <= A <= n/2, A / sqrt(margins) when
    A < 0; 0 when a margin is empty).
    """
    counts = (both_correct, only_mode, only_reference, both_wrong)
    if any(c < 0 for c in counts):
        raise ValueError(f"paired counts must be non-negative, got {counts}")
    n = sum(counts)
    if n == 0:
        return None
    right_mode, right_ref = both_correct + only_mode, both_correct + only_reference
    p1, p2 = right_mode / n, right_ref / n
    l1, u1 = wilson_interval(right_mode, n, confidence)  # type: ignore[misc]
    l2, u2 = wilson_interval(right_ref, n, confidence)  # type: ignore[misc]
    margins = right_mode * (n - right_mode) * right_ref * (n - right_ref)
    phi = 0.0
    if margins > 0:
        a = both_correct * both_wrong - only_mode * only_reference
        if a > n / 2:
            phi = (a - n / 2) / math.sqrt(margins)
        elif a < 0:
            phi = a / math.sqrt(margins)
    d = p1 - p2
    low = d - math.sqrt(max(0.0, (p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2))
    high = d + math.sqrt(
        max(0.0, (p2 - l2) ** 2 - 2 * phi * (p2 - l2) * (u1 - p1) + (u1 - p1) ** 2)
    )
    return max(-1.0, low), min(1.0, high)


def paired_test(
    results_mode: Sequence[ItemResult],
    results_ref: Sequence[ItemResult],
    metric: str = "correct",
    confidence: float = CONFIDENCE,
) -> PairedTest:
    """McNemar test of one mode against a reference on the items both have a `metric` for, with
    the interval of the accuracy difference."""
    if not results_mode or not results_ref:
        raise ValueError("both modes need results")
    ref = {r.item_id: r for r in results_ref if _has(r, metric)}
    pairs = [
        (_flag(r, metric), _flag(ref[r.item_id], metric))
        for r in results_mode
        if _has(r, metric) and r.item_id in ref
    ]
    both = sum(a and b for a, b in pairs)
    only_mode = sum(a and not b for a, b in pairs)
    only_ref = sum(b and not a for a, b in pairs)
    n = len(pairs)
    acc_m = (both + only_mode) / n if n else None
    acc_r = (both + only_ref) / n if n else None
    interval = paired_difference_interval(
        both, only_mode, only_ref, n - both - only_mode - only_ref, confidence
    )
    return PairedTest(
        mode=results_mode[0].mode,
        reference=results_ref[0].mode,
        metric=metric,
        n=n,
        both_correct=both,
        only_mode=only_mode,
        only_reference=only_ref,
        both_wrong=n - both - only_mode - only_ref,
        accuracy_mode=acc_m,
        accuracy_reference=acc_r,
        difference=(only_mode - only_ref) / n if n else None,
        p_value=mcnemar_exact(only_mode, only_ref),
        ci_low=interval[0] if interval else None,
        ci_high=interval[1] if interval else None,
        confidence=confidence,
    )


def reversed_test(test: PairedTest) -> PairedTest:
    """The same paired test read the other way round: `reference` against `mode`."""
    return test.model_copy(
        update={
            "mode": test.reference,
            "reference": test.mode,
            "only_mode": test.only_reference,
            "only_reference": test.only_mode,
            "accuracy_mode": test.accuracy_reference,
            "accuracy_reference": test.accuracy_mode,
            "difference": None if test.difference is None else -test.difference,
            "ci_low": None if test.ci_high is None else -test.ci_high,
            "ci_high": None if test.ci_low is None else -test.ci_low,
        }
    )


def quality_verdict(test: PairedTest | None, *, margin: float, alpha: float) -> Verdict:
    """What a paired test says about `mode` against `reference`.

    worse / better: the exact McNemar p-value is below `alpha` and the difference is negative /
    positive. Otherwise within_margin when the difference's interval lies above -`margin`, and
    not_shown_within_margin when it reaches below (too few items to rule out a larger loss).
    unknown: no test, or no shared items.
    """
    if test is None or not test.n or test.difference is None:
        return "unknown"
    if test.p_value < alpha and test.difference != 0:
        return "worse" if test.difference < 0 else "better"
    if test.ci_low is not None and test.ci_low >= -margin:
        return "within_margin"
    return "not_shown_within_margin"


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0-100, linear interpolation), None for no values."""
    return float(np.percentile(np.asarray(values, dtype=float), q)) if values else None


def mode_usage(results: Sequence[ItemResult]) -> ModeUsage:
    """Mean tokens per query and latency percentiles of one mode's results.

    Failed items (vLLM refused them) are left out of the token and latency figures, since they
    did not run; `errors` counts them.
    """
    if not results:
        raise ValueError("no results")
    ok = [r for r in results if r.error is None]
    lat = [r.latency_s for r in ok]

    def mean(values: list[float]) -> float:
        return float(np.mean(values)) if values else 0.0

    return ModeUsage(
        mode=results[0].mode,
        mode_kind=results[0].mode_kind,
        n=len(results),
        errors=len(results) - len(ok),
        mean_prompt_tokens=mean([r.prompt_tokens for r in ok]),
        mean_completion_tokens=mean([r.completion_tokens for r in ok]),
        mean_cacheable_tokens=mean([r.cacheable_tokens for r in ok]),
        mean_scoring_tokens=mean([r.scoring_tokens for r in ok]),
        latency_p50_s=percentile(lat, 50),
        latency_p95_s=percentile(lat, 95),
        latency_mean_s=float(np.mean(lat)) if lat else None,
    )


def compute_stats(results: Sequence[ItemResult], confidence: float = CONFIDENCE) -> EvaluationStats:
    """Accuracy per mode and per category for every metric, paired tests, usage.

    Modes keep the order they first appear in `results`. Failed items count as wrong. Paired
    tests, for every metric: each adapter and adapter+rag mode against the first `icl` and the
    first `rag` mode, where present; each adapter+rag mode also against the adapter mode of the
    same model (the adapter alone); then every other mode against the most accurate one
    (`best_mode`, on the primary metric), unless that pair was already tested either way round.
    """
    by_mode: dict[str, list[ItemResult]] = {}
    for r in results:
        by_mode.setdefault(r.mode, []).append(r)
    kinds = {m: rs[0].mode_kind for m, rs in by_mode.items()}
    present = {k for r in results for k in r.scores}
    metrics = ["correct"] + [m for m in METRICS if m in present]

    acc: dict[str, dict[str, Accuracy]] = {}
    cats: dict[str, dict[str, dict[str, Accuracy]]] = {}
    for mode, rs in by_mode.items():
        acc[mode] = {
            m: accuracy((_flag(r, m) for r in rs if _has(r, m)), confidence) for m in metrics
        }
        groups: dict[str, list[ItemResult]] = {}
        for r in rs:
            groups.setdefault(r.category or UNCATEGORIZED, []).append(r)
        cats[mode] = {
            c: {m: accuracy((_flag(r, m) for r in g if _has(r, m)), confidence) for m in metrics}
            for c, g in sorted(groups.items())
        }

    paired: list[PairedTest] = []
    icl = next((m for m, k in kinds.items() if k == REFERENCE_MODE_KIND), None)
    rag = next((m for m, k in kinds.items() if k == "rag"), None)
    pairs: list[tuple[str, str]] = []
    for mode, kind in kinds.items():
        if kind not in ("adapter", "adapter+rag"):
            continue
        references = [icl, rag]
        if kind == "adapter+rag":
            model = by_mode[mode][0].model
            alone = next(
                (m for m, k in kinds.items() if k == "adapter" and by_mode[m][0].model == model),
                None,
            )
            references.append(alone)
        pairs += [(mode, r) for r in references if r is not None]
    best = max(by_mode, key=lambda m: acc[m]["correct"].accuracy or 0.0, default=None)
    for mode in by_mode:
        if mode != best and best is not None and not {(mode, best), (best, mode)} & set(pairs):
            pairs.append((mode, best))
    for mode, reference in pairs:
        for m in metrics:
            test = paired_test(by_mode[mode], by_mode[reference], m, confidence)
            if test.n:
                paired.append(test)

    return EvaluationStats(
        modes=list(by_mode),
        mode_kinds=kinds,
        metrics=metrics,
        accuracy=acc,
        by_category=cats,
        paired=paired,
        usage={m: mode_usage(rs) for m, rs in by_mode.items()},
        best_mode=best,
    )


def _has(r: ItemResult, metric: str) -> bool:
    return metric == "correct" or metric in r.scores


def _flag(r: ItemResult, metric: str) -> bool:
    return r.correct if metric == "correct" else r.scores[metric]
