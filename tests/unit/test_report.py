"""Reports: every field, numbers that agree with the per-item results, a real PNG, full HTML."""

from __future__ import annotations

import base64
import io
import json

import matplotlib.image
import pytest
from PIL import Image

from service.evaluate.scoring import ItemResult, LatencyProbe, ModeKind
from service.report.build import build_report
from service.report.costs import AdapterCostInputs, Prices, break_even_queries
from service.report.html import render_html
from service.report.markdown import render_markdown
from service.report.plot import PNG_SIGNATURE, render_cost_curve_png
from service.report.tables import SECTIONS

PRICES = Prices()


def mc(
    mode: str,
    kind: ModeKind,
    item: int,
    correct: bool,
    *,
    prompt: int,
    cacheable: int = 0,
    latency: float = 1.0,
    category: str = "reversal",
) -> ItemResult:
    return ItemResult(
        item_id=f"i{item}",
        mode=mode,
        mode_kind=kind,
        model=mode,
        category=category,
        kind="multiple_choice",
        correct=correct,
        scores={"mc_sum": correct, "mc_norm": correct},
        answer="a",
        choice_logprobs=[-1.0, -2.0],
        choice_logprobs_norm=[-1.0, -2.0],
        choice_tokens=[1, 1],
        pred_sum=0 if correct else 1,
        pred_norm=0 if correct else 1,
        answer_index=0,
        prompt_tokens=prompt,
        completion_tokens=4,
        cacheable_tokens=cacheable,
        latency_s=latency,
    )


def results() -> list[ItemResult]:
    rs: list[ItemResult] = []
    for j in range(6):
        cat = "reversal" if j < 3 else "syllogism"
        rs.append(mc("base", "base", j, j == 0, prompt=20, category=cat))
        rs.append(
            mc("icl", "icl", j, j != 5, prompt=4020, cacheable=4000, latency=18.0, category=cat)
        )
        rs.append(mc("plain-ft", "adapter", j, j in (0, 1), prompt=20, category=cat))
        rs.append(mc("augmented-ft", "adapter", j, j != 4, prompt=20, category=cat))
    return rs


ADAPTERS = {
    # augmentation is dear (late break-even), plain fine-tuning cheap (early)
    "augmented-ft": AdapterCostInputs(
        teacher_prompt_tokens=20_000_000,
        teacher_completion_tokens=2_000_000,
        training_wall_s=3600,
        training_hardware="accelerator",
    ),
    "plain-ft": AdapterCostInputs(training_wall_s=600, training_hardware="cpu"),
}
PROBES = {
    "icl": LatencyProbe(
        mode="icl",
        cold_s=[17.0, 18.0, 19.0],
        warm_s=[1.5, 1.7, 1.9],
        prompt_tokens=[4020] * 6,
        completion_tokens=[10] * 6,
    ),
}


@pytest.fixture(scope="module")
def report() -> dict:
    return build_report(
        results(),
        prices=PRICES,
        adapters=ADAPTERS,
        latency=PROBES,
        meta={"evaluation_id": "ev_123", "title": "Acme <docs> report"},
    )


def test_report_has_every_section_and_is_json(report: dict) -> None:
    assert set(report) >= {
        "schema",
        "meta",
        "summary",
        "accuracy",
        "accuracy_by_category",
        "paired_tests",
        "usage",
        "per_query_cost",
        "one_time_cost",
        "break_even",
        "cost_curve",
        "prices",
        "notes",
    }
    again = json.loads(json.dumps(report))
    assert again == report
    assert report["summary"]["modes"] == ["base", "icl", "plain-ft", "augmented-ft"]
    assert report["prices"]["input_per_mtok"] == PRICES.input_per_mtok


