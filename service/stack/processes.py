"""The deployment's topology on one machine, each part its own process: PostgreSQL (pgserver's
binaries), N vLLM replicas (each a supervised child that is started again when it dies, as a
container restart policy would), the API (`docadapt serve` with the replicas' URLs, no vLLM and
no workers of its own) and M `docadapt worker` processes. `Stack.start()` waits until all of them
serve; `Stack.stop()` ends every process it started."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from adapters.vllm.config import VLLMServerConfig, cpu_share, is_vllm_cpu_build
from adapters.vllm.server import LocalVLLMServer


@dataclass
class StackConfig:
    root: Path  # everything lives under it: database, data dir, logs
    replicas: int = 2
    workers: int = 2
    api_port: int = 0  # 0: a free port
    base_model_path: Path | None = None  # default: the embedded model, converted once
    kv_cache_gb: int = 2
    isolation_check: bool = True
    keeper_interval_s: float = 3.0
    job_lease_s: float = 10.0
    start_timeout_s: float = 900.0
    admin_key: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    env: dict[str, str] = field(default_factory=dict)  # extra environment for API and workers


class Proc:
    """One docadapt process (API or worker) in its own process group, logging to a file."""

    def __init__(self, name: str, cmd: list[str], env: dict[str, str], log_path: Path) -> None:
        self.name, self.cmd, self.env, self.log_path = name, cmd, env, log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Proc:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                self.cmd, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        return self

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL the whole process group, as a crash."""
        if self.alive():
            assert self.proc is not None
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self, timeout: float = 60.0) -> None:
        if not self.alive():
            return
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""


