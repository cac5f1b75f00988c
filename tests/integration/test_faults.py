"""Faults against the real service (the app, a real `docadapt worker` process from its pool, a
real SQLite database): a teacher endpoint that fails (answers 500, hangs past the timeout, closes
the connection mid-answer) and a full disk (a small tmpfs as the data folder).

The tmpfs needs root (`mount -t tmpfs`), which CI has. Where mounting is impossible these tests
fail and say so; DOCADAPT_TEST_NO_TMPFS=1 skips them explicitly instead."""

from __future__ import annotations

import errno
import json
import os
import re
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from service.core.config import Settings
from service.main import create_app
from tests.fixtures.scripted_teacher import completion_body
from tests.integration.conftest import new_workspace

# One document, four sentence units; the teacher answers each with its reversal.
SENTENCES = [
    "Femp are more dangerous than glon.",
    "Kreb are more dangerous than quom.",
    "Zarp are more dangerous than troff.",
    "Morv are more dangerous than dax.",
]
GOOD_ANSWERS = 2  # per fault, then the teacher breaks
FAULTS = ("500", "hang", "close")
TEACHER_ENV = {
    "DOCADAPT_TEACHER_TIMEOUT_S": "1",
    "DOCADAPT_TEACHER_MAX_ATTEMPTS": "3",
    "DOCADAPT_TEACHER_CONCURRENCY": "1",
}
STATEMENT = re.compile(r"Statement: (\w+) are more dangerous than (\w+)\.\nFollows:\n-\s*$")


