"""The evaluation report: one JSON-serialisable dict, rendered as Markdown, HTML or a PNG plot.

`build_report` is the only place numbers are computed; the renderers only format what the dict
holds, so the JSON, Markdown, HTML and plot always agree.

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

import base64
import io
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jinja2 import Environment, StrictUndefined

from service.costs.model import (
    PRICE_DESCRIPTIONS,
    AdapterCostInputs,
    Prices,
    QueryProfile,
    break_even_queries,
    cost_per_correct,
    cumulative_cost,
    curve_plan,
    one_time_cost,
    per_query_cost,
)
from service.evaluate.scoring import METRIC_LABELS, ItemResult, LatencyProbe
from service.evaluate.stats import (
    CONFIDENCE,
    DIFFERENCE_CI_METHOD,
    EvaluationStats,
    PairedTest,
    compute_stats,
    quality_verdict,
    reversed_test,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes

REPORT_SCHEMA = "docadapt.evaluation-report/2"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Within this many percentage points (as a fraction) a mode counts as as accurate as another.
QUALITY_MARGIN = 0.05
# Section ids, in order; the HTML has one element per id, the Markdown one heading per title.
SECTIONS = {
    "summary": "Summary",
    "recommendation": "Which mode: accuracy first, then cost",
    "accuracy": "Accuracy",
    "categories": "Accuracy by category",
    "paired-tests": "Paired tests",
    "knowledge": "Knowledge check: does each adapter know its documents?",
    "usage": "Tokens and latency per query",
    "per-query-cost": "Cost per query and per correct answer",
    "one-time-cost": "One-time cost of each adapter",
    "break-even": "Break-even",
    "cost-curve": "Cumulative cost",
    "prices": "Prices used",
    "notes": "Assumptions and notes",
}
_CACHING_LABEL = {False: "without prefix caching", True: "with prefix caching"}
_KEYS = {False: "uncached", True: "cached"}
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
    adapters = adapters or {}
    latency = latency or {}
    stats = compute_stats(results, confidence)
    alpha = round(1 - confidence, 10)
    notes: list[str] = []
    accuracy = {m: stats.accuracy[m]["correct"].accuracy for m in stats.modes}

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
            "latency_source": (
                f"single-request probe, median of {len(probe.cold_s)} cold and "
                f"{len(probe.warm_s)} warm requests"
                if probe
                else "median item latency under the evaluation's concurrency (no probe)"
            ),
        }
        profiles[mode] = QueryProfile(
            prompt_tokens=u.mean_prompt_tokens,
            completion_tokens=u.mean_completion_tokens,
            cacheable_tokens=u.mean_cacheable_tokens,
            latency_cold_s=cold,
            latency_warm_s=warm,
        )
        if u.errors:
            notes.append(
                f"{mode}: vLLM refused {u.errors} of {u.n} items (too long or invalid); "
                "they count as wrong and are left out of tokens and latency."
            )

    per_query: dict[str, dict[str, Any]] = {}
    for mode, profile in profiles.items():
        per_query[mode] = {}
        for cached in (False, True):
            cost = asdict(per_query_cost(profile, prices, prefix_cached=cached))
            cost["usd_per_correct"] = cost_per_correct(cost["usd"], accuracy[mode])
            per_query[mode][_KEYS[cached]] = cost

    kinds = stats.mode_kinds
    adapter_modes = [m for m in stats.modes if kinds[m] in TRAINED_KINDS]
    icl = next((m for m in stats.modes if kinds[m] == "icl"), None)
    rag = next((m for m in stats.modes if kinds[m] == "rag"), None)
    model_of = {r.mode: r.model for r in results}
    one_time: dict[str, Any] = {}
    for mode in adapter_modes:
        record = adapters.get(mode)
        if record is None:
            notes.append(
                f"{mode}: no augmentation/training records, so its one-time cost and "
                "break-even are unknown."
            )
            continue
        cost = one_time_cost(record, prices)
        one_time[mode] = asdict(cost)

    def once(mode: str) -> float | None:
        """A mode's one-time cost: 0 for untrained modes, None when its records are missing."""
        if kinds[mode] not in TRAINED_KINDS:
            return 0.0
        return one_time[mode]["total_usd"] if mode in one_time else None

    def test_of(mode: str, reference: str) -> PairedTest | None:
        """The primary-metric paired test of `mode` against `reference`, either way round."""
        for t in stats.paired:
            if t.metric != "correct":
                continue
            if (t.mode, t.reference) == (mode, reference):
                return t
            if (t.mode, t.reference) == (reference, mode):
                return reversed_test(t)
        return None

    def quality(mode: str, reference: str) -> dict[str, Any]:
        test = test_of(mode, reference)
        verdict = quality_verdict(test, margin=margin, alpha=alpha)
        q: dict[str, Any] = {
            "verdict": verdict,
            "accuracy_mode": test.accuracy_mode if test else accuracy[mode],
            "accuracy_reference": test.accuracy_reference if test else accuracy[reference],
            "difference": test.difference if test else None,
            "ci_low": test.ci_low if test else None,
            "ci_high": test.ci_high if test else None,
            "confidence": confidence,
            "p_value": test.p_value if test else None,
            "n": test.n if test else 0,
            "alpha": alpha,
            "margin": margin,
        }
        q["text"] = _quality_text(q)
        return q

    break_even: list[dict[str, Any]] = []
    if icl is None:
        notes.append("No icl mode was evaluated, so there is no break-even against ICL.")
    for mode in adapter_modes:
        references = [r for r in (icl, rag) if r is not None]
        if kinds[mode] == "adapter":
            references += [
                m
                for m in adapter_modes
                if kinds[m] == "adapter+rag" and model_of[m] == model_of[mode]
            ]
        for reference in references:
            q = quality(mode, reference)
            for cached in (False, True):
                key = _KEYS[cached]
                a = per_query[mode][key]["usd"]
                r = per_query[reference][key]["usd"]
                entry: dict[str, Any] = {
                    "adapter": mode,
                    "adapter_kind": kinds[mode],
                    "reference": reference,
                    "reference_kind": kinds[reference],
                    "prefix_cached": cached,
                    "assumption": _CACHING_LABEL[cached],
                    "adapter_per_query_usd": a,
                    "reference_per_query_usd": r,
                    "saving_per_query_usd": r - a,
                    "adapter_per_correct_usd": per_query[mode][key]["usd_per_correct"],
                    "reference_per_correct_usd": per_query[reference][key]["usd_per_correct"],
                    "one_time_usd": once(mode),
                    "reference_one_time_usd": once(reference),
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
                entry["verdict"] = _row_verdict(entry)
                break_even.append(entry)

    recommendation = _recommend(
        stats.modes, kinds, stats.best_mode, accuracy, stats, per_query, once, quality
    )
    recommendation |= {"metric": "correct", "confidence": confidence, "alpha": alpha}
    recommendation |= {"margin": margin, "test": "exact McNemar", "interval": DIFFERENCE_CI_METHOD}
    recommendation["lines"] = _recommendation_lines(recommendation)
    less_accurate = set(recommendation["less_accurate"])

    n_max, x_scale = curve_plan([b["cost_n_queries"] for b in break_even])
    lines: list[dict[str, Any]] = []
    drawn = [m for m in stats.modes if kinds[m] in ("base", "icl", "rag")] + [
        m for m in adapter_modes if m in one_time
    ]
    for mode in drawn:
        uncached, cached_usd = (per_query[mode][k]["usd"] for k in ("uncached", "cached"))
        # Only icl has a shared document prefix; the other modes' two figures differ only when
        # latency is priced (cold vs warm), and then both are drawn.
        variants = [(False, uncached)] + ([(True, cached_usd)] if cached_usd != uncached else [])
        for cached, usd in variants:
            label = mode if len(variants) == 1 else f"{mode} ({_CACHING_LABEL[cached]})"
            lines.append(
                {
                    "label": label,
                    "mode": mode,
                    "prefix_cached": cached,
                    "one_time_usd": once(mode) or 0.0,
                    "per_query_usd": usd,
                    "usd_per_correct": per_query[mode][_KEYS[cached]]["usd_per_correct"],
                    "accuracy": accuracy[mode],
                    "less_accurate": mode in less_accurate,
                }
            )
    if rag is not None:
        notes.extend(_against_rag(stats.modes, kinds, rag, per_query, one_time))

    notes.extend(_standing_notes(prices, confidence, alpha, margin))
    n_items = len({r.item_id for r in results})
    return {
        "schema": REPORT_SCHEMA,
        "meta": dict(meta or {}),
        "summary": {
            "n_items": n_items,
            "modes": stats.modes,
            "mode_kinds": kinds,
            "metrics": stats.metrics,
            "metric_labels": {m: METRIC_LABELS[m] for m in stats.metrics},
            "confidence": confidence,
            "primary_accuracy": accuracy,
        },
        "recommendation": recommendation,
        "accuracy": {
            m: {k: a.model_dump() for k, a in v.items()} for m, v in stats.accuracy.items()
        },
        "accuracy_by_category": {
            m: {c: {k: a.model_dump() for k, a in cv.items()} for c, cv in v.items()}
            for m, v in stats.by_category.items()
        },
        "paired_tests": [
            t.model_dump() | {"verdict": quality_verdict(t, margin=margin, alpha=alpha)}
            for t in stats.paired
        ],
        "knowledge": {m: dict(k) for m, k in (knowledge or {}).items()},
        "usage": usage,
        "per_query_cost": per_query,
        "one_time_cost": one_time,
        "break_even": break_even,
        "cost_curve": {
            "n_max": n_max,
            "x_scale": x_scale,
            "best": stats.best_mode,
            "alpha": alpha,
            "lines": lines,
        },
        "prices": prices.to_dict(),
        "price_descriptions": PRICE_DESCRIPTIONS,
        "notes": notes,
    }


def _recommend(
    modes: Sequence[str],
    kinds: Mapping[str, str],
    best: str | None,
    accuracy: Mapping[str, float | None],
    stats: EvaluationStats,
    per_query: Mapping[str, Mapping[str, Any]],
    once: Callable[[str], float | None],
    quality: Callable[[str, str], dict[str, Any]],
) -> dict[str, Any]:
    """Each mode against the best, and which to use.

    candidates: not significantly less accurate than the best. as_accurate: the best and the
    candidates shown to be within the margin of it (or significantly better). recommended: the
    cheapest per query of as_accurate; cheapest_not_worse: the cheapest of candidates, named
    beside it when it is another mode (cheaper, but equal accuracy not shown)."""
    table: dict[str, dict[str, Any]] = {}
    for mode in modes:
        acc = stats.accuracy[mode]["correct"]
        q = quality(mode, best) if best is not None and mode != best else None
        verdict = "best" if q is None else q["verdict"]
        table[mode] = {
            "kind": kinds[mode],
            "accuracy": accuracy[mode],
            "correct": acc.correct,
            "n": acc.n,
            "verdict": verdict,
            "difference": q["difference"] if q else None,
            "ci_low": q["ci_low"] if q else None,
            "ci_high": q["ci_high"] if q else None,
            "p_value": q["p_value"] if q else None,
            "candidate": verdict != "worse",
            "as_accurate": verdict in ("best", "better", "within_margin"),
            "per_query_usd": {k: per_query[mode][k]["usd"] for k in ("uncached", "cached")},
            "per_correct_usd": {
                k: per_query[mode][k]["usd_per_correct"] for k in ("uncached", "cached")
            },
            "one_time_usd": once(mode),
        }
    candidates = [m for m in modes if table[m]["candidate"]]
    as_accurate = [m for m in modes if table[m]["as_accurate"]]
    recommended: dict[str, str | None] = {}
    cheapest_not_worse: dict[str, str | None] = {}
    payback: dict[str, dict[str, Any] | None] = {}
    alternative: dict[str, dict[str, Any] | None] = {}
    for key in ("uncached", "cached"):

        def price(m: str, key: str = key) -> tuple[float, float]:
            # Per query first (the long run); on a tie, the smaller one-time cost.
            return (table[m]["per_query_usd"][key], table[m]["one_time_usd"] or 0.0)

        def crossing(mode: str, against: str, key: str = key) -> int | None:
            mine, theirs = table[mode]["one_time_usd"], table[against]["one_time_usd"]
            if mine is None or theirs is None:
                return None
            return break_even_queries(
                mine,
                table[mode]["per_query_usd"][key],
                table[against]["per_query_usd"][key],
                reference_one_time_usd=theirs,
            )

        pick = min(as_accurate, key=price, default=None)
        recommended[key] = pick
        payback[key] = None
        if pick is not None and table[pick]["one_time_usd"]:
            free = [m for m in as_accurate if table[m]["one_time_usd"] == 0.0]
            against = min(free, key=price, default=None)
            if against is not None:
                payback[key] = {
                    "mode": pick,
                    "against": against,
                    "n_queries": crossing(pick, against),
                }
        cheap = min(candidates, key=price, default=None)
        cheapest_not_worse[key] = cheap
        alternative[key] = None
        if cheap is not None and pick is not None and cheap != pick:
            alternative[key] = {"mode": cheap, "against": pick, "n_queries": crossing(cheap, pick)}
    return {
        "best": best,
        "best_accuracy": accuracy[best] if best is not None else None,
        "modes": table,
        "candidates": candidates,
        "as_accurate": as_accurate,
        "less_accurate": [m for m in modes if not table[m]["candidate"]],
        "recommended": recommended,
        "payback": payback,
        "cheapest_not_worse": cheapest_not_worse,
        "alternative_break_even": alternative,
    }


def _against_rag(
    modes: Sequence[str],
    kinds: Mapping[str, str],
    rag: str,
    per_query: Mapping[str, Mapping[str, Any]],
    one_time: Mapping[str, Any],
) -> list[str]:
    """Each adapter+rag mode's cost beside rag's: the same prompts, on the adapter."""
    notes = []
    for mode in modes:
        if kinds[mode] != "adapter+rag":
            continue
        a, r = per_query[mode]["uncached"]["usd"], per_query[rag]["uncached"]["usd"]
        if mode not in one_time:
            once, verdict = "an unknown amount", "whether it ever costs less is unknown"
        else:
            once = _usd(one_time[mode]["total_usd"])
            n = break_even_queries(one_time[mode]["total_usd"], a, r)
            verdict = (
                f"its total never falls to {rag}'s, so only its accuracy can pay for the adapter"
                if n is None
                else f"its total falls to {rag}'s after {n:,} queries"
            )
        notes.append(
            f"{mode}: {_usd(a)} per query against {rag}'s {_usd(r)} (without prefix caching), "
            f"plus {once} once for its adapter; it sends rag's prompts (the retrieved passages, "
            f"no shared prefix) to the adapter, and {verdict}."
        )
    return notes


def _standing_notes(prices: Prices, confidence: float, alpha: float, margin: float) -> list[str]:
    conf, pp = f"{100 * confidence:g}%", f"{100 * margin:g} pp"
    # Discordant items, all one way, that the exact McNemar test needs: 2 / 2^k < alpha.
    fewest = next(k for k in range(1, 64) if 2 * 0.5**k < alpha) if alpha > 0 else "infinitely many"
    notes = [
        "Multiple-choice items are scored by the log-likelihood of each choice as a continuation "
        "of the prompt, choices not shown (Lampinen et al. 2025); mc_sum decides by the summed "
        "log-likelihood, mc_norm by the per-token mean. The primary metric ('correct') is mc_sum "
        "for multiple choice and normalized exact match for generation.",
        f"Intervals are {conf} Wilson score intervals; paired tests are exact McNemar tests on "
        "the items both modes scored, and the interval of their accuracy difference is "
        "Newcombe's hybrid score interval for paired proportions (1998, method 10).",
        f"Quality first, on the primary metric: a mode is significantly less (more) accurate "
        f"than another when the McNemar p-value is below {alpha:g} and it is behind (ahead); "
        f"otherwise it is as accurate within the {pp} margin when the {conf} interval of the "
        f"paired difference lies above -{pp}, and 'not shown within the margin' when the "
        "interval reaches below it (too few items to rule out a larger loss). The exact test "
        f"needs at least {fewest} discordant items to reach p < {alpha:g}, so on few items an "
        "interval can lie wholly below 0 without significance; such a mode is never within the "
        "margin. The "
        "recommended mode is the cheapest per query of the most accurate mode and those within "
        "the margin of it; the cheapest of those merely not significantly less accurate is named "
        "beside it, with how much less accurate it may be.",
        "Tokens per query are measured means: for multiple choice, the prompt (context and "
        "question) and the correct answer's tokens as the completion; for generation, vLLM's "
        "usage counts.",
        "Without prefix caching every prompt token is priced at the input price and latency is "
        "cold; with prefix caching the shared document prefix (icl) is priced at the "
        "cached-input price on every query (steady state) and latency is warm. rag and "
        "adapter+rag prompts carry each question's own passages, which no other question "
        "shares, so they are priced at the input price either way.",
        "Cost per correct answer = cost per query / accuracy (primary metric): what one right "
        "answer costs when the wrong ones are paid for too; one-time costs are not in it, and "
        "it is n/a for a mode with no right answer. A lower figure does not make up for "
        "significantly lower accuracy: the wrong answers still reach the user.",
        "An adapter+rag mode (an adapter with rag's passages in its prompt) pays its adapter's "
        "one-time cost and, per query, its measured prompt and completion tokens, as rag does.",
        "One-time cost = augmentation teacher tokens at token prices + training wall time at "
        "the hourly price of its hardware + training tokens at the training token price.",
        "Break-even n* = ceil((one-time cost - the reference's one-time cost) / (reference "
        "per-query cost - adapter per-query cost)), for each adapter and adapter+rag mode "
        "against icl and rag (no one-time cost) and for each adapter against its own "
        "adapter+rag (the same adapter, so the same one-time cost): from n* queries on its total "
        "is at most the reference's; 'never' when it is not cheaper per query. A mode "
        "significantly less accurate than the reference gets no break-even: its lower price "
        "buys wrong answers.",
    ]
    if prices.serving_hardware is None:
        notes.append(
            "Queries are priced by tokens only (a hosted API); latency is reported but not priced."
        )
    else:
        notes.append(
            f"Each query also pays its single-request latency at the "
            f"{prices.serving_hardware}-hour price (self-hosted serving, no batching: "
            "an upper bound)."
        )
    return notes


# -- formatting helpers -------------------------------------------------------------------------


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def _pp(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:+.1f}"


def _acc(a: Mapping[str, Any]) -> str:
    if not a["n"]:
        return "n/a"
    interval = f"[{_pct(a['ci_low'])}, {_pct(a['ci_high'])}]"
    return f"{_pct(a['accuracy'])} {interval} ({a['correct']}/{a['n']})"


def _usd(x: float | None) -> str:
    if x is None:
        return "n/a"
    if x == 0:
        return "$0"
    if abs(x) >= 100:
        return f"${x:,.2f}"
    if abs(x) >= 0.01:
        return f"${x:.4f}"
    return f"${x:.3g}"


def _axis_usd(x: float) -> str:
    if not math.isfinite(x):
        return ""
    if x == 0 or abs(x) >= 1e-6:
        return "$" + f"{x:,.6f}".rstrip("0").rstrip(".")
    return f"${x:.1e}"


def _num(x: float | None, digits: int = 1) -> str:
    return "n/a" if x is None else f"{x:,.{digits}f}"


def _secs(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f} s"


def _p(x: float | None) -> str:
    if x is None:
        return "n/a"
    return f"{x:.3g}" if x >= 0.001 else f"{x:.2e}"


def _difference_text(q: Mapping[str, Any]) -> str:
    """'18.3% vs 100.0%: -81.7 pp, 95% CI [-90.0, -71.4], p = 3.55e-15'."""
    text = f"{_pct(q.get('accuracy_mode'))} vs {_pct(q.get('accuracy_reference'))}"
    if q.get("difference") is None:
        return text
    text += f": {_pp(q['difference'])} pp"
    if q.get("ci_low") is not None:
        conf = f"{100 * q.get('confidence', CONFIDENCE):g}%"
        text += f", {conf} CI [{_pp(q['ci_low'])}, {_pp(q['ci_high'])}]"
    return text + f", p = {_p(q.get('p_value'))}"


def _quality_text(q: Mapping[str, Any]) -> str:
    """A quality verdict in words, with the numbers it rests on."""
    pp = f"{100 * q['margin']:g} pp"
    numbers = _difference_text(q)
    return {
        "worse": f"significantly less accurate ({numbers})",
        "better": f"significantly more accurate ({numbers})",
        "within_margin": f"at least as accurate, within the {pp} margin ({numbers})",
        "not_shown_within_margin": (
            f"not significantly less accurate, but not shown to be within the {pp} margin "
            f"({numbers})"
        ),
        "unknown": "accuracy not compared (no items scored under both)",
    }[q["verdict"]]


def _cost_phrase(b: Mapping[str, Any]) -> str:
    """What the cost arithmetic of a break-even row says, without its quality."""
    status = b.get("cost_status", b["status"])
    n = b.get("cost_n_queries", b.get("n_queries"))
    if status == "unknown":
        return "break-even unknown (no cost records)"
    if status == "never":
        return "never breaks even (not cheaper per query)"
    if n == 0:
        return "costs no more from the first query"
    return f"breaks even after {n:,} queries"


def _row_verdict(b: Mapping[str, Any]) -> str:
    q = b["quality"]["text"]
    if b["status"] == "less_accurate":
        return f"{q}: no break-even verdict, a cheaper wrong answer is no saving"
    return f"{q}; {_cost_phrase(b)}"


def _break_even_text(b: Mapping[str, Any]) -> str:
    if b["status"] == "less_accurate":
        return "none: significantly less accurate"
    if b["status"] == "unknown":
        return "unknown (no cost records)"
    if b["status"] == "never":
        return "never (adapter not cheaper per query)"
    return f"{b['n_queries']:,} queries"


def _recommendation_lines(rec: Mapping[str, Any]) -> list[str]:
    """The recommendation in sentences: what to use, why, what is cheaper but unproven, and
    what is ruled out."""
    best, table = rec["best"], rec["modes"]
    if best is None:
        return []
    level = f"exact McNemar test, p < {rec['alpha']:g}"
    pp = f"{100 * rec['margin']:g} pp"
    conf = f"{100 * rec['confidence']:g}%"
    b = table[best]

    def costs(mode: str, key: str) -> str:
        return (
            f"{_usd(table[mode]['per_query_usd'][key])} per query, "
            f"{_usd(table[mode]['per_correct_usd'][key])} per correct answer"
        )

    def money(mode: str) -> str:
        prices = table[mode]["per_query_usd"]
        if prices["uncached"] == prices["cached"]:
            return f"{costs(mode, 'uncached')}, with or without prefix caching"
        return f"{costs(mode, 'uncached')} without prefix caching, {costs(mode, 'cached')} with"

    def numbers(mode: str) -> str:
        t = table[mode]
        return _difference_text(
            {
                "accuracy_mode": t["accuracy"],
                "accuracy_reference": b["accuracy"],
                "difference": t["difference"],
                "ci_low": t["ci_low"],
                "ci_high": t["ci_high"],
                "p_value": t["p_value"],
                "confidence": rec["confidence"],
            }
        )

    def compared(mode: str, said: str = "") -> str:
        return f"{mode} ({numbers(mode)}{said})"

    def one_or_two(
        picks: Mapping[str, str | None], what: Callable[[str, bool | None], str]
    ) -> list[str]:
        """One sentence when both caching assumptions pick the same mode, else one each."""
        if picks["uncached"] == picks["cached"]:
            return [what(picks["uncached"], None)] if picks["uncached"] else []
        return [what(m, c) for c in (False, True) if (m := picks[_KEYS[c]]) is not None]

    score = f"{_pct(b['accuracy'])}, {b['correct']}/{b['n']}"
    lines = []

    def recommend(mode: str, cached: bool | None) -> str:
        when = "" if cached is None else f" {_CACHING_LABEL[cached]}"
        prices = money(mode) if cached is None else costs(mode, _KEYS[cached])
        if len(table) == 1:
            return f"Recommended: {mode}, the only mode evaluated: {prices}."
        if mode == best:
            why = (
                f"the most accurate mode ({score}); no other mode shown to be as accurate "
                f"(within the {pp} margin) costs less per query"
            )
        else:
            why = (
                f"as accurate as the most accurate mode, {best} ({score}), within the {pp} "
                f"margin ({numbers(mode)}), and the cheapest such mode per query"
            )
        return f"Recommended{when}: {mode}, {why}: {prices}."

    lines += one_or_two(rec["recommended"], recommend)
    paybacks: dict[tuple[str, str, int], list[bool]] = {}
    for cached in (False, True):
        p = rec["payback"][_KEYS[cached]]
        if p and p["n_queries"]:
            paybacks.setdefault((p["mode"], p["against"], p["n_queries"]), []).append(cached)
    for (mode, against, n), when in paybacks.items():
        caching = "with or without prefix caching" if len(when) == 2 else _CACHING_LABEL[when[0]]
        lines.append(
            f"{mode} pays back its one-time cost of {_usd(table[mode]['one_time_usd'])} against "
            f"{against} (the cheapest as accurate mode without one) after {n:,} queries "
            f"{caching}; for fewer queries {against} costs less."
        )
    for mode in dict.fromkeys(rec["recommended"].values()):
        if mode is not None and table[mode]["one_time_usd"] is None:
            lines.append(f"{mode}'s one-time cost is unknown (no cost records).")

    def cheaper(mode: str, cached: bool | None) -> str:
        key = "uncached" if cached is None else _KEYS[cached]
        when = "" if cached is None else f" ({_CACHING_LABEL[cached]})"
        alt = rec["alternative_break_even"][key]
        text = (
            f"The cheapest mode not significantly less accurate than {best} ({level}){when} is "
            f"{mode}: {money(mode) if cached is None else costs(mode, key)}; but it is not "
            f"shown to be within the {pp} margin ({numbers(mode)}): it may "
            f"be as much as {-100 * (table[mode]['ci_low'] or 0.0):.1f} pp less accurate (the "
            f"{conf} interval's lower end). Take it only if that loss is acceptable, or score "
            "more items to tell"
        )
        if alt and alt["n_queries"] == 0:
            text += f"; it costs less than {alt['against']} from the first query"
        elif alt and alt["n_queries"] is not None:
            text += f"; it costs less than {alt['against']} from {alt['n_queries']:,} queries on"
        return text + "."

    alternatives = {
        k: (m if m != rec["recommended"][k] else None) for k, m in rec["cheapest_not_worse"].items()
    }
    if any(alternatives.values()):
        lines += one_or_two(alternatives, cheaper)
    else:
        pick = rec["recommended"]["uncached"]
        if pick is not None and len(table) > 1:
            lines.append(
                f"Of the modes not significantly less accurate than {best} ({level}), {pick} is "
                "the cheapest per query."
            )

    also = [m for m in rec["candidates"] if m != best]
    if also:
        words = {
            "within_margin": f"within the {pp} margin",
            "not_shown_within_margin": f"not shown to be within the {pp} margin",
            "better": "significantly more accurate",
            "unknown": "not compared",
        }
        lines.append(
            f"Not significantly less accurate than {best} ({level}): "
            + ", ".join(compared(m, f"; {words[table[m]['verdict']]}") for m in also)
            + "."
        )
    if rec["less_accurate"]:
        lines.append(
            f"Significantly less accurate than {best} ({level}), so not recommended at any "
            "price: " + ", ".join(compared(m) for m in rec["less_accurate"]) + "."
        )
    return lines


_VERDICT_WORDS = {
    "best": "most accurate",
    "better": "significantly more accurate",
    "within_margin": "at least as accurate, within the margin",
    "not_shown_within_margin": "not significantly less accurate; not shown within the margin",
    "worse": "significantly less accurate",
    "unknown": "not compared",
}


def _per_correct(cost: Mapping[str, Any]) -> str:
    if "usd_per_correct" not in cost:  # a report stored before it existed
        return "n/a"
    value = cost["usd_per_correct"]
    return "n/a (no correct answers)" if value is None else _usd(value)


def _tables(report: Mapping[str, Any]) -> dict[str, tuple[list[str], list[list[str]]]]:
    """Every table of the report as (header, rows) of strings, shared by Markdown and HTML.

    Reports stored before schema /2 lack some fields: their cells read "n/a" (or the old field)."""
    s = report["summary"]
    modes, metrics = s["modes"], s["metrics"]
    kinds = s["mode_kinds"]
    conf = f"{100 * s.get('confidence', CONFIDENCE):g}%"
    t: dict[str, tuple[list[str], list[list[str]]]] = {}
    rec = report.get("recommendation") or {}
    rows = []
    if rec.get("best") is not None:
        table = rec["modes"]

        def order(m: str) -> tuple[int, float]:
            # Candidates first, cheapest first; then the rest, most accurate first.
            e = table[m]
            if e["candidate"]:
                return (0, e["per_query_usd"]["uncached"])
            return (1, -(e["accuracy"] or 0.0))

        cheapest = {m for m in rec["recommended"].values() if m is not None}
        for m in sorted(table, key=order):
            e = table[m]
            rows.append(
                [
                    m,
                    e["kind"],
                    f"{_pct(e['accuracy'])} ({e['correct']}/{e['n']})",
                    "-" if m == rec["best"] else f"{_pp(e['difference'])} pp",
                    "-" if e["ci_low"] is None else f"[{_pp(e['ci_low'])}, {_pp(e['ci_high'])}] pp",
                    "-" if m == rec["best"] else _p(e["p_value"]),
                    _VERDICT_WORDS[e["verdict"]],
                    _usd(e["per_query_usd"]["uncached"]),
                    _usd(e["per_correct_usd"]["uncached"]),
                    _usd(e["per_query_usd"]["cached"]),
                    _usd(e["per_correct_usd"]["cached"]),
                    _usd(e["one_time_usd"]),
                    "recommended" if m in cheapest else "",
                ]
            )
    best = rec.get("best", "the most accurate")
    t["recommendation"] = (
        [
            "mode",
            "kind",
            "accuracy",
            f"difference from {best}",
            f"{conf} CI",
            "p-value",
            f"against {best} (p < {rec.get('alpha', 0.05):g}, margin "
            f"{100 * rec.get('margin', QUALITY_MARGIN):g} pp)",
            "per query (no caching)",
            "per correct answer (no caching)",
            "per query (prefix caching)",
            "per correct answer (prefix caching)",
            "one-time",
            "",
        ],
        rows,
    )
    t["accuracy"] = (
        ["mode", "kind"] + [s["metric_labels"][m] for m in metrics],
        [[m, kinds[m]] + [_acc(report["accuracy"][m][k]) for k in metrics] for m in modes],
    )
    rows = []
    for m in modes:
        for cat, accs in report["accuracy_by_category"][m].items():
            rows.append([m, cat] + [_acc(accs[k]) for k in metrics])
    t["categories"] = (["mode", "category"] + [s["metric_labels"][m] for m in metrics], rows)
    t["paired-tests"] = (
        [
            "mode",
            "reference",
            "metric",
            "n",
            "both right",
            "only mode",
            "only reference",
            "both wrong",
            "difference",
            f"{conf} CI",
            "p-value",
            "verdict",
        ],
        [
            [
                p["mode"],
                p["reference"],
                p["metric"],
                str(p["n"]),
                str(p["both_correct"]),
                str(p["only_mode"]),
                str(p["only_reference"]),
                str(p["both_wrong"]),
                "n/a" if p["difference"] is None else f"{_pp(p['difference'])} pp",
                "n/a"
                if p.get("ci_low") is None
                else f"[{_pp(p['ci_low'])}, {_pp(p['ci_high'])}] pp",
                _p(p["p_value"]),
                _VERDICT_WORDS[p["verdict"]] if "verdict" in p else "",
            ]
            for p in report["paired_tests"]
        ],
    )
    t["usage"] = (
        [
            "mode",
            "items",
            "errors",
            "prompt tokens",
            "cached-prefix tokens",
            "completion tokens",
            "latency p50",
            "latency p95",
            "cold latency",
            "warm latency",
            "latency source",
        ],
        [
            [
                m,
                str(u["n"]),
                str(u["errors"]),
                _num(u["mean_prompt_tokens"]),
                _num(u["mean_cacheable_tokens"]),
                _num(u["mean_completion_tokens"]),
                _secs(u["latency_p50_s"]),
                _secs(u["latency_p95_s"]),
                _secs(u["latency_cold_s"]),
                _secs(u["latency_warm_s"]),
                u["latency_source"],
            ]
            for m, u in report["usage"].items()
        ],
    )
    t["per-query-cost"] = (
        [
            "mode",
            "accuracy",
            "without prefix caching",
            "per correct answer",
            "with prefix caching",
            "per correct answer (cached)",
            "assumption (uncached)",
            "assumption (cached)",
        ],
        [
            [
                m,
                _pct(s["primary_accuracy"].get(m)),
                _usd(c["uncached"]["usd"]),
                _per_correct(c["uncached"]),
                _usd(c["cached"]["usd"]),
                _per_correct(c["cached"]),
                c["uncached"]["assumption"],
                c["cached"]["assumption"],
            ]
            for m, c in report["per_query_cost"].items()
        ],
    )
    t["one-time-cost"] = (
        [
            "adapter",
            "teacher tokens",
            "training compute",
            "training tokens",
            "total",
            "teacher prompt / cached / completion tokens",
            "training tokens",
            "training wall time",
        ],
        [
            [
                m,
                _usd(c["teacher_usd"]),
                _usd(c["training_compute_usd"]),
                _usd(c["training_tokens_usd"]),
                _usd(c["total_usd"]),
                f"{c['inputs']['teacher_prompt_tokens']:,} / "
                f"{c['inputs']['teacher_cached_prompt_tokens']:,} / "
                f"{c['inputs']['teacher_completion_tokens']:,}",
                f"{c['inputs']['training_tokens']:,}",
                f"{c['inputs']['training_wall_s']:.1f} s on {c['inputs']['training_hardware']}",
            ]
            for m, c in report["one_time_cost"].items()
        ],
    )
    t["break-even"] = (
        [
            "adapter",
            "against",
            "accuracy against it",
            "assumption",
            "one-time",
            "reference one-time",
            "adapter per query",
            "reference per query",
            "saving per query",
            "adapter per correct answer",
            "reference per correct answer",
            "break-even",
        ],
        [
            [
                b["adapter"],
                b["reference"],
                b["quality"]["text"]
                if "quality" in b
                else "not compared (report stored before quality checks)",
                b["assumption"],
                _usd(b["one_time_usd"]),
                _usd(b.get("reference_one_time_usd", 0.0)),
                _usd(b["adapter_per_query_usd"]),
                _usd(b.get("reference_per_query_usd", b.get("icl_per_query_usd"))),
                _usd(b["saving_per_query_usd"]),
                _usd(b.get("adapter_per_correct_usd")),
                _usd(b.get("reference_per_correct_usd")),
                _break_even_text(b),
            ]
            for b in report["break_even"]
        ],
    )
    t["knowledge"] = (
        ["adapter", "probes", "adapter right", "base right", "chance", "verdict"],
        [
            [
                mode,
                str(k.get("probes", 0)),
                _pct(k.get("adapter")),
                _pct(k.get("base")),
                _pct(k.get("chance")),
                k.get("flag") or (k.get("note") if "adapter" not in k else "meets the target"),
            ]
            for mode, k in report.get("knowledge", {}).items()  # reports before it have none
        ],
    )
    t["prices"] = (
        ["price", "value", "meaning"],
        [
            [k, "none" if v is None else str(v), report["price_descriptions"].get(k, "")]
            for k, v in report["prices"].items()
        ],
    )
    return t


def _pair_lines(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """One summary line per (adapter, reference): its quality, then the cost without and with
    prefix caching; no break-even where it is significantly less accurate."""
    groups: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for b in rows:
        groups.setdefault((b["adapter"], b["reference"]), []).append(b)
    lines = []
    for (adapter, reference), bs in groups.items():
        if "quality" not in bs[0]:  # stored before quality was compared
            lines += [
                f"{adapter} vs {reference} {_CACHING_LABEL[b['prefix_cached']]}: break-even "
                f"{_break_even_text(b)} (accuracy not compared in this report: see the paired "
                "tests)"
                for b in bs
            ]
            continue
        quality = bs[0]["quality"]["text"]
        if bs[0]["status"] == "less_accurate":
            lines.append(
                f"{adapter} vs {reference}: {quality}: no break-even verdict, a cheaper wrong "
                "answer is no saving."
            )
            continue
        phrases = [(b["prefix_cached"], _cost_phrase(b)) for b in bs]
        if len({p for _, p in phrases}) == 1:
            cost = f"{phrases[0][1]}, with or without prefix caching"
        else:
            cost = ", ".join(f"{p} {_CACHING_LABEL[c]}" for c, p in phrases)
        lines.append(f"{adapter} vs {reference}: {quality}; {cost}.")
    return lines


def _summary_lines(report: Mapping[str, Any]) -> list[str]:
    s = report["summary"]
    meta = report["meta"]
    lines = [f"{k}: {v}" for k, v in meta.items() if k != "title"]
    lines.append(f"{s['n_items']} items; modes: {', '.join(s['modes'])}.")
    lines += (report.get("recommendation") or {}).get("lines", [])
    for m in s["modes"]:
        line = f"{m}: {_acc(report['accuracy'][m]['correct'])} (primary metric)"
        cost = report["per_query_cost"].get(m, {})
        if "usd_per_correct" in cost.get("uncached", {}):
            cold, warm = cost["uncached"], cost["cached"]
            line += f"; {_usd(cold['usd'])} per query, {_per_correct(cold)} per correct answer"
            if warm["usd"] != cold["usd"]:
                line += f" without prefix caching ({_usd(warm['usd'])}, {_per_correct(warm)} with)"
        lines.append(line)
    for m, k in report.get("knowledge", {}).items():
        if "summary" in k:
            lines.append(f"{m} {k['summary']}")
    lines += _pair_lines(report["break_even"])
    return lines


# -- Markdown -----------------------------------------------------------------------------------


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    if not rows:
        return "_none_"
    out = ["| " + " | ".join(_md_cell(h) for h in header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


def _curve_lines(report: Mapping[str, Any]) -> list[str]:
    """The cost curve's lines in words: one-time + per query, per correct answer, quality."""
    cc = report["cost_curve"]
    out = []
    for ln in cc["lines"]:
        text = f"{ln['label']}: {_usd(ln['one_time_usd'])} + {_usd(ln['per_query_usd'])} per query"
        if "accuracy" in ln:
            text += f"; {_pct(ln['accuracy'])} right, {_per_correct(ln)} per correct answer"
        if ln.get("less_accurate"):
            text += f"; significantly less accurate than {cc['best']} (dashed)"
        out.append(text)
    return out


def recommendation_markdown(report: Mapping[str, Any]) -> list[str]:
    """The report's decision at equal quality as Markdown lines: the recommendation in words, its
    table (accuracy against the best mode, cost per query and per correct answer) and the
    break-even rows; for other documents that show a report's verdict (the bench)."""
    lines = [f"- {line}" for line in (report.get("recommendation") or {}).get("lines", [])]
    lines += ["", _md_table(*_tables(report)["recommendation"]), ""]
    lines += [f"- {line}" for line in _pair_lines(report["break_even"])]
    return lines


def render_markdown(report: Mapping[str, Any]) -> str:
    """The report as GitHub-flavoured Markdown: one section per `SECTIONS` entry."""
    tables = _tables(report)
    title = report["meta"].get("title", "Evaluation report")
    parts = [f"# {title}", ""]
    for sid, heading in SECTIONS.items():
        parts += [f"## {heading}", ""]
        if sid == "summary":
            parts += [f"- {line}" for line in _summary_lines(report)]
        elif sid == "cost-curve":
            cc = report["cost_curve"]
            parts.append(
                f"Cumulative cost over 0 to {cc['n_max']:,} queries ({cc['x_scale']} axis), and "
                "the cost per correct answer of each mode; the plot is `cost-curve.png`."
            )
            parts += [f"- {line}" for line in _curve_lines(report)]
        elif sid == "notes":
            parts += [f"- {n}" for n in report["notes"]]
        else:
            parts.append(_md_table(*tables[sid]))
        parts.append("")
    return "\n".join(parts)


# -- HTML ---------------------------------------------------------------------------------------

# The page template lives next to this module (packaged as data), rendered in strict mode.
_TEMPLATE_FILE = Path(__file__).with_name("report.html.jinja")

_ENV = Environment(autoescape=True, undefined=StrictUndefined)
_TEMPLATE = _ENV.from_string(_TEMPLATE_FILE.read_text(encoding="utf-8"))


def render_html(report: Mapping[str, Any], png_bytes: bytes) -> str:
    """A self-contained HTML page: every section, inline CSS, the plot as a base64 data URI."""
    if not png_bytes.startswith(PNG_SIGNATURE):
        raise ValueError("png_bytes is not a PNG image")
    return _TEMPLATE.render(
        title=report["meta"].get("title", "Evaluation report"),
        sections=list(SECTIONS.items()),
        summary=_summary_lines(report),
        notes=report["notes"],
        tables=_tables(report),
        curve_lines=_curve_lines(report),
        png_b64=base64.b64encode(png_bytes).decode("ascii"),
    )


# -- PNG ----------------------------------------------------------------------------------------


def _bars(report: Mapping[str, Any]) -> list[tuple[str, float | None, float | None, bool]]:
    """(label, cost per correct answer, accuracy, significantly less accurate) per mode and
    caching assumption; empty for a report stored before cost per correct answer existed."""
    less = set((report.get("recommendation") or {}).get("less_accurate", []))
    out = []
    for mode, cost in report["per_query_cost"].items():
        if "usd_per_correct" not in cost["uncached"]:
            return []
        acc = report["summary"]["primary_accuracy"].get(mode)
        out.append((mode, cost["uncached"]["usd_per_correct"], acc, mode in less))
        if cost["cached"]["usd"] != cost["uncached"]["usd"]:
            out.append(
                (f"{mode} (prefix caching)", cost["cached"]["usd_per_correct"], acc, mode in less)
            )
    return out


def _withheld_and_never(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """One line per (adapter, reference, outcome) that has no break-even point to mark."""
    groups: dict[tuple[str, str, str], list[bool]] = {}
    for b in rows:
        if b["status"] in ("never", "less_accurate"):
            groups.setdefault((b["adapter"], b["reference"], b["status"]), []).append(
                b["prefix_cached"]
            )
    out = []
    for (adapter, reference, status), cached in groups.items():
        when = "" if len(cached) == 2 else f" ({'cached' if cached[0] else 'uncached'})"
        what = (
            "significantly less accurate, no break-even"
            if status == "less_accurate"
            else "never breaks even"
        )
        out.append(f"{adapter} vs {reference}{when}: {what}")
    return out


def render_cost_curve_png(report: Mapping[str, Any], *, dpi: int = 110) -> bytes:
    """Cumulative cost against the number of queries for base, icl (cached, uncached), rag, each
    adapter and each adapter+rag mode, with every break-even point marked and labelled; modes
    significantly less accurate than the best are dashed. Below it, each mode's cost per
    correct answer. matplotlib's Agg backend, no pyplot state."""
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    cc = report["cost_curve"]
    n_max, log_x = int(cc["n_max"]), cc["x_scale"] == "log"
    xs = np.geomspace(1, n_max, 400) if log_x else np.linspace(0, n_max, 400)
    bars = _bars(report)
    fig = Figure(figsize=(9, 11 if bars else 6.5), dpi=dpi)
    FigureCanvasAgg(fig)
    if bars:
        ax, bx = fig.subplots(2, 1, gridspec_kw={"height_ratios": [3, 2]})
    else:
        ax, bx = fig.add_subplot(), None
    colors: dict[str, str] = {}
    palette = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2"]
    all_y: list[float] = []
    any_less = False
    for line in cc["lines"]:
        color = colors.setdefault(line["mode"], palette[len(colors) % len(palette)])
        ys = [cumulative_cost(line["one_time_usd"], line["per_query_usd"], x) for x in xs]
        all_y += ys
        label = line["label"]
        if "less_accurate" not in line:  # a report stored before quality: dashed = cached
            style, width, alpha = ("--" if line["prefix_cached"] else "-"), 2.0, 1.0
        else:
            any_less |= line["less_accurate"]
            style = "--" if line["less_accurate"] else "-"
            width, alpha = (1.3, 0.65) if line["prefix_cached"] else (2.0, 1.0)
            label += f": {_pct(line['accuracy'])} right, {_per_correct(line)} per correct"
        ax.plot(xs, ys, style, color=color, lw=width, alpha=alpha, label=label)
    log_y = log_x and bool(all_y) and min(all_y) > 0
    marked = 0
    for b in report["break_even"]:
        n = b["n_queries"]
        if b["status"] != "breaks_even" or n is None or n <= 0 or n > n_max:
            continue
        # The exact crossing of the two lines; n* is the first whole query count at or after it.
        ref_once = b.get("reference_one_time_usd", 0.0)
        ref_usd = b.get("reference_per_query_usd", b.get("icl_per_query_usd"))
        x = (b["one_time_usd"] - ref_once) / b["saving_per_query_usd"]
        y = cumulative_cost(ref_once, ref_usd, x)
        if log_x and x < 1:
            continue
        ax.plot([x], [y], "o", ms=8, mfc="white", mec="black", mew=1.5, zorder=5)
        ax.axvline(x, color="grey", lw=0.8, ls=":", zorder=1)
        label = (
            f"{b['adapter']} vs {b['reference']} "
            f"{'cached' if b['prefix_cached'] else 'uncached'}:\nn* = {n:,}"
        )
        # Labels go left of points in the right third of the plot, so they stay inside it.
        right = (math.log(x) / math.log(n_max) if log_x else x / n_max) > 0.66
        ax.annotate(
            label,
            (x, y),
            xytext=(-8 if right else 8, -28 if marked % 2 else 10),
            textcoords="offset points",
            fontsize=8,
            ha="right" if right else "left",
            bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "grey", "alpha": 0.9},
        )
        marked += 1
    unmarked = _withheld_and_never(report["break_even"])
    if unmarked:
        ax.text(
            0.01,
            0.98,
            "\n".join(unmarked),
            transform=ax.transAxes,
            va="top",
            fontsize=8,
            bbox={"boxstyle": "round,pad=0.3", "fc": "#fff4f4", "ec": "#d62728"},
        )
    if log_x:
        ax.set_xscale("log")
    if log_y:
        ax.set_yscale("log")
    ax.set_xlim(xs[0], n_max)
    if not log_y:
        # Headroom above the highest line for the box and the labels.
        ax.set_ylim(0, max(all_y, default=0.0) * 1.25 or 1.0)
    ax.set_xlabel("number of queries" + (" (log scale)" if log_x else ""))
    ax.set_ylabel("cumulative cost (USD)" + (" (log scale)" if log_y else ""))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: _axis_usd(v)))
    ax.set_title("Cumulative cost of each mode (adapters: one-time cost + per query)")
    ax.grid(True, which="major", alpha=0.3)
    if cc["lines"]:
        title = None
        if any_less:
            title = (
                f"dashed: significantly less accurate than {cc['best']} "
                f"(p < {cc.get('alpha', 0.05):g}); thin: with prefix caching"
            )
        # Below the axes, so no line hides behind it.
        ax.legend(
            loc="upper center",
            bbox_to_anchor=(0.5, -0.13),
            ncol=2,
            fontsize=7,
            title=title,
            title_fontsize=7,
            frameon=False,
        )
    if bx is not None:
        _draw_bars(bx, bars, colors, palette)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _draw_bars(
    bx: Axes,
    bars: Sequence[tuple[str, float | None, float | None, bool]],
    colors: dict[str, str],
    palette: Sequence[str],
) -> None:
    """Horizontal bars of cost per correct answer; hatched where significantly less accurate."""
    from matplotlib.ticker import FuncFormatter

    values = [v for _, v, _, _ in bars if v]
    top = max(values, default=1.0)
    log = bool(values) and top / min(values) > 100
    for i, (label, value, acc, less) in enumerate(bars):
        mode = label.removesuffix(" (prefix caching)")
        color = colors.setdefault(mode, palette[len(colors) % len(palette)])
        width = value if value else 0.0
        bx.barh(
            i,
            width,
            color=color,
            alpha=0.45 if less else 0.9,
            hatch="//" if less else None,
            edgecolor="black" if less else color,
        )
        text = (
            "no correct answers"
            if value is None
            else f"{_usd(value)} ({_pct(acc)} right"
            + ("; significantly less accurate)" if less else ")")
        )
        x0 = value if value else (min(values) if log and values else 0.0)
        bx.text(x0, i, "  " + text, va="center", fontsize=7)
    bx.set_yticks(range(len(bars)), [label for label, _, _, _ in bars], fontsize=8)
    bx.invert_yaxis()
    if log:
        bx.set_xscale("log")
        bx.set_xlim(min(values) / 2, top * 30)
    else:
        bx.set_xlim(0, top * 1.6)
    bx.xaxis.set_major_formatter(FuncFormatter(lambda v, _: _axis_usd(v)))
    bx.set_xlabel("USD per correct answer (cost per query / accuracy; one-time costs excluded)")
    bx.set_title("Cost per correct answer (hatched: significantly less accurate)", fontsize=10)
    bx.grid(True, axis="x", alpha=0.3)
