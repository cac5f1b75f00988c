"""The report as GitHub-flavoured Markdown."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from service.report.summary import curve_lines, pair_lines, summary_lines
from service.report.tables import SECTIONS, recommendation_table, tables


def render_markdown(report: Mapping[str, Any]) -> str:
    """The report as GitHub-flavoured Markdown: one section per `SECTIONS` entry."""
    by_id = tables(report)
    title = report["meta"].get("title", "Evaluation report")
    parts = [f"# {title}", ""]
    for sid, heading in SECTIONS.items():
        parts += [f"## {heading}", ""]
        if sid == "summary":
            parts += [f"- {line}" for line in summary_lines(report)]
        elif sid == "cost-curve":
            cc = report["cost_curve"]
            parts.append(
                f"Cumulative cost over 0 to {cc['n_max']:,} queries ({cc['x_scale']} axis), and "
                "the cost per correct answer of each mode; the plot is `cost-curve.png`."
            )
            parts += [f"- {line}" for line in curve_lines(report)]
        elif sid == "notes":
            parts += [f"- {n}" for n in report["notes"]]
        else:
            parts.append(md_table(*by_id[sid]))
        parts.append("")
    return "\n".join(parts)


def recommendation_markdown(report: Mapping[str, Any]) -> list[str]:
    """The report's decision at equal quality as Markdown lines: the recommendation in words, its
    table (accuracy against the best mode, cost per query and per correct answer) and the
    break-even rows; for other documents that show a report's verdict (the bench)."""
    lines = [f"- {line}" for line in (report.get("recommendation") or {}).get("lines", [])]
    lines += ["", md_table(*recommendation_table(report)), ""]
    lines += [f"- {line}" for line in pair_lines(report["break_even"])]
    return lines


def md_table(header: list[str], rows: list[list[str]]) -> str:
    """A Markdown table; `_none_` when it has no rows."""
    if not rows:
        return "_none_"
    out = ["| " + " | ".join(_md_cell(h) for h in header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
