"""Build the evaluation report: one JSON-serialisable dict of every number the report shows.

`build_report` is the only place numbers are computed; the renderers (`markdown.py`, `html.py`,
`plot.py`) only format what the dict holds, so the JSON, Markdown, HTML and plot always agree.

Quality first. Every mode is compared with the most accurate one (`best`) by an exact McNemar
test on the primary metric, with the paired difference's interval. A mode is significantly less
accurate at p < alpha (alpha = 1 - confidence, 0.05 by default), and at least as accurate when
the interval's lower end is at least -margin (5 percentage points by default). The report
recommends the cheapest mode per query among the best and those within the margin of it, and
names beside it the cheapest mode that is merely not significantly less accurate (with how much
less accurate it may be). A break-even row of a mode that is significantly less accurate than its
reference gives no break-even: a cheaper wrong answer is no saving.

Schema `docadapt.evaluation-report/2` (fields added to /1; renderers accept /1 reports, whose
missing fields show as "n/a" or not at all):
- `recommendation`: {metric, confidence, alpha, margin, test, interval, best, best_accuracy,
  modes: {mode: {kind, accuracy, correct, n, verdict (against best: best | better |
  within_margin | not_shown_within_margin | worse | unknown), difference, ci_low, ci_high,
  p_value, candidate (not worse), as_accurate (best, better or within_margin), per_query_usd,
  per_correct_usd (each {uncached, cached}), one_time_usd}}, candidates, as_accurate,
  less_accurate, recommended: {uncached, cached} (the cheapest of as_accurate), payback:
  {uncached, cached} (the recommended mode's break-even against the cheapest as accurate mode
  without a one-time cost, or None), cheapest_not_worse: {uncached, cached} (the cheapest of
  candidates), alternative_break_even: {uncached, cached} (that mode against the recommended
  one, when they differ), lines (the summary's sentences)}.
- `paired_tests[*]`: `ci_low`, `ci_high`, `confidence`, `ci_method` (the difference's interval)
  and `verdict` (`mode` against `reference`, as above).
- `per_query_cost[mode][uncached|cached].usd_per_correct`: cost per query / accuracy (None at 0%).
- `break_even[*]`: rows for each adapter and adapter+rag mode against icl, rag and (an adapter)
  its own adapter+rag, each without and with prefix caching. New: `adapter_kind`,
  `reference_kind`, `reference_per_query_usd` (replaces /1's `icl_per_query_usd`),
  `reference_one_time_usd`, `adapter_per_correct_usd`, `reference_per_correct_usd`, `quality`
  ({verdict, accuracy_mode, accuracy_reference, difference, ci_low, ci_high, confidence,
  p_value, n, alpha, margin, text}), `cost_n_queries` and `cost_status` (the cost arithmetic
  alone), `verdict` (a sentence); `n_queries` is None and `status` "less_accurate" where the mode
  is significantly less accurate than the reference, else they are the cost's; `assumption` is
  now "without/with prefix caching" (the reference is its own column).
- `cost_curve.lines[*]`: `accuracy`, `usd_per_correct`, `less_accurate` (significantly less
  accurate than the best mode: drawn dashed); base is drawn too. `cost_curve.best`, `.alpha`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from service.evaluate.scoring import METRIC_LABELS, ItemResult, LatencyProbe
from service.evaluate.stats import (
    CONFIDENCE,
    DIFFERENCE_CI_METHOD,
    EvaluationStats,
    ModeUsage,
    PairedTest,
    compute_stats,
    quality_verdict,
    reversed_test,
)
from service.report.costs import (
    PRICE_DESCRIPTIONS,
    AdapterCostInputs,
    Prices,
    QueryProfile,
    break_even_queries,
    cost_per_correct,
    curve_plan,
    one_time_cost,
    per_query_cost,
)
from service.report.formatting import CACHING_LABEL, KEYS, quality_text, row_verdict
from service.report.notes import against_rag, standing_notes
from service.report.recommend import recommend, recommendation_lines

REPORT_SCHEMA = "docadapt.evaluation-report/2"
# Within this many percentage points (as a fraction) a mode counts as as accurate as another.
QUALITY_MARGIN = 0.05
# Mode kinds that pay an adapter's one-time cost: the adapter alone, and with retrieval.
TRAINED_KINDS = ("adapter", "adapter+rag")


def build_report(
    results: Sequence[ItemResult],
    *,
    prices: Prices,
    adapters: Mapping[str, AdapterCostInputs] | None = None,
    latency: Mapping[str, LatencyProbe] | None = None,
    meta: Mapping[str, Any] | None = None,
    knowledge: Mapping[str, Mapping[str, Any]] | None = None,
    confidence: float = CONFIDENCE,
    margin: float = QUALITY_MARGIN,
) -> dict[str, Any]:
    """The full report of an evaluation, as plain JSON types.

    `results`: every item under every mode (from `Scorer.score`). `adapters`: the cost records of
    each adapter and adapter+rag mode, keyed by mode name (a missing one leaves its one-time cost
    and break-even unknown); an adapter+rag mode carries its adapter's records, and is priced per
    query from its own measured prompts (the retrieved passages, no shared prefix), like rag.
    `latency`: cold/warm probes per mode name (`Scorer.probe_latency`); without one, a mode's cold
    and warm latency both fall back to its median item latency under the evaluation's load.
    `meta`: passed through (ids, names, dates). `knowledge`: each adapter mode's knowledge check
    from its training (`service.evaluate.probes.knowledge_check`), shown beside the results.
    `confidence`: of every interval; significance is tested at alpha = 1 - confidence. `margin`:
    how far below a reference (a fraction: 0.05 is 5 percentage points) a mode's accuracy may be
    and still count as as accurate, judged by the paired difference's interval.
    """
    if not results:
        raise ValueError("no results to report on")
    if not 0 <= margin < 1:
        raise ValueError(f"margin must be in [0, 1), got {margin}")
    stats = compute_stats(results, confidence)
    notes: list[str] = []
    accuracy = {m: stats.accuracy[m]["correct"].accuracy for m in stats.modes}
    usage, profiles = _usage(stats, latency or {}, notes)
    per_query = _per_query(profiles, prices, accuracy)
    kinds = stats.mode_kinds
    adapter_modes = [m for m in stats.modes if kinds[m] in TRAINED_KINDS]
    one_time = _one_time(adapter_modes, adapters or {}, prices, notes)
    judge = _Judge(stats, accuracy, one_time, confidence, margin)
    if judge.icl is None:
        notes.append("No icl mode was evaluated, so there is no break-even against ICL.")
    break_even = _break_even(results, adapter_modes, per_query, judge)
    recommendation = recommend(
        stats.modes, kinds, stats.best_mode, accuracy, stats, per_query, judge.once, judge.quality
    )
    recommendation |= {"metric": "correct", "confidence": confidence, "alpha": judge.alpha}
    recommendation |= {"margin": margin, "test": "exact McNemar", "interval": DIFFERENCE_CI_METHOD}
    recommendation["lines"] = recommendation_lines(recommendation)
    cost_curve = _cost_curve(
        adapter_modes, per_query, break_even, set(recommendation["less_accurate"]), judge
    )
    if judge.rag is not None:
        notes.extend(against_rag(stats.modes, kinds, judge.rag, per_query, one_time))
    notes.extend(standing_notes(prices, confidence, judge.alpha, margin))
    return {
        "schema": REPORT_SCHEMA,
        "meta": dict(meta or {}),
        "summary": _summary(results, stats, accuracy, confidence),
        "recommendation": recommendation,
        **_accuracy_sections(stats, judge),
        "knowledge": {m: dict(k) for m, k in (knowledge or {}).items()},
        "usage": usage,
        "per_query_cost": per_query,
        "one_time_cost": one_time,
        "break_even": break_even,
        "cost_curve": cost_curve,
        "prices": prices.to_dict(),
        "price_descriptions": PRICE_DESCRIPTIONS,
        "notes": notes,
    }


@dataclass
class _Judge:
    """What one report compares modes by: their kinds, accuracy and one-time costs, and the
    paired tests of the primary metric, judged at `alpha` with `margin`."""

    stats: EvaluationStats
    accuracy: Mapping[str, float | None]
    one_time: Mapping[str, Any]
    confidence: float
    margin: float

    def __post_init__(self) -> None:
        self.alpha = round(1 - self.confidence, 10)
        self.kinds = self.stats.mode_kinds
        modes = self.stats.modes
        self.icl = next((m for m in modes if self.kinds[m] == "icl"), None)
        self.rag = next((m for m in modes if self.kinds[m] == "rag"), None)

    def once(self, mode: str) -> float | None:
        """A mode's one-time cost: 0 for untrained modes, None when its records are missing."""
        if self.kinds[mode] not in TRAINED_KINDS:
            return 0.0
        return self.one_time[mode]["total_usd"] if mode in self.one_time else None

    def test_of(self, mode: str, reference: str) -> PairedTest | None:
        """The primary-metric paired test of `mode` against `reference`, either way round."""
        for t in self.stats.paired:
            if t.metric != "correct":
                continue
            if (t.mode, t.reference) == (mode, reference):
                return t
            if (t.mode, t.reference) == (reference, mode):
                return reversed_test(t)
        return None

    def quality(self, mode: str, reference: str) -> dict[str, Any]:
        """`mode` against `reference` on the primary metric: the verdict and its numbers."""
        test = self.test_of(mode, reference)
        verdict = quality_verdict(test, margin=self.margin, alpha=self.alpha)
        q: dict[str, Any] = {
            "verdict": verdict,
            "accuracy_mode": test.accuracy_mode if test else self.accuracy[mode],
            "accuracy_reference": test.accuracy_reference if test else self.accuracy[reference],
            "difference": test.difference if test else None,
            "ci_low": test.ci_low if test else None,
            "ci_high": test.ci_high if test else None,
            "confidence": self.confidence,
            "p_value": test.p_value if test else None,
            "n": test.n if test else 0,
            "alpha": self.alpha,
            "margin": self.margin,
        }
        q["text"] = quality_text(q)
        return q


