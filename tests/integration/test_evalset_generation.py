"""Eval sets generated from a collection's documents over REST, with a real database, real
files and the real worker: the generation job, download -> edit -> upload, the held-out
sentences and the adapter that trains without them, and the errors a user can cause."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.core.config import Settings
from service.evaluate.evalset import parse_evalset_jsonl
from service.jobs.worker import Worker
from service.main import create_app
from tests.integration.conftest import new_workspace

TEAMS = (
    "Priya Nandakumar leads the Platform team. Chen Wei leads the Product Engineering team. "
    "The Security team is led by Marco Bianchi. The Finance team is led by Ingrid Svensson. "
    "All internal tools are maintained by the Platform team. Joana Pereira reports to Rui "
    "Costa.\n"
)
TOOLS = (
    "Expensio is the tool for expenses. Claims are filed in Expensio. Tidemark is the dashboard "
    "the Analytics team uses. Tidemark is an internal tool. Compass is the HR system where "
    "employees request leave. Leave is requested in Compass. Manifest is built by the Product "
    "Engineering team.\n"
)
NDJSON = {"Content-Type": "application/x-ndjson"}


@pytest.fixture
def client(make_settings: Callable[..., Settings]) -> Iterator[TestClient]:
    """The service with a teacher configured by its operator: the rule strategies (decomposed,
    linked) never call it, but an augmentation request needs one to be named."""
    with TestClient(create_app(make_settings(teacher_base_url="http://127.0.0.1:9/v1"))) as c:
        yield c


def _collection_with_documents(client: TestClient, auth: dict[str, str]) -> str:
    col = client.post("/v1/collections", json={"name": "calloway"}, headers=auth).json()["id"]
    files = [
        ("files", ("teams.txt", TEAMS.encode(), "text/plain")),
        ("files", ("tools.txt", TOOLS.encode(), "text/plain")),
    ]
    r = client.post(f"/v1/collections/{col}/documents", files=files, headers=auth)
    assert r.status_code == 201, r.text
    return col


def _run_jobs(client: TestClient) -> None:
    """Run every queued job with the service's own worker, in this process."""
    worker = Worker(client.app.state.runtime.settings)  # type: ignore[attr-defined]
    for _ in range(10):
        if not _queued(client):
            return
        worker.run(once=True)
    raise AssertionError("jobs still queued after ten runs")


def _queued(client: TestClient) -> int:
    from sqlalchemy import func, select

    from service.db.tables import Job

    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    with runtime.session_factory() as session:
        return int(session.scalar(select(func.count()).where(Job.status == "queued")) or 0)


def _generate(client: TestClient, auth: dict[str, str], col: str, **generate: object):
    body = {"name": "generated", "generate": {"max_items": 40, **generate}}
    return client.post(f"/v1/collections/{col}/evalsets", json=body, headers=auth)


def test_a_generated_set_is_written_by_a_job_and_round_trips_through_download(
    client: TestClient, auth: dict[str, str]
) -> None:
    col = _collection_with_documents(client, auth)
    r = _generate(client, auth, col, hold_out=0.3, seed=2)
    assert r.status_code == 202, r.text
    es = r.json()
    assert es["status"] == "generating" and es["source"] == "generated"
    assert es["item_count"] == 0 and es["job"]["kind"] == "evalset_generation"
    assert es["job"]["subject_id"] == es["id"] and es["job_id"] == es["job"]["id"]
    assert es["generation"]["params"]["hold_out"] == 0.3
    # not usable until written: no download, no evaluation
    r = client.get(f"/v1/evalsets/{es['id']}/download", headers=auth)
    assert r.status_code == 409 and r.json()["error"]["code"] == "not_ready"
    r = client.post(
        "/v1/evaluations", json={"collection_id": col, "evalset_id": es["id"]}, headers=auth
    )
    assert r.status_code == 409

    _run_jobs(client)
    job = client.get(f"/v1/jobs/{es['job']['id']}", headers=auth).json()
    assert job["status"] == "succeeded", job
    assert job["result"]["evalset_id"] == es["id"] and job["result"]["items"] > 0
    assert job["progress"]["done"] == job["progress"]["total"]

    detail = client.get(f"/v1/evalsets/{es['id']}", headers=auth).json()
    assert detail["status"] == "ready" and detail["item_count"] == len(detail["items"]) > 5
    assert detail["multiple_choice_count"] == detail["item_count"]
    base = {c.split("/")[0] for c in detail["categories"]}
    assert base == {"forward", "reversed", "cross-document"}
    questions = {i["question"]: i for i in detail["items"]}
    assert questions["Who leads the Platform team?"]["answer"] == "Priya Nandakumar."
    # each item's sources and what each choice asserts
    records = {p["id"]: p for p in detail["provenance"]}
    for item in detail["items"]:
        record = records[item["id"]]
        assert record["sources"] and len(record["statements"]) == len(item["choices"])
    # the held-out sentences: key, hash and text; their items are marked
    holdout = detail["holdout"]
    assert holdout["share"] == 0.3 and holdout["sentence_count"] == len(holdout["sentences"]) > 0
    held = {s["key"] for s in holdout["sentences"]}
    for s in holdout["sentences"]:
        assert s["key"].startswith(s["document_id"] + ":p") and len(s["sha256"]) == 64
        assert s["text"] in TEAMS + TOOLS
    for item in detail["items"]:
        marked = item["category"].endswith("/held-out")
        assert marked == bool(held & set(records[item["id"]]["sources"])), item
    assert holdout["held_out_items"] == sum(
        i["category"].endswith("/held-out") for i in detail["items"]
    )

    # download -> edit -> upload: the file is what the upload accepts
    r = client.get(f"/v1/evalsets/{es['id']}/download?format=jsonl", headers=auth)
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/x-ndjson")
    assert 'filename="generated.jsonl"' in r.headers["content-disposition"]
    parsed = parse_evalset_jsonl(r.content)
    assert [i.model_dump(mode="json", exclude_none=True) for i in parsed] == detail["items"]
    lines = r.content.decode().splitlines()
    edited = json.loads(lines[0]) | {"question": "Which team does Priya lead, then?"}
    body = "\n".join([json.dumps(edited), *lines[1:]]).encode()
    r = client.post(
        f"/v1/collections/{col}/evalsets",
        content=body,
        params={"name": "edited"},
        headers=auth | NDJSON,
    )
    assert r.status_code == 201, r.text
    uploaded = client.get(f"/v1/evalsets/{r.json()['id']}", headers=auth).json()
    assert uploaded["source"] == "uploaded" and uploaded["status"] == "ready"
    assert uploaded["item_count"] == detail["item_count"] and uploaded["holdout"] is None
    assert uploaded["items"][0]["question"] == "Which team does Priya lead, then?"
    assert uploaded["items"][1:] == detail["items"][1:]
    r = client.get(f"/v1/evalsets/{es['id']}/download?format=csv", headers=auth)
    assert r.status_code == 422


