"""The audit log through the real app and database: each admin and destructive action is one
row (who, what, when, outcome), refusals included; the admin reads it with filters and pages;
a workspace key is refused as on every admin route; no key is ever stored."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select

from service.db.tables import AuditEvent
from tests.conftest import ADMIN_KEY
from tests.integration.conftest import new_workspace
from tests.integration.test_openapi_contract import TIMESTAMP

ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
FACTS = [("files", ("facts.txt", b"Femp are more dangerous than glon.", "text/plain"))]


def audit(client: TestClient, **params: object) -> dict:
    r = client.get("/v1/audit", params=params, headers=ADMIN)
    assert r.status_code == 200, r.text
    return r.json()


def test_admin_and_destructive_actions_are_recorded_with_who_what_when_and_outcome(
    client: TestClient,
) -> None:
    started = datetime.now(UTC)
    r = client.post("/v1/workspaces", json={"name": "acme"}, headers=ADMIN)
    ws, key = r.json()["workspace"]["id"], r.json()["api_key"]
    auth = {"Authorization": f"Bearer {key}"}
    col = client.post("/v1/collections", json={"name": "facts"}, headers=auth).json()["id"]
    doc = client.post(f"/v1/collections/{col}/documents", files=FACTS, headers=auth).json()
    doc_id = doc["data"][0]["id"]
    adapter = client.post(f"/v1/collections/{col}/adapters", json={"name": "a"}, headers=auth)
    job_id = adapter.json()["job"]["id"]
    # Reads and creations other than the admin's are not audited.
    client.get(f"/v1/collections/{col}", headers=auth)
    assert audit(client)["total"] == 1

    assert client.post(f"/v1/jobs/{job_id}/cancel", headers=auth).status_code == 200
    assert client.post(f"/v1/jobs/{job_id}/cancel", headers=auth).status_code == 409
    assert client.delete("/v1/adapters/a", headers=auth).status_code == 204  # by name
    assert client.delete(f"/v1/documents/{doc_id}", headers=auth).status_code == 204
    assert client.delete(f"/v1/collections/{col}", headers=auth).status_code == 204
    assert client.delete(f"/v1/collections/{col}", headers=auth).status_code == 404
    assert client.post("/v1/workspaces", json={"name": ""}, headers=ADMIN).status_code == 422
    # Without a valid key nobody is known: not recorded.
    assert client.delete(f"/v1/collections/{col}").status_code == 401

    page = audit(client)
    events = page["data"]
    assert page["total"] == len(events) == 8 and (page["offset"], page["limit"]) == (0, 100)
    key_id = events[-1]["details"]["api_key_id"]
    assert key_id.startswith("key_")
    as_key = {"actor": "api_key", "workspace_id": ws, "key_id": key_id}
    as_admin = {"actor": "admin", "key_id": None}
    expected = [  # newest first
        {**as_admin, "workspace_id": None, "action": "workspace.create",
         "resource_type": "workspace", "resource_id": None, "outcome": "failed",
         "status_code": 422, "error_code": "invalid_request", "details": {}},
        {**as_key, "action": "collection.delete", "resource_type": "collection",
         "resource_id": col, "outcome": "failed", "status_code": 404,
         "error_code": "not_found", "details": {}},
        {**as_key, "action": "collection.delete", "resource_type": "collection",
         "resource_id": col, "outcome": "succeeded", "status_code": 204, "error_code": None,
         "details": {}},
        {**as_key, "action": "document.delete", "resource_type": "document",
         "resource_id": doc_id, "outcome": "succeeded", "status_code": 204, "error_code": None,
         "details": {}},
        {**as_key, "action": "adapter.delete", "resource_type": "adapter",
         "resource_id": adapter.json()["id"], "outcome": "succeeded", "status_code": 204,
         "error_code": None, "details": {"name": "a"}},
        {**as_key, "action": "job.cancel", "resource_type": "job", "resource_id": job_id,
         "outcome": "failed", "status_code": 409, "error_code": "conflict", "details": {}},
        {**as_key, "action": "job.cancel", "resource_type": "job", "resource_id": job_id,
         "outcome": "succeeded", "status_code": 200, "error_code": None,
         "details": {"kind": "training", "subject_id": adapter.json()["id"]}},
        {**as_admin, "workspace_id": ws, "action": "workspace.create",
         "resource_type": "workspace", "resource_id": ws, "outcome": "succeeded",
         "status_code": 201, "error_code": None, "details": {"name": "acme", "api_key_id": key_id}},
    ]  # fmt: skip
    assert [{k: v for k, v in e.items() if k not in ("id", "at")} for e in events] == expected
    stamps = [e["at"] for e in events]
    assert all(TIMESTAMP.match(t) for t in stamps), stamps
    assert stamps == sorted(stamps, reverse=True)
    assert started - timedelta(seconds=1) <= datetime.fromisoformat(stamps[-1])

    # The key itself is nowhere in the table.
    with client.app.state.runtime.session_factory() as session:  # type: ignore[attr-defined]
        rows = session.scalars(select(AuditEvent)).all()
    assert len(rows) == 8 and key not in repr([vars(r) for r in rows])
    assert not re.search(r"dak_\w{8}", repr([vars(r) for r in rows]))


def test_the_admin_filters_and_pages_the_log(client: TestClient) -> None:
    a, b = new_workspace(client, "a"), new_workspace(client, "b")
    ws_b = client.get("/v1/audit", headers=ADMIN).json()["data"][0]["workspace_id"]
    for auth in (a, b):
        for name in ("one", "two"):
            col = client.post("/v1/collections", json={"name": name}, headers=auth).json()["id"]
            assert client.delete(f"/v1/collections/{col}", headers=auth).status_code == 204
    cut = datetime.now(UTC)
    col = client.post("/v1/collections", json={"name": "late"}, headers=b).json()["id"]
    client.delete(f"/v1/collections/{col}", headers=b)

    assert audit(client)["total"] == 2 + 5
    only_b = audit(client, workspace_id=ws_b)
    assert only_b["total"] == 1 + 3 and {e["workspace_id"] for e in only_b["data"]} == {ws_b}
    deletes = audit(client, action="collection.delete")
    assert deletes["total"] == 5
    assert {e["action"] for e in deletes["data"]} == {"collection.delete"}
    late = audit(client, since=cut.isoformat())
    assert [e["resource_id"] for e in late["data"]] == [col]
    naive = audit(client, since=cut.replace(tzinfo=None).isoformat())  # no zone: UTC
    assert naive["data"] == late["data"]
    assert audit(client, since=(cut + timedelta(hours=1)).isoformat())["total"] == 0
    assert (
        audit(client, action="collection.delete", workspace_id=ws_b, since=cut.isoformat())["total"]
        == 1
    )

    everything = audit(client)["data"]
    first, second = audit(client, limit=3), audit(client, offset=3, limit=3)
    assert first["total"] == second["total"] == 7 and (second["offset"], second["limit"]) == (3, 3)
    assert first["data"] + second["data"] == everything[:6]
    assert audit(client, offset=6, limit=3)["data"] == everything[6:]

    r = client.get("/v1/audit", params={"action": "collection.create"}, headers=ADMIN)
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_request"
    r = client.get("/v1/audit", params={"since": "yesterday"}, headers=ADMIN)
    assert r.status_code == 422


def test_a_workspace_key_is_refused_as_on_every_admin_route(client: TestClient) -> None:
    auth = new_workspace(client)
    on_audit = client.get("/v1/audit", headers=auth)
    on_create = client.post("/v1/workspaces", json={"name": "x"}, headers=auth)
    assert on_audit.status_code == on_create.status_code == 401
    assert on_audit.json() == on_create.json()
    assert on_audit.json()["error"]["message"] == (
        "this endpoint needs the admin key (this is a workspace API key)"
    )
    assert client.get("/v1/audit").status_code == 401
    # The admin key on a workspace route names the audit log among what it is for.
    r = client.get("/v1/collections", headers=ADMIN)
    assert r.status_code == 401 and "GET /v1/audit" in r.json()["error"]["message"]
