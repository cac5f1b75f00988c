"""Uploading an augmentation set (JSONL statements) as a finished augmentation adapters can use."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient

from tests.integration.conftest import new_workspace

NDJSON = {"Content-Type": "application/x-ndjson"}


def _collection_with_doc(client: TestClient, auth: dict[str, str]) -> tuple[str, str]:
    col = client.post("/v1/collections", json={"name": "facts"}, headers=auth).json()["id"]
    files = [("files", ("facts.txt", b"Femp are more dangerous than glon.", "text/plain"))]
    r = client.post(f"/v1/collections/{col}/documents", files=files, headers=auth)
    assert r.status_code == 201, r.text
    return col, r.json()["data"][0]["id"]


def test_upload_is_stored_whole_and_reads_back(client: TestClient, auth: dict[str, str]) -> None:
    col, doc = _collection_with_doc(client, auth)
    body = (
        json.dumps({"text": " Glon are less dangerous than femp. ", "document_id": doc})
        + "\n\n"
        + json.dumps({"text": "Femp are riskier than glon.", "strategy": "local", "id": 7})
        + "\n"
    )
    r = client.post(
        f"/v1/collections/{col}/augmentations/upload", content=body, headers={**auth, **NDJSON}
    )
    assert r.status_code == 201, r.text
    aug = r.json()
    assert (aug["source"], aug["status"], aug["stats"]["examples"]) == ("uploaded", "succeeded", 2)
    assert aug["job"] is None and aug["document_count"] == 1

    lines = client.get(f"/v1/augmentations/{aug['id']}/examples", headers=auth).text.splitlines()
    examples = [json.loads(line) for line in lines]
    assert [e["text"] for e in examples] == [
        "Glon are less dangerous than femp.",
        "Femp are riskier than glon.",
    ]
    assert [e["document_id"] for e in examples] == [doc, None]
    assert {e["strategy"] for e in examples} == {"uploaded"}
    assert examples[0]["provenance"] == {"strategy": "uploaded", "line": 1}
    assert examples[1]["provenance"] == {
        "strategy": "uploaded",
        "line": 3,
        "source_strategy": "local",
    }
    # What GET .../examples returns uploads again as is.
    again = client.post(
        f"/v1/collections/{col}/augmentations/upload",
        content="\n".join(lines),
        headers={**auth, **NDJSON},
    )
    assert again.status_code == 201 and again.json()["stats"]["examples"] == 2


def test_bad_uploads_are_refused_whole(client: TestClient, auth: dict[str, str]) -> None:
    col, _ = _collection_with_doc(client, auth)
    url = f"/v1/collections/{col}/augmentations/upload"
    body = "\n".join(
        [
            json.dumps({"text": "fine"}),
            "{not json",
            json.dumps(["a list"]),
            json.dumps({"text": "   "}),
            json.dumps({"text": "x", "document_id": "doc_elsewhere"}),
        ]
    )
    r = client.post(url, content=body, headers={**auth, **NDJSON})
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "invalid_upload"
    assert [e["line"] for e in error["details"]["errors"]] == [2, 3, 4, 5]
    assert "line 5: document_id 'doc_elsewhere' is not a document" in error["message"]

    assert client.post(url, content=b"\n \n", headers={**auth, **NDJSON}).status_code == 422
    assert client.post(url, content=b"\xff\xfe", headers={**auth, **NDJSON}).status_code == 422
    r = client.post(url, content=b"<xml/>", headers={**auth, "Content-Type": "application/xml"})
    assert r.status_code == 415
    listed = client.get(f"/v1/collections/{col}/augmentations", headers=auth).json()["data"]
    assert listed == []  # nothing partial was stored


def test_upload_respects_workspaces(client: TestClient, auth: dict[str, str]) -> None:
    col, _ = _collection_with_doc(client, auth)
    other = new_workspace(client, "other")
    r = client.post(
        f"/v1/collections/{col}/augmentations/upload",
        content=json.dumps({"text": "x"}),
        headers={**other, **NDJSON},
    )
    assert r.status_code == 404
