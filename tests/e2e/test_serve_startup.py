"""`docadapt serve` with its own vLLM, polled from the first second: /healthz answers while
/readyz says 503 with each start-up phase (starting vLLM, warm-up, isolation check) and then
200, and vLLM's health polls stay out of the log."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import ADMIN_KEY
from tests.e2e.test_serve_process import _free_port

pytestmark = pytest.mark.e2e


def test_serve_reports_every_phase_until_ready(base_model_dir: Path, tmp_path: Path) -> None:
    port = _free_port()
    env = {
        **os.environ,
        "DOCADAPT_DATA_DIR": str(tmp_path / "data"),
        "DOCADAPT_ADMIN_KEY": ADMIN_KEY,
        "DOCADAPT_BASE_MODEL_PATH": str(base_model_dir),
        "DOCADAPT_WORKERS": "0",
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
            # Sitting idle past a few of the supervisor's 5 s health polls.
            time.sleep(12)
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
    assert "/health " not in served_log and '"GET /readyz' not in served_log, served_log[-3000:]
