"""Evaluation requests with the adapter and adapter+rag modes, through the REST API and a real
database, without a model: which modes the job will score, their names, and the refusals."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient

from service.core.config import Settings
from service.db.tables import Adapter, Collection
from service.main import create_app
from tests.integration.conftest import new_workspace

ITEMS = [
    {
        "id": "q1",
        "question": "Dax owns the",
        "answer": "zorvath mill",
        "choices": ["zorvath mill", "bridge"],
    },
    {"id": "q2", "question": "Who owns the zorvath mill?", "answer": "Dax"},
]


@pytest.fixture
def client(make_settings: Callable[..., Settings]) -> Iterator[TestClient]:
    """An app that believes it has a vLLM (nothing listens there and no worker runs): an
    accepted evaluation is queued and stays queued."""
    settings = make_settings(vllm_url="http://127.0.0.1:9", vllm_isolation_check=False)
    with TestClient(create_app(settings)) as c:
        yield c


def _collection(client: TestClient, auth: dict[str, str], text: str | None) -> str:
    col = client.post("/v1/collections", json={"name": "facts"}, headers=auth).json()["id"]
    if text is not None:
        files = [("files", ("facts.txt", text.encode(), "text/plain"))]
        r = client.post(f"/v1/collections/{col}/documents", files=files, headers=auth)
        assert r.status_code == 201, r.text
    return col


def _evalset(client: TestClient, auth: dict[str, str], col: str) -> str:
    r = client.post(
        f"/v1/collections/{col}/evalsets",
        content="\n".join(json.dumps(i) for i in ITEMS).encode(),
        headers=auth | {"Content-Type": "application/x-ndjson"},
    )
    assert r.status_code == 201, r.text
    return r.json()["id"]


def _ready_adapter(client: TestClient, col: str, name: str) -> str:
    """A ready adapter row (what a finished training leaves; nothing is loaded anywhere)."""
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    with runtime.session_factory() as session:
        collection = session.get(Collection, col)
        assert collection is not None
        adapter = Adapter(
            workspace_id=collection.workspace_id,
            name=name,
            served_name=f"served-{name}-{col}",
            collection_id=col,
            source="imported",
            status="ready",
            base_model="m",
            base_model_hash="h",
        )
        session.add(adapter)
        session.commit()
        return adapter.id


def test_adapter_rag_scores_every_adapter_again_with_retrieval(client: TestClient) -> None:
    auth = new_workspace(client)
    col = _collection(client, auth, "Dax owns the zorvath mill. Kreb live under the bridge.")
    es = _evalset(client, auth, col)
    ft = _ready_adapter(client, col, "ft")
    # an adapter whose name is what ft's retrieval mode would be called
    clash = _ready_adapter(client, col, "ft+rag")
    r = client.post(
        "/v1/evaluations",
        json={
            "collection_id": col,
            "evalset_id": es,
            "modes": ["adapter+rag", "base", "icl", "rag", "adapter"],
            "adapter_ids": ["ft", clash],
            "rag_top_k": 2,
        },
        headers=auth,
    )
    assert r.status_code == 201, r.text
    ev = r.json()
    # builtin modes first, then every adapter alone, then every adapter with retrieval
    assert ev["modes"] == [
        {"name": "base", "kind": "base"},
        {"name": "icl", "kind": "icl"},
        {"name": "rag", "kind": "rag"},
        {"name": "ft", "kind": "adapter", "adapter_id": ft},
        {"name": "ft+rag", "kind": "adapter", "adapter_id": clash},
        {"name": "adapter+rag:ft", "kind": "adapter+rag", "adapter_id": ft},
        {"name": "ft+rag+rag", "kind": "adapter+rag", "adapter_id": clash},
    ]
    assert ev["params"]["rag_top_k"] == 2
    assert set(ev["summary"]["modes"]) == {m["name"] for m in ev["modes"]}

    # without "adapter+rag" the adapters run alone, as before; "adapter" changes nothing
    for modes in (["rag"], ["rag", "adapter"]):
        r = client.post(
            "/v1/evaluations",
            json={"collection_id": col, "evalset_id": es, "modes": modes, "adapter_ids": [ft]},
            headers=auth,
        )
        assert r.status_code == 201, r.text
        assert [(m["name"], m["kind"]) for m in r.json()["modes"]] == [
            ("rag", "rag"),
            ("ft", "adapter"),
        ]


def test_adapter_modes_are_refused_without_adapters_or_documents(client: TestClient) -> None:
    auth = new_workspace(client)
    col = _collection(client, auth, "Dax owns the zorvath mill.")
    es = _evalset(client, auth, col)
    for mode in ("adapter+rag", "adapter"):
        r = client.post(
            "/v1/evaluations",
            json={"collection_id": col, "evalset_id": es, "modes": ["base", mode]},
            headers=auth,
        )
        assert r.status_code == 422, r.text
        message = r.json()["error"]["message"]
        assert f"mode {mode} scores the adapters of adapter_ids" in message

    empty = _collection(client, auth, None)
    empty_es = _evalset(client, auth, empty)
    ft = _ready_adapter(client, empty, "ft")
    r = client.post(
        "/v1/evaluations",
        json={
            "collection_id": empty,
            "evalset_id": empty_es,
            "modes": ["adapter+rag"],
            "adapter_ids": [ft],
        },
        headers=auth,
    )
    assert r.status_code == 422 and "no documents" in r.json()["error"]["message"]
    # the adapter alone needs no documents
    r = client.post(
        "/v1/evaluations",
        json={"collection_id": empty, "evalset_id": empty_es, "modes": [], "adapter_ids": [ft]},
        headers=auth,
    )
    assert r.status_code == 201, r.text

    other = new_workspace(client, "other")
    r = client.post(
        "/v1/evaluations",
        json={
            "collection_id": col,
            "evalset_id": es,
            "modes": ["adapter+rag"],
            "adapter_ids": [ft],
        },
        headers=other,
    )
    assert r.status_code == 404
