"""An evaluation through the REST API with a real worker and the session's vLLM: a tiny collection
of invented facts, a 6-item multiple-choice set, modes base, icl and rag plus an imported (random)
adapter, and a worker killed mid-way. The report is checked against the per-item results, the
plot, the HTML, the break-even arithmetic, the quality verdicts and the recommendation (quality
first: no break-even where the adapter is significantly less accurate), the CLI, and workspace
isolation."""

from __future__ import annotations

import base64
import io
import json
import math
import re
import tarfile
from pathlib import Path
from typing import Any

import matplotlib.image
import pytest
from scipy.stats import binomtest
from typer.testing import CliRunner

from adapters.selfcheck import make_random_adapter
from service.cli import app as cli_app
from service.report.plot import PNG_SIGNATURE
from service.report.tables import SECTIONS
from tests.e2e.service_fixtures import LiveService

pytestmark = pytest.mark.e2e

DOCS = {
    "hazards.txt": "Femp are more dangerous than glon. Glon are heavier than troff.",
    "people.txt": "Morv is the parent of Quell. Dax owns the zorvath mill.",
    "places.txt": "The yomp archive is in Brellin. Kreb live under the Tassel bridge.",
}
ITEMS = [
    {
        "id": "f1",
        "question": "The zorvath mill is owned by",
        "answer": "Dax",
        "choices": ["Dax", "Morv", "Quell"],
        "category": "fact",
    },
    {
        "id": "f2",
        "question": "The yomp archive is in",
        "answer": "Brellin",
        "choices": ["Paris", "Brellin"],
        "category": "fact",
    },
    {
        "id": "f3",
        "question": "Kreb live under the",
        "answer": "Tassel bridge",
        "choices": ["Tassel bridge", "zorvath mill"],
        "category": "fact",
    },
    {
        "id": "r1",
        "question": "Glon are less dangerous than",
        "answer": "femp",
        "choices": ["femp", "troff"],
        "category": "reversal",
    },
    {
        "id": "r2",
        "question": "Quell is the child of",
        "answer": "Morv",
        "choices": ["Dax", "Morv"],
        "category": "reversal",
    },
    {
        "id": "r3",
        "question": "Troff are lighter than",
        "answer": "glon",
        "choices": ["glon", "femp", "kreb"],
        "category": "reversal",
    },
]
COSTS = {
    "teacher_prompt_tokens": 2_000_000,
    "teacher_completion_tokens": 400_000,
    "training_tokens": 1_000_000,
    "training_wall_s": 1800.0,
    "training_hardware": "cpu",
}
REPORT_FIELDS = {
    "schema",
    "meta",
    "summary",
    "accuracy",
    "accuracy_by_category",
    "paired_tests",
    "recommendation",
    "knowledge",
    "usage",
    "per_query_cost",
    "one_time_cost",
    "break_even",
    "cost_curve",
    "prices",
    "price_descriptions",
    "notes",
}


def _setup(svc: LiveService, auth: dict[str, str], tmp_path: Path) -> tuple[str, str, dict]:
    col = svc.client.post("/v1/collections", json={"name": "facts"}, headers=auth).json()["id"]
    files = [("files", (name, text.encode(), "text/plain")) for name, text in DOCS.items()]
    r = svc.client.post(f"/v1/collections/{col}/documents", files=files, headers=auth)
    assert r.status_code == 201, r.text
    r = svc.client.post(
        f"/v1/collections/{col}/evalsets",
        params={"name": "six"},
        content="\n".join(json.dumps(i) for i in ITEMS).encode(),
        headers=auth | {"Content-Type": "application/x-ndjson"},
    )
    assert r.status_code == 201, r.text
    evalset = r.json()["id"]

    folder = make_random_adapter(tmp_path / "rand", 7, svc.settings.base_model_path)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        tar.add(folder, arcname="rand")
    r = svc.client.post(
        "/v1/adapters/import",
        data={"name": "rand-ft"},
        files={"file": ("rand.tar.gz", buf.getvalue(), "application/gzip")},
        headers=auth,
    )
    assert r.status_code == 201, r.text
    return col, evalset, r.json()