def test_accuracy_agrees_with_items(report: dict) -> None:
    items = results()
    for mode in report["summary"]["modes"]:
        mine = [r for r in items if r.mode == mode]
        acc = report["accuracy"][mode]["correct"]
        assert (acc["correct"], acc["n"]) == (sum(r.correct for r in mine), len(mine))
        assert acc["ci_low"] <= acc["accuracy"] <= acc["ci_high"]
        by_cat = report["accuracy_by_category"][mode]
        assert sum(c["correct"]["n"] for c in by_cat.values()) == len(mine)
    tests = {(t["mode"], t["metric"]): t for t in report["paired_tests"]}
    aug = tests[("augmented-ft", "correct")]
    assert (aug["reference"], aug["only_mode"], aug["only_reference"]) == ("icl", 1, 1)
    assert aug["ci_low"] < aug["difference"] == 0 < aug["ci_high"]
    # the adapters against icl; base against the most accurate mode (icl, first of the 5/6 tie)
    assert set(m for m, _ in tests) == {"plain-ft", "augmented-ft", "base"}
    assert tests[("base", "correct")]["reference"] == "icl"
    assert report["recommendation"]["best"] == "icl"


def test_costs_and_break_even_agree_with_the_model(report: dict) -> None:
    usage = report["usage"]["icl"]
    assert usage["latency_cold_s"] == 18.0 and usage["latency_warm_s"] == 1.7
    assert report["usage"]["base"]["latency_cold_s"] == 1.0  # no probe: median item latency
    icl = report["per_query_cost"]["icl"]
    assert icl["uncached"]["usd"] == pytest.approx((4020 * 0.10 + 4 * 0.40) / 1e6)
    assert icl["cached"]["usd"] == pytest.approx((20 * 0.10 + 4000 * 0.025 + 4 * 0.40) / 1e6)
    assert not icl["uncached"]["prefix_cached"] and icl["cached"]["prefix_cached"]
    aug_once = report["one_time_cost"]["augmented-ft"]["total_usd"]
    assert aug_once == pytest.approx(20 * 0.10 + 2 * 0.40 + 2.50)
    entries = {(b["adapter"], b["prefix_cached"]): b for b in report["break_even"]}
    assert len(entries) == 4 == len(report["break_even"])  # no rag: icl is the only reference
    for (adapter, cached), b in entries.items():
        key = "cached" if cached else "uncached"
        a = report["per_query_cost"][adapter][key]["usd"]
        i = report["per_query_cost"]["icl"][key]["usd"]
        assert b["reference_per_query_usd"] == i and b["reference_one_time_usd"] == 0.0
        expected = break_even_queries(report["one_time_cost"][adapter]["total_usd"], a, i)
        # six items cannot show either adapter worse than icl (p >= 0.25): the cost decides
        assert b["quality"]["verdict"] == "not_shown_within_margin"
        assert b["n_queries"] == b["cost_n_queries"] == expected
        assert b["status"] == ("never" if expected is None else "breaks_even")
    # by hand: one-time 5.3 and 0.05/6; per query ICL 4.036e-4 (cached 1.036e-4), adapters 3.6e-6
    assert entries[("augmented-ft", False)]["n_queries"] == 13_250  # 5.3 / 4e-4
    assert entries[("augmented-ft", True)]["n_queries"] == 53_000  # 5.3 / 1e-4
    assert entries[("plain-ft", False)]["n_queries"] == 21  # 0.008333 / 4e-4 = 20.8
    assert entries[("plain-ft", True)]["n_queries"] == 84  # 0.008333 / 1e-4 = 83.3


def test_never_and_unknown_break_even() -> None:
    pricey = {"augmented-ft": ADAPTERS["augmented-ft"]}  # plain-ft has no records
    cheap_icl = Prices(input_per_mtok=0.0, cached_input_per_mtok=0.0)
    rep = build_report(results(), prices=cheap_icl, adapters=pricey)
    status = {(b["adapter"], b["prefix_cached"]): b["status"] for b in rep["break_even"]}
    assert status[("augmented-ft", False)] == "never"  # input is free: ICL costs what adapters do
    assert status[("plain-ft", False)] == "unknown"
    assert any("plain-ft" in n and "unknown" in n for n in rep["notes"])
    md = render_markdown(rep)
    assert "never" in md and "unknown" in md
    png = render_cost_curve_png(rep)
    assert png.startswith(PNG_SIGNATURE)


