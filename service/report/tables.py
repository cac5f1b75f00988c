"""The report's sections and their tables, shared by the Markdown and the HTML.

Each table is (header, rows) of strings. Reports stored before schema /2 lack some fields: their
cells read "n/a" (or the old field).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from service.evaluate.stats import CONFIDENCE
from service.report import formatting as fmt
from service.report.build import QUALITY_MARGIN

Table = tuple[list[str], list[list[str]]]

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


def tables(report: Mapping[str, Any]) -> dict[str, Table]:
    """Every table of the report, by section id."""
    return {sid: make(report) for sid, make in _TABLES.items()}


def _confidence(report: Mapping[str, Any]) -> str:
    return f"{100 * report['summary'].get('confidence', CONFIDENCE):g}%"


def recommendation_table(report: Mapping[str, Any]) -> Table:
    """Each mode against the best: candidates first, cheapest first; then the rest, most
    accurate first."""
    rec = report.get("recommendation") or {}
    rows = []
    if rec.get("best") is not None:
        table = rec["modes"]

        def order(m: str) -> tuple[int, float]:
            e = table[m]
            if e["candidate"]:
                return (0, e["per_query_usd"]["uncached"])
            return (1, -(e["accuracy"] or 0.0))

        cheapest = {m for m in rec["recommended"].values() if m is not None}
        rows = [
            _recommendation_row(m, table[m], rec["best"], cheapest)
            for m in sorted(table, key=order)
        ]
    best = rec.get("best", "the most accurate")
    header = [
        "mode",
        "kind",
        "accuracy",
        f"difference from {best}",
        f"{_confidence(report)} CI",
        "p-value",
        f"against {best} (p < {rec.get('alpha', 0.05):g}, margin "
        f"{100 * rec.get('margin', QUALITY_MARGIN):g} pp)",
        "per query (no caching)",
        "per correct answer (no caching)",
        "per query (prefix caching)",
        "per correct answer (prefix caching)",
        "one-time",
        "",
    ]
    return header, rows


def _recommendation_row(m: str, e: Mapping[str, Any], best: str, cheapest: set[str]) -> list[str]:
    return [
        m,
        e["kind"],
        f"{fmt.pct(e['accuracy'])} ({e['correct']}/{e['n']})",
        "-" if m == best else f"{fmt.pp(e['difference'])} pp",
        "-" if e["ci_low"] is None else f"[{fmt.pp(e['ci_low'])}, {fmt.pp(e['ci_high'])}] pp",
        "-" if m == best else fmt.p_value(e["p_value"]),
        fmt.VERDICT_WORDS[e["verdict"]],
        fmt.usd(e["per_query_usd"]["uncached"]),
        fmt.usd(e["per_correct_usd"]["uncached"]),
        fmt.usd(e["per_query_usd"]["cached"]),
        fmt.usd(e["per_correct_usd"]["cached"]),
        fmt.usd(e["one_time_usd"]),
        "recommended" if m in cheapest else "",
    ]


def accuracy_table(report: Mapping[str, Any]) -> Table:
    s = report["summary"]
    metrics = s["metrics"]
    return (
        ["mode", "kind"] + [s["metric_labels"][m] for m in metrics],
        [
            [m, s["mode_kinds"][m]] + [fmt.acc(report["accuracy"][m][k]) for k in metrics]
            for m in s["modes"]
        ],
    )


def categories_table(report: Mapping[str, Any]) -> Table:
    s = report["summary"]
    metrics = s["metrics"]
    rows = []
    for m in s["modes"]:
        for cat, accs in report["accuracy_by_category"][m].items():
            rows.append([m, cat] + [fmt.acc(accs[k]) for k in metrics])
    return ["mode", "category"] + [s["metric_labels"][m] for m in metrics], rows


def paired_tests_table(report: Mapping[str, Any]) -> Table:
    header = [
        "mode",
        "reference",
        "metric",
        "n",
        "both right",
        "only mode",
        "only reference",
        "both wrong",
        "difference",
        f"{_confidence(report)} CI",
        "p-value",
        "verdict",
    ]
    rows = [
        [
            p["mode"],
            p["reference"],
            p["metric"],
            str(p["n"]),
            str(p["both_correct"]),
            str(p["only_mode"]),
            str(p["only_reference"]),
            str(p["both_wrong"]),
            "n/a" if p["difference"] is None else f"{fmt.pp(p['difference'])} pp",
            "n/a"
            if p.get("ci_low") is None
            else f"[{fmt.pp(p['ci_low'])}, {fmt.pp(p['ci_high'])}] pp",
            fmt.p_value(p["p_value"]),
            fmt.VERDICT_WORDS[p["verdict"]] if "verdict" in p else "",
        ]
        for p in report["paired_tests"]
    ]
    return header, rows


def usage_table(report: Mapping[str, Any]) -> Table:
    header = [
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
    ]
    rows = [
        [
            m,
            str(u["n"]),
            str(u["errors"]),
            fmt.num(u["mean_prompt_tokens"]),
            fmt.num(u["mean_cacheable_tokens"]),
            fmt.num(u["mean_completion_tokens"]),
            fmt.secs(u["latency_p50_s"]),
            fmt.secs(u["latency_p95_s"]),
            fmt.secs(u["latency_cold_s"]),
            fmt.secs(u["latency_warm_s"]),
            u["latency_source"],
        ]
        for m, u in report["usage"].items()
    ]
    return header, rows


def per_query_cost_table(report: Mapping[str, Any]) -> Table:
    header = [
        "mode",
        "accuracy",
        "without prefix caching",
        "per correct answer",
        "with prefix caching",
        "per correct answer (cached)",
        "assumption (uncached)",
        "assumption (cached)",
    ]
    rows = [
        [
            m,
            fmt.pct(report["summary"]["primary_accuracy"].get(m)),
            fmt.usd(c["uncached"]["usd"]),
            fmt.per_correct(c["uncached"]),
            fmt.usd(c["cached"]["usd"]),
            fmt.per_correct(c["cached"]),
            c["uncached"]["assumption"],
            c["cached"]["assumption"],
        ]
        for m, c in report["per_query_cost"].items()
    ]
    return header, rows


def one_time_cost_table(report: Mapping[str, Any]) -> Table:
    header = [
        "adapter",
        "teacher tokens",
        "training compute",
        "training tokens",
        "total",
        "teacher prompt / cached / completion tokens",
        "training tokens",
        "training wall time",
    ]
    rows = []
    for m, c in report["one_time_cost"].items():
        inputs = c["inputs"]
        rows.append(
            [
                m,
                fmt.usd(c["teacher_usd"]),
                fmt.usd(c["training_compute_usd"]),
                fmt.usd(c["training_tokens_usd"]),
                fmt.usd(c["total_usd"]),
                f"{inputs['teacher_prompt_tokens']:,} / "
                f"{inputs['teacher_cached_prompt_tokens']:,} / "
                f"{inputs['teacher_completion_tokens']:,}",
                f"{inputs['training_tokens']:,}",
                f"{inputs['training_wall_s']:.1f} s on {inputs['training_hardware']}",
            ]
        )
    return header, rows


def break_even_table(report: Mapping[str, Any]) -> Table:
    header = [
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
    ]
    rows = [
        [
            b["adapter"],
            b["reference"],
            b["quality"]["text"]
            if "quality" in b
            else "not compared (report stored before quality checks)",
            b["assumption"],
            fmt.usd(b["one_time_usd"]),
            fmt.usd(b.get("reference_one_time_usd", 0.0)),
            fmt.usd(b["adapter_per_query_usd"]),
            fmt.usd(b.get("reference_per_query_usd", b.get("icl_per_query_usd"))),
            fmt.usd(b["saving_per_query_usd"]),
            fmt.usd(b.get("adapter_per_correct_usd")),
            fmt.usd(b.get("reference_per_correct_usd")),
            fmt.break_even_text(b),
        ]
        for b in report["break_even"]
    ]
    return header, rows


def knowledge_table(report: Mapping[str, Any]) -> Table:
    return (
        ["adapter", "probes", "adapter right", "base right", "chance", "verdict"],
        [
            [
                mode,
                str(k.get("probes", 0)),
                fmt.pct(k.get("adapter")),
                fmt.pct(k.get("base")),
                fmt.pct(k.get("chance")),
                k.get("flag") or (k.get("note") if "adapter" not in k else "meets the target"),
            ]
            for mode, k in report.get("knowledge", {}).items()  # reports before it have none
        ],
    )


def prices_table(report: Mapping[str, Any]) -> Table:
    return (
        ["price", "value", "meaning"],
        [
            [k, "none" if v is None else str(v), report["price_descriptions"].get(k, "")]
            for k, v in report["prices"].items()
        ],
    )


# The sections that are a table (the others are lines of text), by section id.
_TABLES: dict[str, Callable[[Mapping[str, Any]], Table]] = {
    "recommendation": recommendation_table,
    "accuracy": accuracy_table,
    "categories": categories_table,
    "paired-tests": paired_tests_table,
    "usage": usage_table,
    "per-query-cost": per_query_cost_table,
    "one-time-cost": one_time_cost_table,
    "break-even": break_even_table,
    "knowledge": knowledge_table,
    "prices": prices_table,
}
