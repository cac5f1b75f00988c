from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from service.core.config import Settings
from service.main import create_app
from tests.fixtures import documents as fx
from tests.integration.conftest import new_workspace

FilePart = tuple[str, tuple[str, bytes, str]]


def _collection(client: TestClient, auth: dict[str, str]) -> str:
    return client.post("/v1/collections", json={"name": "handbook"}, headers=auth).json()["id"]


def _upload(client: TestClient, auth: dict[str, str], col: str, *files: tuple[str, bytes]):
    parts: list[FilePart] = [
        ("files", (name, data, "application/octet-stream")) for name, data in files
    ]
    return client.post(f"/v1/collections/{col}/documents", files=parts, headers=auth)


@pytest.mark.parametrize(
    ("filename", "media_type"),
    [
        ("notes.txt", "text/plain"),
        ("notes.md", "text/markdown"),
        ("notes.html", "text/html"),
        ("notes.pdf", "application/pdf"),
        ("notes.docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
    ],
)
def test_every_format_is_extracted_with_its_sentences(
    client: TestClient, auth: dict[str, str], filename: str, media_type: str
) -> None:
    col = _collection(client, auth)
    r = _upload(client, auth, col, (filename, fx.GOOD_DOCUMENTS[filename]()))
    assert r.status_code == 201, r.text
    (doc,) = r.json()["data"]
    assert doc["media_type"] == media_type
    assert doc["sentence_count"] >= len(fx.SENTENCES)
    assert doc["token_count"] > 20

    detail = client.get(f"/v1/documents/{doc['id']}", headers=auth).json()
    for sentence in fx.SENTENCES:
        assert sentence in detail["text"]
    sentences = [s for p in detail["passages"] for s in p["sentences"]]
    assert all(s in sentences for s in fx.SENTENCES)
    assert sum(p["token_count"] for p in detail["passages"]) > 0


def test_type_is_detected_from_content_not_name(client: TestClient, auth: dict[str, str]) -> None:
    col = _collection(client, auth)
    r = _upload(client, auth, col, ("report.txt", fx.pdf_document()))
    assert r.status_code == 201
    assert r.json()["data"][0]["media_type"] == "application/pdf"
    r = _upload(client, auth, col, ("picture.pdf", fx.png_image()))
    assert r.status_code == 415
    assert r.json()["error"]["code"] == "unsupported_type"
    assert "picture.pdf" in r.json()["error"]["message"]


def test_identical_content_is_stored_once(client: TestClient, auth: dict[str, str]) -> None:
    col = _collection(client, auth)
    first = _upload(client, auth, col, ("a.txt", fx.text_document())).json()["data"][0]
    again = _upload(client, auth, col, ("copy.txt", fx.text_document())).json()["data"][0]
    assert again["id"] == first["id"] and again["duplicate"] is True
    listed = client.get(f"/v1/collections/{col}/documents", headers=auth).json()["data"]
    assert [d["id"] for d in listed] == [first["id"]]
    assert client.get(f"/v1/collections/{col}", headers=auth).json()["document_count"] == 1


@pytest.mark.parametrize(
    ("builder", "filename", "status", "code"),
    [
        (lambda: b"", "empty.txt", 422, "empty_file"),
        (fx.pdf_without_text, "scan.pdf", 422, "no_text_layer"),
        (fx.corrupt_pdf, "broken.pdf", 422, "corrupt_file"),
        (fx.corrupt_docx, "broken.docx", 422, "corrupt_file"),
        (fx.docx_bomb, "bomb.docx", 422, "decompression_bomb"),
        (fx.zip_archive, "archive.zip", 415, "unsupported_type"),
    ],
)
def test_bad_input_gets_a_clear_error(
    client: TestClient,
    auth: dict[str, str],
    builder: Callable[[], bytes],
    filename: str,
    status: int,
    code: str,
) -> None:
    col = _collection(client, auth)
    r = _upload(client, auth, col, (filename, builder()))
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert error["code"] == code
    assert filename in error["message"]
    assert client.get(f"/v1/collections/{col}/documents", headers=auth).json()["data"] == []


def test_over_the_size_limit_is_413(make_settings: Callable[..., Settings]) -> None:
    with TestClient(create_app(make_settings(max_upload_bytes=10_000))) as client:
        auth = new_workspace(client)
        col = _collection(client, auth)
        r = _upload(client, auth, col, ("big.txt", fx.oversized_text(10_001)))
        assert r.status_code == 413
        assert r.json()["error"]["code"] == "too_large"
        assert _upload(client, auth, col, ("ok.txt", fx.oversized_text(9_000))).status_code == 201


def test_one_bad_file_stores_none(client: TestClient, auth: dict[str, str]) -> None:
    col = _collection(client, auth)
    r = _upload(
        client, auth, col, ("good.txt", fx.text_document()), ("broken.pdf", fx.corrupt_pdf())
    )
    assert r.status_code == 422
    assert "None of the 2 files" in r.json()["error"]["message"]
    assert client.get(f"/v1/collections/{col}/documents", headers=auth).json()["data"] == []
    files_root = client.app.state.runtime.storage.root  # type: ignore[attr-defined]
    assert not any(p.is_file() for p in files_root.rglob("*"))


def test_file_names_are_never_paths(client: TestClient, auth: dict[str, str]) -> None:
    col = _collection(client, auth)
    r = _upload(client, auth, col, ("../../etc/passwd.txt", fx.text_document()))
    assert r.status_code == 201
    doc = r.json()["data"][0]
    assert doc["filename"] == "passwd.txt"
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    stored = [p for p in runtime.storage.root.rglob("*") if p.is_file()]
    assert stored and all(p.is_relative_to(runtime.storage.root) for p in stored)
    assert all("passwd" not in p.name for p in stored)


def test_workspace_isolation_of_documents(client: TestClient) -> None:
    a, b = new_workspace(client, "a"), new_workspace(client, "b")
    col = _collection(client, a)
    doc = _upload(client, a, col, ("a.txt", fx.text_document())).json()["data"][0]
    assert client.get(f"/v1/documents/{doc['id']}", headers=b).status_code == 404
    assert client.delete(f"/v1/documents/{doc['id']}", headers=b).status_code == 404
    assert _upload(client, b, col, ("b.txt", fx.text_document())).status_code == 404
    assert client.get(f"/v1/collections/{col}/documents", headers=b).status_code == 404
    assert client.get(f"/v1/documents/{doc['id']}", headers=a).status_code == 200


def test_delete_removes_rows_and_files(client: TestClient, auth: dict[str, str]) -> None:
    col = _collection(client, auth)
    doc = _upload(client, auth, col, ("a.docx", fx.docx_document())).json()["data"][0]
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    assert any(p.is_file() for p in runtime.storage.root.rglob("*"))
    assert client.delete(f"/v1/documents/{doc['id']}", headers=auth).status_code == 204
    assert client.get(f"/v1/documents/{doc['id']}", headers=auth).status_code == 404
    assert not any(p.is_file() for p in runtime.storage.root.rglob("*"))