def _results(svc: LiveService, auth: dict[str, str], ev: str) -> list[dict[str, Any]]:
    r = svc.client.get(f"/v1/evaluations/{ev}/results", params={"limit": 1000}, headers=auth)
    assert r.status_code == 200
    return r.json()["data"]


def _check_numbers(report: dict[str, Any], results: list[dict[str, Any]]) -> None:
    """Every accuracy and mean in the report, recomputed from the per-item results."""
    modes = report["summary"]["modes"]
    for mode in modes:
        rows = [r for r in results if r["mode"] == mode]
        assert sorted(r["item_id"] for r in rows) == sorted(i["id"] for i in ITEMS)
        for row in rows:  # each decision follows from its own log-likelihoods
            sums, norms = row["choice_logprobs"], row["choice_logprobs_norm"]
            assert row["pred_sum"] == max(range(len(sums)), key=lambda k: (sums[k], -k))
            assert row["pred_norm"] == max(range(len(norms)), key=lambda k: (norms[k], -k))
            assert row["correct"] == (row["pred_sum"] == row["answer_index"])
            assert row["scores"]["mc_norm"] == (row["pred_norm"] == row["answer_index"])
            assert row["error"] is None
        acc = report["accuracy"][mode]
        k = sum(r["correct"] for r in rows)
        assert (acc["correct"]["correct"], acc["correct"]["n"]) == (k, len(rows))
        assert acc["correct"]["accuracy"] == pytest.approx(k / len(rows))
        assert acc["correct"]["ci_low"] <= k / len(rows) <= acc["correct"]["ci_high"]
        assert acc["mc_norm"]["correct"] == sum(r["scores"]["mc_norm"] for r in rows)
        assert report["summary"]["primary_accuracy"][mode] == pytest.approx(k / len(rows))
        for cat in ("fact", "reversal"):
            in_cat = [r for r in rows if r["category"] == cat]
            assert report["accuracy_by_category"][mode][cat]["correct"]["correct"] == sum(
                r["correct"] for r in in_cat
            )
        usage = report["usage"][mode]
        assert usage["n"] == len(rows) and usage["errors"] == 0
        assert usage["mean_prompt_tokens"] == pytest.approx(
            sum(r["prompt_tokens"] for r in rows) / len(rows)
        )
        assert usage["mean_completion_tokens"] == pytest.approx(
            sum(r["completion_tokens"] for r in rows) / len(rows)
        )
        assert "probe" in usage["latency_source"]
        assert usage["latency_cold_s"] > 0 and usage["latency_warm_s"] > 0
    icl = [r for r in results if r["mode"] == "icl"]
    assert all(r["cacheable_tokens"] > 0 for r in icl)  # the documents: one shared prefix
    assert (
        report["usage"]["icl"]["mean_prompt_tokens"]
        > report["usage"]["base"]["mean_prompt_tokens"] + 30
    )

    pairs = {(t["mode"], t["reference"]) for t in report["paired_tests"]}
    assert {("rand-ft", "icl"), ("rand-ft", "rag")} <= pairs  # the adapter against both
    check_quality(report, results)


def _verdict(difference: float, ci_low: float, p_value: float, alpha: float, margin: float) -> str:
    if p_value < alpha and difference != 0:
        return "worse" if difference < 0 else "better"
    return "within_margin" if ci_low >= -margin else "not_shown_within_margin"


