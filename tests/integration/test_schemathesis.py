"""The OpenAPI schema against the service, the way it is checked from outside: schemathesis
(`st run`, pinned in the dev extras) generates requests for every operation from /openapi.json,
with a valid workspace key and the ids of real resources, against the real app served by uvicorn
on the loopback, and must find no server error, no undocumented status, no undocumented content
type and no response that breaks its schema. Bounded: 5 examples per operation in the fuzzing
phase (the coverage phase adds its own), at most 150 s of requests.

The app here has no vLLM, so the routes that need it answer their documented 503; that status
is expected (every other 5xx fails the run)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from service.core.config import Settings
from service.main import create_app
from tests.conftest import ADMIN_KEY

CHECKS = (
    "not_a_server_error,status_code_conformance,content_type_conformance,"
    "response_schema_conformance"
)


@pytest.fixture
def served(make_settings: Callable[..., Settings]) -> Iterator[str]:
    """The app on a free loopback port, served by uvicorn in a thread; yields its URL."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # No rate limits: they would answer most generated requests to the query and job routes
    # with their (documented) 429 before the route reads them (test_limits.py tests them).
    settings = make_settings(rate_limit_queries_per_minute=0, rate_limit_jobs_per_minute=0)
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="error")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise AssertionError("the app did not start")
        time.sleep(0.2)
    yield url
    server.should_exit = True
    thread.join(timeout=30)


def _seed(http: httpx.Client) -> tuple[str, dict[str, str]]:
    """A workspace with one of each resource; its key and the ids for the path parameters."""
    r = http.post(
        "/v1/workspaces", json={"name": "fuzz"}, headers={"Authorization": f"Bearer {ADMIN_KEY}"}
    )
    key = r.json()["api_key"]
    http.headers["Authorization"] = f"Bearer {key}"
    col = http.post("/v1/collections", json={"name": "facts"}).json()["id"]
    body = b"Femp are more dangerous than glon. All troff are glon."
    doc = http.post(
        f"/v1/collections/{col}/documents", files=[("files", ("facts.txt", body, "text/plain"))]
    ).json()["data"][0]["id"]
    aug = http.post(
        f"/v1/collections/{col}/augmentations/upload",
        content=b'{"text": "Glon are less dangerous than femp."}\n',
        headers={"Content-Type": "application/x-ndjson"},
    ).json()["id"]
    item = {"question": "Which are more dangerous?", "answer": "femp", "choices": ["femp", "glon"]}
    evalset = http.post(
        f"/v1/collections/{col}/evalsets",
        content=json.dumps(item).encode(),
        headers={"Content-Type": "application/x-ndjson"},
    ).json()["id"]
    adapter = http.post(f"/v1/collections/{col}/adapters", json={"name": "facts-v1"}).json()
    return key, {
        "collection_id": col,
        "document_id": doc,
        "augmentation_id": aug,
        "example_id": "1",
        "evalset_id": evalset,
        "adapter_id": adapter["id"],
        "job_id": adapter["job"]["id"],
    }


def test_schemathesis_finds_nothing_the_schema_does_not_say(served: str, tmp_path: Path) -> None:
    with httpx.Client(base_url=served, timeout=60) as http:
        key, ids = _seed(http)
    config = tmp_path / "schemathesis.toml"
    config.write_text(
        "[checks.not_a_server_error]\n"
        'expected-statuses = ["2xx", "3xx", "4xx", "503"]\n'
        "[parameters]\n" + "".join(f'"path.{name}" = "{value}"\n' for name, value in ids.items())
    )
    st = Path(sys.executable).with_name("st")
    run = subprocess.run(
        [
            str(st),
            "--config-file",
            str(config),
            "run",
            f"{served}/openapi.json",
            "--header",
            f"Authorization: Bearer {key}",
            "--checks",
            CHECKS,
            "--phases",
            "examples,coverage,fuzzing",
            "--max-examples",
            "5",
            "--seed",
            "14",
            "--continue-on-failure",
            "--request-timeout",
            "60",
            "--max-time",
            "150",
            "--workers",
            "1",
            "--no-color",
        ],
        capture_output=True,
        text=True,
        timeout=420,
        cwd=tmp_path,
    )
    report = run.stdout + run.stderr
    assert run.returncode == 0, report[-12_000:]
    assert " passed" in report and "failures" not in report.splitlines()[-1], report[-3000:]
