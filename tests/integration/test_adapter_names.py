"""Adapters are addressed by id or by name over REST, and a name of another kind (a collection's,
`icl:<collection name>`) gets a 404 that says which id was meant."""

from __future__ import annotations

from fastapi.testclient import TestClient

from service.db.tables import Adapter


def _ready_adapter(client: TestClient, col: str, name: str) -> str:
    """A ready adapter row (what a finished training leaves; nothing is loaded anywhere)."""
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    with runtime.session_factory() as session:
        from service.db.tables import Collection

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


def test_an_adapter_is_found_by_its_name_as_by_its_id(
    client: TestClient, auth: dict[str, str]
) -> None:
    col = client.post("/v1/collections", json={"name": "handbook"}, headers=auth).json()["id"]
    ad = _ready_adapter(client, col, "ops-v1")

    by_name = client.get("/v1/adapters/ops-v1", headers=auth)
    assert by_name.status_code == 200, by_name.text
    assert by_name.json()["id"] == ad
    assert client.get(f"/v1/adapters/{ad}", headers=auth).json() == by_name.json()

    assert client.delete("/v1/adapters/ops-v1", headers=auth).status_code == 204
    gone = client.get(f"/v1/adapters/{ad}", headers=auth)
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "not_found"


def test_a_name_of_another_kind_gets_a_404_that_names_the_id(
    client: TestClient, auth: dict[str, str]
) -> None:
    col = client.post("/v1/collections", json={"name": "handbook"}, headers=auth).json()["id"]
    _ready_adapter(client, col, "Ops")

    icl = client.get("/v1/adapters/icl:handbook", headers=auth)
    assert icl.status_code == 404
    message = icl.json()["error"]["message"]
    assert "is not an adapter" in message and f"'icl:{col}'" in message, message

    by_collection_name = client.get("/v1/adapters/handbook", headers=auth).json()["error"]
    assert col in by_collection_name["message"], by_collection_name

    other_case = client.get("/v1/adapters/ops", headers=auth).json()["error"]["message"]
    assert "Did you mean adapter 'Ops'" in other_case, other_case


def test_another_workspaces_adapter_is_not_found_by_name(
    client: TestClient, auth: dict[str, str]
) -> None:
    from tests.integration.conftest import new_workspace

    col = client.post("/v1/collections", json={"name": "handbook"}, headers=auth).json()["id"]
    _ready_adapter(client, col, "secret-ops")
    other = new_workspace(client, "other")
    r = client.get("/v1/adapters/secret-ops", headers=other)
    assert r.status_code == 404
    assert "Did you mean" not in r.json()["error"]["message"]
