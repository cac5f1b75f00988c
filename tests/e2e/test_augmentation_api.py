"""Augmentation through the REST API with a real worker process and the real vLLM teacher."""

from __future__ import annotations

import json

import pytest

from tests.e2e.service_fixtures import LiveService

pytestmark = pytest.mark.e2e

DOCS = {
    "hazards.txt": "Femp are more dangerous than glon. Glon are heavier than troff. "
    "The blicket team founded the yomp archive.",
    "taxonomy.txt": "All troff are glon. All glon are yomp. Zarp are a type of glon.",
    "people.txt": "Morv is the parent of Quell. Dax owns the zorvath mill. "
    "Kreb are brighter than quom.",
}


def _collection(svc: LiveService, auth: dict[str, str]) -> str:
    col = svc.client.post("/v1/collections", json={"name": "facts"}, headers=auth).json()["id"]
    files = [("files", (name, text.encode(), "text/plain")) for name, text in DOCS.items()]
    r = svc.client.post(f"/v1/collections/{col}/documents", files=files, headers=auth)
    assert r.status_code == 201, r.text
    return col


def _start(svc: LiveService, auth: dict[str, str], col: str, **body: object) -> dict:
    r = svc.client.post(f"/v1/collections/{col}/augmentations", json=body, headers=auth)
    assert r.status_code == 201, r.text
    return r.json()


def test_all_strategies_with_provenance_and_statistics(live_service, start_worker) -> None:
    svc = live_service
    auth = svc.new_workspace()
    col = _collection(svc, auth)
    aug = _start(svc, auth, col, strategies="all", outputs_per_unit=2, temperature=0.7)
    start_worker()
    job = svc.wait_job(auth, aug["job"]["id"])
    assert job["status"] == "succeeded", job
    assert job["progress"]["done"] == job["progress"]["total"] > 0

    aug = svc.client.get(f"/v1/augmentations/{aug['id']}", headers=auth).json()
    stats = aug["stats"]
    assert set(stats["strategies"]) == {"local", "decomposed", "global", "linked", "qa"}
    for name, s in stats["strategies"].items():
        assert s["units_done"] + s["units_failed"] == s["units_total"] > 0, name
        assert s["parsed"] == s["kept"] + sum(s["dropped"].values()), name
        if name in ("local", "global"):  # the teacher's strategies
            assert s["prompt_tokens"] > 0 and s["completion_tokens"] > 0, name
        else:  # decomposed, linked and qa work on the parse, by rule
            assert s["requests"] == 0, name
        if s["kept"]:
            assert 0 < s["estimated_precision"] <= 1, name
    assert 0 < stats["estimated_precision"] <= 1
    assert stats["examples"] == sum(s["kept"] for s in stats["strategies"].values()) > 0
    assert stats["wall_s"] > 0

    r = svc.client.get(f"/v1/augmentations/{aug['id']}/examples", headers=auth)
    assert r.headers["content-type"].startswith("application/x-ndjson")
    examples = [json.loads(line) for line in r.text.splitlines()]
    assert len(examples) == stats["examples"]
    doc_ids = {
        d["id"]
        for d in svc.client.get(f"/v1/collections/{col}/documents", headers=auth).json()["data"]
    }
    for ex in examples:
        prov = ex["provenance"]
        assert ex["document_id"] in doc_ids
        assert prov["strategy"] == ex["strategy"]
        assert prov["template_version"]
        # Decomposed units that the rule tables answer fully never reach the teacher.
        assert prov["teacher_model"] in ("base", "rules") or prov["teacher_model"].startswith(
            "spacy:"
        )
        if prov["teacher_model"] == "base":
            assert prov["prompt_tokens"] > 0 and "temperature" in prov["sampling"]
        assert ex["unit_id"].startswith(ex["document_id"])
    # (qa may answer a question with the same sentence: its own strategy, checked elsewhere)
    texts = {ex["text"]: ex for ex in examples if ex["strategy"] != "qa"}
    # "All troff are glon." + "All glon are yomp." (one document): linked writes the syllogism
    # and cites both sentences; decomposed writes the comparative's reversal.
    assert texts["All troff are yomp."]["strategy"] == "linked"
    assert len(texts["All troff are yomp."]["provenance"]["unit_ids"]) == 2
    assert "Glon are less dangerous than femp." in texts
    assert all(ex["score"] is not None for ex in examples)
    page = svc.client.get(
        f"/v1/augmentations/{aug['id']}/examples?format=json&limit=2", headers=auth
    ).json()
    assert page["total"] == len(examples) and len(page["data"]) == min(2, len(examples))


def test_killed_worker_resumes_without_duplicates(live_service, start_worker) -> None:
    svc = live_service
    auth = svc.new_workspace()
    col = _collection(svc, auth)
    aug = _start(svc, auth, col, strategies=["local"], outputs_per_unit=2)
    worker = start_worker()
    job_id = aug["job"]["id"]
    svc.wait_job(auth, job_id, until=lambda j: j["progress"]["done"] >= 2)
    worker.kill()
    assert svc.client.get(f"/v1/jobs/{job_id}", headers=auth).json()["status"] == "running"
    start_worker()
    job = svc.wait_job(auth, job_id)
    assert job["status"] == "succeeded", job
    assert job["attempts"] == 2
    stats = svc.client.get(f"/v1/augmentations/{aug['id']}", headers=auth).json()["stats"]
    local = stats["strategies"]["local"]
    assert local["units_done"] + local["units_failed"] == local["units_total"]
    examples = [
        json.loads(line)
        for line in svc.client.get(
            f"/v1/augmentations/{aug['id']}/examples", headers=auth
        ).text.splitlines()
    ]
    keys = [(e["unit_id"], e["text"]) for e in examples]
    assert len(keys) == len(set(keys)) == stats["examples"]


def test_cancel_and_validation(live_service, start_worker) -> None:
    svc = live_service
    auth = svc.new_workspace()
    col = _collection(svc, auth)
    r = svc.client.post(
        f"/v1/collections/{col}/augmentations",
        json={"strategies": ["local"], "templates": {"local": "{{ undefined_thing }}"}},
        headers=auth,
    )
    assert r.status_code == 422 and "template" in r.json()["error"]["message"]
    r = svc.client.post(
        f"/v1/collections/{col}/augmentations",
        json={"outputs_per_unit": 3, "temperature": 0},
        headers=auth,
    )
    assert r.status_code == 422
    r = svc.client.post(
        f"/v1/collections/{col}/augmentations", json={"global_max_tokens": 0}, headers=auth
    )
    assert r.status_code == 422 and "global_max_tokens" in r.text

    aug = _start(svc, auth, col, strategies=["local"])
    job_id = aug["job"]["id"]
    start_worker()
    svc.wait_job(auth, job_id, until=lambda j: j["status"] == "running")
    r = svc.client.post(f"/v1/jobs/{job_id}/cancel", headers=auth)
    assert r.status_code == 200
    job = svc.wait_job(auth, job_id, timeout=120)
    assert job["status"] == "cancelled"
    assert svc.client.get(f"/v1/augmentations/{aug['id']}", headers=auth).json()["status"] == (
        "cancelled"
    )
    other = svc.new_workspace("other")
    assert svc.client.get(f"/v1/augmentations/{aug['id']}", headers=other).status_code == 404
    assert svc.client.get(f"/v1/jobs/{job_id}", headers=other).status_code == 404
