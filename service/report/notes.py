"""The report's notes: what each adapter+rag mode costs beside rag, and the standing
assumptions (scoring, intervals, the quality rule, pricing, break-even) in words."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from service.report import formatting as fmt
from service.report.costs import Prices, break_even_queries


def against_rag(
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
            once = fmt.usd(one_time[mode]["total_usd"])
            n = break_even_queries(one_time[mode]["total_usd"], a, r)
            verdict = (
                f"its total never falls to {rag}'s, so only its accuracy can pay for the adapter"
                if n is None
                else f"its total falls to {rag}'s after {n:,} queries"
            )
        notes.append(
            f"{mode}: {fmt.usd(a)} per query against {rag}'s {fmt.usd(r)} (without prefix "
            f"caching), plus {once} once for its adapter; it sends rag's prompts (the retrieved "
            f"passages, no shared prefix) to the adapter, and {verdict}."
        )
    return notes


def standing_notes(prices: Prices, confidence: float, alpha: float, margin: float) -> list[str]:
    """The assumptions behind every number of the report, with this report's parameters."""
    notes = [_SCORING, _intervals(confidence), _quality_rule(confidence, alpha, margin)]
    notes += _PRICING
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


_SCORING = (
    "Multiple-choice items are scored by the log-likelihood of each choice as a continuation "
    "of the prompt, choices not shown (Lampinen et al. 2025); mc_sum decides by the summed "
    "log-likelihood, mc_norm by the per-token mean. The primary metric ('correct') is mc_sum "
    "for multiple choice and normalized exact match for generation."
)


def _intervals(confidence: float) -> str:
    return (
        f"Intervals are {100 * confidence:g}% Wilson score intervals; paired tests are exact "
        "McNemar tests on the items both modes scored, and the interval of their accuracy "
        "difference is Newcombe's hybrid score interval for paired proportions (1998, method 10)."
    )


def _quality_rule(confidence: float, alpha: float, margin: float) -> str:
    conf, pp = f"{100 * confidence:g}%", f"{100 * margin:g} pp"
    # Discordant items, all one way, that the exact McNemar test needs: 2 / 2^k < alpha.
    fewest = next(k for k in range(1, 64) if 2 * 0.5**k < alpha) if alpha > 0 else "infinitely many"
    return (
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
        "beside it, with how much less accurate it may be."
    )


_PRICING = [
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
