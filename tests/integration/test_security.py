"""Issue 14 on the real app and a real SQLite file: teacher endpoints are the operator's choice
(SSRF), a per-request teacher key is stored only sealed and still reaches the teacher, the data
folder and database are the owner's alone, keys are told apart, text files are never decoded
into mojibake, and adapters are described by their model's name, never a server path."""

from __future__ import annotations

import io
import json
import os
import stat
import tarfile
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from service.core.config import Settings
from service.core.security import resolve_secret_key, unseal
from service.jobs.worker import Worker
from service.main import create_app
from tests.conftest import ADMIN_KEY
from tests.integration.conftest import new_workspace

FACTS = b"Femp are more dangerous than glon. Glon live in caves."
TEACHER_KEY = "sk-teacher-0123456789-secret"


def _collection(client: TestClient, auth: dict[str, str]) -> str:
    col = client.post("/v1/collections", json={"name": "facts"}, headers=auth).json()["id"]
    files = [("files", ("facts.txt", FACTS, "text/plain"))]
    r = client.post(f"/v1/collections/{col}/documents", files=files, headers=auth)
    assert r.status_code == 201, r.text
    return col


def _augment(client: TestClient, auth: dict[str, str], col: str, teacher: Any) -> Any:
    return client.post(
        f"/v1/collections/{col}/augmentations",
        json={"strategies": ["local"], "outputs_per_unit": 1, "teacher": teacher},
        headers=auth,
    )


@pytest.fixture
def app_with(make_settings: Callable[..., Settings]) -> Iterator[Callable[..., TestClient]]:
    """Start the app with these settings (stopped after the test)."""
    started: list[TestClient] = []

    def start(**settings: Any) -> TestClient:
        client = TestClient(create_app(make_settings(**settings))).__enter__()
        started.append(client)
        return client

    yield start
    for client in started:
        client.__exit__(None, None, None)


# -- SSRF -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("base_url", "why"),
    [
        ("file:///etc/passwd", "not an http or https URL"),
        ("gopher://127.0.0.1:70/_stats", "not an http or https URL"),
        ("not a url", "not a URL"),
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://127.0.0.1:8000/v1", "loopback"),
        ("http://localhost:8000/v1", "localhost resolves to"),
        ("http://10.20.30.40/v1", "private"),
        ("http://[::ffff:169.254.169.254]/", "link-local"),
    ],
)
def test_a_teacher_url_outside_what_the_operator_allows_is_a_422(
    app_with: Callable[..., TestClient], base_url: str, why: str
) -> None:
    # The most permissive allow-list: any http(s) URL whose every address is public.
    client = app_with(teacher_allowed_urls=["*"])
    auth = new_workspace(client)
    col = _collection(client, auth)
    r = _augment(client, auth, col, {"base_url": base_url, "api_key": TEACHER_KEY})
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "teacher_not_allowed" and why in error["message"], error
    assert client.get("/v1/jobs", headers=auth).json()["data"] == []  # nothing was queued


def test_by_default_no_request_may_name_a_teacher_url(app_with: Callable[..., TestClient]) -> None:
    client = app_with()
    auth = new_workspace(client)
    col = _collection(client, auth)
    r = _augment(client, auth, col, {"base_url": "https://93.184.216.34/v1"})
    assert r.status_code == 422
    assert "allows no per-request URL" in r.json()["error"]["message"]


def test_an_allowed_url_a_named_teacher_and_the_operators_own_are_accepted(
    app_with: Callable[..., TestClient],
) -> None:
    client = app_with(
        teacher_base_url="http://127.0.0.1:9/v1",  # the operator's own (loopback) teacher
        teacher_allowed_urls=["https://93.184.216.34/openai"],
        teachers={"big": {"base_url": "http://10.0.0.5:8000/v1", "model": "big-model"}},
    )
    auth = new_workspace(client)
    col = _collection(client, auth)
    for teacher in (
        {"base_url": "https://93.184.216.34/openai/v1", "model": "gpt"},
        {"name": "big"},
        {"base_url": "http://127.0.0.1:9/v1"},
        None,
    ):
        r = _augment(client, auth, col, teacher)
        assert r.status_code == 201, (teacher, r.text)
    refused = {
        "unknown name": {"name": "small"},
        "both": {"name": "big", "base_url": "https://93.184.216.34/openai"},
        "other path": {"base_url": "https://93.184.216.34/other"},
        "typo": {"baseurl": "http://169.254.169.254/"},
    }
    for what, teacher in refused.items():
        r = _augment(client, auth, col, teacher)
        assert r.status_code == 422, (what, r.text)