def _usage(
    stats: EvaluationStats, latency: Mapping[str, LatencyProbe], notes: list[str]
) -> tuple[dict[str, Any], dict[str, QueryProfile]]:
    """Each mode's tokens and latency per query (cold and warm from its probe when there is
    one), and the profile it is priced by; a note for each mode vLLM refused items of."""
    usage: dict[str, Any] = {}
    profiles: dict[str, QueryProfile] = {}
    for mode in stats.modes:
        u = stats.usage[mode]
        probe = latency.get(mode)
        cold = probe.cold_median_s if probe else u.latency_p50_s
        warm = probe.warm_median_s if probe else u.latency_p50_s
        usage[mode] = u.model_dump() | {
            "latency_cold_s": cold,
            "latency_warm_s": warm,
            "latency_source": _latency_source(probe),
        }
        profiles[mode] = _profile(u, cold, warm)
        if u.errors:
            notes.append(
                f"{mode}: vLLM refused {u.errors} of {u.n} items (too long or invalid); "
                "they count as wrong and are left out of tokens and latency."
            )
    return usage, profiles


def _latency_source(probe: LatencyProbe | None) -> str:
    if probe is None:
        return "median item latency under the evaluation's concurrency (no probe)"
    return (
        f"single-request probe, median of {len(probe.cold_s)} cold and "
        f"{len(probe.warm_s)} warm requests"
    )


