"""The cost-curve PNG: cumulative cost against the number of queries, and below it each mode's
cost per correct answer. matplotlib's Agg backend, no pyplot state; imported on first use."""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from service.report import formatting as fmt
from service.report.costs import cumulative_cost

if TYPE_CHECKING:
    from matplotlib.axes import Axes

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2"]
_Bar = tuple[str, float | None, float | None, bool]


def render_cost_curve_png(report: Mapping[str, Any], *, dpi: int = 110) -> bytes:
    """Cumulative cost against the number of queries for base, icl (cached, uncached), rag, each
    adapter and each adapter+rag mode, with every break-even point marked and labelled; modes
    significantly less accurate than the best are dashed. Below it, each mode's cost per
    correct answer. matplotlib's Agg backend, no pyplot state."""
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

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
    all_y, any_less = _draw_lines(ax, cc["lines"], xs, colors)
    log_y = log_x and bool(all_y) and min(all_y) > 0
    _mark_break_evens(ax, report["break_even"], n_max, log_x)
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
    _style_axes(ax, xs[0], n_max, log_x, log_y, all_y)
    if cc["lines"]:
        _legend(ax, cc, any_less)
    if bx is not None:
        _draw_bars(bx, bars, colors)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _draw_lines(
    ax: Axes, lines: Sequence[Mapping[str, Any]], xs: Sequence[float], colors: dict[str, str]
) -> tuple[list[float], bool]:
    """One cumulative cost line per curve line, a colour per mode; every y drawn, and whether
    any mode is significantly less accurate (dashed)."""
    all_y: list[float] = []
    any_less = False
    for line in lines:
        color = colors.setdefault(line["mode"], _PALETTE[len(colors) % len(_PALETTE)])
        ys = [cumulative_cost(line["one_time_usd"], line["per_query_usd"], x) for x in xs]
        all_y += ys
        label = line["label"]
        if "less_accurate" not in line:  # a report stored before quality: dashed = cached
            style, width, alpha = ("--" if line["prefix_cached"] else "-"), 2.0, 1.0
        else:
            any_less |= line["less_accurate"]
            style = "--" if line["less_accurate"] else "-"
            width, alpha = (1.3, 0.65) if line["prefix_cached"] else (2.0, 1.0)
            label += f": {fmt.pct(line['accuracy'])} right, {fmt.per_correct(line)} per correct"
        ax.plot(xs, ys, style, color=color, lw=width, alpha=alpha, label=label)
    return all_y, any_less


def _mark_break_evens(ax: Axes, rows: Sequence[Mapping[str, Any]], n_max: int, log_x: bool) -> None:
    """A labelled point at each break-even inside the plot."""
    marked = 0
    for b in rows:
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


def _style_axes(
    ax: Axes, x0: float, n_max: int, log_x: bool, log_y: bool, all_y: Sequence[float]
) -> None:
    from matplotlib.ticker import FuncFormatter

    if log_x:
        ax.set_xscale("log")
    if log_y:
        ax.set_yscale("log")
    ax.set_xlim(x0, n_max)
    if not log_y:
        # Headroom above the highest line for the box and the labels.
        ax.set_ylim(0, max(all_y, default=0.0) * 1.25 or 1.0)
    ax.set_xlabel("number of queries" + (" (log scale)" if log_x else ""))
    ax.set_ylabel("cumulative cost (USD)" + (" (log scale)" if log_y else ""))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: _axis_usd(v)))
    ax.set_title("Cumulative cost of each mode (adapters: one-time cost + per query)")
    ax.grid(True, which="major", alpha=0.3)


def _legend(ax: Axes, cc: Mapping[str, Any], any_less: bool) -> None:
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


def _axis_usd(x: float) -> str:
    if not math.isfinite(x):
        return ""
    if x == 0 or abs(x) >= 1e-6:
        return "$" + f"{x:,.6f}".rstrip("0").rstrip(".")
    return f"${x:.1e}"


def _bars(report: Mapping[str, Any]) -> list[_Bar]:
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


def _draw_bars(bx: Axes, bars: Sequence[_Bar], colors: dict[str, str]) -> None:
    """Horizontal bars of cost per correct answer; hatched where significantly less accurate."""
    from matplotlib.ticker import FuncFormatter

    values = [v for _, v, _, _ in bars if v]
    top = max(values, default=1.0)
    log = bool(values) and top / min(values) > 100
    for i, (label, value, acc, less) in enumerate(bars):
        mode = label.removesuffix(" (prefix caching)")
        color = colors.setdefault(mode, _PALETTE[len(colors) % len(_PALETTE)])
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
            else f"{fmt.usd(value)} ({fmt.pct(acc)} right"
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
