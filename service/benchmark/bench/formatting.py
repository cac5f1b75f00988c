"""How the bench writes a cell, a p-value, a paired test, a share and seconds, in Markdown and in
the terminal alike."""

from __future__ import annotations

from typing import Any


def format_cell(value: dict[str, Any] | None) -> str:
    """ "acc% [lo-hi]" in whole percent (one run), "mean% (min-max)" over several seeds, or "-"
    for a dropped column."""
    if value is None or not value["n"] or value["accuracy"] is None:
        return "-"
    if "per_seed" in value:
        return f"{100 * value['accuracy']:.0f}% ({100 * value['min']:.0f}-{100 * value['max']:.0f})"
    return (
        f"{100 * value['accuracy']:.0f}% [{100 * value['ci_low']:.0f}-{100 * value['ci_high']:.0f}]"
    )


def format_p(p: float) -> str:
    """A p-value in two significant digits, "<0.0001" below that."""
    if p < 1e-4:
        return "<0.0001"
    return f"{p:.2g}" if p < 0.1 else f"{p:.2f}"


def format_paired(entry: dict[str, Any] | None) -> str:
    """ "p (+a/-b)": the largest p over seeds, and the discordant items (the column right where
    the reference is wrong / the reverse; summed over seeds); bold below 0.01."""
    if not entry:
        return "-"
    p = format_p(entry["p_max"])
    text = f"{p} (+{sum(entry['only_mode'])}/-{sum(entry['only_reference'])})"
    return f"**{text}**" if entry["p_max"] < 0.01 else text


def pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.0f}%"


def seeds_note(o: dict[str, Any]) -> str:
    seeds = o.get("seeds", 1)
    return f"{seeds} training seed" + ("s" if seeds != 1 else "")


def secs(x: float | None) -> str:
    return "-" if x is None else f"{x:.0f}"