def test_the_embedded_teacher_serves_only_its_model(app_with: Callable[..., TestClient]) -> None:
    """Without a teacher URL the teacher is this deployment's vLLM, which also holds every
    workspace's adapters: a request may not point the teacher at another model there."""
    client = app_with(teachers={"x": {"base_url": "http://127.0.0.1:9/v1"}})
    auth = new_workspace(client)
    col = _collection(client, auth)
    r = _augment(client, auth, col, {"model": "ad_0123456789abcdef-abc123"})
    assert r.status_code == 422, r.text
    assert "serves 'base'" in r.json()["error"]["message"]


def test_the_worker_checks_the_url_again_before_it_connects(
    app_with: Callable[..., TestClient], make_settings: Callable[..., Settings]
) -> None:
    """Settings can change while a job waits: a worker whose settings no longer allow the URL
    fails the job with the reason instead of connecting."""
    client = app_with(
        teacher_allowed_urls=["http://127.0.0.1:9/v1"], teacher_allowed_networks=["127.0.0.0/8"]
    )
    auth = new_workspace(client)
    col = _collection(client, auth)
    job_id = _augment(client, auth, col, {"base_url": "http://127.0.0.1:9/v1"}).json()["job"]["id"]
    Worker(make_settings()).run(once=True)  # the default settings: no per-request URL
    job = client.get(f"/v1/jobs/{job_id}", headers=auth).json()
    assert job["status"] == "failed", job
    assert "teacher.base_url" in job["error"] and "allows no per-request URL" in job["error"]


# -- secrets at rest ------------------------------------------------------------------------------


class _RecordingTeacher:
    """A real HTTP teacher on the loopback that answers every completion and records the
    Authorization header of each request."""

    def __init__(self) -> None:
        self.authorizations: list[str | None] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                self.rfile.read(int(self.headers.get("content-length", 0)))
                outer.authorizations.append(self.headers.get("authorization"))
                body = json.dumps(
                    {
                        "choices": [{"index": 0, "text": "- Glon are less dangerous than femp."}],
                        "usage": {"prompt_tokens": 5, "completion_tokens": 5},
                    }
                ).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def recording_teacher() -> Iterator[_RecordingTeacher]:
    teacher = _RecordingTeacher()
    yield teacher
    teacher.close()


def test_a_request_teacher_key_is_stored_sealed_and_still_reaches_the_teacher(
    app_with: Callable[..., TestClient], recording_teacher: _RecordingTeacher
) -> None:
    client = app_with(
        teacher_allowed_urls=[recording_teacher.url], teacher_allowed_networks=["127.0.0.1/32"]
    )
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    auth = new_workspace(client)
    col = _collection(client, auth)
    r = _augment(client, auth, col, {"base_url": recording_teacher.url, "api_key": TEACHER_KEY})
    assert r.status_code == 201, r.text
    job_id = r.json()["job"]["id"]

    with runtime.engine.connect() as conn:  # the row as stored, read with plain SQL
        raw = conn.execute(text("SELECT params FROM jobs WHERE id = :id"), {"id": job_id}).scalar()
    stored = json.loads(raw)["teacher"]
    assert TEACHER_KEY not in raw and "api_key" not in stored
    assert unseal(stored["api_key_encrypted"], resolve_secret_key(runtime.settings)) == TEACHER_KEY
    data_dir = runtime.settings.data_dir
    for name in ("docadapt.db", "docadapt.db-wal"):
        if (data_dir / name).exists():
            assert TEACHER_KEY.encode() not in (data_dir / name).read_bytes(), name
    shown = client.get(f"/v1/jobs/{job_id}", headers=auth).json()["params"]["teacher"]
    assert shown == {"base_url": recording_teacher.url, "api_key": "***"}

    Worker(runtime.settings).run(once=True)
    job = client.get(f"/v1/jobs/{job_id}", headers=auth).json()
    assert job["status"] == "succeeded", job
    assert recording_teacher.authorizations
    assert set(recording_teacher.authorizations) == {f"Bearer {TEACHER_KEY}"}


