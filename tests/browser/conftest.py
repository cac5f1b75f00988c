"""The real service for the browser: the app as `docadapt serve` runs it (uvicorn on a loopback
port, its own worker pool), on the session's one vLLM (`vllm_server`, shared with tests/e2e)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import uvicorn

from service.core.config import Settings
from service.main import create_app


@pytest.fixture
def dashboard_url(make_settings: Callable[..., Settings], vllm_server: Any) -> Iterator[str]:
    settings = make_settings(
        vllm_url=vllm_server.url,
        vllm_api_key=vllm_server.config.api_key,
        vllm_block_size=vllm_server.config.resolved_block_size,
        vllm_isolation_check=False,  # tests/e2e/test_isolation.py covers it
        workers=1,
    )
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 300
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise AssertionError("the service did not start")
        time.sleep(0.2)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=60)
