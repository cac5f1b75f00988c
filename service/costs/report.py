"""The evaluation report: one JSON-serialisable dict, rendered as Markdown, HTML or a PNG plot.

`build_report` is the only place numbers are computed; the renderers only format what the dict
holds, so the JSON, Markdown, HTML and plot always agree.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from jinja2 import Environment, StrictUndefined

from service.costs.model import (
    PRICE_DESCRIPTIONS,
    AdapterCostInputs,
    Prices,
    QueryProfile,
    break_even_queries,
    cumulative_cost,
    curve_plan,
    one_time_cost,
    per_query_cost,
)
from service.evaluate.scoring import METRIC_LABELS, ItemResult, LatencyProbe
from service.evaluate.stats import CONFIDENCE, compute_stats

REPORT_SCHEMA = "docadapt.evaluation-report/1"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Section ids, in order; the HTML has one element per id, the Markdown one heading per title.
SECTIONS = {
    "summary": "Summary",
    "accuracy": "Accuracy",
    "categories": "Accuracy by category",
    "paired-tests": "Paired tests",
    "knowledge": "Knowledge check: does each adapter know its documents?",
    "usage": "Tokens and latency per query",
    "per-query-cost": "Cost per query",
    "one-time-cost": "One-time cost of each adapter",
    "break-even": "Break-even",
    "cost-curve": "Cumulative cost",
    "prices": "Prices used",
    "notes": "Assumptions and notes",
}
_CACHING_LABEL = {False: "without prefix caching", True: "with prefix caching"}
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
    """
    if not results:
        raise ValueError("no results to report on")
    adapters = adapters or {}
    latency = latency or {}
    stats = compute_stats(results, confidence)
    notes: list[str] = []

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
        per_query[mode] = {
            ("cached" if c else "uncached"): asdict(
                per_query_cost(profile, prices, prefix_cached=c)
            )
            for c in (False, True)
        }

    adapter_modes = [m for m in stats.modes if stats.mode_kinds[m] in TRAINED_KINDS]
    icl = next((m for m in stats.modes if stats.mode_kinds[m] == "icl"), None)
    rag = next((m for m in stats.modes if stats.mode_kinds[m] == "rag"), None)
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

    break_even: list[dict[str, Any]] = []
    if icl is None:
        notes.append("No icl mode was evaluated, so there is no break-even against ICL.")
    else:
        for mode in adapter_modes:
            for cached in (False, True):
                key = "cached" if cached else "uncached"
                a = per_query[mode][key]["usd"]
                i = per_query[icl][key]["usd"]
                entry: dict[str, Any] = {
                    "adapter": mode,
                    "reference": icl,
                    "prefix_cached": cached,
                    "assumption": f"ICL {_CACHING_LABEL[cached]}",
                    "adapter_per_query_usd": a,
                    "icl_per_query_usd": i,
                    "saving_per_query_usd": i - a,
                }
                if mode not in one_time:
                    entry |= {"one_time_usd": None, "n_queries": None, "status": "unknown"}
                else:
                    n = break_even_queries(one_time[mode]["total_usd"], a, i)
                    entry |= {
                        "one_time_usd": one_time[mode]["total_usd"],
                        "n_queries": n,
                        "status": "never" if n is None else "breaks_even",
                    }
                break_even.append(entry)

    n_max, x_scale = curve_plan([b["n_queries"] for b in break_even])
    lines: list[dict[str, Any]] = []
    if icl is not None:
        for cached in (False, True):
            lines.append(
                {
                    "label": f"{icl} ({_CACHING_LABEL[cached]})",
                    "mode": icl,
                    "prefix_cached": cached,
                    "one_time_usd": 0.0,
                    "per_query_usd": per_query[icl]["cached" if cached else "uncached"]["usd"],
                }
            )
    drawn = ([rag] if rag is not None else []) + [m for m in adapter_modes if m in one_time]
    for mode in drawn:
        uncached, cached_usd = (per_query[mode][k]["usd"] for k in ("uncached", "cached"))
        # rag's, an adapter's and adapter+rag's prompts have no shared document prefix: their two
        # figures differ only when latency is priced (cold vs warm), and then both are drawn.
        variants = [(False, uncached)] + ([(True, cached_usd)] if cached_usd != uncached else [])
        for cached, usd in variants:
            label = mode if len(variants) == 1 else f"{mode} ({_CACHING_LABEL[cached]})"
            lines.append(
                {
                    "label": label,
                    "mode": mode,
                    "prefix_cached": cached,
                    "one_time_usd": one_time[mode]["total_usd"] if mode in one_time else 0.0,
                    "per_query_usd": usd,
                }
            )
    if rag is not None:
        notes.extend(_against_rag(stats.modes, stats.mode_kinds, rag, per_query, one_time))

    notes.extend(_standing_notes(prices))
    n_items = len({r.item_id for r in results})
    return {
        "schema": REPORT_SCHEMA,
        "meta": dict(meta or {}),
        "summary": {
            "n_items": n_items,
            "modes": stats.modes,
            "mode_kinds": stats.mode_kinds,
            "metrics": stats.metrics,
            "metric_labels": {m: METRIC_LABELS[m] for m in stats.metrics},
            "confidence": confidence,
            "primary_accuracy": {m: stats.accuracy[m]["correct"].accuracy for m in stats.modes},
        },
        "accuracy": {
            m: {k: a.model_dump() for k, a in v.items()} for m, v in stats.accuracy.items()
        },
        "accuracy_by_category": {
            m: {c: {k: a.model_dump() for k, a in cv.items()} for c, cv in v.items()}
            for m, v in stats.by_category.items()
        },
        "paired_tests": [t.model_dump() for t in stats.paired],
        "knowledge": {m: dict(k) for m, k in (knowledge or {}).items()},
        "usage": usage,
        "per_query_cost": per_query,
        "one_time_cost": one_time,
        "break_even": break_even,
        "cost_curve": {"n_max": n_max, "x_scale": x_scale, "lines": lines},
        "prices": prices.to_dict(),
        "price_descriptions": PRICE_DESCRIPTIONS,
        "notes": notes,
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


def _standing_notes(prices: Prices) -> list[str]:
    notes = [
        "Multiple-choice items are scored by the log-likelihood of each choice as a continuation "
        "of the prompt, choices not shown (Lampinen et al. 2025); mc_sum decides by the summed "
        "log-likelihood, mc_norm by the per-token mean. The primary metric ('correct') is mc_sum "
        "for multiple choice and normalized exact match for generation.",
        "Intervals are 95% Wilson score intervals; paired tests are exact McNemar tests on the "
        "items both modes scored.",
        "Tokens per query are measured means: for multiple choice, the prompt (context and "
        "question) and the correct answer's tokens as the completion; for generation, vLLM's "
        "usage counts.",
        "Without prefix caching every prompt token is priced at the input price and latency is "
        "cold; with prefix caching the shared document prefix (icl) is priced at the "
        "cached-input price on every query (steady state) and latency is warm. rag and "
        "adapter+rag prompts carry each question's own passages, which no other question "
        "shares, so they are priced at the input price either way.",
        "An adapter+rag mode (an adapter with rag's passages in its prompt) pays its adapter's "
        "one-time cost and, per query, its measured prompt and completion tokens, as rag does.",
        "One-time cost = augmentation teacher tokens at token prices + training wall time at "
        "the hourly price of its hardware + training tokens at the training token price.",
        "Break-even n* = ceil(one-time cost / (ICL per-query cost - adapter per-query cost)), "
        "for each adapter and adapter+rag mode: from n* queries on its total is at most ICL's; "
        "'never' when it is not cheaper per query.",
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


def _p(x: float) -> str:
    return f"{x:.3g}" if x >= 0.001 else f"{x:.2e}"


def _break_even_text(b: Mapping[str, Any]) -> str:
    if b["status"] == "unknown":
        return "unknown (no cost records)"
    if b["status"] == "never":
        return "never (adapter not cheaper per query)"
    return f"{b['n_queries']:,} queries"


def _tables(report: Mapping[str, Any]) -> dict[str, tuple[list[str], list[list[str]]]]:
    """Every table of the report as (header, rows) of strings, shared by Markdown and HTML."""
    s = report["summary"]
    modes, metrics = s["modes"], s["metrics"]
    kinds = s["mode_kinds"]
    t: dict[str, tuple[list[str], list[list[str]]]] = {}
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
            "p-value",
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
                _pct(p["difference"]),
                _p(p["p_value"]),
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
            "without prefix caching",
            "with prefix caching",
            "assumption (uncached)",
            "assumption (cached)",
        ],
        [
            [
                m,
                _usd(c["uncached"]["usd"]),
                _usd(c["cached"]["usd"]),
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
            "assumption",
            "one-time",
            "adapter per query",
            "ICL per query",
            "saving per query",
            "break-even",
        ],
        [
            [
                b["adapter"],
                b["reference"],
                b["assumption"],
                _usd(b["one_time_usd"]),
                _usd(b["adapter_per_query_usd"]),
                _usd(b["icl_per_query_usd"]),
                _usd(b["saving_per_query_usd"]),
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


def _summary_lines(report: Mapping[str, Any]) -> list[str]:
    s = report["summary"]
    meta = report["meta"]
    lines = [f"{k}: {v}" for k, v in meta.items() if k != "title"]
    lines.append(f"{s['n_items']} items; modes: {', '.join(s['modes'])}.")
    for m in s["modes"]:
        lines.append(f"{m}: {_acc(report['accuracy'][m]['correct'])} (primary metric)")
    for m, k in report.get("knowledge", {}).items():
        if "summary" in k:
            lines.append(f"{m} {k['summary']}")
    for b in report["break_even"]:
        lines.append(
            f"{b['adapter']} vs {b['reference']} {_CACHING_LABEL[b['prefix_cached']]}: "
            f"break-even {_break_even_text(b)}"
        )
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
                f"Cumulative cost over 0 to {cc['n_max']:,} queries ({cc['x_scale']} axis); "
                "the plot is `cost-curve.png`."
            )
            parts += [
                f"- {ln['label']}: {_usd(ln['one_time_usd'])} + {_usd(ln['per_query_usd'])} "
                "per query"
                for ln in cc["lines"]
            ]
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
        png_b64=base64.b64encode(png_bytes).decode("ascii"),
    )


# -- PNG ----------------------------------------------------------------------------------------


def render_cost_curve_png(report: Mapping[str, Any], *, dpi: int = 110) -> bytes:
    """Cumulative cost against the number of queries for ICL (cached, uncached), rag, each adapter
    and each adapter+rag mode, with every break-even point (against ICL) marked and labelled.
    matplotlib's Agg backend, no pyplot state."""
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    cc = report["cost_curve"]
    n_max, log_x = int(cc["n_max"]), cc["x_scale"] == "log"
    xs = np.geomspace(1, n_max, 400) if log_x else np.linspace(0, n_max, 400)
    fig = Figure(figsize=(9, 5.5), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    styles = {True: "--", False: "-"}
    colors: dict[str, str] = {}
    palette = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2"]
    all_y: list[float] = []
    for line in cc["lines"]:
        color = colors.setdefault(line["mode"], palette[len(colors) % len(palette)])
        ys = [cumulative_cost(line["one_time_usd"], line["per_query_usd"], x) for x in xs]
        all_y += ys
        ax.plot(xs, ys, styles[line["prefix_cached"]], color=color, lw=2, label=line["label"])
    log_y = log_x and bool(all_y) and min(all_y) > 0
    marked = 0
    for b in report["break_even"]:
        n = b["n_queries"]
        if n is None or n <= 0 or n > n_max:
            continue
        # The exact crossing of the two lines; n* is the first whole query count at or after it.
        x = b["one_time_usd"] / b["saving_per_query_usd"]
        y = cumulative_cost(0.0, b["icl_per_query_usd"], x)
        if log_x and x < 1:
            continue
        ax.plot([x], [y], "o", ms=8, mfc="white", mec="black", mew=1.5, zorder=5)
        ax.axvline(x, color="grey", lw=0.8, ls=":", zorder=1)
        label = (
            f"{b['adapter']} vs ICL {'cached' if b['prefix_cached'] else 'uncached'}:\nn* = {n:,}"
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
    never = [b for b in report["break_even"] if b["status"] == "never"]
    if never:
        text = "\n".join(
            f"{b['adapter']} vs ICL {'cached' if b['prefix_cached'] else 'uncached'}: "
            "never breaks even"
            for b in never
        )
        ax.text(
            0.01,
            0.98,
            text,
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
        # Headroom above the highest line for the "never" box and the labels.
        ax.set_ylim(0, max(all_y, default=0.0) * 1.25 or 1.0)
    ax.set_xlabel("number of queries" + (" (log scale)" if log_x else ""))
    ax.set_ylabel("cumulative cost (USD)" + (" (log scale)" if log_y else ""))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: _axis_usd(v)))
    ax.set_title("Cumulative cost: adapters and retrieval (rag) vs. documents in context (ICL)")
    ax.grid(True, which="major", alpha=0.3)
    if cc["lines"]:
        ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
