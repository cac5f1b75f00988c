"""Adapter plus retrieval on the session's real vLLM: an evaluation with modes base, icl, rag,
adapter and adapter+rag (an imported random adapter, a real worker) whose report prices
adapter+rag beside icl and rag, and chat queries with the `retrieval` option through the
official `openai` client."""

from __future__ import annotations

import io
import json
import math
import re
from pathlib import Path
from typing import Any

import matplotlib.image
import pytest
from openai import NotFoundError, OpenAI

from service.report.plot import PNG_SIGNATURE
from tests.e2e.service_fixtures import LiveService
from tests.e2e.test_evaluation_api import check_quality
from tests.e2e.test_query_api import import_adapter

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
        "choices": ["Dax", "Morv"],
    },
    {
        "id": "f2",
        "question": "The yomp archive is in",
        "answer": "Brellin",
        "choices": ["Paris", "Brellin"],
    },
    {
        "id": "r1",
        "question": "Glon are less dangerous than",
        "answer": "femp",
        "choices": ["femp", "troff"],
    },
    {"id": "g1", "question": "Where do kreb live?", "answer": "under the Tassel bridge"},
]
COSTS = {"training_tokens": 1_000_000, "training_wall_s": 1800.0, "training_hardware": "cpu"}
MODES = ["base", "icl", "rag", "rand-ft", "rand-ft+rag"]


def _collection(svc: LiveService, auth: dict[str, str]) -> str:
    col = svc.client.post("/v1/collections", json={"name": "facts"}, headers=auth).json()["id"]
    files = [("files", (name, text.encode(), "text/plain")) for name, text in DOCS.items()]
    r = svc.client.post(f"/v1/collections/{col}/documents", files=files, headers=auth)
    assert r.status_code == 201, r.text
    return col


def _rows(svc: LiveService, auth: dict[str, str], ev: str) -> dict[tuple[str, str], dict]:
    r = svc.client.get(f"/v1/evaluations/{ev}/results", params={"limit": 1000}, headers=auth)
    assert r.status_code == 200
    return {(row["mode"], row["item_id"]): row for row in r.json()["data"]}


