"""Statistics over scored items: accuracy with Wilson intervals, paired tests, tokens, latency.

Accuracy intervals are 95% Wilson score intervals (scipy's `BinomTestResult.proportion_ci`), which
behave at 0 and 100% where the normal approximation does not. The paired comparison of an adapter
with `icl` (and of an adapter+rag mode with `icl`, `rag` and its adapter alone, so it shows whether
the two together beat either) uses the exact McNemar test: on the items both modes scored, only
the discordant pairs carry information, and under the null hypothesis each is equally likely to
go either way, so the p-value is a two-sided binomial test of `only_mode` successes in
`only_mode + only_reference` trials at p = 0.5.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
from pydantic import BaseModel
from scipy.stats import binomtest

from service.evaluate.scoring import METRICS, ItemResult, ModeKind

CONFIDENCE = 0.95
REFERENCE_MODE_KIND: ModeKind = "icl"
UNCATEGORIZED = "(none)"


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
    k, n = sum(bool(v) for v in values), len(values)
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


def paired_test(
    results_mode: Sequence[ItemResult], results_ref: Sequence[ItemResult], metric: str = "correct"
) -> PairedTest:
    """McNemar test of one mode against a reference on the items both have a `metric` for."""
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
    )


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
    """Accuracy per mode and per category for every metric, each adapter against icl, usage.

    Modes keep the order they first appear in `results`. Failed items count as wrong. Paired
    tests: each adapter and adapter+rag mode against the first `icl` mode, if there is one; each
    adapter+rag mode also against the first `rag` mode and against the adapter mode of the same
    model (the adapter alone), where present.
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
    for mode, kind in kinds.items():
        if kind not in ("adapter", "adapter+rag"):
            continue
        references = [icl]
        if kind == "adapter+rag":
            model = by_mode[mode][0].model
            alone = next(
                (m for m, k in kinds.items() if k == "adapter" and by_mode[m][0].model == model),
                None,
            )
            references += [rag, alone]
        for reference in references:
            if reference is None:
                continue
            for m in metrics:
                test = paired_test(by_mode[mode], by_mode[reference], m)
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
    )


def _has(r: ItemResult, metric: str) -> bool:
    return metric == "correct" or metric in r.scores


def _flag(r: ItemResult, metric: str) -> bool:
    return r.correct if metric == "correct" else r.scores[metric]
