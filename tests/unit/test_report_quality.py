"""Quality first in the report (issue 20): which mode it recommends, read as a decision maker
would; break-even only where the mode answers as well as its reference; cost per correct answer
beside cost per query; reports stored before the change still render."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from service.evaluate.scoring import ItemResult, ModeKind
from service.report.build import build_report
from service.report.costs import AdapterCostInputs, Prices
from service.report.html import render_html
from service.report.markdown import render_markdown
from service.report.plot import PNG_SIGNATURE, render_cost_curve_png
from service.report.summary import summary_lines as _summary_lines
from service.report.tables import SECTIONS

FIXTURES = Path(__file__).with_name("data")
N = 60
# Realistic token counts per query: icl sends all the documents (~3k tokens, the same prefix for
# every question), rag its top passages (~350), base and the adapter the question alone (~40);
# multiple choice bills the correct answer's tokens (4) as the completion.
ICL_PROMPT, ICL_CACHEABLE, RAG_PROMPT, QUESTION_PROMPT, ANSWER = 3000, 2950, 350, 40, 4
PLAIN = AdapterCostInputs(training_wall_s=200, training_hardware="cpu")  # 200 s x $0.05/h


def mc(
    mode: str,
    kind: ModeKind,
    item: int,
    correct: bool,
    *,
    prompt: int,
    cacheable: int = 0,
    model: str | None = None,
) -> ItemResult:
    return ItemResult(
        item_id=f"q{item:03d}",
        mode=mode,
        mode_kind=kind,
        model=model or ("base" if kind in ("base", "icl", "rag") else mode),
        category="reversal",
        kind="multiple_choice",
        correct=correct,
        scores={"mc_sum": correct, "mc_norm": correct},
        answer="a",
        prompt_tokens=prompt,
        completion_tokens=ANSWER,
        cacheable_tokens=cacheable,
        latency_s=1.0,
    )


def retrieval_wins() -> list[ItemResult]:
    """The hidden reversal-curse case: rag 60/60, icl 33/60, the plain adapter 11/60, base 17/60.

    icl is right on items 0-32, the adapter on 0-10 (all of them items icl also gets), base on
    20-36; rag on every item."""
    rs: list[ItemResult] = []
    for j in range(N):
        rs.append(mc("base", "base", j, 20 <= j < 37, prompt=QUESTION_PROMPT))
        rs.append(mc("icl", "icl", j, j < 33, prompt=ICL_PROMPT, cacheable=ICL_CACHEABLE))
        rs.append(mc("rag", "rag", j, True, prompt=RAG_PROMPT))
        rs.append(mc("berglund-plain", "adapter", j, j < 11, prompt=QUESTION_PROMPT))
    return rs


@pytest.fixture(scope="module")
def report() -> dict:
    return build_report(
        retrieval_wins(),
        prices=Prices(),
        adapters={"berglund-plain": PLAIN},
        meta={"title": "Reversal curse, description -> name"},
    )


def test_the_report_recommends_retrieval_when_retrieval_wins(report: dict) -> None:
    rec = report["recommendation"]
    assert rec["best"] == "rag" and rec["best_accuracy"] == 1.0
    assert rec["recommended"] == {"uncached": "rag", "cached": "rag"}
    assert rec["cheapest_not_worse"] == {"uncached": "rag", "cached": "rag"}
    assert rec["less_accurate"] == ["base", "icl", "berglund-plain"]
    assert (rec["alpha"], rec["margin"]) == (0.05, 0.05)

    summary = _summary_lines(report)
    assert summary[0] == "60 items; modes: base, icl, rag, berglund-plain."
    # The first thing a reader meets after what was evaluated: use rag, and why.
    assert summary[1] == (
        "Recommended: rag, the most accurate mode (100.0%, 60/60); no other mode shown to be as "
        "accurate (within the 5 pp margin) costs less per query: $3.66e-05 per query, "
        "$3.66e-05 per correct answer, with or without prefix caching."
    )
    assert summary[2] == (
        "Of the modes not significantly less accurate than rag (exact McNemar test, p < 0.05), "
        "rag is the cheapest per query."
    )
    assert summary[3].startswith(
        "Significantly less accurate than rag (exact McNemar test, p < 0.05), so not "
        "recommended at any price: base (28.3% vs 100.0%: -71.7 pp"
    )
    assert (
        "berglund-plain (18.3% vs 100.0%: -81.7 pp, 95% CI [-89.4, -68.6], p = 3.55e-15)"
        in (summary[3])
    )
    # The line the old report printed ("berglund-plain vs icl without prefix caching: break-even
    # 10 queries") is gone: no summary line offers the adapter a saving.
    assert not any("breaks even" in line or "break-even 1" in line for line in summary)
    for reference in ("icl", "rag"):
        (line,) = [s for s in summary if s.startswith(f"berglund-plain vs {reference}: ")]
        assert "significantly less accurate" in line and "no break-even verdict" in line


def test_no_break_even_verdict_for_the_adapter_against_rag_or_icl(report: dict) -> None:
    rows = {(b["reference"], b["prefix_cached"]): b for b in report["break_even"]}
    assert set(rows) == {("icl", False), ("icl", True), ("rag", False), ("rag", True)}
    for b in rows.values():
        assert b["adapter"] == "berglund-plain"
        assert b["quality"]["verdict"] == "worse"
        assert (b["status"], b["n_queries"]) == ("less_accurate", None)
        assert b["verdict"].startswith("significantly less accurate (18.3% vs ")
        assert "no break-even verdict" in b["verdict"]
    # The arithmetic alone still says what the old report did, kept apart as cost_* fields:
    # one-time 200 s x $0.05/h = $0.002778; icl uncached 3.016e-4 - adapter 5.6e-6 = 2.96e-4 a
    # query saved: 0.002778 / 2.96e-4 = 9.4 -> 10.
    assert rows[("icl", False)]["cost_n_queries"] == 10
    assert rows[("icl", False)]["cost_status"] == "breaks_even"
    # The paired numbers behind "worse": 49 items only rag gets, none only the adapter gets.
    q = rows[("rag", False)]["quality"]
    assert (q["n"], q["difference"]) == (N, pytest.approx(11 / 60 - 1))
    assert q["p_value"] == pytest.approx(2 * 0.5**49)
    # Newcombe's interval by hand: Wilson 11/60 = [0.105578, 0.299197], 60/60 = [0.939828, 1];
    # phi = 0 (rag is never wrong), so low = D - (p1 - l1) = -0.816667 - 0.077755 and
    # high = D + sqrt((1 - 0.939828)^2 + (0.299197 - 0.183333)^2) = -0.816667 + 0.130557
    assert q["ci_low"] == pytest.approx(-0.894422, abs=2e-6)
    assert q["ci_high"] == pytest.approx(-0.686110, abs=2e-6)
    q = rows[("icl", True)]["quality"]
    assert q["p_value"] == pytest.approx(2 * 0.5**22)  # 22 items only icl gets, 0 the other way

    md = render_markdown(report)
    for reference in ("icl", "rag"):
        for caching in ("without", "with"):
            row = next(
                line
                for line in md.splitlines()
                if line.startswith(f"| berglund-plain | {reference} | significantly less accurate")
                and f"| {caching} prefix caching |" in line
            )
            assert row.endswith("| none: significantly less accurate |")
    assert "queries |" not in md.split("## Break-even")[1].split("## Cumulative cost")[0]


def test_cost_per_correct_answer_by_hand(report: dict) -> None:
    # Per query: prompt tokens x $0.10/M (icl cached: 50 x $0.10 + 2950 x $0.025) + 4 x $0.40/M.
    per_query = {
        "base": (40 * 0.10 + 4 * 0.40) / 1e6,  # 5.6e-6
        "icl": (3000 * 0.10 + 4 * 0.40) / 1e6,  # 3.016e-4
        "rag": (350 * 0.10 + 4 * 0.40) / 1e6,  # 3.66e-5
        "berglund-plain": (40 * 0.10 + 4 * 0.40) / 1e6,  # 5.6e-6
    }
    icl_cached = (50 * 0.10 + 2950 * 0.025 + 4 * 0.40) / 1e6  # 8.035e-5
    right = {"base": 17, "icl": 33, "rag": 60, "berglund-plain": 11}
    per_correct = {  # cost per query / (right / 60)
        "base": 1.976471e-5,
        "icl": 5.483636e-4,
        "rag": 3.66e-5,
        "berglund-plain": 3.054545e-5,
    }
    for mode, usd in per_query.items():
        costs = report["per_query_cost"][mode]
        assert costs["uncached"]["usd"] == pytest.approx(usd)
        assert costs["uncached"]["usd_per_correct"] == pytest.approx(usd * N / right[mode])
        assert costs["uncached"]["usd_per_correct"] == pytest.approx(per_correct[mode], rel=1e-6)
    cached = report["per_query_cost"]["icl"]["cached"]
    assert cached["usd"] == pytest.approx(icl_cached)
    assert cached["usd_per_correct"] == pytest.approx(1.460909e-4, rel=1e-6)  # 8.035e-5 / 0.55

    # Cheaper per correct answer than rag (3.05e-05 < 3.66e-05), and still not recommended: the
    # wrong answers (49 of 60) still reach the user.
    assert per_correct["berglund-plain"] < per_correct["rag"]
    rows = {(b["reference"], b["prefix_cached"]): b for b in report["break_even"]}
    b = rows[("rag", False)]
    assert b["adapter_per_correct_usd"] == pytest.approx(per_correct["berglund-plain"], rel=1e-6)
    assert b["reference_per_correct_usd"] == pytest.approx(per_correct["rag"])

    md = render_markdown(report)
    assert "| rag | 100.0% | $3.66e-05 | $3.66e-05 | $3.66e-05 | $3.66e-05 |" in md
    assert "| icl | 55.0% | $0.000302 | $0.000548 | $8.04e-05 | $0.000146 |" in md
    assert "| berglund-plain | 18.3% | $5.6e-06 | $3.05e-05 | $5.6e-06 | $3.05e-05 |" in md
    assert "| base | 28.3% | $5.6e-06 | $1.98e-05 | $5.6e-06 | $1.98e-05 |" in md
    # the decision table: the recommended mode first, then the rest, most accurate first
    table = md.split("## Which mode")[1].split("## Accuracy")[0]
    order = [line.split(" | ")[0].lstrip("| ") for line in table.splitlines() if line[:2] == "| "]
    assert order[1:] == ["rag", "icl", "base", "berglund-plain"]  # [0] is the header
    assert "| rag | rag | 100.0% (60/60) | - | - | - | most accurate |" in table
    assert table.splitlines()[4].endswith("| recommended |")


def test_the_cost_curve_marks_the_less_accurate_modes(report: dict) -> None:
    lines = {ln["label"]: ln for ln in report["cost_curve"]["lines"]}
    assert set(lines) == {
        "base",
        "icl (without prefix caching)",
        "icl (with prefix caching)",
        "rag",
        "berglund-plain",
    }
    assert {label for label, ln in lines.items() if not ln["less_accurate"]} == {"rag"}
    assert lines["berglund-plain"]["usd_per_correct"] == pytest.approx(3.054545e-5, rel=1e-6)
    assert lines["berglund-plain"]["one_time_usd"] == pytest.approx(200 / 3600 * 0.05)
    assert report["cost_curve"]["best"] == "rag"
    md = render_markdown(report)
    assert (
        "- berglund-plain: $0.00278 + $5.6e-06 per query; 18.3% right, $3.05e-05 per correct "
        "answer; significantly less accurate than rag (dashed)"
    ) in md
    assert "- rag: $0 + $3.66e-05 per query; 100.0% right, $3.66e-05 per correct answer\n" in md
    png = render_cost_curve_png(report)
    assert png.startswith(PNG_SIGNATURE)
    html = render_html(report, png)
    # the HTML carries the same words as the Markdown
    assert "Recommended: rag, the most accurate mode (100.0%, 60/60)" in html
    assert "none: significantly less accurate" in html
    assert "$3.05e-05 per correct answer; significantly less accurate than rag (dashed)" in html


def within_margin() -> list[ItemResult]:
    """200 items: icl and an adapter each right on 160, disagreeing on one item each way."""
    rs: list[ItemResult] = []
    for j in range(200):
        rs.append(mc("base", "base", j, j < 40, prompt=QUESTION_PROMPT))
        rs.append(mc("icl", "icl", j, j < 160, prompt=ICL_PROMPT, cacheable=ICL_CACHEABLE))
        rs.append(mc("ft", "adapter", j, j < 159 or j == 160, prompt=QUESTION_PROMPT))
    return rs


def test_an_adapter_as_accurate_as_icl_is_recommended_with_its_payback() -> None:
    ft = AdapterCostInputs(
        teacher_prompt_tokens=1_000_000,
        teacher_completion_tokens=200_000,
        training_wall_s=1800,
        training_hardware="accelerator",
    )
    report = build_report(within_margin(), prices=Prices(), adapters={"ft": ft})
    rec = report["recommendation"]
    assert rec["best"] == "icl"  # 160 each: the first of the tie
    assert rec["modes"]["ft"]["verdict"] == "within_margin"
    # Newcombe's interval for 159 both, 1 and 1 discordant, 39 both wrong: -2.0 to +2.0 pp
    assert rec["modes"]["ft"]["ci_low"] == pytest.approx(-0.020262, abs=1e-6)
    assert rec["modes"]["base"]["verdict"] == "worse"
    assert rec["as_accurate"] == ["icl", "ft"]
    assert rec["recommended"] == {"uncached": "ft", "cached": "ft"}
    # one-time: 1M x $0.10 + 0.2M x $0.40 + 0.5 h x $2.50 = $1.43; saving a query: 3.016e-4 -
    # 5.6e-6 = 2.96e-4 (uncached): 4831.1 -> 4832; 8.035e-5 - 5.6e-6 = 7.475e-5 (cached): 19131
    assert rec["payback"]["uncached"] == {"mode": "ft", "against": "icl", "n_queries": 4832}
    assert rec["payback"]["cached"]["n_queries"] == 19131
    rows = {b["prefix_cached"]: b for b in report["break_even"]}
    assert rows[False]["status"] == "breaks_even" and rows[False]["n_queries"] == 4832
    assert rows[False]["verdict"] == (
        "at least as accurate, within the 5 pp margin (80.0% vs 80.0%: +0.0 pp, 95% CI "
        "[-2.0, +2.0], p = 1); breaks even after 4,832 queries"
    )
    summary = _summary_lines(report)
    assert summary[1].startswith(
        "Recommended: ft, as accurate as the most accurate mode, icl (80.0%, 160/200), within "
        "the 5 pp margin (80.0% vs 80.0%: +0.0 pp, 95% CI [-2.0, +2.0], p = 1), and the "
        "cheapest such mode per query: $5.6e-06 per query, $7e-06 per correct answer"
    )
    assert summary[2] == (
        "ft pays back its one-time cost of $1.4300 against icl (the cheapest as accurate mode "
        "without one) after 4,832 queries without prefix caching; for fewer queries icl costs "
        "less."
    )
    assert "after 19,131 queries with prefix caching" in summary[3]
    assert (
        "ft vs icl: at least as accurate, within the 5 pp margin (80.0% vs 80.0%: +0.0 pp, 95% "
        "CI [-2.0, +2.0], p = 1); breaks even after 4,832 queries without prefix caching, "
        "breaks even after 19,131 queries with prefix caching."
    ) in summary


def test_a_cheaper_mode_that_is_not_shown_as_accurate_is_named_not_recommended() -> None:
    """Six items cannot tell 1/6 from 5/6 at p < 0.05 (p = 0.125): base is the cheapest mode not
    significantly less accurate, and the report says so, with how much worse it may be, but
    recommends the most accurate mode."""
    rs: list[ItemResult] = []
    for j in range(6):
        rs.append(mc("base", "base", j, j == 0, prompt=QUESTION_PROMPT))
        rs.append(mc("icl", "icl", j, j != 5, prompt=ICL_PROMPT, cacheable=ICL_CACHEABLE))
    report = build_report(rs, prices=Prices())
    rec = report["recommendation"]
    assert rec["modes"]["base"]["verdict"] == "not_shown_within_margin"
    assert rec["modes"]["base"]["p_value"] == pytest.approx(2 / 2**4)  # 4 discordant, all icl's
    assert rec["recommended"]["uncached"] == "icl"
    assert rec["cheapest_not_worse"]["uncached"] == "base"
    summary = _summary_lines(report)
    assert summary[1].startswith("Recommended: icl, the most accurate mode (83.3%, 5/6)")
    assert summary[2].startswith(
        "The cheapest mode not significantly less accurate than icl (exact McNemar test, "
        "p < 0.05) is base: $5.6e-06 per query, $3.36e-05 per correct answer, with or without "
        "prefix caching; but it is not shown to be within the 5 pp margin (16.7% vs 83.3%: "
        "-66.7 pp, 95% CI [-86.0, -10.5], p = 0.125): it may be as much as 86.0 pp less accurate"
    )
    assert summary[2].endswith("it costs less than icl from the first query.")


def test_an_adapter_against_its_own_adapter_rag() -> None:
    """The same adapter with and without the passages: the one-time cost is shared, so the
    adapter alone costs less from the first query; whether it answers as well decides."""
    rs: list[ItemResult] = []
    for j in range(30):
        rs.append(mc("rag", "rag", j, j < 27, prompt=RAG_PROMPT))
        rs.append(mc("ft", "adapter", j, j < 12, prompt=QUESTION_PROMPT))
        rs.append(mc("ft+rag", "adapter+rag", j, j < 28, prompt=RAG_PROMPT, model="ft"))
    report = build_report(rs, prices=Prices(), adapters={"ft": PLAIN, "ft+rag": PLAIN})
    rows = {(b["adapter"], b["reference"], b["prefix_cached"]): b for b in report["break_even"]}
    assert set(rows) == {
        (a, r, c)
        for a, r in (("ft", "rag"), ("ft", "ft+rag"), ("ft+rag", "rag"))
        for c in (False, True)
    }
    own = rows[("ft", "ft+rag", False)]
    assert own["reference_kind"] == "adapter+rag"
    assert own["one_time_usd"] == own["reference_one_time_usd"] == pytest.approx(200 / 3600 * 0.05)
    assert own["cost_n_queries"] == 0  # cheaper per query, same one-time cost
    assert own["quality"]["verdict"] == "worse"  # 12/30 vs 28/30: 16 discordant, all ft+rag's
    assert own["status"] == "less_accurate" and own["n_queries"] is None
    both = rows[("ft+rag", "rag", False)]
    assert both["quality"]["verdict"] == "not_shown_within_margin"  # 28 vs 27 of 30
    # the same prompts as rag, plus the adapter's one-time cost: never cheaper
    assert (both["status"], both["n_queries"]) == ("never", None)
    assert both["verdict"].endswith("never breaks even (not cheaper per query)")
    assert report["recommendation"]["recommended"]["uncached"] == "ft+rag"  # the most accurate
    assert report["recommendation"]["cheapest_not_worse"]["uncached"] == "rag"


def test_a_report_stored_before_the_change_still_renders() -> None:
    """tests/unit/data/evaluation-report-v1.json was written by the report code before schema /2
    (no recommendation, break-even rows against icl only with icl_per_query_usd, no intervals
    on paired tests, no cost per correct answer)."""
    old = json.loads((FIXTURES / "evaluation-report-v1.json").read_text())
    assert old["schema"] == "docadapt.evaluation-report/1" and "recommendation" not in old
    md = render_markdown(old)
    for heading in SECTIONS.values():
        assert f"## {heading}" in md
    assert "- ft vs icl without prefix caching: break-even 21 queries (accuracy not compared" in md
    assert "| ft | icl | not compared (report stored before quality checks) |" in md
    assert "| ft | n/a | $3.6e-06 | n/a |" not in md  # accuracy is in /1's summary
    assert "| ft | 33.3% | $3.6e-06 | n/a | $3.6e-06 | n/a |" in md
    assert "| ft+rag | rag | correct | 6 | 4 | 2 | 0 | 0 | +33.3 pp | n/a | 0.5 |  |" in md
    png = render_cost_curve_png(old)
    assert png.startswith(PNG_SIGNATURE)
    html = render_html(old, png)
    assert "Stored before issue 20" in html and "break-even 21 queries" in html


def test_margin_is_a_parameter_and_is_checked() -> None:
    wide = build_report(within_margin(), prices=Prices(), margin=0.01)
    assert wide["recommendation"]["modes"]["ft"]["verdict"] == "not_shown_within_margin"
    assert "within the 1 pp margin" in _summary_lines(wide)[1]
    with pytest.raises(ValueError):
        build_report(within_margin(), prices=Prices(), margin=1.5)
    assert math.isclose(wide["recommendation"]["margin"], 0.01)