def test_evaluation_prices_adapter_rag_beside_icl_and_rag(
    live_service: LiveService, start_worker: Any, make_random_adapter: Any, tmp_path: Path
) -> None:
    svc = live_service
    auth = svc.new_workspace()
    col = _collection(svc, auth)
    r = svc.client.post(
        f"/v1/collections/{col}/evalsets",
        content="\n".join(json.dumps(i) for i in ITEMS).encode(),
        headers=auth | {"Content-Type": "application/x-ndjson"},
    )
    assert r.status_code == 201, r.text
    evalset = r.json()["id"]
    r = import_adapter(svc, auth, make_random_adapter(tmp_path / "rand", seed=7), "rand-ft")
    assert r.status_code == 201, r.text
    adapter = r.json()

    r = svc.client.post(
        "/v1/evaluations",
        headers=auth,
        json={
            "collection_id": col,
            "evalset_id": evalset,
            "modes": ["base", "icl", "rag", "adapter", "adapter+rag"],
            "adapter_ids": [adapter["id"]],
            "adapter_costs": {adapter["id"]: COSTS},
            "rag_top_k": 1,
            "latency_samples": 1,
            "max_tokens": 8,
        },
    )
    assert r.status_code == 201, r.text
    ev = r.json()
    assert [m["name"] for m in ev["modes"]] == MODES
    assert ev["modes"][-1] == {
        "name": "rand-ft+rag",
        "kind": "adapter+rag",
        "adapter_id": adapter["id"],
    }
    start_worker()
    job = svc.wait_job(auth, ev["job"]["id"], timeout=900)
    assert job["status"] == "succeeded", job
    assert job["progress"]["done"] == job["progress"]["total"] == len(MODES) * len(ITEMS)

    rows = _rows(svc, auth, ev["id"])
    assert len(rows) == len(MODES) * len(ITEMS)
    for item in ITEMS:
        both, rag, alone = (rows[m, item["id"]] for m in ("rand-ft+rag", "rag", "rand-ft"))
        assert (both["mode_kind"], both["model"], both["error"]) == ("adapter+rag", "rand-ft", None)
        # rag's prompt, to the token, sent to the adapter: its passages make it longer than alone
        assert both["prompt_tokens"] == rag["prompt_tokens"] > alone["prompt_tokens"] + 20
        assert both["cacheable_tokens"] == 0
        if "choices" in item:
            assert both["choice_logprobs"] != rag["choice_logprobs"]  # the adapter's weights
        else:
            assert both["prediction"] is not None and both["completion_tokens"] > 0

    report = svc.client.get(f"/v1/evaluations/{ev['id']}/report", headers=auth).json()
    assert report["summary"]["modes"] == MODES
    assert report["summary"]["mode_kinds"]["rand-ft+rag"] == "adapter+rag"
    assert "top 1 of 3 passages" in report["meta"]["rag context"]
    prices = report["prices"]
    usage = report["usage"]["rand-ft+rag"]
    assert usage["mean_prompt_tokens"] == pytest.approx(
        sum(rows["rand-ft+rag", i["id"]]["prompt_tokens"] for i in ITEMS) / len(ITEMS)
    )
    assert usage["mean_prompt_tokens"] == report["usage"]["rag"]["mean_prompt_tokens"]
    assert "probe" in usage["latency_source"] and usage["latency_cold_s"] > 0
    per_query = report["per_query_cost"]["rand-ft+rag"]
    expected = (
        usage["mean_prompt_tokens"] * prices["input_per_mtok"]
        + usage["mean_completion_tokens"] * prices["output_per_mtok"]
    ) / 1e6
    # no shared prefix, latency not priced: the same figure with and without prefix caching
    assert per_query["uncached"]["usd"] == pytest.approx(expected)
    assert per_query["cached"]["usd"] == pytest.approx(expected)
    one_time = report["one_time_cost"]["rand-ft+rag"]
    assert one_time == report["one_time_cost"]["rand-ft"]
    assert one_time["total_usd"] == pytest.approx(1800 / 3600 * prices["cpu_hour"])

    # break-even rows: each trained mode against icl and rag, the adapter also against its own
    # adapter+rag, each without and with prefix caching
    pairs = {(b["adapter"], b["reference"], b["prefix_cached"]): b for b in report["break_even"]}
    assert set(pairs) == {
        (mode, reference, cached)
        for mode, reference in (
            ("rand-ft", "icl"),
            ("rand-ft", "rag"),
            ("rand-ft", "rand-ft+rag"),
            ("rand-ft+rag", "icl"),
            ("rand-ft+rag", "rag"),
        )
        for cached in (False, True)
    }
    for (mode, reference, cached), b in pairs.items():
        key = "cached" if cached else "uncached"
        assert b["one_time_usd"] == report["one_time_cost"][mode]["total_usd"]
        assert b["reference_one_time_usd"] == (
            one_time["total_usd"] if reference == "rand-ft+rag" else 0.0
        )
        assert b["adapter_per_query_usd"] == report["per_query_cost"][mode][key]["usd"]
        assert b["reference_per_query_usd"] == report["per_query_cost"][reference][key]["usd"]
        saving = b["reference_per_query_usd"] - b["adapter_per_query_usd"]
        extra = b["one_time_usd"] - b["reference_one_time_usd"]
        if saving > 0:
            assert b["cost_status"] == "breaks_even"
            assert b["cost_n_queries"] == max(0, math.ceil(extra / saving - 1e-9))
        elif saving == 0 and extra <= 0:
            assert (b["cost_status"], b["cost_n_queries"]) == ("breaks_even", 0)
        else:
            assert (b["cost_status"], b["cost_n_queries"]) == ("never", None)
    # rag's top passage is shorter than all the documents: cheaper per query than uncached ICL
    assert pairs["rand-ft+rag", "icl", False]["cost_status"] == "breaks_even"
    # the adapter alone sends no passages and shares its adapter's one-time cost: no dearer
    # from the first query (the generation item's completions may differ in length)
    own = pairs["rand-ft", "rand-ft+rag", False]
    assert own["reference_one_time_usd"] == own["one_time_usd"]
    if own["saving_per_query_usd"] >= 0:
        assert own["cost_n_queries"] == 0
    # quality first: verdicts, withheld break-evens and the recommendation from the results
    check_quality(report, list(rows.values()))

    lines = {line["label"]: line for line in report["cost_curve"]["lines"]}
    assert {"rag", "rand-ft", "rand-ft+rag"} <= set(lines)
    assert lines["rag"]["one_time_usd"] == 0.0
    assert lines["rag"]["per_query_usd"] == report["per_query_cost"]["rag"]["uncached"]["usd"]
    assert lines["rand-ft+rag"]["one_time_usd"] == one_time["total_usd"]
    assert lines["rand-ft+rag"]["per_query_usd"] == per_query["uncached"]["usd"]

    # paired on the same items: does the pair beat icl, rag, the adapter alone?
    paired = {
        t["reference"]: t
        for t in report["paired_tests"]
        if t["mode"] == "rand-ft+rag" and t["metric"] == "correct"
    }
    assert set(paired) == {"icl", "rag", "rand-ft"}
    for reference, t in paired.items():
        ids = [i["id"] for i in ITEMS]
        assert t["n"] == len(ITEMS)
        assert t["only_mode"] == sum(
            rows["rand-ft+rag", i]["correct"] and not rows[reference, i]["correct"] for i in ids
        )
        assert t["only_reference"] == sum(
            rows[reference, i]["correct"] and not rows["rand-ft+rag", i]["correct"] for i in ids
        )

    md = svc.client.get(f"/v1/evaluations/{ev['id']}/report?format=md", headers=auth).text
    assert re.search(r"^\| rand-ft\+rag \| adapter\+rag \| ", md, re.M)  # accuracy
    # accuracy, then cost per query and per correct answer, without and with prefix caching
    per_correct = r"(\$[0-9.e-]+|n/a \(no correct answers\))"
    assert re.search(
        rf"^\| rand-ft\+rag \| [0-9.]+% \| \$[0-9.e-]+ \| {per_correct} \| \$[0-9.e-]+ \| "
        rf"{per_correct} \| no prefix caching",
        md,
        re.M,
    )
    # the break-even row states the quality against the reference before any cost
    assert re.search(
        r"^\| rand-ft\+rag \| icl \| (significantly|not significantly|at least as)[^|]+ \| "
        r"without prefix caching \| ",
        md,
        re.M,
    )
    assert re.search(r"^\| rand-ft \| rand-ft\+rag \| [^|]+ \| with prefix caching \| ", md, re.M)
    assert re.search(r"^\| rand-ft\+rag \| rag \| correct \| ", md, re.M)
    assert any(n.startswith("rand-ft+rag:") and "against rag's" in n for n in report["notes"])
    html = svc.client.get(f"/v1/evaluations/{ev['id']}/report?format=html", headers=auth).text
    assert "rand-ft+rag" in html and "adapter+rag" in html
    png = svc.client.get(f"/v1/evaluations/{ev['id']}/cost-curve.png", headers=auth)
    assert png.content.startswith(PNG_SIGNATURE)
    height, width = matplotlib.image.imread(io.BytesIO(png.content)).shape[:2]
    assert width > 400 and height > 300


