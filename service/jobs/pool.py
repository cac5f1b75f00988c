"""The worker processes `docadapt serve` runs, kept alive.

Each slot runs `python -m service.cli worker` with the service's database, data folder and vLLM.
A supervisor thread polls them; when one exits while the service is up (killed, out of memory,
crashed), it expires the leases of the jobs that worker held, so they resume from their last
checkpoint at once rather than after the lease runs out, and starts the slot again. A slot that
dies more than `max_restarts` times within `restart_window_s` is left down and logged: a crash
loop would otherwise burn the machine.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.orm import Session

from service.jobs import records
from service.jobs.worker import owner_prefix

log = logging.getLogger("docadapt")


@dataclass
class _Slot:
    index: int
    process: subprocess.Popen[bytes] | None = None
    recent_deaths: list[float] = field(default_factory=list)
    given_up: bool = False


class WorkerPool:
    max_restarts = 5
    restart_window_s = 600.0
    poll_s = 1.0

    def __init__(
        self,
        count: int,
        env: dict[str, str],
        log_dir: Path,
        session_factory: Callable[[], Session],
    ) -> None:
        self.env = env
        self.log_dir = log_dir
        self.session_factory = session_factory
        self.slots = [_Slot(i) for i in range(count)]
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @property
    def pids(self) -> list[int]:
        """Process ids of the live workers."""
        with self._lock:
            return [s.process.pid for s in self.slots if s.process and s.process.poll() is None]

    def start(self) -> None:
        with self._lock:
            for slot in self.slots:
                self._spawn(slot)
        self._thread = threading.Thread(target=self._supervise, name="worker-pool", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM every worker (each finishes or hands back its job), then SIGKILL stragglers."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with self._lock:
            live = [s.process for s in self.slots if s.process and s.process.poll() is None]
        for proc in live:
            proc.terminate()
        for proc in live:
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def _spawn(self, slot: _Slot) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_dir / f"worker-{slot.index}.log", "ab") as out:
            slot.process = subprocess.Popen(
                [sys.executable, "-m", "service.cli", "worker"],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a Ctrl-C in the terminal reaches serve, which stops us
            )
        log.info("started worker %d (pid %d)", slot.index, slot.process.pid)

    def _supervise(self) -> None:
        while not self._stopping.wait(self.poll_s):
            with self._lock:
                if self._stopping.is_set():
                    return
                for slot in self.slots:
                    if slot.given_up or slot.process is None:
                        continue
                    code = slot.process.poll()
                    if code is not None:
                        self._on_death(slot, slot.process.pid, code)

    def _on_death(self, slot: _Slot, pid: int, code: int) -> None:
        try:
            with self.session_factory() as session:
                orphaned = records.expire_leases(session, owner_prefix(pid))
        except Exception:  # noqa: BLE001 - the lease then lapses on its own
            log.exception("could not release the jobs of dead worker %d", pid)
            orphaned = []
        now = time.monotonic()
        slot.recent_deaths = [t for t in slot.recent_deaths if now - t < self.restart_window_s]
        slot.recent_deaths.append(now)
        if len(slot.recent_deaths) > self.max_restarts:
            slot.given_up = True
            log.error(
                "worker %d (pid %d) exited with %d, its %d-th death in %.0f s; not restarting it "
                "(see %s)",
                slot.index,
                pid,
                code,
                len(slot.recent_deaths),
                self.restart_window_s,
                self.log_dir / f"worker-{slot.index}.log",
            )
            return
        log.warning(
            "worker %d (pid %d) exited with %d; restarting it%s",
            slot.index,
            pid,
            code,
            f"; its jobs {', '.join(orphaned)} resume from their last checkpoint"
            if orphaned
            else "",
        )
        self._spawn(slot)


def worker_env(
    data_dir: Path,
    database_url: str,
    base_model_path: Path | str | None,
    vllm_url: str | None,
    vllm_api_key: str | None,
    block_size: int | None,
    teacher_vllm_url: str | None = None,
) -> dict[str, str]:
    """The environment of a worker: this service's data, database and vLLM (never its own)."""
    env = dict(os.environ)
    env.pop("DOCADAPT_TEACHER_VLLM_DTYPE", None)  # the service started it; workers start none
    env["DOCADAPT_DATA_DIR"] = str(data_dir)
    # Compiled training kernels and their cost ledger (adapters.train.compiled) outlive restarts.
    env.setdefault("TORCHINDUCTOR_CACHE_DIR", str(data_dir / "cache" / "torchinductor"))
    env.setdefault("TRITON_CACHE_DIR", str(data_dir / "cache" / "triton"))
    env["DOCADAPT_DATABASE_URL"] = database_url
    if base_model_path:
        env["DOCADAPT_BASE_MODEL_PATH"] = str(base_model_path)
    if vllm_url:
        env["DOCADAPT_VLLM_URL"] = vllm_url
        if vllm_api_key:
            env["DOCADAPT_VLLM_API_KEY"] = vllm_api_key
        if block_size:
            env["DOCADAPT_VLLM_BLOCK_SIZE"] = str(block_size)
    if teacher_vllm_url:
        env["DOCADAPT_TEACHER_VLLM_URL"] = teacher_vllm_url
    return env
