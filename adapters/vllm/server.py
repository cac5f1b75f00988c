"""`LocalVLLMServer`: vLLM's OpenAI server as a supervised child process in its own process
group. It waits until the server answers, warms up the prompt-log-probability path, restarts it
on the same port when it dies (then calls `on_restart`, which reloads the registry's active
adapters), and stops it with all of its workers."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Literal

import httpx

from adapters.vllm.client import VLLMClient
from adapters.vllm.config import VLLMServerConfig

log = logging.getLogger(__name__)

WARMUP_TEXT = "The capital of France is Paris. Water boils at 100 degrees Celsius."


class VLLMStartError(RuntimeError):
    """The local vLLM server did not become ready; the message ends with its log's tail."""


ServerState = Literal["stopped", "starting", "ready", "restarting", "failed"]


class LocalVLLMServer:
    """A vLLM OpenAI server run as a supervised child process.

    `start()` blocks until the server answers (and is warmed up) or raises VLLMStartError with
    the tail of its log. A supervisor thread then watches the child: when it exits (or stops
    answering /health), the whole process group is killed, the server is started again on the
    same port, and `on_restart` is called (a coroutine function is run on the event loop that
    called `astart()`). Every child is spawned from the supervisor thread.
    """

    max_restarts = 5  # within restart_window_s; beyond that the server is marked failed
    restart_window_s = 600.0
    health_interval_s = 5.0
    health_failures_before_restart = 6

    def __init__(
        self,
        config: VLLMServerConfig,
        *,
        on_restart: Callable[[], Awaitable[None] | None] | None = None,
        on_phase: Callable[[str], None] | None = None,
    ) -> None:
        self.config = config
        self.on_restart = on_restart
        # Told "starting vLLM" and "warm-up" as the first start enters them (start-up progress).
        self.on_phase = on_phase
        self.port = config.port or _free_port(config.host)
        self.state: ServerState = "stopped"
        self.last_error: str | None = None
        self.restart_count = 0
        self.start_seconds: float | None = None  # launch to ready, last start
        self.warmup_seconds: float | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._first_start = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._restart_times: list[float] = []

    # --- public ----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://{self.config.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def log_path(self) -> Path:
        return self.config.resolved_log_path

    def client(self, *, timeout: float = 600.0) -> VLLMClient:
        """A new VLLMClient for this server (the caller closes it)."""
        return VLLMClient(self.url, api_key=self.config.api_key, timeout=timeout)

    def start(self) -> None:
        """Start the child and block until it is ready; raise VLLMStartError otherwise."""
        if self._thread is not None and self._thread.is_alive():
            raise RuntimeError("the vLLM server is already running")
        self._stopping.clear()
        self._first_start.clear()
        self._thread = threading.Thread(target=self._supervise, name="vllm-supervisor", daemon=True)
        self._thread.start()
        self._first_start.wait()
        if self.state != "ready":
            self.stop()
            raise VLLMStartError(self.last_error or "vLLM did not start")

    async def astart(self) -> None:
        """`start()` without blocking the event loop; `on_restart` coroutines run on this loop."""
        self._loop = asyncio.get_running_loop()
        await asyncio.to_thread(self.start)

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the supervisor and the child's whole process group (SIGTERM, then SIGKILL)."""
        self._stopping.set()
        self._kill_group(timeout)
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=timeout)
        self._thread = None
        self.state = "stopped"

    def is_alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        """The last lines of the server's log (the current run's, when it has started)."""
        try:
            with self.log_path.open("rb") as fh:
                fh.seek(0, os.SEEK_END)
                fh.seek(max(0, fh.tell() - 64 * 1024))
                text = fh.read().decode("utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    # --- supervisor ------------------------------------------------------------------------

    def _supervise(self) -> None:
        first = True
        while not self._stopping.is_set():
            self.state = "starting" if first else "restarting"
            try:
                self._launch_and_wait()
            except VLLMStartError as exc:
                self.last_error = str(exc)
                self._kill_group(5.0)
                log.error("%s", exc)
                if first or not self._may_restart():
                    self.state = "failed"
                    self._first_start.set()
                    return
                continue
            self.state = "ready"
            if first:
                self._first_start.set()
                first = False
            else:
                self.restart_count += 1
                self._call_on_restart()
            reason = self._watch()
            if self._stopping.is_set():
                return
            self.last_error = reason
            log.error("vLLM stopped unexpectedly (%s); restarting on port %d", reason, self.port)
            self._kill_group(5.0)
            if not self._may_restart():
                self.state = "failed"
                log.error("vLLM restarted too often; giving up. Log tail:\n%s", self.log_tail())
                return

    def _may_restart(self) -> bool:
        now = time.monotonic()
        self._restart_times = [t for t in self._restart_times if now - t < self.restart_window_s]
        self._restart_times.append(now)
        return len(self._restart_times) <= self.max_restarts

    def _phase(self, name: str) -> None:
        if self.on_phase is not None and not self._first_start.is_set():
            try:
                self.on_phase(name)
            except Exception:  # noqa: BLE001 - progress reporting never stops a start
                log.exception("on_phase callback failed")

    def _launch_and_wait(self) -> None:
        cfg = self.config
        self._phase("starting vLLM")
        for sub in ("cache/vllm", "cache/torchinductor", "cache/triton", "cache/huggingface"):
            (Path(cfg.data_dir) / sub).mkdir(parents=True, exist_ok=True)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        cmd = cfg.command(self.port)
        launch = _with_parent_death_signal(cmd)
        started = time.monotonic()
        with self.log_path.open("ab") as log_fh:
            stamp = time.strftime("%Y-%m-%d %H:%M:%S")
            log_fh.write(f"\n=== docadapt {stamp}: starting vLLM: {' '.join(cmd)}\n".encode())
            log_fh.flush()
            self._proc = subprocess.Popen(
                launch,
                stdout=log_fh,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=cfg.child_env(),
                start_new_session=True,  # own process group: stop() kills vLLM's workers too
            )
        log.info(
            "vLLM starting (pid %d, port %d, log %s)", self._proc.pid, self.port, self.log_path
        )
        headers = {"Authorization": f"Bearer {cfg.api_key}"} if cfg.api_key else {}
        deadline = started + cfg.start_timeout_s
        with httpx.Client(base_url=self.url, headers=headers, timeout=10.0) as http:
            while True:
                if self._stopping.is_set():
                    raise VLLMStartError("vLLM start cancelled")
                code = self._proc.poll()
                if code is not None:
                    raise VLLMStartError(
                        f"vLLM exited with code {code} while starting; log {self.log_path}:\n"
                        + self.log_tail()
                    )
                if time.monotonic() > deadline:
                    raise VLLMStartError(
                        f"vLLM did not answer within {cfg.start_timeout_s:.0f} s; "
                        f"log {self.log_path}:\n" + self.log_tail()
                    )
                with contextlib.suppress(httpx.HTTPError):
                    if http.get("/v1/models").status_code == 200:
                        break
                time.sleep(1.0)
            self.start_seconds = time.monotonic() - started
            log.info("vLLM ready after %.1f s", self.start_seconds)
            if cfg.warmup:
                self._phase("warm-up")
                self._warm_up(http)

    def _warm_up(self, http: httpx.Client) -> None:
        # The first prompt-log-probability request compiles C++ (torch inductor, ~16 s): pay it
        # here, not in a user's first scoring request.
        started = time.monotonic()
        payload = {
            "model": self.config.served_model_name,
            "prompt": WARMUP_TEXT,
            "max_tokens": 2,
            "temperature": 0.0,
            "echo": True,
            "logprobs": 0,
            "prompt_logprobs": 0,
        }
        try:
            resp = http.post("/v1/completions", json=payload, timeout=600.0)
            resp.raise_for_status()
        except httpx.HTTPError as exc:
            raise VLLMStartError(
                f"vLLM failed its warm-up request: {exc!r}; log {self.log_path}:\n"
                + self.log_tail()
            ) from exc
        self.warmup_seconds = time.monotonic() - started
        log.info("vLLM warm-up done in %.1f s", self.warmup_seconds)

    def _watch(self) -> str:
        """Block while the child is healthy; return why it is not."""
        assert self._proc is not None
        failures = 0
        next_health = time.monotonic() + self.health_interval_s
        headers = {"Authorization": f"Bearer {self.config.api_key}"} if self.config.api_key else {}
        with httpx.Client(base_url=self.url, headers=headers, timeout=10.0) as http:
            while not self._stopping.wait(0.5):
                code = self._proc.poll()
                if code is not None:
                    return f"the process exited with code {code}"
                if time.monotonic() < next_health:
                    continue
                next_health = time.monotonic() + self.health_interval_s
                try:
                    ok = http.get("/health").status_code == 200
                except httpx.HTTPError:
                    ok = False
                failures = 0 if ok else failures + 1
                if failures >= self.health_failures_before_restart:
                    return f"/health failed {failures} times in a row"
        return "stopped"

    def _call_on_restart(self) -> None:
        if self.on_restart is None:
            return
        try:
            result = self.on_restart()
            if inspect.isawaitable(result):
                loop = self._loop
                if loop is not None and loop.is_running():
                    asyncio.run_coroutine_threadsafe(_as_coroutine(result), loop).result()
                else:
                    asyncio.run(_as_coroutine(result))
        except Exception:
            log.exception("on_restart callback failed after the vLLM restart")

    def _kill_group(self, timeout: float) -> None:
        proc = self._proc
        if proc is None:
            return
        try:
            pgid = os.getpgid(proc.pid)
        except ProcessLookupError:
            pgid = proc.pid  # the leader is gone; its group id is its pid
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=timeout)
        # vLLM's engine and worker processes share the group; kill whatever is left of it.
        deadline = time.monotonic() + timeout
        while _group_alive(pgid) and time.monotonic() < deadline:
            time.sleep(0.2)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5.0)


async def _as_coroutine(awaitable: Awaitable[None]) -> None:
    await awaitable


# Run in the child before it becomes vLLM: ask Linux to SIGTERM it when the thread that started
# it (the supervisor) dies, so a killed service never leaves a 4 GB vLLM behind; then exec vLLM.
_PDEATHSIG_LAUNCHER = (
    "import ctypes, os, signal, sys\n"
    "ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG\n"
    "if os.getppid() != int(sys.argv[1]):\n"
    "    sys.exit('docadapt: the service exited before vLLM started')\n"
    "os.execv(sys.argv[2], sys.argv[2:])\n"
)


def _with_parent_death_signal(cmd: list[str]) -> list[str]:
    if not sys.platform.startswith("linux"):
        return cmd
    return [cmd[0], "-c", _PDEATHSIG_LAUNCHER, str(os.getpid()), *cmd]


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])
