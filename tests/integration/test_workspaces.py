from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from service.core.config import Settings
from service.main import create_app
from tests.conftest import ADMIN_KEY
from tests.integration.conftest import new_workspace


def test_workspace_creation_needs_the_admin_key(client: TestClient) -> None:
    r = client.post("/v1/workspaces", json={"name": "x"})
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "unauthorized"
    r = client.post(
        "/v1/workspaces", json={"name": "x"}, headers={"Authorization": "Bearer wrong-key"}
    )
    assert r.status_code == 401


def test_workspace_key_is_returned_once_and_stored_hashed(
    client: TestClient, make_settings: Callable[..., Settings]
) -> None:
    r = client.post(
        "/v1/workspaces", json={"name": "acme"}, headers={"Authorization": f"Bearer {ADMIN_KEY}"}
    )
    assert r.status_code == 201
    body = r.json()
    key = body["api_key"]
    assert body["workspace"]["name"] == "acme" and key.startswith("dak_")
    db = (make_settings().data_dir / "docadapt.db").read_bytes()
    assert key.encode() not in db  # only the digest is stored
    # The key works; a workspace key is not an admin key.
    headers = {"Authorization": f"Bearer {key}"}
    assert client.get("/v1/collections", headers=headers).status_code == 200
    assert client.post("/v1/workspaces", json={"name": "y"}, headers=headers).status_code == 401


def test_missing_or_wrong_key_is_401(client: TestClient) -> None:
    assert client.get("/v1/collections").status_code == 401
    r = client.get("/v1/collections", headers={"Authorization": "Bearer dak_nope"})
    assert r.status_code == 401
    assert "invalid API key" in r.json()["error"]["message"]
    r = client.get("/v1/collections", headers={"Authorization": "Basic abc"})
    assert r.status_code == 401


def test_health_and_readiness(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    r = client.get("/readyz")
    assert r.status_code == 200
    assert r.json()["checks"]["database"] == "ok"


@pytest.mark.parametrize("bad", ["changeme", "short-key", "admin"])
def test_placeholder_or_short_admin_key_is_refused(bad: str, tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="DOCADAPT_ADMIN_KEY"):
        Settings(data_dir=tmp_path, admin_key=bad)


def test_admin_key_generated_once_and_private(
    make_settings: Callable[..., Settings], capsys: pytest.CaptureFixture[str]
) -> None:
    settings = make_settings(admin_key=None)
    with TestClient(create_app(settings)):
        pass
    key_file = settings.data_dir / "admin_key"
    key = key_file.read_text().strip()
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    assert key in capsys.readouterr().out
    with TestClient(create_app(settings)) as c:  # second start: same key, not printed again
        assert key not in capsys.readouterr().out
        r = c.post("/v1/workspaces", json={"name": "a"}, headers={"Authorization": f"Bearer {key}"})
        assert r.status_code == 201


def test_cli_create_workspace(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings()
    env = {
        **os.environ,
        "DOCADAPT_DATA_DIR": str(settings.data_dir),
        "DOCADAPT_ADMIN_KEY": ADMIN_KEY,
    }
    # The service made its data folder first: the CLI refuses a folder without service data.
    with TestClient(create_app(settings)) as c:
        out = subprocess.run(
            [sys.executable, "-m", "service.cli", "admin", "create-workspace", "cli-co"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        key = next(ln.split(": ", 1)[1] for ln in out.splitlines() if ln.startswith("api_key"))
        r = c.get("/v1/collections", headers={"Authorization": f"Bearer {key}"})
        assert r.status_code == 200
        # The CLI's creation is in the audit log, as the admin key's would be.
        ws = next(ln.split(": ", 1)[1] for ln in out.splitlines() if ln.startswith("workspace_id"))
        events = c.get("/v1/audit", headers={"Authorization": f"Bearer {ADMIN_KEY}"}).json()
        assert [
            (e["actor"], e["action"], e["resource_id"], e["outcome"]) for e in events["data"]
        ] == [("cli", "workspace.create", ws, "succeeded")]
        assert events["data"][0]["details"]["name"] == "cli-co"


def test_collections_are_scoped_to_the_workspace(client: TestClient) -> None:
    a, b = new_workspace(client, "a"), new_workspace(client, "b")
    col = client.post("/v1/collections", json={"name": "handbook"}, headers=a).json()
    assert client.get(f"/v1/collections/{col['id']}", headers=a).status_code == 200
    r = client.get(f"/v1/collections/{col['id']}", headers=b)
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    assert client.delete(f"/v1/collections/{col['id']}", headers=b).status_code == 404
    assert client.get("/v1/collections", headers=b).json()["data"] == []
    assert [c["id"] for c in client.get("/v1/collections", headers=a).json()["data"]] == [col["id"]]


def test_invalid_body_is_422_json(client: TestClient, auth: dict[str, str]) -> None:
    r = client.post("/v1/collections", json={"name": ""}, headers=auth)
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "invalid_request"
