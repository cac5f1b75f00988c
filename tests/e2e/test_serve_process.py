"""`docadapt serve` as a user starts it: its own vLLM child process, the isolation self-check,
a worker process, an imported adapter answered over real HTTP with the `openai` client, and
the vLLM child killed and brought back with the adapter reloaded from the registry."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest
from openai import OpenAI

from tests.conftest import ADMIN_KEY
from tests.e2e.test_query_api import adapter_archive

pytestmark = pytest.mark.e2e


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(predicate, timeout: float, what: str, proc: subprocess.Popen | None = None):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the service exited ({proc.returncode}) while waiting: {what}")
        try:
            value = predicate()
        except httpx.HTTPError:
            value = None
        if value:
            return value
        time.sleep(1)
    raise AssertionError(f"timed out: {what}")


def _vllm_children(pid: int) -> list[psutil.Process]:
    return [
        p
        for p in psutil.Process(pid).children(recursive=True)
        if "vllm.entrypoints.openai.api_server" in " ".join(p.cmdline())
    ]


def _alive(process: psutil.Process) -> bool:
    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_serve_survives_a_killed_vllm(
    base_model_dir: Path, make_random_adapter, tmp_path: Path
) -> None:
    port = _free_port()
    env = {
        **os.environ,
        "DOCADAPT_DATA_DIR": str(tmp_path / "data"),
        "DOCADAPT_ADMIN_KEY": ADMIN_KEY,
        "DOCADAPT_BASE_MODEL_PATH": str(base_model_dir),
        "DOCADAPT_WORKERS": "1",
    }
    log = open(tmp_path / "serve.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "service.cli", "serve", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    http = httpx.Client(base_url=url, timeout=120)
    try:
        ready = _wait(
            lambda: http.get("/readyz").status_code == 200 and http.get("/readyz"),
            900,
            "service ready",
            proc,
        )
        assert ready.json()["checks"]["adapters"] == "ok", ready.json()  # self-check passed
        r = http.post(
            "/v1/workspaces",
            json={"name": "acme"},
            headers={"Authorization": f"Bearer {ADMIN_KEY}"},
        )
        key = r.json()["api_key"]
        auth = {"Authorization": f"Bearer {key}"}
        _jobs_cli_over_http(http, url, auth, {**env, "DOCADAPT_API_KEY": key})

        archive = adapter_archive(make_random_adapter(tmp_path / "ad", seed=11))
        r = http.post(
            "/v1/adapters/import",
            headers=auth,
            data={"name": "ops"},
            files={"file": ("a.tar.gz", archive, "application/gzip")},
        )
        assert r.status_code == 201, r.text

        client = OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0)

        def ask() -> str:
            out = client.completions.create(
                model="ops", prompt="The capital of France is", max_tokens=8, temperature=0
            )
            return out.choices[0].text

        before = ask()
        (vllm,) = _vllm_children(proc.pid)
        os.killpg(os.getpgid(vllm.pid), signal.SIGKILL)
        vllm.wait(timeout=60)

        def answered_again() -> str | None:
            try:
                return ask()
            except Exception:  # noqa: BLE001 - 503 while vLLM restarts
                return None

        after = _wait(answered_again, 900, "adapter answers after the vLLM restart", proc)
        assert after == before  # the same weights were loaded back
        (restarted,) = _vllm_children(proc.pid)
        assert restarted.pid != vllm.pid
    finally:
        http.close()
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        log.close()
    served_log = (tmp_path / "serve.log").read_text()
    # uvicorn shuts down gracefully on SIGTERM, then re-raises the signal: exit status -15.
    assert proc.returncode in (0, -signal.SIGTERM), served_log[-3000:]
    assert "Application shutdown complete" in served_log, served_log[-3000:]
    assert not _alive(restarted), "the vLLM child outlived the service"


def _jobs_cli_over_http(
    http: httpx.Client, url: str, auth: dict[str, str], env: dict[str, str]
) -> None:
    """`docadapt jobs cancel | watch | list` against the served API, as a user runs them."""

    def jobs(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "service.cli", "jobs", *args, "--url", url],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    col = http.post("/v1/collections", json={"name": "cli"}, headers=auth).json()["id"]
    files = [("files", ("f.txt", b"Femp are more dangerous than glon.", "text/plain"))]
    assert http.post(f"/v1/collections/{col}/documents", files=files, headers=auth).is_success
    r = http.post(f"/v1/collections/{col}/augmentations", json={}, headers=auth)
    job_id = r.json()["job"]["id"]

    cancelled = jobs("cancel", job_id)
    assert cancelled.returncode == 0 and job_id in cancelled.stdout, cancelled.stderr
    watched = jobs("watch", job_id)  # ends once the worker, if it had claimed it, stops
    assert watched.returncode == 1, (watched.stdout, watched.stderr)  # cancelled is not success
    assert f"{job_id}: cancelled" in watched.stdout
    listed = jobs("list", "--kind", "augmentation")
    assert listed.returncode == 0 and f"{job_id}  augmentation cancelled" in listed.stdout
    missing = jobs("watch", "job_does_not_exist")
    assert missing.returncode == 2 and "HTTP 404" in missing.stderr, missing.stderr