def test_generation_requests_are_refused_with_a_clear_4xx(
    client: TestClient, auth: dict[str, str]
) -> None:
    col = _collection_with_documents(client, auth)
    url = f"/v1/collections/{col}/evalsets"
    for generate, where in (
        ({"max_items": 0}, "max_items"),
        ({"categories": ["sideways"]}, "categories"),
        ({"categories": []}, "categories"),
        ({"hold_out": 0.95}, "hold_out"),
        ({"choices": 1}, "choices"),
        ({"colour": "red"}, "colour"),
    ):
        r = client.post(url, json={"generate": generate}, headers=auth)
        assert r.status_code == 422, (generate, r.text)
        assert where in r.json()["error"]["message"], r.json()
    r = client.post(url, content=b"{not json", headers=auth | {"Content-Type": "application/json"})
    assert r.status_code == 422 and "not valid JSON" in r.json()["error"]["message"]
    item = {"question": "Who leads the Platform team?", "answer": "Priya"}
    r = client.post(url, json=item, headers=auth)
    assert r.status_code == 422 and "x-ndjson" in r.json()["error"]["message"]

    empty = client.post("/v1/collections", json={"name": "empty"}, headers=auth).json()["id"]
    r = _generate(client, auth, empty)
    assert r.status_code == 422 and "no documents" in r.json()["error"]["message"]
    r = _generate(client, auth, "col_0000000000000000")
    assert r.status_code == 404

    # a generation cancelled before it ran leaves a cancelled set
    es = _generate(client, auth, col).json()
    r = client.post(f"/v1/jobs/{es['job']['id']}/cancel", headers=auth)
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    assert client.get(f"/v1/evalsets/{es['id']}", headers=auth).json()["status"] == "cancelled"
    r = client.get(f"/v1/evalsets/{es['id']}/download", headers=auth)
    assert r.status_code == 409 and "cancelled" in r.json()["error"]["message"]

    # another workspace sees neither the collection nor a set generated in it
    other = new_workspace(client, "other")
    assert _generate(client, other, col).status_code == 404
    for path in ("", "/download"):
        assert client.get(f"/v1/evalsets/{es['id']}{path}", headers=other).status_code == 404
    assert client.get(f"/v1/jobs/{es['job']['id']}", headers=other).status_code == 404


def test_a_failed_generation_leaves_a_failed_set_with_its_reason(
    client: TestClient, auth: dict[str, str]
) -> None:
    col = client.post("/v1/collections", json={"name": "thin"}, headers=auth).json()["id"]
    files = [("files", ("notes.txt", b"We met on Monday. It rained.\n", "text/plain"))]
    assert client.post(f"/v1/collections/{col}/documents", files=files, headers=auth).is_success
    es = _generate(client, auth, col).json()
    _run_jobs(client)
    job = client.get(f"/v1/jobs/{es['job']['id']}", headers=auth).json()
    assert job["status"] == "failed" and "no item" in job["error"]
    detail = client.get(f"/v1/evalsets/{es['id']}", headers=auth).json()
    assert detail["status"] == "failed" and "no item" in detail["generation"]["error"]
    r = client.get(f"/v1/evalsets/{es['id']}/download", headers=auth)
    assert r.status_code == 409 and "failed" in r.json()["error"]["message"]


