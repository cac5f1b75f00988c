"""Fixtures that run the real service against the session's vLLM: the app (TestClient) and real
`docadapt worker` processes that share its database, data dir and vLLM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.core.config import Settings
from service.main import create_app
from tests.conftest import ADMIN_KEY


@dataclass
class LiveService:
    client: TestClient
    settings: Settings

    def new_workspace(self, name: str = "acme") -> dict[str, str]:
        r = self.client.post(
            "/v1/workspaces",
            json={"name": name},
            headers={"Authorization": f"Bearer {ADMIN_KEY}"},
        )
        assert r.status_code == 201, r.text
        return {"Authorization": f"Bearer {r.json()['api_key']}"}

    def wait_job(
        self,
        headers: dict[str, str],
        job_id: str,
        *,
        timeout: float = 600,
        until: Callable[[dict[str, Any]], bool] | None = None,
    ) -> dict[str, Any]:
        """Poll a job until it ends (or `until(job)` holds); fails the test on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            job = self.client.get(f"/v1/jobs/{job_id}", headers=headers).json()
            if until is not None and until(job):
                return job
            if until is None and job["status"] in ("succeeded", "failed", "cancelled"):
                return job
            assert time.monotonic() < deadline, f"job {job_id} still {job['status']}: {job}"
            time.sleep(0.5)


class WorkerProcess:
    """A real `docadapt worker` in its own process group."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.env = env
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> WorkerProcess:
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the child
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "service.cli", "worker"],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    def kill(self) -> None:
        """SIGKILL the worker: no clean-up, as in a crash."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=30)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture(scope="session")
def vllm_server(session_dir: Path, base_model_dir: Path) -> Iterator[Any]:
    """One real vLLM server for the whole session, on a free port, data under the session dir.
    Here (a plugin of the root conftest) rather than in tests/e2e/conftest.py, so tests/e2e and
    tests/browser share the one server."""
    from adapters.vllm.config import VLLMServerConfig
    from adapters.vllm.server import LocalVLLMServer

    config = VLLMServerConfig(
        model_dir=base_model_dir,
        data_dir=session_dir / "vllm-data",
        max_lora_rank=16,
        max_loras=4,
        max_model_len=8192,
        kv_cache_gb=2,
        start_timeout_s=900,
    )
    server = LocalVLLMServer(config)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def live_service(make_settings: Callable[..., Settings], vllm_server: Any) -> Iterator[LiveService]:
    settings = make_settings(
        vllm_url=vllm_server.url,
        vllm_api_key=vllm_server.config.api_key,
        vllm_block_size=vllm_server.config.resolved_block_size,
        vllm_isolation_check=False,  # tests/e2e/test_isolation.py covers it; start stays quick
        job_lease_s=6.0,
    )
    with TestClient(create_app(settings)) as client:
        yield LiveService(client, settings)


@pytest.fixture
def start_worker(
    live_service: LiveService, tmp_path: Path
) -> Iterator[Callable[[], WorkerProcess]]:
    """`start_worker()` starts a worker for the live service; all are stopped at teardown."""
    s = live_service.settings
    env = {
        **os.environ,
        "DOCADAPT_DATA_DIR": str(s.data_dir),
        "DOCADAPT_DATABASE_URL": s.sqlalchemy_url,
        "DOCADAPT_BASE_MODEL_PATH": str(s.base_model_path),
        "DOCADAPT_VLLM_URL": str(s.vllm_url),
        "DOCADAPT_VLLM_API_KEY": s.vllm_api_key.get_secret_value() if s.vllm_api_key else "",
        "DOCADAPT_ADMIN_KEY": ADMIN_KEY,
        "DOCADAPT_JOB_LEASE_S": str(s.job_lease_s),
        "DOCADAPT_VLLM_BLOCK_SIZE": str(s.vllm_block_size),
    }
    started: list[WorkerProcess] = []

    def start() -> WorkerProcess:
        w = WorkerProcess(env, tmp_path / f"worker-{len(started)}.log").start()
        started.append(w)
        return w

    yield start
    for w in started:
        w.stop()
