"""Job records over REST: listing with filters, workspace scoping, cancel of a queued job."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient

from service.core.config import Settings
from service.main import create_app
from tests.integration.conftest import new_workspace

DEAD_TEACHER = "http://127.0.0.1:9/v1"  # nothing listens on port 9; no worker calls it here
# An operator who allows a per-request teacher at DEAD_TEACHER, a loopback address.
ALLOW_DEAD_TEACHER = {
    "teacher_allowed_urls": [DEAD_TEACHER],
    "teacher_allowed_networks": ["127.0.0.1/32"],
}


@pytest.fixture
def client(make_settings: Callable[..., Settings]) -> Iterator[TestClient]:
    with TestClient(create_app(make_settings(**ALLOW_DEAD_TEACHER))) as c:
        yield c


def _queued_augmentation(client: TestClient, auth: dict[str, str], teacher_key: str = "") -> str:
    col = client.post("/v1/collections", json={"name": "facts"}, headers=auth).json()["id"]
    files = [("files", ("facts.txt", b"Femp are more dangerous than glon.", "text/plain"))]
    assert client.post(f"/v1/collections/{col}/documents", files=files, headers=auth).is_success
    # No worker runs here: the job stays queued, so the teacher is never called.
    teacher = {"base_url": DEAD_TEACHER, "model": "teacher", "api_key": teacher_key}
    r = client.post(f"/v1/collections/{col}/augmentations", json={"teacher": teacher}, headers=auth)
    assert r.status_code == 201, r.text
    return r.json()["job"]["id"]


def test_jobs_are_listed_newest_first_filtered_and_per_workspace(
    client: TestClient, auth: dict[str, str]
) -> None:
    first = _queued_augmentation(client, auth)
    second = _queued_augmentation(client, auth)
    other = new_workspace(client, "other")
    theirs = _queued_augmentation(client, other)

    listed = client.get("/v1/jobs", headers=auth).json()["data"]
    assert [j["id"] for j in listed] == [second, first]
    assert {j["kind"] for j in listed} == {"augmentation"}
    assert [j["id"] for j in client.get("/v1/jobs", headers=other).json()["data"]] == [theirs]

    assert client.post(f"/v1/jobs/{first}/cancel", headers=auth).json()["status"] == "cancelled"
    cancelled = client.get("/v1/jobs?status=cancelled", headers=auth).json()["data"]
    assert [j["id"] for j in cancelled] == [first]
    assert client.get("/v1/jobs?kind=training", headers=auth).json()["data"] == []
    assert [j["id"] for j in client.get("/v1/jobs?limit=1", headers=auth).json()["data"]] == [
        second
    ]


def test_bad_filters_are_422_and_no_key_is_401(client: TestClient, auth: dict[str, str]) -> None:
    assert client.get("/v1/jobs?status=done", headers=auth).status_code == 422
    assert client.get("/v1/jobs?limit=0", headers=auth).status_code == 422
    assert client.get("/v1/jobs").status_code == 401


def test_a_teacher_key_given_with_a_request_is_never_shown(
    client: TestClient, auth: dict[str, str]
) -> None:
    job = _queued_augmentation(client, auth, teacher_key="sk-secret-teacher-key")
    for body in (
        client.get(f"/v1/jobs/{job}", headers=auth).text,
        client.get("/v1/jobs", headers=auth).text,
    ):
        assert "sk-secret-teacher-key" not in body
    shown = client.get(f"/v1/jobs/{job}", headers=auth).json()["params"]["teacher"]
    assert shown["api_key"] == "***" and shown["base_url"] == "http://127.0.0.1:9/v1"
