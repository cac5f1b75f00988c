"""How the report writes numbers, money and verdicts: the words every part of it shares.

The JSON keeps the numbers; these turn them into the sentences and table cells that the JSON
(`quality.text`, `verdict`), the Markdown, the HTML and the plot all show.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from service.evaluate.stats import CONFIDENCE

# The two caching assumptions every cost is computed under: the JSON key and the words.
KEYS = {False: "uncached", True: "cached"}
CACHING_LABEL = {False: "without prefix caching", True: "with prefix caching"}
VERDICT_WORDS = {
    "best": "most accurate",
    "better": "significantly more accurate",
    "within_margin": "at least as accurate, within the margin",
    "not_shown_within_margin": "not significantly less accurate; not shown within the margin",
    "worse": "significantly less accurate",
    "unknown": "not compared",
}


def pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def pp(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:+.1f}"


def acc(a: Mapping[str, Any]) -> str:
    if not a["n"]:
        return "n/a"
    interval = f"[{pct(a['ci_low'])}, {pct(a['ci_high'])}]"
    return f"{pct(a['accuracy'])} {interval} ({a['correct']}/{a['n']})"


def usd(x: float | None) -> str:
    if x is None:
        return "n/a"
    if x == 0:
        return "$0"
    if abs(x) >= 100:
        return f"${x:,.2f}"
    if abs(x) >= 0.01:
        return f"${x:.4f}"
    return f"${x:.3g}"


def num(x: float | None, digits: int = 1) -> str:
    return "n/a" if x is None else f"{x:,.{digits}f}"


def secs(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f} s"


def p_value(x: float | None) -> str:
    if x is None:
        return "n/a"
    return f"{x:.3g}" if x >= 0.001 else f"{x:.2e}"


def per_correct(cost: Mapping[str, Any]) -> str:
    if "usd_per_correct" not in cost:  # a report stored before it existed
        return "n/a"
    value = cost["usd_per_correct"]
    return "n/a (no correct answers)" if value is None else usd(value)


def difference_text(q: Mapping[str, Any]) -> str:
    """'18.3% vs 100.0%: -81.7 pp, 95% CI [-90.0, -71.4], p = 3.55e-15'."""
    text = f"{pct(q.get('accuracy_mode'))} vs {pct(q.get('accuracy_reference'))}"
    if q.get("difference") is None:
        return text
    text += f": {pp(q['difference'])} pp"
    if q.get("ci_low") is not None:
        conf = f"{100 * q.get('confidence', CONFIDENCE):g}%"
        text += f", {conf} CI [{pp(q['ci_low'])}, {pp(q['ci_high'])}]"
    return text + f", p = {p_value(q.get('p_value'))}"


def quality_text(q: Mapping[str, Any]) -> str:
    """A quality verdict in words, with the numbers it rests on."""
    margin = f"{100 * q['margin']:g} pp"
    numbers = difference_text(q)
    return {
        "worse": f"significantly less accurate ({numbers})",
        "better": f"significantly more accurate ({numbers})",
        "within_margin": f"at least as accurate, within the {margin} margin ({numbers})",
        "not_shown_within_margin": (
            f"not significantly less accurate, but not shown to be within the {margin} margin "
            f"({numbers})"
        ),
        "unknown": "accuracy not compared (no items scored under both)",
    }[q["verdict"]]


def cost_phrase(b: Mapping[str, Any]) -> str:
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


def row_verdict(b: Mapping[str, Any]) -> str:
    """A break-even row's verdict: its quality, then its cost unless it is less accurate."""
    q = b["quality"]["text"]
    if b["status"] == "less_accurate":
        return f"{q}: no break-even verdict, a cheaper wrong answer is no saving"
    return f"{q}; {cost_phrase(b)}"


def break_even_text(b: Mapping[str, Any]) -> str:
    if b["status"] == "less_accurate":
        return "none: significantly less accurate"
    if b["status"] == "unknown":
        return "unknown (no cost records)"
    if b["status"] == "never":
        return "never (adapter not cheaper per query)"
    return f"{b['n_queries']:,} queries"