def check_quality(report: dict[str, Any], results: list[dict[str, Any]]) -> None:
    """Every paired test, quality verdict, break-even verdict, recommendation and cost per correct
    answer of the report, recomputed from the per-item results and the report's own costs."""
    rec = report["recommendation"]
    alpha, margin = rec["alpha"], rec["margin"]
    assert (alpha, margin) == (0.05, 0.05)
    right = {(r["mode"], r["item_id"]): r["correct"] for r in results}
    tests: dict[tuple[str, str], dict[str, Any]] = {}
    for t in report["paired_tests"]:
        ids = [i for m, i in right if m == t["mode"] and (t["reference"], i) in right]
        mine, theirs = [right[t["mode"], i] for i in ids], [right[t["reference"], i] for i in ids]
        only_mode = sum(a and not b for a, b in zip(mine, theirs, strict=True))
        only_ref = sum(b and not a for a, b in zip(mine, theirs, strict=True))
        if t["metric"] == "correct":
            assert (t["n"], t["only_mode"], t["only_reference"]) == (len(ids), only_mode, only_ref)
            tests[t["mode"], t["reference"]] = t
        trials = t["only_mode"] + t["only_reference"]
        p = binomtest(t["only_mode"], trials).pvalue if trials else 1.0
        assert t["p_value"] == pytest.approx(p)
        assert t["ci_low"] <= t["difference"] <= t["ci_high"]
        assert t["verdict"] == _verdict(t["difference"], t["ci_low"], p, alpha, margin)

    def verdict(mode: str, reference: str) -> tuple[str, float]:
        if (mode, reference) in tests:
            t = tests[mode, reference]
            return _verdict(t["difference"], t["ci_low"], t["p_value"], alpha, margin), t["p_value"]
        t = tests[reference, mode]  # the same test, read the other way round
        return _verdict(-t["difference"], -t["ci_high"], t["p_value"], alpha, margin), t["p_value"]

    accuracy = report["summary"]["primary_accuracy"]
    best = rec["best"]
    assert accuracy[best] == max(accuracy.values())
    for mode, entry in rec["modes"].items():
        expected = "best" if mode == best else verdict(mode, best)[0]
        assert entry["verdict"] == expected
        assert entry["candidate"] == (expected != "worse")
        assert entry["as_accurate"] == (expected in ("best", "better", "within_margin"))
    for key in ("uncached", "cached"):

        def usd(mode: str, key: str = key) -> float:
            return report["per_query_cost"][mode][key]["usd"]

        pick, cheap = rec["recommended"][key], rec["cheapest_not_worse"][key]
        assert pick in rec["as_accurate"] and all(usd(pick) <= usd(m) for m in rec["as_accurate"])
        assert cheap in rec["candidates"] and all(usd(cheap) <= usd(m) for m in rec["candidates"])
        for mode, costs in report["per_query_cost"].items():
            per_correct = costs[key]["usd_per_correct"]
            if accuracy[mode]:
                assert per_correct == pytest.approx(costs[key]["usd"] / accuracy[mode])
            else:
                assert per_correct is None
    for b in report["break_even"]:
        expected, p = verdict(b["adapter"], b["reference"])
        assert (b["quality"]["verdict"], b["quality"]["p_value"]) == (expected, p)
        if expected == "worse":  # quality first: no break-even for a cheaper wrong answer
            assert (b["status"], b["n_queries"]) == ("less_accurate", None)
            assert "no break-even verdict" in b["verdict"]
        else:
            assert (b["status"], b["n_queries"]) == (b["cost_status"], b["cost_n_queries"])


