"""Eval sets and evaluation requests through the REST API, without a model: JSONL validation with
line numbers, nothing partial stored, validation before a job starts, and workspace isolation."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient

from service.core.config import Settings
from service.main import create_app
from tests.integration.conftest import new_workspace

NDJSON = {"Content-Type": "application/x-ndjson"}

GOOD = [
    {
        "id": "q1",
        "question": "Femp are more dangerous than",
        "answer": "glon",
        "choices": ["glon", "troff"],
        "category": "reversal",
    },
    {"question": "Who owns the zorvath mill?", "answer": "Dax", "category": "fact"},
    {
        "id": "q3",
        "question": "All troff are",
        "answer": "yomp",
        "choices": ["yomp", "quom", "zarp"],
    },
]


def jsonl(*objects: object) -> bytes:
    return "\n".join(json.dumps(o) for o in objects).encode()


def _collection(client: TestClient, auth: dict[str, str], name: str = "facts") -> str:
    r = client.post("/v1/collections", json={"name": name}, headers=auth)
    assert r.status_code == 201, r.text
    return r.json()["id"]


def _evalset(client: TestClient, auth: dict[str, str], col: str, data: bytes, **params: str):
    return client.post(
        f"/v1/collections/{col}/evalsets", content=data, params=params, headers=auth | NDJSON
    )


def test_a_valid_set_is_stored_whole_and_listed(client: TestClient, auth: dict[str, str]) -> None:
    col = _collection(client, auth)
    r = _evalset(client, auth, col, jsonl(*GOOD) + b"\n\n", name="smoke")
    assert r.status_code == 201, r.text
    es = r.json()
    assert es["name"] == "smoke" and es["collection_id"] == col
    assert es["item_count"] == 3 and es["multiple_choice_count"] == 2
    assert es["categories"] == ["fact", "reversal"]

    listed = client.get(f"/v1/collections/{col}/evalsets", headers=auth).json()["data"]
    assert [e["id"] for e in listed] == [es["id"]]
    detail = client.get(f"/v1/evalsets/{es['id']}", headers=auth).json()
    items = detail["items"]
    assert [i["question"] for i in items] == [g["question"] for g in GOOD]
    assert items[0]["id"] == "q1" and items[0]["choices"] == ["glon", "troff"]
    assert items[1]["id"].startswith("item-") and "choices" not in items[1]


def test_multipart_file_and_text_plain_are_accepted(
    client: TestClient, auth: dict[str, str]
) -> None:
    col = _collection(client, auth)
    r = client.post(
        f"/v1/collections/{col}/evalsets",
        files={"file": ("hazards.jsonl", jsonl(*GOOD), "application/octet-stream")},
        headers=auth,
    )
    assert r.status_code == 201, r.text
    assert r.json()["name"] == "hazards.jsonl" and r.json()["item_count"] == 3
    r = client.post(
        f"/v1/collections/{col}/evalsets",
        content=jsonl(GOOD[0]),
        headers=auth | {"Content-Type": "text/plain; charset=utf-8"},
    )
    assert r.status_code == 201 and r.json()["item_count"] == 1
    r = client.post(f"/v1/collections/{col}/evalsets", json=GOOD, headers=auth)
    assert r.status_code == 415 and "JSONL" in r.json()["error"]["message"]
    r = client.post(f"/v1/collections/{col}/evalsets", files={"other": ("x", b"{}")}, headers=auth)
    assert r.status_code == 422 and "`file`" in r.json()["error"]["message"]


def test_bad_lines_are_all_named_and_nothing_is_stored(
    client: TestClient, auth: dict[str, str]
) -> None:
    col = _collection(client, auth)
    lines = [
        json.dumps(GOOD[0]),  # 1 fine
        '{"question": "broken", "answer": ',  # 2 invalid JSON
        "",  # 3 blank: skipped
        json.dumps({"question": "no answer"}),  # 4 missing answer
        json.dumps({"question": "Q", "answer": "z", "choices": ["a", "b"]}),  # 5 not a choice
        json.dumps(GOOD[2]),  # 6 fine
        json.dumps({**GOOD[2], "question": "again"}),  # 7 duplicate id q3
        json.dumps(["a", "list"]),  # 8 not an object
        json.dumps({"question": "Q", "answer": "A", "colour": "red"}),  # 9 unknown field
    ]
    r = _evalset(client, auth, col, "\n".join(lines).encode())
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "invalid_evalset"
    bad = {
        2: "invalid JSON",
        4: "missing field 'answer'",
        5: "not one of the choices",
        7: "duplicate id 'q3', first seen on line 6",
        8: "expected a JSON object",
        9: "unknown field 'colour'",
    }
    assert [e["line"] for e in error["details"]["errors"]] == sorted(bad)
    for line, what in bad.items():
        assert f"line {line}: " in error["message"]
        (detail,) = [e for e in error["details"]["errors"] if e["line"] == line]
        assert what in detail["message"], (line, detail)
        assert what in error["message"]
    for line in (1, 3, 6):
        assert f"line {line}:" not in error["message"]
    assert "nothing was stored" in error["message"]
    assert client.get(f"/v1/collections/{col}/evalsets", headers=auth).json()["data"] == []

    for data in (b"", b"\n \n"):
        r = _evalset(client, auth, col, data)
        assert r.status_code == 422 and "no items" in r.json()["error"]["message"]
    assert client.get(f"/v1/collections/{col}/evalsets", headers=auth).json()["data"] == []


def test_many_bad_lines_are_all_numbered(client: TestClient, auth: dict[str, str]) -> None:
    col = _collection(client, auth)
    r = _evalset(client, auth, col, b"\n".join([b"{not json"] * 60))
    assert r.status_code == 422
    error = r.json()["error"]
    assert [e["line"] for e in error["details"]["errors"]] == list(range(1, 61))
    assert "60 bad lines" in error["message"]
    assert "line 50: " in error["message"] and "line 51: " not in error["message"]
    assert "and 10 more bad lines from line 51 on" in error["message"]


def test_an_eval_set_of_ten_thousand_bad_lines_gets_a_small_error(
    client: TestClient, auth: dict[str, str]
) -> None:
    """The count and the first lines, not a megabyte that lists every one."""
    col = _collection(client, auth)
    r = _evalset(client, auth, col, b"\n".join([b"{not json"] * 10_000))
    assert r.status_code == 422
    assert len(r.content) < 32_000, len(r.content)
    error = r.json()["error"]
    assert "10000 bad lines" in error["message"]
    assert "and 9950 more bad lines from line 51 on" in error["message"]
    assert [e["line"] for e in error["details"]["errors"]] == list(range(1, 101))
    assert error["details"]["errors_not_shown"] == 9_900


def test_another_workspace_sees_nothing(client: TestClient, auth: dict[str, str]) -> None:
    col = _collection(client, auth)
    es = _evalset(client, auth, col, jsonl(*GOOD)).json()
    other = new_workspace(client, "other")
    assert client.get(f"/v1/evalsets/{es['id']}", headers=other).status_code == 404
    assert client.get(f"/v1/collections/{col}/evalsets", headers=other).status_code == 404
    r = _evalset(client, other, col, jsonl(*GOOD))
    assert r.status_code == 404
    r = client.post(
        "/v1/evaluations", json={"collection_id": col, "evalset_id": es["id"]}, headers=other
    )
    assert r.status_code == 404


@pytest.fixture
def scoring_client(make_settings: Callable[..., Settings]) -> Iterator[TestClient]:
    """An app that believes it has a vLLM (nothing listens there and no worker runs): jobs are
    queued and stay queued."""
    settings = make_settings(vllm_url="http://127.0.0.1:9", vllm_isolation_check=False)
    with TestClient(create_app(settings)) as c:
        yield c


def test_evaluation_requests_are_validated_before_a_job_starts(
    client: TestClient, auth: dict[str, str]
) -> None:
    col = _collection(client, auth)
    other_col = _collection(client, auth, "other")
    es = _evalset(client, auth, col, jsonl(*GOOD)).json()
    body = {"collection_id": col, "evalset_id": es["id"]}

    def post(**changes: object):
        return client.post("/v1/evaluations", json=body | changes, headers=auth)

    r = post(modes=["base", "telepathy"])
    assert r.status_code == 422 and "modes" in r.json()["error"]["message"]
    r = post(collection_id=other_col)
    assert r.status_code == 422 and "belongs to collection" in r.json()["error"]["message"]
    r = post(adapter_ids=["ad_0000000000000000"])
    assert r.status_code == 404 and "adapter" in r.json()["error"]["message"]
    r = post(modes=[])
    assert r.status_code == 422 and "nothing to evaluate" in r.json()["error"]["message"]
    r = post(modes=["icl"])  # the collection has no documents
    assert r.status_code == 422 and "no documents" in r.json()["error"]["message"]
    r = post(prices={"input_per_mtok": -1})
    assert r.status_code == 422
    r = post(evalset_id="es_0000000000000000")
    assert r.status_code == 404
    r = post(modes=["base"])  # valid, but this app has no vLLM
    assert r.status_code == 503
    assert client.get("/v1/jobs/none", headers=auth).status_code == 404


def test_unfinished_evaluation_has_no_report_yet(scoring_client: TestClient) -> None:
    client = scoring_client
    auth = new_workspace(client)
    col = _collection(client, auth)
    es = _evalset(client, auth, col, jsonl(*GOOD)).json()
    r = client.post(
        "/v1/evaluations",
        json={"collection_id": col, "evalset_id": es["id"], "modes": ["base"]},
        headers=auth,
    )
    assert r.status_code == 201, r.text
    ev = r.json()
    assert ev["status"] == "queued" and ev["job"]["kind"] == "evaluation"
    assert ev["modes"] == [{"name": "base", "kind": "base"}]
    assert ev["summary"]["modes"]["base"]["n"] == 0
    for path in ("report", "report?format=html", "cost-curve.png"):
        r = client.get(f"/v1/evaluations/{ev['id']}/{path}", headers=auth)
        assert r.status_code == 409 and r.json()["error"]["code"] == "not_finished", path
    r = client.get(f"/v1/evaluations/{ev['id']}/results", headers=auth)
    assert r.status_code == 200 and r.json()["total"] == 0

    listed = client.get("/v1/evaluations", params={"collection_id": col}, headers=auth).json()
    assert [e["id"] for e in listed["data"]] == [ev["id"]]

    other = new_workspace(client, "other")
    assert client.get("/v1/evaluations", headers=other).json()["data"] == []
    for path in ("", "/results", "/report", "/cost-curve.png"):
        assert client.get(f"/v1/evaluations/{ev['id']}{path}", headers=other).status_code == 404
    assert client.get(f"/v1/jobs/{ev['job']['id']}", headers=other).status_code == 404