def test_png_is_a_real_image(report: dict) -> None:
    png = render_cost_curve_png(report)
    assert png.startswith(PNG_SIGNATURE)
    with Image.open(io.BytesIO(png)) as img:
        img.verify()
    with Image.open(io.BytesIO(png)) as img:
        assert img.format == "PNG" and img.size[0] > 400 and img.size[1] > 300
    pixels = matplotlib.image.imread(io.BytesIO(png), format="png")
    assert pixels.ndim == 3 and pixels.std() > 0  # not a blank canvas


def test_log_axis_when_break_evens_span_decades() -> None:
    rep = build_report(results(), prices=PRICES, adapters=ADAPTERS, latency=PROBES)
    ns = [b["n_queries"] for b in rep["break_even"] if b["n_queries"]]
    assert max(ns) / min(ns) > 100
    assert rep["cost_curve"]["x_scale"] == "log"
    assert render_cost_curve_png(rep).startswith(PNG_SIGNATURE)


def test_html_is_self_contained_with_every_section(report: dict) -> None:
    png = render_cost_curve_png(report)
    html = render_html(report, png)
    assert html.startswith("<!DOCTYPE html>")
    assert f'src="data:image/png;base64,{base64.b64encode(png).decode()}"' in html
    for sid in SECTIONS:
        assert f'<section id="{sid}">' in html
    assert "Acme &lt;docs&gt; report" in html and "<docs>" not in html  # escaped
    assert "13,250 queries" in html
    assert "http://" not in html and "https://" not in html  # nothing fetched from elsewhere
    with pytest.raises(ValueError):
        render_html(report, b"not a png")


def test_markdown_has_every_section(report: dict) -> None:
    md = render_markdown(report)
    for heading in SECTIONS.values():
        assert f"## {heading}" in md
    assert (
        "| augmented-ft | icl | not significantly less accurate, but not shown to be within the "
        "5 pp margin (83.3% vs 83.3%: +0.0 pp, 95% CI [-44.5, +44.5], p = 1) | without prefix "
        "caching |"
    ) in md
    assert "13,250 queries" in md


def test_the_knowledge_check_of_each_adapter_is_in_the_tables_and_the_summary() -> None:
    knows = {
        "probes": 40,
        "adapter": 0.95,
        "base": 0.475,
        "chance": 0.27,
        "target": 0.9,
        "summary": "knows 95% of its documents' facts; base 48%",
    }
    low = {**knows, "adapter": 0.5, "summary": "knows 50% ...", "flag": "below the 90% target: x"}
    rep = build_report(
        results(),
        prices=PRICES,
        adapters=ADAPTERS,
        latency=PROBES,
        knowledge={"augmented-ft": knows, "plain-ft": low},
    )
    md = render_markdown(rep)
    assert "| augmented-ft | 40 | 95.0% | 47.5% | 27.0% | meets the target |" in md
    assert "| plain-ft | 40 | 50.0% | 47.5% | 27.0% | below the 90% target: x |" in md
    assert "- augmented-ft knows 95% of its documents' facts; base 48%" in md
    # A report stored before the check existed still renders.
    old = {k: v for k, v in rep.items() if k != "knowledge"}
    assert "## Knowledge check" in render_markdown(old)


def test_the_typed_report_model_holds_every_field_of_new_and_stored_reports() -> None:
    """GET .../report answers through service.report.schemas.EvaluationReport: it must carry a
    report of today's schema, and one stored under /1, field for field."""
    from pathlib import Path

    from service.report.schemas import EvaluationReport

    new = build_report(
        results(),
        prices=PRICES,
        adapters=ADAPTERS,
        latency=PROBES,
        knowledge={"augmented-ft": {"probes": 40, "adapter": 0.95, "base": 0.475}},
    )
    old = json.loads((Path(__file__).parent / "data" / "evaluation-report-v1.json").read_text())
    # Adapters without cost records (one or all): their one-time cost and break-even are None.
    some = build_report(
        results(), prices=PRICES, adapters={"augmented-ft": ADAPTERS["augmented-ft"]}
    )
    none = build_report(results(), prices=PRICES)
    for stored in (*(json.loads(json.dumps(r)) for r in (new, some, none)), old):
        typed = EvaluationReport.model_validate(stored)
        assert typed.model_dump(mode="json", by_alias=True, exclude_unset=True) == stored
    assert EvaluationReport.model_validate(new).recommendation is not None
