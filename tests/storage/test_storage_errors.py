"""A bucket the service cannot use says so: at start (the start stops, or /readyz shows why while
`docadapt serve` keeps its port open), and after the start (/readyz names the storage, requests
that need it answer 503 storage_unavailable), never a 500 with a stack trace."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.core.config import Settings
from service.core.storage import StorageUnavailable
from service.main import create_app
from tests.fixtures import documents as fx
from tests.integration.conftest import new_workspace
from tests.storage.conftest import S3Server, free_port, s3_client, start_s3_server


@pytest.fixture(scope="module")
def strict_s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """A server that checks credentials, and knows none: every request is refused."""
    log = tmp_path_factory.mktemp("s3-strict") / "moto.log"
    server = start_s3_server(log, INITIAL_NO_AUTH_ACTION_COUNT="0")
    yield server
    server.stop()


def _on(endpoint_url: str, bucket: str = "docadapt-files") -> dict[str, str]:
    return {"storage_url": f"s3://{bucket}/prod", "s3_endpoint_url": endpoint_url}


def test_an_unreachable_bucket_stops_the_start_saying_what_to_fix(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(**_on(f"http://127.0.0.1:{free_port()}"))
    started = time.monotonic()
    with pytest.raises(StorageUnavailable) as info, TestClient(create_app(settings)):
        pass
    assert time.monotonic() - started < 60
    message = info.value.message
    assert "s3://docadapt-files/prod" in message and "unreachable" in message
    assert "DOCADAPT_S3_ENDPOINT_URL" in message


def test_a_missing_bucket_stops_the_start_saying_so(
    make_settings: Callable[..., Settings], s3_server: S3Server
) -> None:
    settings = make_settings(**_on(s3_server.endpoint_url, "docadapt-never-created"))
    missing = "does not exist; create it or correct"
    with pytest.raises(StorageUnavailable, match=missing), TestClient(create_app(settings)):
        pass


def test_refused_credentials_show_in_readyz_while_the_service_starts(
    make_settings: Callable[..., Settings], strict_s3_server: S3Server
) -> None:
    """As `docadapt serve` runs it: the port opens at once and /readyz tells the failure."""
    app = create_app(make_settings(**_on(strict_s3_server.endpoint_url)), wait_until_ready=False)
    with TestClient(app) as client:
        deadline = time.monotonic() + 120
        while True:
            r = client.get("/readyz")
            if r.json()["status"] != "starting" or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert r.status_code == 503, r.text
        body = r.json()
        assert body["status"] == "not_ready" and body["checks"] == {"startup": "failed"}
        error = body["phase"]["error"]
        assert "refused the credentials" in error and "AWS_ACCESS_KEY_ID" in error, error
        assert "Traceback" not in r.text


def test_a_bucket_lost_after_the_start_fails_readiness_and_requests_with_503(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    server = start_s3_server(tmp_path / "moto.log")
    try:
        s3_client(server.endpoint_url).create_bucket(Bucket="docadapt-files")
        with TestClient(create_app(make_settings(**_on(server.endpoint_url)))) as client:
            ready = client.get("/readyz")
            assert ready.status_code == 200 and ready.json()["checks"]["storage"] == "ok"
            auth = new_workspace(client)
            col = client.post("/v1/collections", json={"name": "c"}, headers=auth).json()["id"]
            files = [("files", ("facts.txt", fx.GOOD_DOCUMENTS["notes.txt"](), "text/plain"))]
            r = client.post(f"/v1/collections/{col}/documents", files=files, headers=auth)
            assert r.status_code == 201, r.text
            doc_id = r.json()["data"][0]["id"]

            server.stop()
            ready = client.get("/readyz")
            assert ready.status_code == 503 and ready.json()["status"] == "not_ready"
            storage = ready.json()["checks"]["storage"]
            assert storage.startswith("error: ") and "unreachable" in storage, storage

            got = client.get(f"/v1/documents/{doc_id}", headers=auth)
            assert got.status_code == 503, got.text
            assert got.json()["error"]["code"] == "storage_unavailable"
            assert "unreachable" in got.json()["error"]["message"]
            files = [("files", ("more.txt", b"Another fact. And one more.", "text/plain"))]
            r = client.post(f"/v1/collections/{col}/documents", files=files, headers=auth)
            assert r.status_code == 503 and r.json()["error"]["code"] == "storage_unavailable"
            listed = client.get(f"/v1/collections/{col}/documents", headers=auth).json()["data"]
            assert [d["id"] for d in listed] == [doc_id]  # the failed upload left no row
    finally:
        server.stop()
