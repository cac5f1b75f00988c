"""Keep routine polling out of the INFO log: vLLM's supervisor asks `GET /health` every 5 s and
readiness checks ask `/v1/models` (httpx logs each at INFO), and probes hit `/healthz` and
`/readyz` (uvicorn's access log). A failed poll still shows; so does every other request."""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

# vLLM's endpoints the service polls to see that it lives (adapters/vllm/server.py, client.py).
VLLM_POLL_PATHS = frozenset({"/health", "/v1/models"})
# The service's own probe endpoints.
PROBE_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


class HttpxPollFilter(logging.Filter):
    """Drops httpx's `HTTP Request: GET <vllm>/health "HTTP/1.1 200 OK"` lines."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if not isinstance(args, tuple) or len(args) < 4:
            return True
        method, url, _version, status = args[:4]
        try:
            path = urlsplit(str(url)).path
        except ValueError:
            return True
        return not (str(method) == "GET" and path in VLLM_POLL_PATHS and status == 200)


class AccessProbeFilter(logging.Filter):
    """Drops uvicorn's access lines for /healthz, /readyz and /metrics answered 200 or 503 (a
    probe during start-up is answered 503 by design)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if not isinstance(args, tuple) or len(args) < 5:
            return True
        path, status = str(args[2]).split("?", 1)[0], args[4]
        return not (path in PROBE_PATHS and status in (200, 503))


def quiet_routine_polls() -> None:
    """Install both filters (after uvicorn configured its loggers)."""
    _add_once(logging.getLogger("httpx"), HttpxPollFilter())
    _add_once(logging.getLogger("uvicorn.access"), AccessProbeFilter())


def _add_once(logger: logging.Logger, flt: logging.Filter) -> None:
    if not any(type(f) is type(flt) for f in logger.filters):
        logger.addFilter(flt)
