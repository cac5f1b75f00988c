"""Requests that race for one unique thing, with real threads against the real app and a real
database file (PostgreSQL runs the same races in test_postgres.py): identical uploads to one
collection are one document and a duplicate, never a 500; two adapters of one name are one 201
and one 409; adapters of different names created at once are all created."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient

from tests.integration.conftest import new_workspace

ROUNDS = 8


def at_once(calls: list[Callable[[], Any]]) -> list[Any]:
    """Run the calls in threads released together by a barrier; their results in order."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = calls[i]()
        except Exception as exc:  # noqa: BLE001 - a server error raised through the test client
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return results


def identical_uploads_are_one_document_and_a_duplicate(client: TestClient) -> None:
    auth = new_workspace(client)
    col = client.post("/v1/collections", json={"name": "facts"}, headers=auth).json()["id"]
    for n in range(ROUNDS):
        body = f"Femp number {n} is more dangerous than glon. Glon live in caves.".encode()

        def upload(body: bytes = body) -> Any:
            files = [("files", ("facts.txt", body, "text/plain"))]
            return client.post(f"/v1/collections/{col}/documents", files=files, headers=auth)

        responses = at_once([upload, upload])
        assert [getattr(r, "status_code", r) for r in responses] == [201, 201]
        docs = [r.json()["data"][0] for r in responses]
        assert sorted(d["duplicate"] for d in docs) == [False, True], docs
        assert docs[0]["id"] == docs[1]["id"]
    listed = client.get(f"/v1/collections/{col}/documents", headers=auth).json()["data"]
    assert len(listed) == ROUNDS


def one_adapter_name_is_one_201_and_one_409(client: TestClient) -> None:
    auth = new_workspace(client)
    col = client.post("/v1/collections", json={"name": "facts"}, headers=auth).json()["id"]
    files = [("files", ("facts.txt", b"Femp are more dangerous than glon.", "text/plain"))]
    assert client.post(f"/v1/collections/{col}/documents", files=files, headers=auth).is_success

    def create(name: str) -> Callable[[], Any]:
        url = f"/v1/collections/{col}/adapters"
        return lambda: client.post(url, json={"name": name}, headers=auth)

    for n in range(ROUNDS):
        responses = at_once([create(f"facts-{n}"), create(f"facts-{n}")])
        codes = sorted(getattr(r, "status_code", 0) for r in responses)
        assert codes == [201, 409], responses
        winner = next(r.json() for r in responses if r.status_code == 201)
        loser = next(r.json() for r in responses if r.status_code == 409)["error"]
        assert loser["code"] == "conflict" and winner["id"] in loser["message"]
    # Different names at once are all created (each gets its own vLLM name before the insert).
    responses = at_once([create(f"other-{n}") for n in range(4)])
    assert [getattr(r, "status_code", r) for r in responses] == [201] * 4
    names = [a["name"] for a in client.get("/v1/adapters", headers=auth).json()["data"]]
    assert sorted(names) == sorted(
        [f"facts-{n}" for n in range(ROUNDS)] + [f"other-{n}" for n in range(4)]
    )


def test_identical_concurrent_uploads_on_sqlite(client: TestClient) -> None:
    identical_uploads_are_one_document_and_a_duplicate(client)


def test_concurrent_adapters_of_one_name_on_sqlite(client: TestClient) -> None:
    one_adapter_name_is_one_201_and_one_409(client)