def _profile(u: ModeUsage, cold: float | None, warm: float | None) -> QueryProfile:
    return QueryProfile(
        prompt_tokens=u.mean_prompt_tokens,
        completion_tokens=u.mean_completion_tokens,
        cacheable_tokens=u.mean_cacheable_tokens,
        latency_cold_s=cold,
        latency_warm_s=warm,
    )


def _per_query(
    profiles: Mapping[str, QueryProfile], prices: Prices, accuracy: Mapping[str, float | None]
) -> dict[str, dict[str, Any]]:
    """Each mode's cost per query and per correct answer, without and with prefix caching."""
    per_query: dict[str, dict[str, Any]] = {}
    for mode, profile in profiles.items():
        per_query[mode] = {}
        for cached in (False, True):
            cost = per_query_cost(profile, prices, prefix_cached=cached)
            cost.usd_per_correct = cost_per_correct(cost.usd, accuracy[mode])
            per_query[mode][KEYS[cached]] = cost.model_dump()
    return per_query


def _one_time(
    adapter_modes: Sequence[str],
    adapters: Mapping[str, AdapterCostInputs],
    prices: Prices,
    notes: list[str],
) -> dict[str, Any]:
    """Each trained mode's one-time cost; a note for each without cost records."""
    one_time: dict[str, Any] = {}
    for mode in adapter_modes:
        record = adapters.get(mode)
        if record is None:
            notes.append(
                f"{mode}: no augmentation/training records, so its one-time cost and "
                "break-even are unknown."
            )
            continue
        one_time[mode] = asdict(one_time_cost(record, prices))
    return one_time


def _break_even(
    results: Sequence[ItemResult],
    adapter_modes: Sequence[str],
    per_query: Mapping[str, Mapping[str, Any]],
    judge: _Judge,
) -> list[dict[str, Any]]:
    """A row per trained mode, reference and caching assumption: each trained mode against icl
    and rag, and an adapter against its own adapter+rag (the same model)."""
    kinds = judge.kinds
    model_of = {r.mode: r.model for r in results}
    rows: list[dict[str, Any]] = []
    for mode in adapter_modes:
        references = [r for r in (judge.icl, judge.rag) if r is not None]
        if kinds[mode] == "adapter":
            references += [
                m
                for m in adapter_modes
                if kinds[m] == "adapter+rag" and model_of[m] == model_of[mode]
            ]
        for reference in references:
            q = judge.quality(mode, reference)
            for cached in (False, True):
                rows.append(_break_even_row(mode, reference, cached, q, per_query, judge))
    return rows


