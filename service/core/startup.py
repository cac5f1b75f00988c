"""What `docadapt serve` is doing while it starts: the phase, its progress, and an estimate from
the last start on this data dir. `/readyz` shows it, the terminal logs the same phases.

The service listens from its first second; the slow work (converting the base model, starting
vLLM, its warm-up and the isolation check) runs behind it, and every /v1 request answers 503
`starting` until it is done. Each phase's duration is kept in `<data_dir>/startup.json`, so the
next start can say how long a phase is likely to take (a restart reuses the converted model and
vLLM's compile caches, so it is usually much shorter than the first start).
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger("docadapt")

# In start-up order; a deployment without a local vLLM skips the vLLM phases.
PHASES = (
    "loading the service",
    "converting the model",
    "starting vLLM",
    "warm-up",
    "isolation check",
    "loading adapters",
    "starting workers",
)
TIMINGS_FILE = "startup.json"
TICK_S = 30.0  # how often the terminal hears that a long phase is still going


class Startup:
    """Thread-safe start-up state: phases are entered from the event loop and from vLLM's
    supervisor thread, and read by /readyz."""

    def __init__(self, data_dir: Path | None = None) -> None:
        self._lock = threading.Lock()
        self._path = Path(data_dir) / TIMINGS_FILE if data_dir is not None else None
        self._previous = self._read_previous()
        self._durations: dict[str, float] = {}
        self.started = time.monotonic()
        self.phase: str | None = None
        self.phase_started = self.started
        self.detail_source: Callable[[], str | None] | None = None
        self.ready = False
        self.error: str | None = None
        self.total_seconds: float | None = None

    # --- transitions ---------------------------------------------------------------------

    def begin(self, phase: str, detail_source: Callable[[], str | None] | None = None) -> None:
        """Enter `phase` (one of PHASES); the previous phase ends now."""
        with self._lock:
            self._close_phase()
            self.phase, self.phase_started = phase, time.monotonic()
            self.detail_source = detail_source
            step = PHASES.index(phase) + 1
            last = self._previous.get("phases", {}).get(phase)
        hint = f" (took {last:.0f} s on the last start)" if last is not None else ""
        log.info("start-up %d/%d: %s%s", step, len(PHASES), phase, hint)

    def finish(self) -> None:
        """Everything started: ready. The phases' durations are kept for the next start."""
        with self._lock:
            self._close_phase()
            self.phase, self.ready = None, True
            self.total_seconds = time.monotonic() - self.started
            # A phase this deployment skips (no local vLLM) took no time.
            durations = {p: self._durations.get(p, 0.0) for p in PHASES}
        log.info("start-up done in %.1f s: ready", self.total_seconds)
        self._write(durations)

    def fail(self, error: str) -> None:
        with self._lock:
            self.error = error
        log.error("start-up failed during %s: %s", self.phase, error)

    def _close_phase(self) -> None:
        if self.phase is not None:
            self._durations[self.phase] = round(time.monotonic() - self.phase_started, 1)

    # --- reading -------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """The phase and its progress, for /readyz: name, step/steps, elapsed_s, expected_s
        and eta_s (from the last start, null on a first start: unknown), detail."""
        with self._lock:
            now = time.monotonic()
            phase, elapsed = self.phase, now - self.phase_started
            previous = self._previous.get("phases", {})
            done = set(self._durations)
            source = self.detail_source
            error = self.error
        if self.ready:
            return {"name": "ready", "total_s": round(self.total_seconds or 0.0, 1)}
        if phase is None:
            return {"name": "starting", "elapsed_s": round(now - self.started, 1)}
        expected = previous.get(phase)
        remaining = [p for p in PHASES if p != phase and p not in done]
        eta: float | None = None
        if expected is not None and all(p in previous for p in remaining):
            eta = max(expected - elapsed, 0.0) + sum(previous[p] for p in remaining)
        detail = None
        if source is not None:
            try:
                detail = source()
            except Exception:  # noqa: BLE001 - the detail is a courtesy, never a failure
                detail = None
        body: dict[str, Any] = {
            "name": "failed" if error else phase,
            "step": PHASES.index(phase) + 1,
            "steps": len(PHASES),
            "elapsed_s": round(elapsed, 1),
            "expected_s": expected,
            "progress": None if not expected else round(min(elapsed / expected, 0.99), 2),
            "startup_elapsed_s": round(now - self.started, 1),
            "eta_s": None if eta is None else round(eta, 1),
            "estimate": "from the last start"
            if eta is not None
            else "unknown (no earlier start here)",
        }
        if detail:
            body["detail"] = detail[:200]
        if error:
            body["failed_during"], body["error"] = phase, error[-2000:]
        return body

    def summary(self) -> str:
        """One line for the error of a request that came too early."""
        snap = self.snapshot()
        if snap["name"] == "failed":
            return f"the service failed to start during {snap['failed_during']}: see /readyz"
        text = f"the service is starting ({snap['name']}"
        if snap.get("step"):
            text += f", step {snap['step']} of {snap['steps']}"
        if snap.get("eta_s") is not None:
            text += f", about {snap['eta_s']:.0f} s left"
        return text + "); GET /readyz shows the progress"

    async def tick(self) -> None:
        """Log every TICK_S seconds while a phase runs, so the terminal never looks hung."""
        import asyncio

        while not self.ready and self.error is None:
            await asyncio.sleep(TICK_S)
            snap = self.snapshot()
            if self.ready or snap["name"] in ("ready", "failed", "starting"):
                continue
            line = f"start-up: {snap['name']} for {snap['elapsed_s']:.0f} s"
            if snap.get("expected_s"):
                line += f" (took {snap['expected_s']:.0f} s on the last start)"
            if snap.get("detail"):
                line += f"; {snap['detail'][:120]}"
            log.info("%s", line)

    # --- persistence ---------------------------------------------------------------------

    def _read_previous(self) -> dict[str, Any]:
        if self._path is None:
            return {}
        try:
            data = json.loads(self._path.read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _write(self, durations: dict[str, float]) -> None:
        if self._path is None:
            return
        body = {"phases": durations, "total_s": round(self.total_seconds or 0.0, 1)}
        try:
            tmp = self._path.with_suffix(".tmp")
            tmp.write_text(json.dumps(body, indent=1))
            tmp.replace(self._path)
        except OSError as exc:
            log.warning("could not keep start-up timings in %s: %s", self._path, exc)


def last_log_line(path: Path) -> str | None:
    """The last non-empty line of a log file (vLLM's, while it starts)."""
    try:
        with path.open("rb") as fh:
            fh.seek(0, 2)
            fh.seek(max(0, fh.tell() - 4096))
            lines = fh.read().decode("utf-8", errors="replace").splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        if line.strip():
            return _VLLM_LOG_PREFIX.sub("", line.strip())
    return None


# `(EngineCore pid=123) INFO 12-02 15:37:56 [file.py:185] ` before a vLLM log message.
_VLLM_LOG_PREFIX = re.compile(r"^\(\w+ pid=\d+\)\s+\w+\s+[\d-]+ [\d:]+ \[[^\]]*\]\s*")


async def start_service(state: Any, settings: Any, startup: Startup) -> None:
    """Build everything `docadapt serve` runs, phase by phase, and hang the runtime on `state`
    (the app's state) as soon as it exists, so shutdown can stop what was started."""
    import asyncio

    from service.core.model_services import start_model_services
    from service.core.runtime import build_core, start_worker_pool

    if startup.phase is None:
        startup.begin("loading the service")
    runtime = await asyncio.to_thread(build_core, settings, startup.begin)
    state.runtime = runtime
    await start_model_services(runtime, startup)
    startup.begin("starting workers")
    if settings.workers > 0:
        start_worker_pool(runtime, settings.workers)
    startup.finish()


class StartingGate:
    """ASGI middleware: until the start-up is done, every request but the probes and the
    dashboard's page answers 503 `starting` with the phase in its message (the routes may not
    even be loaded yet)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        startup = None
        if scope["type"] == "http" and not is_open(scope.get("path", "")):
            startup = getattr(scope["app"].state, "startup", None)
        if startup is None or startup.ready:
            await self.app(scope, receive, send)
            return
        body = json.dumps({"error": {"code": "starting", "message": startup.summary()}}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 503,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"retry-after", b"5"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


# Answered while the service starts: the probes, and the dashboard's page and files (it shows the
# API's 503 `starting` message until the service is ready).
OPEN_PATHS = frozenset({"/healthz", "/readyz", "/metrics", "/"})


def is_open(path: str) -> bool:
    return path in OPEN_PATHS or path.startswith("/ui/")
