"""Which mode to use: each mode against the most accurate one, then the cheapest that answers
as well; and the recommendation in sentences.

Quality first: a mode is compared with the most accurate one (`best`) by an exact McNemar test on
the primary metric, with the paired difference's interval. The recommended mode is the cheapest
per query of the best and those within the margin of it; the cheapest mode that is merely not
significantly less accurate is named beside it, with how much less accurate it may be.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from service.evaluate.stats import EvaluationStats
from service.report import formatting as fmt
from service.report.costs import break_even_queries

_Table = Mapping[str, Mapping[str, Any]]


def recommend(
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
        q = quality(mode, best) if best is not None and mode != best else None
        table[mode] = _against_best(mode, kinds[mode], accuracy[mode], stats, per_query, q)
        table[mode]["one_time_usd"] = once(mode)
    candidates = [m for m in modes if table[m]["candidate"]]
    as_accurate = [m for m in modes if table[m]["as_accurate"]]
    recommended: dict[str, str | None] = {}
    cheapest_not_worse: dict[str, str | None] = {}
    payback: dict[str, dict[str, Any] | None] = {}
    alternative: dict[str, dict[str, Any] | None] = {}
    for key in ("uncached", "cached"):
        recommended[key], payback[key] = _pick(table, as_accurate, key)
        cheap = min(candidates, key=_price(table, key), default=None)
        cheapest_not_worse[key] = cheap
        pick = recommended[key]
        alternative[key] = None
        if cheap is not None and pick is not None and cheap != pick:
            n = _crossing(table, cheap, pick, key)
            alternative[key] = {"mode": cheap, "against": pick, "n_queries": n}
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


def _against_best(
    mode: str,
    kind: str,
    accuracy: float | None,
    stats: EvaluationStats,
    per_query: Mapping[str, Mapping[str, Any]],
    q: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """One mode's row of the recommendation: its accuracy, its verdict against the best (`q`,
    None for the best itself) and its costs; `one_time_usd` is added by the caller."""
    acc = stats.accuracy[mode]["correct"]
    verdict = "best" if q is None else q["verdict"]
    return {
        "kind": kind,
        "accuracy": accuracy,
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
    }


def _price(table: _Table, key: str) -> Callable[[str], tuple[float, float]]:
    def price(m: str) -> tuple[float, float]:
        # Per query first (the long run); on a tie, the smaller one-time cost.
        return (table[m]["per_query_usd"][key], table[m]["one_time_usd"] or 0.0)

    return price


def _crossing(table: _Table, mode: str, against: str, key: str) -> int | None:
    """The break-even of `mode` against `against`; None when a one-time cost is unknown."""
    mine, theirs = table[mode]["one_time_usd"], table[against]["one_time_usd"]
    if mine is None or theirs is None:
        return None
    return break_even_queries(
        mine,
        table[mode]["per_query_usd"][key],
        table[against]["per_query_usd"][key],
        reference_one_time_usd=theirs,
    )


def _pick(
    table: _Table, as_accurate: Sequence[str], key: str
) -> tuple[str | None, dict[str, Any] | None]:
    """The cheapest as accurate mode, and when it has a one-time cost, its payback against the
    cheapest as accurate mode without one."""
    price = _price(table, key)
    pick = min(as_accurate, key=price, default=None)
    if pick is None or not table[pick]["one_time_usd"]:
        return pick, None
    free = [m for m in as_accurate if table[m]["one_time_usd"] == 0.0]
    against = min(free, key=price, default=None)
    if against is None:
        return pick, None
    return pick, {
        "mode": pick,
        "against": against,
        "n_queries": _crossing(table, pick, against, key),
    }


def recommendation_lines(rec: Mapping[str, Any]) -> list[str]:
    """The recommendation in sentences: what to use, why, what is cheaper but unproven, and
    what is ruled out."""
    if rec["best"] is None:
        return []
    say = _Sentences(rec)
    lines = say.one_or_two(rec["recommended"], say.recommended)
    lines += say.paybacks()
    for mode in dict.fromkeys(rec["recommended"].values()):
        if mode is not None and say.table[mode]["one_time_usd"] is None:
            lines.append(f"{mode}'s one-time cost is unknown (no cost records).")
    lines += say.cheaper_but_unproven()
    lines += say.the_others()
    return lines


class _Sentences:
    """The words of one recommendation: its parameters, and a sentence for each finding."""

    def __init__(self, rec: Mapping[str, Any]) -> None:
        self.rec = rec
        self.best, self.table = rec["best"], rec["modes"]
        self.level = f"exact McNemar test, p < {rec['alpha']:g}"
        self.pp = f"{100 * rec['margin']:g} pp"
        self.conf = f"{100 * rec['confidence']:g}%"
        b = self.table[self.best]
        self.score = f"{fmt.pct(b['accuracy'])}, {b['correct']}/{b['n']}"

    def costs(self, mode: str, key: str) -> str:
        return (
            f"{fmt.usd(self.table[mode]['per_query_usd'][key])} per query, "
            f"{fmt.usd(self.table[mode]['per_correct_usd'][key])} per correct answer"
        )

    def money(self, mode: str) -> str:
        prices = self.table[mode]["per_query_usd"]
        if prices["uncached"] == prices["cached"]:
            return f"{self.costs(mode, 'uncached')}, with or without prefix caching"
        return (
            f"{self.costs(mode, 'uncached')} without prefix caching, "
            f"{self.costs(mode, 'cached')} with"
        )

    def numbers(self, mode: str) -> str:
        t = self.table[mode]
        return fmt.difference_text(
            {
                "accuracy_mode": t["accuracy"],
                "accuracy_reference": self.table[self.best]["accuracy"],
                "difference": t["difference"],
                "ci_low": t["ci_low"],
                "ci_high": t["ci_high"],
                "p_value": t["p_value"],
                "confidence": self.rec["confidence"],
            }
        )

    def compared(self, mode: str, said: str = "") -> str:
        return f"{mode} ({self.numbers(mode)}{said})"

    @staticmethod
    def one_or_two(
        picks: Mapping[str, str | None], what: Callable[[str, bool | None], str]
    ) -> list[str]:
        """One sentence when both caching assumptions pick the same mode, else one each."""
        if picks["uncached"] == picks["cached"]:
            return [what(picks["uncached"], None)] if picks["uncached"] else []
        return [what(m, c) for c in (False, True) if (m := picks[fmt.KEYS[c]]) is not None]

    def recommended(self, mode: str, cached: bool | None) -> str:
        when = "" if cached is None else f" {fmt.CACHING_LABEL[cached]}"
        prices = self.money(mode) if cached is None else self.costs(mode, fmt.KEYS[cached])
        if len(self.table) == 1:
            return f"Recommended: {mode}, the only mode evaluated: {prices}."
        if mode == self.best:
            why = (
                f"the most accurate mode ({self.score}); no other mode shown to be as accurate "
                f"(within the {self.pp} margin) costs less per query"
            )
        else:
            why = (
                f"as accurate as the most accurate mode, {self.best} ({self.score}), within the "
                f"{self.pp} margin ({self.numbers(mode)}), and the cheapest such mode per query"
            )
        return f"Recommended{when}: {mode}, {why}: {prices}."

    def paybacks(self) -> list[str]:
        """When the recommended mode's one-time cost is paid back, once per distinct payback."""
        paybacks: dict[tuple[str, str, int], list[bool]] = {}
        for cached in (False, True):
            p = self.rec["payback"][fmt.KEYS[cached]]
            if p and p["n_queries"]:
                paybacks.setdefault((p["mode"], p["against"], p["n_queries"]), []).append(cached)
        lines = []
        for (mode, against, n), when in paybacks.items():
            caching = (
                "with or without prefix caching" if len(when) == 2 else fmt.CACHING_LABEL[when[0]]
            )
            lines.append(
                f"{mode} pays back its one-time cost of "
                f"{fmt.usd(self.table[mode]['one_time_usd'])} against {against} (the cheapest as "
                f"accurate mode without one) after {n:,} queries {caching}; for fewer queries "
                f"{against} costs less."
            )
        return lines

    def cheaper(self, mode: str, cached: bool | None) -> str:
        key = "uncached" if cached is None else fmt.KEYS[cached]
        when = "" if cached is None else f" ({fmt.CACHING_LABEL[cached]})"
        alt = self.rec["alternative_break_even"][key]
        text = (
            f"The cheapest mode not significantly less accurate than {self.best} ({self.level})"
            f"{when} is {mode}: {self.money(mode) if cached is None else self.costs(mode, key)}; "
            f"but it is not shown to be within the {self.pp} margin ({self.numbers(mode)}): it "
            f"may be as much as {-100 * (self.table[mode]['ci_low'] or 0.0):.1f} pp less "
            f"accurate (the {self.conf} interval's lower end). Take it only if that loss is "
            "acceptable, or score more items to tell"
        )
        if alt and alt["n_queries"] == 0:
            text += f"; it costs less than {alt['against']} from the first query"
        elif alt and alt["n_queries"] is not None:
            text += f"; it costs less than {alt['against']} from {alt['n_queries']:,} queries on"
        return text + "."

    def cheaper_but_unproven(self) -> list[str]:
        """The cheapest mode not significantly less accurate, where it is not the recommended
        one; else that the recommended one is also the cheapest of those."""
        rec = self.rec
        alternatives = {
            k: (m if m != rec["recommended"][k] else None)
            for k, m in rec["cheapest_not_worse"].items()
        }
        if any(alternatives.values()):
            return self.one_or_two(alternatives, self.cheaper)
        pick = rec["recommended"]["uncached"]
        if pick is not None and len(self.table) > 1:
            return [
                f"Of the modes not significantly less accurate than {self.best} ({self.level}), "
                f"{pick} is the cheapest per query."
            ]
        return []

    def the_others(self) -> list[str]:
        """The other modes not significantly less accurate, and those that are."""
        lines = []
        also = [m for m in self.rec["candidates"] if m != self.best]
        if also:
            words = {
                "within_margin": f"within the {self.pp} margin",
                "not_shown_within_margin": f"not shown to be within the {self.pp} margin",
                "better": "significantly more accurate",
                "unknown": "not compared",
            }
            lines.append(
                f"Not significantly less accurate than {self.best} ({self.level}): "
                + ", ".join(self.compared(m, f"; {words[self.table[m]['verdict']]}") for m in also)
                + "."
            )
        if self.rec["less_accurate"]:
            lines.append(
                f"Significantly less accurate than {self.best} ({self.level}), so not "
                "recommended at any price: "
                + ", ".join(self.compared(m) for m in self.rec["less_accurate"])
                + "."
            )
        return lines