class Stack:
    """PostgreSQL, vLLM replicas, the API and workers as separate processes (see the module)."""

    def __init__(self, config: StackConfig) -> None:
        self.config = config
        self.root = config.root
        self.logs = self.root / "logs"
        self.data_dir = self.root / "data"
        self.postgres: Any = None
        self._pg_dir: Path | None = None
        self.database_url = ""
        self.model_dir: Path | None = None
        self.vllm_key = secrets.token_urlsafe(24)
        self.replicas: list[LocalVLLMServer] = []
        self.api: Proc | None = None
        self.extra_apis: list[Proc] = []
        self.workers: list[Proc] = []
        self.api_url = ""
        self.timings: dict[str, float] = {}
        self.extras: dict[str, Any] = {}

    # --- start and stop -------------------------------------------------------------------

    def start(self) -> Stack:
        self.logs.mkdir(parents=True, exist_ok=True)
        try:
            t0 = time.monotonic()
            self._start_postgres()
            self._materialize_model()
            self._start_replicas()
            self.timings["replicas_ready_s"] = round(time.monotonic() - t0, 1)
            self._start_api()
            for _ in range(self.config.workers):
                self.start_worker()
            self.timings["stack_ready_s"] = round(time.monotonic() - t0, 1)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop every process this stack started (workers, API, replicas, PostgreSQL)."""
        for proc in [*self.workers, *self.extra_apis, *([self.api] if self.api else [])]:
            proc.stop()
        threads = [threading.Thread(target=r.stop) for r in self.replicas]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if self.postgres is not None:
            self.postgres.cleanup()
            self.postgres = None
        if self._pg_dir is not None:
            shutil.rmtree(self._pg_dir, ignore_errors=True)
            self._pg_dir = None

    def __enter__(self) -> Stack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _start_postgres(self) -> None:
        import pgserver

        # Its own folder under the temp dir: run as root, pgserver runs PostgreSQL as another
        # user, who loses access when a parent folder is made private (pytest does that to its
        # base temp folder whenever another pytest session starts).
        self._pg_dir = Path(tempfile.mkdtemp(prefix="docadapt-stack-pg-"))
        self.postgres = pgserver.get_server(self._pg_dir / "pgdata", cleanup_mode="stop")
        uri = self.postgres.get_uri()
        self.database_url = uri.replace("postgresql://", "postgresql+psycopg://", 1)

    def _materialize_model(self) -> None:
        """Convert the base model once, before any process would race to do it."""
        from adapters.base_model import materialize_base_model

        self.model_dir = materialize_base_model(self.data_dir, self.config.base_model_path)

    def _start_replicas(self) -> None:
        count = self.config.replicas
        for index in range(count):
            env = {}
            share = cpu_share(index, count)
            if share is not None and is_vllm_cpu_build():
                env["VLLM_CPU_OMP_THREADS_BIND"] = share
            config = VLLMServerConfig(
                model_dir=self.model_dir or Path(),
                data_dir=self.data_dir,
                kv_cache_gb=self.config.kv_cache_gb,
                start_timeout_s=self.config.start_timeout_s,
                api_key=self.vllm_key,
                log_path=self.logs / f"vllm-{index}.log",
                env=env,
            )
            self.replicas.append(LocalVLLMServer(config))
        errors: list[BaseException] = []

        def start(server: LocalVLLMServer) -> None:
            try:
                server.start()
            except BaseException as exc:  # noqa: BLE001 - raised below, after all threads
                errors.append(exc)

        threads = [threading.Thread(target=start, args=(r,)) for r in self.replicas]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise errors[0]

    def env(self) -> dict[str, str]:
        """The environment of the API and the workers: one database, data dir and replica set."""
        block = self.replicas[0].config.resolved_block_size if self.replicas else None
        env = {
            **os.environ,
            "DOCADAPT_DATA_DIR": str(self.data_dir),
            "DOCADAPT_DATABASE_URL": self.database_url,
            "DOCADAPT_ADMIN_KEY": self.config.admin_key,
            "DOCADAPT_BASE_MODEL_PATH": str(self.model_dir),
            "DOCADAPT_VLLM_URL": ",".join(r.url for r in self.replicas),
            "DOCADAPT_VLLM_API_KEY": self.vllm_key,
            "DOCADAPT_START_VLLM": "false",
            "DOCADAPT_WORKERS": "0",
            "DOCADAPT_VLLM_ISOLATION_CHECK": str(self.config.isolation_check).lower(),
            "DOCADAPT_VLLM_KEEPER_INTERVAL_S": str(self.config.keeper_interval_s),
            "DOCADAPT_JOB_LEASE_S": str(self.config.job_lease_s),
            **({"DOCADAPT_VLLM_BLOCK_SIZE": str(block)} if block else {}),
        }
        env.update(self.config.env)
        return env

    def _start_api(self) -> None:
        self.api, self.api_url = self.start_api()

    def start_api(self, replicas: list[int] | None = None, name: str = "api") -> tuple[Proc, str]:
        """Start an API process (on `replicas`, by index; default all) and wait until /readyz
        answers 200; returns it and its URL. A second API shares the database and data dir."""
        port = self.config.api_port if name == "api" and self.config.api_port else _free_port()
        url = f"http://127.0.0.1:{port}"
        env = self.env()
        if replicas is not None:
            env["DOCADAPT_VLLM_URL"] = ",".join(self.replicas[i].url for i in replicas)
        cmd = [sys.executable, "-m", "service.cli", "serve", "--port", str(port)]
        api = Proc(name, cmd, env, self.logs / f"{name}.log").start()
        if name != "api":
            self.extra_apis.append(api)
        deadline = time.monotonic() + self.config.start_timeout_s
        with httpx.Client(base_url=url, timeout=10) as http:
            while True:
                if not api.alive():
                    raise RuntimeError(f"{name} exited while starting:\n{api.log_tail()}")
                try:
                    if http.get("/readyz").status_code == 200:
                        return api, url
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{name} did not get ready:\n{api.log_tail()}")
                time.sleep(1)

    def start_worker(self) -> Proc:
        cmd = [sys.executable, "-m", "service.cli", "worker"]
        log = self.logs / f"worker-{len(self.workers)}.log"
        worker = Proc(f"worker-{len(self.workers)}", cmd, self.env(), log).start()
        self.workers.append(worker)
        return worker

    # --- what the walk needs ----------------------------------------------------------------

    def kill_replica(self, index: int) -> int:
        """SIGKILL a replica's whole process group (its supervisor starts it again); its pid."""
        server = self.replicas[index]
        pid = server.pid
        assert pid is not None
        os.killpg(os.getpgid(pid), signal.SIGKILL)
        return pid

    def worker_holding(self, job_id: str) -> Proc | None:
        """The worker process that holds `job_id`'s lease now (by the pid in its lease owner)."""
        from sqlalchemy import create_engine, select

        from service.db.tables import Job

        engine = create_engine(self.database_url)
        try:
            with engine.connect() as conn:
                owner = conn.execute(select(Job.lease_owner).where(Job.id == job_id)).scalar()
        finally:
            engine.dispose()
        if not owner:
            return None
        pid = int(owner.split(":")[-2])  # "host:pid:suffix"
        return next((w for w in self.workers if w.pid == pid), None)


def wait_until(predicate: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(1)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
