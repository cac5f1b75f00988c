"""Limits through the real app and database: per-key rate limits on the query and job-creating
routes (429, Retry-After, the envelope), and the cap on a workspace's active jobs, which holds
when requests race for the last place (test_postgres.py runs the race on PostgreSQL)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from service.core.config import Settings
from service.db.tables import Job
from service.main import create_app
from tests.integration.conftest import new_workspace
from tests.integration.test_races import at_once

TEACHER = "http://127.0.0.1:9/v1"  # the operator's teacher; nothing runs the jobs here
FACTS = [("files", ("facts.txt", b"Femp are more dangerous than glon.", "text/plain"))]


def collection_with_a_document(client: TestClient, auth: dict[str, str]) -> str:
    col = client.post("/v1/collections", json={"name": "facts"}, headers=auth).json()["id"]
    assert client.post(f"/v1/collections/{col}/documents", files=FACTS, headers=auth).is_success
    return col


def assert_throttled(r: Any, code: str) -> dict[str, Any]:
    assert r.status_code == 429, r.text
    assert int(r.headers["Retry-After"]) >= 1
    error = r.json()["error"]
    assert error["code"] == code and set(error) == {"code", "message", "details"}
    return error


@pytest.fixture
def app_with(make_settings: Callable[..., Settings]) -> Iterator[Callable[..., TestClient]]:
    clients: list[TestClient] = []

    def start(**overrides: Any) -> TestClient:
        client = TestClient(create_app(make_settings(teacher_base_url=TEACHER, **overrides)))
        clients.append(client.__enter__())
        return client

    yield start
    for client in clients:
        client.__exit__(None, None, None)


def test_queries_get_429_with_retry_after_per_key_then_recover(
    app_with: Callable[..., TestClient],
) -> None:
    # 30 a minute: a token every 2 s after the burst of 2 (room for a slow machine).
    client = app_with(rate_limit_queries_per_minute=30, rate_limit_queries_burst=2)
    acme, other = new_workspace(client, "acme"), new_workspace(client, "other")
    body = {"model": "base", "messages": [{"role": "user", "content": "hi"}]}

    # No vLLM here: a request the limit lets through is the route's own 503.
    assert client.post("/v1/chat/completions", json=body, headers=acme).status_code == 503
    assert (
        client.post(
            "/v1/completions", json={"model": "base", "prompt": "hi"}, headers=acme
        ).status_code
        == 503
    )
    r = client.post("/v1/chat/completions", json=body, headers=acme)
    error = assert_throttled(r, "rate_limited")
    wait = int(r.headers["Retry-After"])
    assert wait in (1, 2)  # 2 s a token, less what has refilled since the burst was spent
    assert "2 queries (POST /v1/chat/completions, /v1/completions) at once" in error["message"]
    assert "30 a minute" in error["message"] and f"retry in {wait} s" in error["message"]
    assert error["details"] == {"limit": "queries", "retry_after_s": wait}
    # Both query routes share the budget; another workspace's key has its own.
    assert client.post("/v1/completions", json={"prompt": "x"}, headers=acme).status_code == 429
    assert client.post("/v1/chat/completions", json=body, headers=other).status_code == 503
    # Nothing else is throttled.
    assert client.get("/v1/models", headers=acme).status_code == 200

    time.sleep(wait)  # what Retry-After said: a token is back
    assert client.post("/v1/chat/completions", json=body, headers=acme).status_code == 503
    assert client.post("/v1/chat/completions", json=body, headers=acme).status_code == 429


def test_job_creating_routes_share_the_job_budget(app_with: Callable[..., TestClient]) -> None:
    client = app_with(rate_limit_jobs_per_minute=30, rate_limit_jobs_burst=2)
    acme, other = new_workspace(client, "acme"), new_workspace(client, "other")
    col = collection_with_a_document(client, acme)

    r = client.post(f"/v1/collections/{col}/adapters", json={"name": "a1"}, headers=acme)
    assert r.status_code == 201, r.text
    generate = {"generate": {"max_items": 5}}
    r = client.post(f"/v1/collections/{col}/evalsets", json=generate, headers=acme)
    assert r.status_code == 202, r.text
    # The budget is spent: every job-creating route refuses, before it reads the body.
    error = assert_throttled(
        client.post(f"/v1/collections/{col}/augmentations", json={}, headers=acme), "rate_limited"
    )
    assert "job-creating requests" in error["message"] and error["details"]["limit"] == "jobs"
    assert client.post("/v1/evaluations", json={}, headers=acme).status_code == 429
    r = client.post(f"/v1/collections/{col}/adapters", json={"name": "a2"}, headers=acme)
    assert r.status_code == 429
    throttled = client.post(f"/v1/collections/{col}/evalsets", json=generate, headers=acme)
    assert throttled.status_code == 429
    # An eval set upload creates no job; another workspace's key has its own budget.
    item = b'{"question": "Which are more dangerous?", "answer": "femp"}\n'
    r = client.post(
        f"/v1/collections/{col}/evalsets",
        content=item,
        headers={**acme, "Content-Type": "application/x-ndjson"},
    )
    assert r.status_code == 201, r.text
    other_col = collection_with_a_document(client, other)
    r = client.post(f"/v1/collections/{other_col}/adapters", json={"name": "b"}, headers=other)
    assert r.status_code == 201

    time.sleep(int(throttled.headers["Retry-After"]))
    r = client.post(f"/v1/collections/{col}/augmentations", json={}, headers=acme)
    assert r.status_code == 201, r.text
    names = [a["name"] for a in client.get("/v1/adapters", headers=acme).json()["data"]]
    assert names == ["a1"]


def test_zero_turns_the_rate_limits_off(app_with: Callable[..., TestClient]) -> None:
    client = app_with(
        rate_limit_queries_per_minute=0,
        rate_limit_queries_burst=1,
        rate_limit_jobs_per_minute=0,
        rate_limit_jobs_burst=1,
    )
    acme = new_workspace(client)
    col = collection_with_a_document(client, acme)
    for n in range(5):
        assert client.post("/v1/completions", json={"prompt": "x"}, headers=acme).status_code == 503
        r = client.post(f"/v1/collections/{col}/adapters", json={"name": f"a{n}"}, headers=acme)
        assert r.status_code == 201


def test_a_full_workspace_gets_429_and_nothing_is_created(
    app_with: Callable[..., TestClient],
) -> None:
    client = app_with(max_active_jobs_per_workspace=2)
    acme, other = new_workspace(client, "acme"), new_workspace(client, "other")
    col = collection_with_a_document(client, acme)
    first = client.post(f"/v1/collections/{col}/adapters", json={"name": "a1"}, headers=acme)
    assert first.status_code == 201
    aug = client.post(f"/v1/collections/{col}/augmentations", json={}, headers=acme)
    assert aug.status_code == 201

    r = client.post(f"/v1/collections/{col}/adapters", json={"name": "a2"}, headers=acme)
    error = assert_throttled(r, "too_many_active_jobs")
    assert r.headers["Retry-After"] == "60"  # no running job has an ETA yet
    assert error["message"].startswith(
        "this workspace has 2 active jobs (queued or running) and may have at most 2 "
        "(DOCADAPT_MAX_ACTIVE_JOBS_PER_WORKSPACE); nothing was created."
    )
    assert error["details"] == {"active_jobs": 2, "max_active_jobs": 2}
    r = client.post(f"/v1/collections/{col}/augmentations", json={}, headers=acme)
    assert_throttled(r, "too_many_active_jobs")
    r = client.post(f"/v1/collections/{col}/evalsets", json={"generate": {}}, headers=acme)
    assert_throttled(r, "too_many_active_jobs")
    # Nothing of the refused requests was stored.
    assert [a["name"] for a in client.get("/v1/adapters", headers=acme).json()["data"]] == ["a1"]
    augs = client.get(f"/v1/collections/{col}/augmentations", headers=acme).json()["data"]
    assert [a["id"] for a in augs] == [aug.json()["id"]]
    assert client.get(f"/v1/collections/{col}/evalsets", headers=acme).json()["data"] == []
    assert len(client.get("/v1/jobs", headers=acme).json()["data"]) == 2
    # The cap is per workspace.
    other_col = collection_with_a_document(client, other)
    r = client.post(f"/v1/collections/{other_col}/adapters", json={"name": "b"}, headers=other)
    assert r.status_code == 201

    # A running job's ETA says when a place frees up; a finished (here cancelled) job frees one.
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    with runtime.session_factory() as session:
        session.execute(
            update(Job)
            .where(Job.id == aug.json()["job"]["id"])
            .values(status="running", eta_seconds=41.2)
        )
        session.commit()
    r = client.post(f"/v1/collections/{col}/adapters", json={"name": "a2"}, headers=acme)
    assert_throttled(r, "too_many_active_jobs")
    assert r.headers["Retry-After"] == "42"
    job_id = first.json()["job"]["id"]
    assert client.post(f"/v1/jobs/{job_id}/cancel", headers=acme).status_code == 200
    r = client.post(f"/v1/collections/{col}/adapters", json={"name": "a2"}, headers=acme)
    assert r.status_code == 201, r.text


def racing_creates_never_pass_the_cap(client: TestClient, cap: int) -> None:
    """Rounds of cap + 2 concurrent adapter requests for the last two places: two get in."""
    auth = new_workspace(client)
    col = collection_with_a_document(client, auth)
    url = f"/v1/collections/{col}/adapters"
    for n in range(cap - 2):
        assert client.post(url, json={"name": f"first-{n}"}, headers=auth).status_code == 201
    rounds = 3
    for n in range(rounds):
        calls = [
            (lambda name=f"r{n}-{i}": client.post(url, json={"name": name}, headers=auth))
            for i in range(cap + 2)
        ]
        codes = sorted(getattr(r, "status_code", r) for r in at_once(calls))
        assert codes == [201] * 2 + [429] * cap, codes
        jobs = client.get("/v1/jobs?status=queued", headers=auth).json()["data"]
        assert len(jobs) == cap
        for job in jobs[:2]:  # two places free for the next round
            assert client.post(f"/v1/jobs/{job['id']}/cancel", headers=auth).status_code == 200
    adapters = client.get("/v1/adapters", headers=auth).json()["data"]
    assert len(adapters) == cap - 2 + 2 * rounds


def test_concurrent_creates_cannot_both_take_the_last_place_on_sqlite(
    app_with: Callable[..., TestClient],
) -> None:
    racing_creates_never_pass_the_cap(app_with(max_active_jobs_per_workspace=3), 3)