def test_a_sealed_key_the_secret_key_cannot_open_fails_the_job_with_what_to_do(
    app_with: Callable[..., TestClient], make_settings: Callable[..., Settings]
) -> None:
    allow = {
        "teacher_allowed_urls": ["http://127.0.0.1:9/v1"],
        "teacher_allowed_networks": ["127.0.0.0/8"],
    }
    client = app_with(**allow)
    auth = new_workspace(client)
    col = _collection(client, auth)
    r = _augment(client, auth, col, {"base_url": "http://127.0.0.1:9/v1", "api_key": TEACHER_KEY})
    job_id = r.json()["job"]["id"]
    other_key = "L6h0NfkNYDeQtL2f0zcbKXqjkcN5y-Ofp3JfU6T6l7c="  # not this data folder's key
    Worker(make_settings(secret_key=other_key, **allow)).run(once=True)
    job = client.get(f"/v1/jobs/{job_id}", headers=auth).json()
    assert job["status"] == "failed", job
    assert "cannot be decrypted" in job["error"] and "submit the augmentation again" in job["error"]


def test_the_data_folder_and_database_are_the_owners_alone(
    app_with: Callable[..., TestClient], make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = make_settings()
    client = app_with()
    auth = new_workspace(client)
    _collection(client, auth)  # something written, so the WAL exists
    data = settings.data_dir
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    for name in ("docadapt.db", "docadapt.db-wal", "docadapt.db-shm", "secret_key"):
        if name != "secret_key" and not (data / name).exists():
            continue
        assert stat.S_IMODE((data / name).stat().st_mode) == 0o600, name

    # A data folder and database made by an older release (world-readable) are narrowed.
    old = tmp_path / "old-data"
    old.mkdir(mode=0o755)
    os.chmod(old, 0o755)
    (old / "docadapt.db").touch()
    os.chmod(old / "docadapt.db", 0o644)
    with TestClient(create_app(make_settings(data_dir=old))):
        pass
    assert stat.S_IMODE(old.stat().st_mode) == 0o700
    assert stat.S_IMODE((old / "docadapt.db").stat().st_mode) == 0o600


# -- keys, encodings, names -----------------------------------------------------------------------


def test_the_admin_key_on_a_workspace_endpoint_says_it_is_the_admin_key(
    app_with: Callable[..., TestClient],
) -> None:
    client = app_with()
    r = client.get("/v1/collections", headers={"Authorization": f"Bearer {ADMIN_KEY}"})
    assert r.status_code == 401 and r.headers["WWW-Authenticate"] == "Bearer"
    error = r.json()["error"]
    assert error["code"] == "admin_key_not_accepted"
    assert "this is the admin key" in error["message"] and "invalid" not in error["message"]
    workspace_key = new_workspace(client)
    r = client.post("/v1/workspaces", json={"name": "x"}, headers=workspace_key)
    assert r.status_code == 401 and "this is a workspace API key" in r.json()["error"]["message"]


def test_a_text_file_that_is_not_utf8_is_refused_or_read_as_windows_1252(
    app_with: Callable[..., TestClient],
) -> None:
    client = app_with()
    auth = new_workspace(client)
    col = client.post("/v1/collections", json={"name": "c"}, headers=auth).json()["id"]

    def upload(name: str, data: bytes) -> Any:
        files = [("files", (name, data, "text/plain"))]
        return client.post(f"/v1/collections/{col}/documents", files=files, headers=auth)

    r = upload("broken.txt", "Grüße aus Köln.".encode() + b"\xff\xfe\xfa tail.")
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "invalid_encoding"
    assert "'broken.txt' is not valid UTF-8: byte 0xFF at offset 18" in error["message"]
    r = upload("legacy.txt", "Café Zürich serves crème brûlée.".encode("cp1252"))
    assert r.status_code == 201, r.text
    (doc,) = r.json()["data"]
    assert doc["text_encoding"] == "windows-1252"
    got = client.get(f"/v1/documents/{doc['id']}", headers=auth).json()
    assert got["text"] == "Café Zürich serves crème brûlée." and got["text_encoding"] == (
        "windows-1252"
    )
    assert upload("plain.txt", b"Plain text.").json()["data"][0]["text_encoding"] == "utf-8"


def test_adapters_name_their_model_and_export_a_card_and_a_portable_config(
    app_with: Callable[..., TestClient], base_model_dir: Path, tmp_path: Path
) -> None:
    """The download of a trained adapter (its files stored as the training job stores them):
    the config names the model, the card says what it is, the checksum covers the files, and
    the folder passes the import's validation against the base model."""
    from adapters.peft_validation import validate_peft_adapter
    from adapters.selfcheck import make_random_adapter
    from service.db.tables import Adapter
    from service.training import registry

    client = app_with()
    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    auth = new_workspace(client)
    col = _collection(client, auth)
    r = client.post(f"/v1/collections/{col}/adapters", json={"name": "facts-v1"}, headers=auth)
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["base_model"] == "SmolLM2-135M-Instruct"

    peft_dir = make_random_adapter(tmp_path / "trained", 3, base_model_dir)
    config = json.loads((peft_dir / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == str(base_model_dir)  # what peft writes
    (peft_dir / "README.md").write_text("## Model Details\n[More Information Needed]\n")
    with runtime.session_factory() as session:
        adapter = session.get(Adapter, created["id"])
        registry.store_artifact(runtime.storage, adapter, peft_dir)
        adapter.metrics = {
            "steps": 12,
            "final_loss": 0.5,
            "training_examples": 2,
            "knowledge": {"probes": 4, "adapter": 0.75, "base": 0.25, "chance": 0.25},
        }
        registry.set_status(adapter, "ready")
        session.commit()

    got = client.get(f"/v1/adapters/{created['id']}", headers=auth).json()
    listed = client.get("/v1/adapters", headers=auth).json()["data"]
    for shown in (got, listed[0]):
        assert shown["base_model"] == "SmolLM2-135M-Instruct"
        assert str(runtime.settings.data_dir) not in json.dumps(shown)
    # Errors from the OS or vLLM name server paths; responses keep only their last part.
    from service.db.tables import Job

    with runtime.session_factory() as session:
        job = session.get(Job, created["job"]["id"])
        job.error = f"FileNotFoundError: '{runtime.settings.data_dir}/jobs/{job.id}/run/adapter'"
        session.commit()
    error = client.get(f"/v1/jobs/{created['job']['id']}", headers=auth).json()["error"]
    assert error == "FileNotFoundError: '.../adapter'"

    r = client.get(f"/v1/adapters/{created['id']}/download", headers=auth)
    assert r.status_code == 200 and r.headers["content-type"] == "application/gzip"
    assert str(runtime.settings.data_dir).encode() not in r.content
    with tarfile.open(fileobj=io.BytesIO(r.content)) as tar:
        tar.extractall(tmp_path / "download", filter="data")
    folder = tmp_path / "download" / "facts-v1"
    exported = json.loads((folder / "adapter_config.json").read_text())
    assert exported["base_model_name_or_path"] == "SmolLM2-135M-Instruct"
    assert exported["r"] == config["r"] and exported["target_modules"] == config["target_modules"]
    card = (folder / "README.md").read_text()
    assert "More Information Needed" not in card
    for expected in (
        "base_model: SmolLM2-135M-Instruct",
        "- Documents: 1 (facts.txt)",
        "- Training examples: 2",
        "- Augmentation: none",
        "- Final training loss: 0.5",
        "the adapter answers 75%, the base model 25%",
        "PeftModel.from_pretrained",
        "vllm serve SmolLM2-135M-Instruct --enable-lora",
    ):
        assert expected in card, expected
    assert (
        registry.folder_sha256(folder) == r.headers["X-Artifact-SHA256"] == got["artifact_sha256"]
    )
    # What POST /v1/adapters/import checks first: it is an adapter this base model can serve.
    assert validate_peft_adapter(folder, base_model_dir, runtime.settings.vllm_max_lora_rank) == []