def _check_costs(report: dict[str, Any]) -> None:
    """Per-query costs from the measured tokens and prices; one-time cost from the inputs;
    break-even = ceil(one_time / (icl - adapter)), all from the report's own numbers."""
    prices = report["prices"]
    assert prices["serving_hardware"] is None  # tokens only: latency is not priced
    for mode, costs in report["per_query_cost"].items():
        u = report["usage"][mode]
        uncached = (
            u["mean_prompt_tokens"] * prices["input_per_mtok"]
            + u["mean_completion_tokens"] * prices["output_per_mtok"]
        ) / 1e6
        assert costs["uncached"]["usd"] == pytest.approx(uncached)
        cached_part = u["mean_cacheable_tokens"]
        cached = (
            (u["mean_prompt_tokens"] - cached_part) * prices["input_per_mtok"]
            + cached_part * prices["cached_input_per_mtok"]
            + u["mean_completion_tokens"] * prices["output_per_mtok"]
        ) / 1e6
        assert costs["cached"]["usd"] == pytest.approx(cached)
        assert costs["cached"]["assumption"].startswith("prefix caching")
    one = report["one_time_cost"]["rand-ft"]
    teacher = (
        COSTS["teacher_prompt_tokens"] * prices["input_per_mtok"]
        + COSTS["teacher_completion_tokens"] * prices["output_per_mtok"]
    ) / 1e6
    compute = COSTS["training_wall_s"] / 3600 * prices["cpu_hour"]
    assert one["teacher_usd"] == pytest.approx(teacher)
    assert one["training_compute_usd"] == pytest.approx(compute)
    assert one["total_usd"] == pytest.approx(teacher + compute + one["training_tokens_usd"])

    entries = report["break_even"]
    # the adapter against icl and against rag, each without and with prefix caching
    assert sorted((b["reference"], b["prefix_cached"]) for b in entries) == [
        ("icl", False),
        ("icl", True),
        ("rag", False),
        ("rag", True),
    ]
    for b in entries:
        key = "cached" if b["prefix_cached"] else "uncached"
        ref = b["reference"]
        assert b["adapter_per_query_usd"] == report["per_query_cost"]["rand-ft"][key]["usd"]
        assert b["reference_per_query_usd"] == report["per_query_cost"][ref][key]["usd"]
        assert b["one_time_usd"] == one["total_usd"] and b["reference_one_time_usd"] == 0.0
        saving = b["reference_per_query_usd"] - b["adapter_per_query_usd"]
        # the adapter sends neither the documents nor the passages
        assert saving > 0 and b["cost_status"] == "breaks_even"
        n = b["cost_n_queries"]
        assert n == math.ceil(b["one_time_usd"] / saving - 1e-9)
        # n queries pay it back, n - 1 do not
        assert b["one_time_usd"] + n * b["adapter_per_query_usd"] <= (
            n * b["reference_per_query_usd"] * (1 + 1e-12)
        )
        assert b["one_time_usd"] + (n - 1) * b["adapter_per_query_usd"] > (
            (n - 1) * b["reference_per_query_usd"]
        )
    icl_rows = [b for b in entries if b["reference"] == "icl"]
    cached_n = next(b["cost_n_queries"] for b in icl_rows if b["prefix_cached"])
    uncached_n = next(b["cost_n_queries"] for b in icl_rows if not b["prefix_cached"])
    assert cached_n > uncached_n  # a cheaper (cached) ICL takes longer to beat
    assert report["cost_curve"]["n_max"] >= 2 * cached_n


