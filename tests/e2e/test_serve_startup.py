"""`docadapt serve` with its own vLLM, polled from the first second: /healthz answers while
/readyz says 503 with each start-up phase (starting vLLM, warm-up, isolation check) and then
200, and vLLM's health polls stay out of the log.

It runs with DOCADAPT_TEACHER_VLLM_DTYPE=bfloat16 (one start of `docadapt serve` for both): a
second vLLM child, LoRA off, in bfloat16, takes every teacher request of a worker's augmentation
and the serving vLLM (float32, LoRA, isolation check passed) none."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import ADMIN_KEY
from tests.e2e.test_augmentation_api import DOCS
from tests.e2e.test_serve_process import _free_port, _vllm_children, _wait

pytestmark = pytest.mark.e2e


def test_serve_reports_every_phase_until_ready(base_model_dir: Path, tmp_path: Path) -> None:
    port = _free_port()
    env = {
        **os.environ,
        "DOCADAPT_DATA_DIR": str(tmp_path / "data"),
        "DOCADAPT_ADMIN_KEY": ADMIN_KEY,
        "DOCADAPT_BASE_MODEL_PATH": str(base_model_dir),
        "DOCADAPT_WORKERS": "1",
        "DOCADAPT_TEACHER_VLLM_DTYPE": "bfloat16",
    }
    log_path = tmp_path / "serve.log"
    log = open(log_path, "wb")  # noqa: SIM115
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "service.cli", "serve", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    phases: list[str] = []
    first_health: float | None = None
    page_while_starting = api_while_starting = None
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            while True:
                assert time.monotonic() - started < 900, f"not ready; phases seen: {phases}"
                assert proc.poll() is None, log_path.read_text()[-3000:]
                try:
                    if first_health is None and http.get("/healthz").status_code == 200:
                        first_health = time.monotonic() - started
                    ready = http.get("/readyz")
                except httpx.TransportError:
                    time.sleep(0.2)
                    continue
                if ready.status_code == 200:
                    break
                assert ready.status_code == 503
                name = ready.json()["phase"]["name"]
                if not phases or phases[-1] != name:
                    phases.append(name)
                if name == "starting vLLM" and page_while_starting is None:
                    page_while_starting = http.get("/")
                    api_while_starting = http.get("/v1/collections")
                time.sleep(0.5)
            assert ready.json()["checks"]["adapters"] == "ok", ready.json()
            assert ready.json()["checks"]["teacher_vllm"] == "ok", ready.json()
            # Running past a few of the supervisors' 5 s health polls.
            polls_until = time.monotonic() + 12
            _augmentation_goes_to_the_teacher_vllm(http, proc)
            time.sleep(max(0.0, polls_until - time.monotonic()))
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        log.close()
    assert first_health is not None and phases, phases
    # The dashboard's page loads while the service starts; the API it calls answers 503 starting.
    assert page_while_starting is not None and api_while_starting is not None
    assert page_while_starting.status_code == 200
    assert page_while_starting.headers["content-type"].startswith("text/html")
    assert api_while_starting.status_code == 503
    assert api_while_starting.json()["error"]["code"] == "starting"
    for phase in ("starting vLLM", "warm-up", "isolation check"):
        assert phase in phases, phases
    assert phases.index("starting vLLM") < phases.index("warm-up") < phases.index("isolation check")
    served_log = log_path.read_text()
    assert "start-up 3/7: starting vLLM" in served_log and "start-up done in" in served_log
    assert "teacher-only vLLM (bfloat16) at http://127.0.0.1:" in served_log
    assert "/health " not in served_log and '"GET /readyz' not in served_log, served_log[-3000:]


def _argument(cmdline: list[str], flag: str) -> str | None:
    return cmdline[cmdline.index(flag) + 1] if flag in cmdline else None


def _requests_served(port: str) -> float:
    """Finished requests a vLLM counted (each of a request's n samples counts), from /metrics."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    counts = re.findall(r"^vllm:request_success_total\{[^}]*\} ([0-9.e+]+)$", text, re.M)
    assert counts, text[:2000]
    return sum(float(c) for c in counts)


def _augmentation_goes_to_the_teacher_vllm(http: httpx.Client, proc: subprocess.Popen) -> None:
    children = {_argument(p.cmdline(), "--dtype"): p.cmdline() for p in _vllm_children(proc.pid)}
    assert set(children) == {"float32", "bfloat16"}, children
    serving, teacher = children["float32"], children["bfloat16"]
    assert "--enable-lora" in serving and "--enable-lora" not in teacher
    serving_port, teacher_port = _argument(serving, "--port"), _argument(teacher, "--port")
    assert serving_port and teacher_port

    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    r = http.post("/v1/workspaces", json={"name": "acme"}, headers=admin)
    auth = {"Authorization": f"Bearer {r.json()['api_key']}"}
    col = http.post("/v1/collections", json={"name": "facts"}, headers=auth).json()["id"]
    files = [("files", (name, text.encode(), "text/plain")) for name, text in DOCS.items()]
    assert http.post(f"/v1/collections/{col}/documents", files=files, headers=auth).is_success

    served_before, taught_before = _requests_served(serving_port), _requests_served(teacher_port)
    r = http.post(
        f"/v1/collections/{col}/augmentations",
        json={"strategies": ["local", "global"], "outputs_per_unit": 1, "temperature": 0.7},
        headers=auth,
    )
    assert r.status_code == 201, r.text
    aug_id, job_id = r.json()["id"], r.json()["job"]["id"]

    def finished() -> dict | None:
        job = http.get(f"/v1/jobs/{job_id}", headers=auth).json()
        return job if job["status"] in ("succeeded", "failed", "cancelled") else None

    job = _wait(finished, 600, "augmentation finished", proc)
    assert job["status"] == "succeeded", job
    stats = http.get(f"/v1/augmentations/{aug_id}", headers=auth).json()["stats"]
    per_strategy = stats["strategies"].values()
    requests = sum(s["requests"] for s in per_strategy)
    assert requests > 0 and stats["strategies"]["global"]["completion_tokens"] > 0, stats
    assert sum(s["requests_failed"] for s in per_strategy) == 0, stats
    # Every teacher request went to the bfloat16 vLLM; the serving one saw none of them.
    assert _requests_served(teacher_port) - taught_before == requests
    assert _requests_served(serving_port) == served_before
    assert stats["redaction"]["teacher"] == "embedded", stats  # still the service's own teacher