def test_chat_with_retrieval_puts_top_passages_in_the_adapters_prompt(
    live_service: LiveService, make_random_adapter: Any, tmp_path: Path
) -> None:
    from sqlalchemy import select

    from service.db.tables import QueryRecord

    svc = live_service
    auth = svc.new_workspace("a")
    col = _collection(svc, auth)
    r = import_adapter(svc, auth, make_random_adapter(tmp_path / "ad", seed=11), "rand-chat")
    assert r.status_code == 201, r.text
    adapter = r.json()
    key = auth["Authorization"].removeprefix("Bearer ")
    client = OpenAI(base_url="http://testserver/v1", api_key=key, http_client=svc.client)
    ask = {
        "messages": [{"role": "user", "content": "Who owns the zorvath mill?"}],
        "max_tokens": 8,
        "temperature": 0,
    }

    plain = client.chat.completions.create(model="rand-chat", **ask)
    raw = client.chat.completions.with_raw_response.create(
        model="rand-chat", extra_body={"retrieval": {"collection_id": col, "top_k": 2}}, **ask
    )
    answer = raw.parse()
    assert answer.model == "rand-chat"
    assert answer.usage.prompt_tokens > plain.usage.prompt_tokens + 20  # the passages
    assert answer.usage.completion_tokens > 0 and answer.choices[0].message.content
    assert raw.headers["x-docadapt-mode"] == "adapter+rag"
    assert raw.headers["x-docadapt-passages"] == "2/3"
    info = raw.http_response.json()["docadapt"]
    assert (info["mode"], info["collection_id"], info["top_k"]) == ("adapter+rag", col, 2)
    assert info["passages_used"] == 2 and info["context_truncated"] is False

    rag = client.chat.completions.create(
        model="base", extra_body={"retrieval": {"collection_id": col, "top_k": 2}}, **ask
    )
    assert rag.usage.prompt_tokens == answer.usage.prompt_tokens  # the same prompt, on base

    runtime = svc.client.app.state.runtime  # type: ignore[attr-defined]
    with runtime.session_factory() as session:
        records = [
            (r.mode, r.adapter_id, r.collection_id, r.prompt_tokens)
            for r in session.scalars(select(QueryRecord).order_by(QueryRecord.id))
        ]
    assert records == [
        ("adapter", adapter["id"], None, plain.usage.prompt_tokens),
        ("adapter+rag", adapter["id"], col, answer.usage.prompt_tokens),
        ("rag", None, col, rag.usage.prompt_tokens),
    ]

    # errors a user can cause
    headers = auth | {"content-type": "application/json"}
    body = {"model": "rand-chat", **ask}
    r = svc.client.post(
        "/v1/chat/completions",
        json=body | {"retrieval": {"collection_id": "col_missing"}},
        headers=headers,
    )
    assert r.status_code == 404 and r.json()["error"]["code"] == "collection_not_found"
    r = svc.client.post(
        "/v1/chat/completions",
        json=body | {"retrieval": {"collection_id": col, "top_k": 0}},
        headers=headers,
    )
    assert r.status_code == 400 and "retrieval.top_k" in r.json()["error"]["message"]
    r = svc.client.post(
        f"/v1/collections/{col}/adapters", json={"name": "pending"}, headers=auth
    )  # no worker runs here: it stays queued
    assert r.status_code == 201, r.text
    r = svc.client.post(
        "/v1/chat/completions",
        json=body | {"model": "pending", "retrieval": {"collection_id": col}},
        headers=headers,
    )
    assert r.status_code == 409 and r.json()["error"]["code"] == "adapter_not_ready"

    # another workspace reaches neither the collection nor the adapter
    other_auth = svc.new_workspace("b")
    other = OpenAI(
        base_url="http://testserver/v1",
        api_key=other_auth["Authorization"].removeprefix("Bearer "),
        http_client=svc.client,
    )
    with pytest.raises(NotFoundError) as err:
        other.chat.completions.create(
            model="base", extra_body={"retrieval": {"collection_id": col}}, **ask
        )
    assert "collection" in str(err.value)
    with pytest.raises(NotFoundError):
        other.chat.completions.create(
            model="rand-chat", extra_body={"retrieval": {"collection_id": col}}, **ask
        )