def test_evaluation_report_agrees_with_its_results(
    live_service: LiveService, start_worker: Any, tmp_path: Path
) -> None:
    svc = live_service
    auth = svc.new_workspace()
    col, evalset, adapter = _setup(svc, auth, tmp_path)
    r = svc.client.post(
        "/v1/evaluations",
        headers=auth,
        json={
            "collection_id": col,
            "evalset_id": evalset,
            "modes": ["base", "icl", "rag"],
            "adapter_ids": [adapter["id"]],
            "adapter_costs": {adapter["id"]: COSTS},
            "rag_top_k": 1,
            "latency_samples": 1,
            "max_tokens": 8,
        },
    )
    assert r.status_code == 201, r.text
    ev = r.json()
    assert [m["name"] for m in ev["modes"]] == ["base", "icl", "rag", "rand-ft"]
    assert svc.client.get(f"/v1/evaluations/{ev['id']}/report", headers=auth).status_code == 409
    # a worker killed mid-way: the next one resumes and skips every stored result
    worker = start_worker()
    svc.wait_job(auth, ev["job"]["id"], timeout=600, until=lambda j: j["progress"]["done"] >= 5)
    worker.kill()
    stored = len(_results(svc, auth, ev["id"]))
    start_worker()
    job = svc.wait_job(auth, ev["job"]["id"], timeout=900)
    assert job["status"] == "succeeded", job
    assert job["attempts"] == 2 and job["metrics"]["skipped_results"] == stored >= 5
    assert job["progress"]["done"] == job["progress"]["total"] == 4 * len(ITEMS)

    ev = svc.client.get(f"/v1/evaluations/{ev['id']}", headers=auth).json()
    assert ev["status"] == "succeeded" and ev["report_ready"]
    report = svc.client.get(f"/v1/evaluations/{ev['id']}/report", headers=auth).json()
    assert set(report) == REPORT_FIELDS
    assert report["summary"]["modes"] == ["base", "icl", "rag", "rand-ft"]
    assert report["summary"]["mode_kinds"]["rand-ft"] == "adapter"
    assert report["knowledge"] == {}  # an imported adapter has no knowledge check of its own
    assert report["summary"]["n_items"] == len(ITEMS)
    assert "one shared prefix" in report["meta"]["icl context"]
    assert "from the request" in report["meta"]["adapter rand-ft"]
    for mode, s in ev["summary"]["modes"].items():
        assert s["accuracy"] == report["summary"]["primary_accuracy"][mode]

    results = _results(svc, auth, ev["id"])
    assert len(results) == 4 * len(ITEMS)
    assert all(r["model"] in ("base", "rand-ft") for r in results)  # no vLLM-side names
    page = svc.client.get(
        f"/v1/evaluations/{ev['id']}/results",
        params={"mode": "icl", "offset": 2, "limit": 3},
        headers=auth,
    ).json()
    icl_rows = [r for r in results if r["mode"] == "icl"]
    assert page["total"] == len(ITEMS) and page["data"] == icl_rows[2:5]
    _check_numbers(report, results)
    _check_costs(report)

    png = svc.client.get(f"/v1/evaluations/{ev['id']}/cost-curve.png", headers=auth)
    assert png.headers["content-type"] == "image/png"
    assert png.content.startswith(PNG_SIGNATURE)
    height, width = matplotlib.image.imread(io.BytesIO(png.content)).shape[:2]
    assert width > 400 and height > 300

    html = svc.client.get(f"/v1/evaluations/{ev['id']}/report?format=html", headers=auth)
    assert html.headers["content-type"].startswith("text/html")
    (embedded,) = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html.text)
    assert base64.b64decode(embedded).startswith(PNG_SIGNATURE)
    assert not re.search(r'(src|href)="(https?:)?//', html.text)  # self-contained
    md = svc.client.get(f"/v1/evaluations/{ev['id']}/report?format=md", headers=auth)
    assert md.headers["content-type"].startswith("text/markdown")
    for title in SECTIONS.values():
        assert f"## {title}" in md.text
    # quality first, in the words a reader meets: the recommendation opens the summary, and a
    # break-even line is either withheld (significantly less accurate) or follows the verdict
    summary = md.text.split("## Summary")[1].split("\n## ")[0]
    pick = report["recommendation"]["recommended"]["uncached"]
    assert (
        f"- Recommended: {pick}, " in summary
        or f"- Recommended without prefix caching: {pick} (" in summary
    )
    assert "Recommended" in html.text
    for b in report["break_even"]:
        line = next(
            s for s in summary.splitlines() if s.startswith(f"- rand-ft vs {b['reference']}: ")
        )
        assert b["quality"]["text"] in line
        if b["status"] == "less_accurate":
            assert "no break-even verdict" in line and "breaks even" not in line

    # the shell: `docadapt report`, against the same database
    env = {
        "DOCADAPT_DATA_DIR": str(svc.settings.data_dir),
        "DOCADAPT_DATABASE_URL": svc.settings.sqlalchemy_url,
    }
    out = CliRunner().invoke(cli_app, ["report", ev["id"]], env=env)
    assert out.exit_code == 0, out.output
    assert out.output.strip() == md.text.strip()
    target = tmp_path / "report.json"
    out = CliRunner().invoke(
        cli_app, ["report", ev["id"], "--format", "json", "--out", str(target)], env=env
    )
    assert out.exit_code == 0, out.output
    assert json.loads(target.read_text()) == report
    assert CliRunner().invoke(cli_app, ["report", "ev_missing"], env=env).exit_code == 1

    other = svc.new_workspace("other")
    for path in ("", "/results", "/report", "/report?format=html", "/cost-curve.png"):
        r = svc.client.get(f"/v1/evaluations/{ev['id']}{path}", headers=other)
        assert r.status_code == 404, path
    r = svc.client.post(
        "/v1/evaluations", headers=other, json={"collection_id": col, "evalset_id": evalset}
    )
    assert r.status_code == 404