def _break_even_row(
    mode: str,
    reference: str,
    cached: bool,
    q: dict[str, Any],
    per_query: Mapping[str, Mapping[str, Any]],
    judge: _Judge,
) -> dict[str, Any]:
    """`mode` against `reference` under one caching assumption: the cost arithmetic, and no
    break-even where the mode is significantly less accurate."""
    key = KEYS[cached]
    a = per_query[mode][key]["usd"]
    r = per_query[reference][key]["usd"]
    entry: dict[str, Any] = {
        "adapter": mode,
        "adapter_kind": judge.kinds[mode],
        "reference": reference,
        "reference_kind": judge.kinds[reference],
        "prefix_cached": cached,
        "assumption": CACHING_LABEL[cached],
        "adapter_per_query_usd": a,
        "reference_per_query_usd": r,
        "saving_per_query_usd": r - a,
        "adapter_per_correct_usd": per_query[mode][key]["usd_per_correct"],
        "reference_per_correct_usd": per_query[reference][key]["usd_per_correct"],
        "one_time_usd": judge.once(mode),
        "reference_one_time_usd": judge.once(reference),
        "quality": q,
    }
    if entry["one_time_usd"] is None or entry["reference_one_time_usd"] is None:
        n, cost_status = None, "unknown"
    else:
        n = break_even_queries(
            entry["one_time_usd"],
            a,
            r,
            reference_one_time_usd=entry["reference_one_time_usd"],
        )
        cost_status = "never" if n is None else "breaks_even"
    worse = q["verdict"] == "worse"
    entry |= {
        "cost_n_queries": n,
        "cost_status": cost_status,
        "n_queries": None if worse else n,
        "status": "less_accurate" if worse else cost_status,
    }
    entry["verdict"] = row_verdict(entry)
    return entry


def _cost_curve(
    adapter_modes: Sequence[str],
    per_query: Mapping[str, Mapping[str, Any]],
    break_even: Sequence[Mapping[str, Any]],
    less_accurate: set[str],
    judge: _Judge,
) -> dict[str, Any]:
    """The cumulative cost plot's range and lines: base, icl and rag, and each adapter mode
    whose one-time cost is known."""
    n_max, x_scale = curve_plan([b["cost_n_queries"] for b in break_even])
    lines: list[dict[str, Any]] = []
    drawn = [m for m in judge.stats.modes if judge.kinds[m] in ("base", "icl", "rag")] + [
        m for m in adapter_modes if m in judge.one_time
    ]
    for mode in drawn:
        uncached, cached_usd = (per_query[mode][k]["usd"] for k in ("uncached", "cached"))
        # Only icl has a shared document prefix; the other modes' two figures differ only when
        # latency is priced (cold vs warm), and then both are drawn.
        variants = [(False, uncached)] + ([(True, cached_usd)] if cached_usd != uncached else [])
        for cached, usd in variants:
            label = mode if len(variants) == 1 else f"{mode} ({CACHING_LABEL[cached]})"
            lines.append(
                {
                    "label": label,
                    "mode": mode,
                    "prefix_cached": cached,
                    "one_time_usd": judge.once(mode) or 0.0,
                    "per_query_usd": usd,
                    "usd_per_correct": per_query[mode][KEYS[cached]]["usd_per_correct"],
                    "accuracy": judge.accuracy[mode],
                    "less_accurate": mode in less_accurate,
                }
            )
    return {
        "n_max": n_max,
        "x_scale": x_scale,
        "best": judge.stats.best_mode,
        "alpha": judge.alpha,
        "lines": lines,
    }


def _summary(
    results: Sequence[ItemResult],
    stats: EvaluationStats,
    accuracy: Mapping[str, float | None],
    confidence: float,
) -> dict[str, Any]:
    return {
        "n_items": len({r.item_id for r in results}),
        "modes": stats.modes,
        "mode_kinds": stats.mode_kinds,
        "metrics": stats.metrics,
        "metric_labels": {m: METRIC_LABELS[m] for m in stats.metrics},
        "confidence": confidence,
        "primary_accuracy": accuracy,
    }


def _accuracy_sections(stats: EvaluationStats, judge: _Judge) -> dict[str, Any]:
    """Accuracy per mode and metric, per category, and the paired tests with their verdicts."""
    return {
        "accuracy": {
            m: {k: a.model_dump() for k, a in v.items()} for m, v in stats.accuracy.items()
        },
        "accuracy_by_category": {
            m: {c: {k: a.model_dump() for k, a in cv.items()} for c, cv in v.items()}
            for m, v in stats.by_category.items()
        },
        "paired_tests": [
            t.model_dump() | {"verdict": quality_verdict(t, margin=judge.margin, alpha=judge.alpha)}
            for t in stats.paired
        ],
    }
