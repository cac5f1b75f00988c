"""A real S3-compatible server for the storage tests: moto's standalone server
(`python -m moto.server`) in its own process on a free port, spoken to over HTTP by boto3 exactly
as a bucket on MinIO or AWS would be. One server serves the session; each test gets a new bucket."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest


@dataclass
class S3Server:
    endpoint_url: str
    process: subprocess.Popen[bytes]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_s3_server(log: Path, **env: str) -> S3Server:
    """Start moto's server on a free port and wait until it answers (another process may take
    the port between the choice and the bind: then try another)."""
    for _ in range(3):
        port = free_port()
        with log.open("ab") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                env={**os.environ, **env},
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        server = S3Server(f"http://127.0.0.1:{port}", proc)
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            try:
                httpx.get(f"{server.endpoint_url}/moto-api/", timeout=2)
                return server
            except httpx.TransportError:
                time.sleep(0.1)
        server.stop()
    raise RuntimeError(f"moto's S3 server did not start; its log: {log.read_text()[-2000:]}")


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    server = start_s3_server(tmp_path_factory.mktemp("s3") / "moto.log")
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def aws_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Credentials as the standard AWS variables give them; never the host's ~/.aws."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "docadapt-test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "docadapt-test-secret")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)


def s3_client(endpoint_url: str) -> Any:
    import boto3

    return boto3.session.Session().client("s3", endpoint_url=endpoint_url)


@pytest.fixture
def bucket(s3_server: S3Server) -> str:
    """A new, empty bucket on the session's server."""
    name = f"docadapt-{uuid.uuid4().hex[:12]}"
    s3_client(s3_server.endpoint_url).create_bucket(Bucket=name)
    return name


def bucket_keys(endpoint_url: str, bucket: str, prefix: str = "") -> list[str]:
    """Every object's key in the bucket (below `prefix`), as the server lists them."""
    pages = s3_client(endpoint_url).get_paginator("list_objects_v2")
    return sorted(
        item["Key"]
        for page in pages.paginate(Bucket=bucket, Prefix=prefix)
        for item in page.get("Contents", [])
    )