def _adapter(client: TestClient, auth: dict[str, str], col: str, name: str, **body: object):
    payload = {"name": name, **body}
    return client.post(f"/v1/collections/{col}/adapters", json=payload, headers=auth)


def test_an_adapter_requested_with_the_hold_out_trains_without_those_sentences(
    client: TestClient, auth: dict[str, str], base_model_dir: Path
) -> None:
    from adapters.base_model import load_tokenizer
    from service.db.tables import Adapter
    from service.training.job import load_training_set

    col = _collection_with_documents(client, auth)
    r = client.post(
        f"/v1/collections/{col}/augmentations",
        json={"strategies": ["decomposed", "linked"]},
        headers=auth,
    )
    assert r.status_code == 201, r.text
    aug = r.json()["id"]
    es = _generate(client, auth, col, hold_out=0.5, seed=4).json()
    _run_jobs(client)
    assert client.get(f"/v1/augmentations/{aug}", headers=auth).json()["status"] == "succeeded"
    detail = client.get(f"/v1/evalsets/{es['id']}", headers=auth).json()
    held = detail["holdout"]["sentences"]
    assert held

    r = _adapter(client, auth, col, "honest", augmentation_id=aug, holdout_evalset_id=es["id"])
    assert r.status_code == 201, r.text
    adapter = r.json()
    recorded = adapter["hyperparameters"]["holdout"]
    assert recorded["evalset_id"] == es["id"] and recorded["sentences"] == len(held)
    assert {s["key"] for s in recorded["sentence_keys"]} == {s["key"] for s in held}
    assert adapter["review"]["excluded_held_out"] > 0
    plain = _adapter(client, auth, col, "everything", augmentation_id=aug).json()
    assert "holdout" not in plain["hyperparameters"]
    assert plain["review"]["trained_examples"] == (
        adapter["review"]["trained_examples"] + adapter["review"]["excluded_held_out"]
    )

    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    tokenizer = load_tokenizer(base_model_dir)
    with runtime.session_factory() as session:
        with_holdout = load_training_set(session, session.get(Adapter, adapter["id"]), tokenizer)
        without = load_training_set(session, session.get(Adapter, plain["id"]), tokenizer)
    texts = {t for _, t in with_holdout.examples + with_holdout.validation}
    all_texts = {t for _, t in without.examples + without.validation}
    held_texts = {s["text"] for s in held}
    assert held_texts <= all_texts, "without the hold-out every sentence is trained on"
    assert not held_texts & texts, "no held-out sentence is trained on"
    assert with_holdout.counts["augmented"] < without.counts["augmented"]
    # no augmented example of the held-out sentences reaches the training set
    from sqlalchemy import select

    from service.db.tables import AugmentedExample

    with runtime.session_factory() as session:
        rows = session.scalars(
            select(AugmentedExample).where(AugmentedExample.augmentation_id == aug)
        ).all()
    keys = {s["key"] for s in held}

    def units(row: AugmentedExample) -> set[str]:
        return {row.unit_key, *(row.provenance.get("unit_ids") or [])}

    from_held = {row.text for row in rows if keys & units(row)}
    elsewhere = {row.text for row in rows if not keys & units(row)}
    assert from_held and not from_held & texts, "examples of held-out sentences are left out"
    assert elsewhere - from_held <= texts, "every other example is trained on"


def test_the_hold_out_must_come_from_a_ready_set_of_the_same_collection(
    client: TestClient, auth: dict[str, str]
) -> None:
    col = _collection_with_documents(client, auth)
    other_col = _collection_with_documents(client, auth)
    uploaded = client.post(
        f"/v1/collections/{col}/evalsets",
        content=json.dumps({"question": "Q?", "answer": "A", "choices": ["A", "B"]}).encode(),
        headers=auth | NDJSON,
    ).json()
    r = _adapter(client, auth, col, "a", holdout_evalset_id=uploaded["id"])
    assert r.status_code == 422 and r.json()["error"]["code"] == "no_holdout"
    generating = _generate(client, auth, col, hold_out=0.5).json()
    r = _adapter(client, auth, col, "b", holdout_evalset_id=generating["id"])
    assert r.status_code == 409 and "still being generated" in r.json()["error"]["message"]
    _run_jobs(client)
    r = _adapter(client, auth, other_col, "c", holdout_evalset_id=generating["id"])
    assert r.status_code == 422 and "belongs to collection" in r.json()["error"]["message"]
    r = _adapter(client, auth, col, "d", holdout_evalset_id="es_0000000000000000")
    assert r.status_code == 404
    other = new_workspace(client, "other")
    their_col = _collection_with_documents(client, other)
    r = _adapter(client, other, their_col, "e", holdout_evalset_id=generating["id"])
    assert r.status_code == 404
    r = _adapter(client, auth, col, "f", holdout_evalset_id=generating["id"])
    assert r.status_code == 201, r.text
    assert r.json()["hyperparameters"]["holdout"]["evalset_id"] == generating["id"]
