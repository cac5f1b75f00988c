"""`docadapt serve` as a real process (no vLLM: the start-up path without the model server), and
the CLI against it as a user runs it: /healthz at once and /readyz with the start-up phase, no
probe lines in the log, `jobs watch` into a pipe, and `admin` / `report` run from another
folder."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, update
from sqlalchemy.orm import Session

from service.core.startup import PHASES
from service.db.tables import Job
from tests.conftest import ADMIN_KEY

CLI = [sys.executable, "-m", "service.cli"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Served:
    def __init__(self, url: str, data_dir: Path, log: Path, env: dict[str, str]) -> None:
        self.url, self.data_dir, self.log, self.env = url, data_dir, log, env
        self.polls: list[tuple[float, str, int, dict[str, Any] | None]] = []


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, base_model_dir: Path) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("serve-cli")
    port = _free_port()
    env = {
        **os.environ,
        "DOCADAPT_DATA_DIR": str(root / "data"),
        "DOCADAPT_ADMIN_KEY": ADMIN_KEY,
        "DOCADAPT_BASE_MODEL_PATH": str(base_model_dir),
        "DOCADAPT_START_VLLM": "false",
        "DOCADAPT_WORKERS": "0",
        # Jobs are only queued here (no worker runs); the teacher is never called.
        "DOCADAPT_TEACHER_BASE_URL": "http://127.0.0.1:9/v1",
    }
    log_path = root / "serve.log"
    log = open(log_path, "wb")  # noqa: SIM115
    started = time.monotonic()
    proc = subprocess.Popen(
        [*CLI, "serve", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    svc = Served(f"http://127.0.0.1:{port}", root / "data", log_path, env)
    try:
        with httpx.Client(base_url=svc.url, timeout=10) as http:
            while time.monotonic() - started < 300:
                assert proc.poll() is None, log_path.read_text()[-3000:]
                try:
                    health = http.get("/healthz").status_code
                    ready = http.get("/readyz")
                    early = http.get("/v1/collections") if ready.status_code == 503 else None
                except httpx.TransportError:
                    time.sleep(0.1)
                    continue
                svc.polls.append((time.monotonic() - started, "healthz", health, None))
                svc.polls.append(
                    (time.monotonic() - started, "readyz", ready.status_code, ready.json())
                )
                if early is not None:
                    svc.polls.append(
                        (time.monotonic() - started, "v1", early.status_code, early.json())
                    )
                if ready.status_code == 200:
                    break
                time.sleep(0.1)
        yield svc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        log.close()


def test_serve_answers_at_once_and_reports_its_start_up_phase(served: Served) -> None:
    first_health = next(p for p in served.polls if p[1] == "healthz")
    assert first_health[2] == 200
    starting = [p for p in served.polls if p[1] == "readyz" and p[2] == 503]
    assert starting, "no 503 from /readyz while the service started"
    # While it starts, /healthz already answers: the first answer came before readiness.
    assert first_health[0] <= starting[0][0] + 1.0
    for _, _, _, body in starting:
        assert body is not None and body["status"] == "starting"
        assert body["phase"]["name"] in PHASES and body["phase"]["steps"] == len(PHASES)
    # A /v1 request during start-up (the last one may have come just after it) is 503 starting.
    early = [p for p in served.polls if p[1] == "v1" and p[2] == 503]
    assert early and all(p[3]["error"]["code"] == "starting" for p in early)
    assert "GET /readyz shows the progress" in early[0][3]["error"]["message"]
    assert served.polls[-1][1] == "readyz" and served.polls[-1][2] == 200
    # The next start estimates each phase from this one.
    timings = (served.data_dir / "startup.json").read_text()
    assert all(phase in timings for phase in PHASES)

    log = served.log.read_text()
    assert "start-up 1/7: loading the service" in log
    assert re.search(r"start-up done in [\d.]+ s: ready", log), log[-2000:]
    # Probes stay out of the access log; other requests do not.
    assert '"GET /healthz' not in log and '"GET /readyz' not in log, log[-2000:]
    assert '"GET /v1/collections HTTP/1.1" 503' in log


def _workspace(served: Served) -> tuple[str, dict[str, str]]:
    r = httpx.post(
        f"{served.url}/v1/workspaces",
        json={"name": "acme"},
        headers={"Authorization": f"Bearer {ADMIN_KEY}"},
    )
    assert r.status_code == 201, r.text
    key = r.json()["api_key"]
    return key, {"Authorization": f"Bearer {key}"}


def _set_job(served: Served, job_id: str, **values: Any) -> None:
    engine = create_engine(f"sqlite:///{served.data_dir / 'docadapt.db'}")
    with Session(engine) as session:
        session.execute(update(Job).where(Job.id == job_id).values(**values))
        session.commit()
    engine.dispose()


def test_jobs_watch_into_a_pipe_prints_plain_lines_and_the_final_state(served: Served) -> None:
    key, auth = _workspace(served)
    with httpx.Client(base_url=served.url, headers=auth) as http:
        col = http.post("/v1/collections", json={"name": "watch"}).json()["id"]
        files = [("files", ("f.txt", b"Femp are more dangerous than glon.", "text/plain"))]
        assert http.post(f"/v1/collections/{col}/documents", files=files).is_success
        job_id = http.post(f"/v1/collections/{col}/augmentations", json={}).json()["job"]["id"]

    def progress() -> None:  # what a worker writes as the job runs (no worker runs here)
        time.sleep(4)
        _set_job(
            served,
            job_id,
            status="running",
            progress_done=45,
            progress_total=49,
            eta_seconds=130.0,
            metrics={"eta_note": "rough: global units not timed yet"},
            message="augmenting (global)",
        )
        time.sleep(4)
        _set_job(served, job_id, status="succeeded", progress_done=49, message="loading into vLLM")

    writer = threading.Thread(target=progress)
    writer.start()
    watched = subprocess.run(
        [*CLI, "jobs", "watch", job_id, "--url", served.url],
        env={**served.env, "DOCADAPT_API_KEY": key, "COLUMNS": "80"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    writer.join()
    assert watched.returncode == 0, (watched.stdout, watched.stderr)
    out = watched.stdout
    assert "\x1b" not in out and "\r" not in out, repr(out)  # no terminal control codes
    lines = out.strip().splitlines()
    assert any(re.match(r"\d\d:\d\d:\d\d augmentation \S+ queued", line) for line in lines), out
    running = next(line for line in lines if " running " in line)
    assert "45/49 (92%) eta ~2m10s?" in running and "augmenting (global)" in running, running
    assert lines[-1].startswith(f"{job_id}: succeeded"), out
    assert "loading into vLLM" not in lines[-1]  # an ended job's last message is stale


def test_admin_and_report_from_another_folder_refuse_and_create_nothing(
    served: Served, tmp_path: Path
) -> None:
    env = {k: v for k, v in served.env.items() if k != "DOCADAPT_DATA_DIR"}
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for args in (["admin", "create-workspace", "acme"], ["report", "ev_missing"]):
        r = subprocess.run(
            [*CLI, *args], cwd=elsewhere, env=env, capture_output=True, text=True, timeout=120
        )
        assert r.returncode == 2, (r.stdout, r.stderr)
        assert r.stderr.count("\n") == 1 and "no service data in" in r.stderr, r.stderr
        assert "Traceback" not in r.stderr
        assert list(elsewhere.iterdir()) == [], "a data folder was created by accident"

    made = subprocess.run(
        [*CLI, "admin", "create-workspace", "beta", "--data-dir", str(served.data_dir)],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert made.returncode == 0, made.stderr
    key = re.search(r"api_key: (\S+)", made.stdout).group(1)  # type: ignore[union-attr]
    # The running service accepts the key: the command wrote where the service reads.
    r = httpx.get(f"{served.url}/v1/collections", headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 200, r.text

    # With a key, report asks the service (any folder); its refusal is one clear line.
    via_api = subprocess.run(
        [*CLI, "report", "ev_missing", "--url", served.url, "--api-key", key],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert via_api.returncode == 2 and "HTTP 404" in via_api.stderr, via_api.stderr
    assert list(elsewhere.iterdir()) == []
