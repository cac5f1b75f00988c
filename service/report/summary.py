"""The report's sentences, shared by the Markdown and the HTML: the summary, one line per
adapter and reference, and the cost curve in words."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from service.report import formatting as fmt


def summary_lines(report: Mapping[str, Any]) -> list[str]:
    """The summary: the meta, the recommendation, each mode's accuracy and cost, each
    adapter's knowledge check and each pair's verdict."""
    s = report["summary"]
    meta = report["meta"]
    lines = [f"{k}: {v}" for k, v in meta.items() if k != "title"]
    lines.append(f"{s['n_items']} items; modes: {', '.join(s['modes'])}.")
    lines += (report.get("recommendation") or {}).get("lines", [])
    for m in s["modes"]:
        line = f"{m}: {fmt.acc(report['accuracy'][m]['correct'])} (primary metric)"
        cost = report["per_query_cost"].get(m, {})
        if "usd_per_correct" in cost.get("uncached", {}):
            cold, warm = cost["uncached"], cost["cached"]
            line += (
                f"; {fmt.usd(cold['usd'])} per query, {fmt.per_correct(cold)} per correct answer"
            )
            if warm["usd"] != cold["usd"]:
                line += (
                    f" without prefix caching ({fmt.usd(warm['usd'])}, "
                    f"{fmt.per_correct(warm)} with)"
                )
        lines.append(line)
    for m, k in report.get("knowledge", {}).items():
        if "summary" in k:
            lines.append(f"{m} {k['summary']}")
    lines += pair_lines(report["break_even"])
    return lines


def pair_lines(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """One summary line per (adapter, reference): its quality, then the cost without and with
    prefix caching; no break-even where it is significantly less accurate."""
    groups: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for b in rows:
        groups.setdefault((b["adapter"], b["reference"]), []).append(b)
    lines = []
    for (adapter, reference), bs in groups.items():
        if "quality" not in bs[0]:  # stored before quality was compared
            lines += [
                f"{adapter} vs {reference} {fmt.CACHING_LABEL[b['prefix_cached']]}: break-even "
                f"{fmt.break_even_text(b)} (accuracy not compared in this report: see the paired "
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
        phrases = [(b["prefix_cached"], fmt.cost_phrase(b)) for b in bs]
        if len({p for _, p in phrases}) == 1:
            cost = f"{phrases[0][1]}, with or without prefix caching"
        else:
            cost = ", ".join(f"{p} {fmt.CACHING_LABEL[c]}" for c, p in phrases)
        lines.append(f"{adapter} vs {reference}: {quality}; {cost}.")
    return lines


def curve_lines(report: Mapping[str, Any]) -> list[str]:
    """The cost curve's lines in words: one-time + per query, per correct answer, quality."""
    cc = report["cost_curve"]
    out = []
    for ln in cc["lines"]:
        text = (
            f"{ln['label']}: {fmt.usd(ln['one_time_usd'])} + {fmt.usd(ln['per_query_usd'])} "
            "per query"
        )
        if "accuracy" in ln:
            text += f"; {fmt.pct(ln['accuracy'])} right, {fmt.per_correct(ln)} per correct answer"
        if ln.get("less_accurate"):
            text += f"; significantly less accurate than {cc['best']} (dashed)"
        out.append(text)
    return out