class FaultyTeacher:
    """A real OpenAI-compatible teacher on 127.0.0.1: under /<fault>/v1 it answers the first
    GOOD_ANSWERS completions properly, then every request with its fault: `500` (an error
    answer), `hang` (no answer until the test ends), `close` (half an answer, then the
    connection closes)."""

    def __init__(self) -> None:
        self.requests: dict[str, int] = {}
        self.release = threading.Event()
        lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                payload = json.loads(self.rfile.read(int(self.headers["content-length"])))
                fault = self.path.split("/")[1]
                with lock:
                    n = outer.requests[fault] = outer.requests.get(fault, 0) + 1
                if n <= GOOD_ANSWERS:
                    a, b = STATEMENT.search(payload["prompt"]).groups()  # type: ignore[union-attr]
                    self._send(
                        200,
                        completion_body(
                            [f" {b.capitalize()} are less dangerous than {a.lower()}.\n"]
                        ),
                    )
                elif fault == "500":
                    self._send(500, b'{"error": {"message": "the teacher is overloaded"}}')
                elif fault == "hang":
                    outer.release.wait(30)
                elif fault == "close":
                    self.send_response(200)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", "1000")
                    self.end_headers()
                    self.wfile.write(b'{"choices": [{"text": "Glon')
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True

            def _send(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def teacher() -> Iterator[FaultyTeacher]:
    server = FaultyTeacher()
    yield server
    server.close()


def _wait_job(client: TestClient, auth: dict[str, str], job_id: str, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        job = client.get(f"/v1/jobs/{job_id}", headers=auth).json()
        if job["status"] in ("succeeded", "failed", "cancelled"):
            return job
        assert time.monotonic() < deadline, f"job still {job['status']} after {timeout} s: {job}"
        time.sleep(0.3)


def _upload(client: TestClient, auth: dict[str, str], col: str, name: str, text: str):  # type: ignore[no-untyped-def]
    files = [("files", (name, text.encode(), "text/plain"))]
    return client.post(f"/v1/collections/{col}/documents", files=files, headers=auth)


def test_a_failing_teacher_is_retried_then_fails_the_job_with_the_reason(
    make_settings: Callable[..., Settings],
    teacher: FaultyTeacher,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The pool's worker takes its settings from the environment; the allow-list admits the
    # test's teacher (loopback is refused unless allowed).
    env = {
        **TEACHER_ENV,
        "DOCADAPT_TEACHER_ALLOWED_URLS": json.dumps([f"{teacher.url}/{f}/v1" for f in FAULTS]),
        "DOCADAPT_TEACHER_ALLOWED_NETWORKS": '["127.0.0.1/32"]',
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with TestClient(create_app(make_settings(workers=1))) as client:
        auth = new_workspace(client)
        col = client.post("/v1/collections", json={"name": "f"}, headers=auth).json()["id"]
        assert _upload(client, auth, col, "facts.txt", " ".join(SENTENCES)).status_code == 201
        augs = {}
        for fault in FAULTS:
            body = {
                "strategies": ["local"],
                "outputs_per_unit": 1,
                "temperature": 0.0,
                "teacher": {"base_url": f"{teacher.url}/{fault}/v1", "model": "teacher"},
            }
            r = client.post(f"/v1/collections/{col}/augmentations", json=body, headers=auth)
            assert r.status_code == 201, r.text
            augs[fault] = r.json()

        happened = {
            "500": "teacher answered 500: ",
            "hang": "teacher gave no answer within 1 s (DOCADAPT_TEACHER_TIMEOUT_S)",
            "close": "teacher connection failed: RemoteProtocolError",
        }
        for fault, aug in augs.items():
            job = _wait_job(client, auth, aug["job"]["id"], timeout=60)
            assert job["status"] == "failed", (fault, job)
            error = job["error"]
            # which endpoint, what happened, how many attempts, and what was kept
            assert f"POST {teacher.url}/{fault}/v1/completions, 3 attempts" in error, error
            assert happened[fault] in error, error
            assert f"{GOOD_ANSWERS} of {len(SENTENCES)} units had finished" in error, error
            # every attempt reached the server: the good answers, then at least 3 tries
            assert teacher.requests[fault] >= GOOD_ANSWERS + 3, teacher.requests

            got = client.get(f"/v1/augmentations/{aug['id']}", headers=auth).json()
            assert got["status"] == "failed" and got["stats"]["error"] == error
            local = got["stats"]["strategies"]["local"]
            assert local["units_done"] == GOOD_ANSWERS and local["units_failed"] >= 1
            assert local["units_done"] + local["units_failed"] < len(SENTENCES)  # stopped early
            # the statements of the finished units are kept, each from a finished unit
            r = client.get(f"/v1/augmentations/{aug['id']}/examples", headers=auth)
            examples = [json.loads(line) for line in r.text.splitlines()]
            assert len(examples) == got["stats"]["examples"] >= 1
            assert f"their {len(examples)} statements are kept" in error
            assert all("less dangerous than" in e["text"] for e in examples)
        pool = client.app.state.runtime.worker_pool  # type: ignore[attr-defined]
        assert len(pool.pids) == 1  # the worker never died


# -- a full disk --------------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 24 MiB tmpfs mounted where the service's data folder goes (make_settings' data_dir)."""
    data = tmp_path / "data"
    data.mkdir()
    mount = ["mount", "-t", "tmpfs", "-o", "size=24m,mode=0700", "tmpfs", str(data)]
    done = subprocess.run(mount, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        if os.environ.get("DOCADAPT_TEST_NO_TMPFS"):
            pytest.skip(f"DOCADAPT_TEST_NO_TMPFS is set and no tmpfs: {done.stderr.strip()}")
        pytest.fail(
            f"cannot mount a tmpfs for the full-disk tests ({done.stderr.strip()}); they need "
            "root. DOCADAPT_TEST_NO_TMPFS=1 skips them explicitly"
        )
    try:
        yield data
    finally:
        subprocess.run(["umount", "-l", str(data)], check=False)


def _fill(folder: Path) -> Path:
    """Fill the disk under `folder` to the last byte; returns the filler to delete."""
    filler = folder / "filler"
    with open(filler, "wb", buffering=0) as fh:
        for chunk in (1 << 20, 4096, 1):
            try:
                while True:
                    fh.write(b"\0" * chunk)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC, exc
    assert os.statvfs(folder).f_bavail == 0
    return filler


def test_a_full_disk_refuses_an_upload_with_507_and_keeps_the_database_consistent(
    make_settings: Callable[..., Settings], small_disk: Path
) -> None:
    # The default layout: the SQLite database lives in the full data folder too.
    with TestClient(create_app(make_settings())) as client:
        assert str(client.app.state.runtime.settings.sqlalchemy_url).find(str(small_disk)) > 0  # type: ignore[attr-defined]
        auth = new_workspace(client)
        col = client.post("/v1/collections", json={"name": "f"}, headers=auth).json()["id"]
        files_root = small_disk / "files"
        filler = _fill(small_disk)

        r = _upload(client, auth, col, "facts.txt", " ".join(SENTENCES))
        assert r.status_code == 507, r.text
        error = r.json()["error"]
        assert error["code"] == "insufficient_storage"
        assert "disk is full" in error["message"] and "nothing of it was stored" in error["message"]
        # no half-written document: no row, and no file left behind
        assert client.get(f"/v1/collections/{col}/documents", headers=auth).json()["data"] == []
        assert [p for p in files_root.rglob("*") if p.is_file()] == []

        # a write that only the database takes (an eval set is rows): SQLite's "database or
        # disk is full" is the same 507, and nothing of it stays
        evalset = b"".join(
            json.dumps(
                {
                    "question": f"Are glon heavier than troff, case {i}?" + " Why?" * 30,
                    "answer": "yes",
                }
            ).encode()
            + b"\n"
            for i in range(10_000)
        )
        ndjson = auth | {"content-type": "application/x-ndjson"}
        r = client.post(f"/v1/collections/{col}/evalsets", content=evalset, headers=ndjson)
        assert r.status_code == 507, r.text
        assert r.json()["error"]["code"] == "insufficient_storage"
        assert client.get(f"/v1/collections/{col}/evalsets", headers=auth).json()["data"] == []
        with client.app.state.runtime.session_factory() as session:  # type: ignore[attr-defined]
            assert session.execute(text("PRAGMA integrity_check")).scalar() == "ok"

        filler.unlink()
        r = client.post(f"/v1/collections/{col}/evalsets", content=evalset, headers=ndjson)
        assert r.status_code == 201, r.text
        r = _upload(client, auth, col, "facts.txt", " ".join(SENTENCES))
        assert r.status_code == 201, r.text
        (doc,) = r.json()["data"]
        got = client.get(f"/v1/documents/{doc['id']}", headers=auth).json()
        assert got["text"] == " ".join(SENTENCES)
        assert len([p for p in files_root.rglob("*") if p.is_file()]) == 2  # original, text

        schema = client.get("/openapi.json").json()
        upload = schema["paths"]["/v1/collections/{collection_id}/documents"]["post"]
        assert upload["responses"]["507"]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/ErrorResponse"
        }


def test_a_job_that_meets_a_full_disk_fails_with_the_reason_and_the_worker_lives_on(
    make_settings: Callable[..., Settings], small_disk: Path, tmp_path: Path
) -> None:
    # The database on another disk (as PostgreSQL would be), so the job's end can be recorded;
    # the training job writes its run (configuration, checkpoints) into the full data folder.
    settings = make_settings(workers=1, database_url=f"sqlite:///{tmp_path / 'db.sqlite'}")
    with TestClient(create_app(settings)) as client:
        auth = new_workspace(client)
        col = client.post("/v1/collections", json={"name": "f"}, headers=auth).json()["id"]
        assert _upload(client, auth, col, "facts.txt", " ".join(SENTENCES)).status_code == 201
        pool = client.app.state.runtime.worker_pool  # type: ignore[attr-defined]
        deadline = time.monotonic() + 30
        while not pool.pids and time.monotonic() < deadline:
            time.sleep(0.2)
        (worker_pid,) = pool.pids
        _fill(small_disk)

        hyper = {"max_steps": 4, "batch_size": 4, "max_seq_length": 64, "early_stopping": False}
        r = client.post(
            f"/v1/collections/{col}/adapters",
            json={"name": "full-disk", "hyperparameters": hyper},
            headers=auth,
        )
        assert r.status_code == 201, r.text
        adapter = r.json()
        job = _wait_job(client, auth, adapter["job"]["id"], timeout=120)
        assert job["status"] == "failed", job
        assert job["error"].startswith("the service's data disk is full"), job["error"]
        assert job["attempts"] == 1  # failed once, with the reason; no crash and retry loop
        got = client.get(f"/v1/adapters/{adapter['id']}", headers=auth).json()
        assert got["status"] == "failed" and "disk is full" in got["status_reason"]
        assert pool.pids == [worker_pid]  # the worker lived on
