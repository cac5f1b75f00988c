"""The docadapt REST API seen from Python: the one client that `docadapt jobs`, `docadapt report`,
`docadapt bench` and the `docadapt perf` commands drive a running service with.

    with ServiceClient.connect("http://127.0.0.1:8000", api_key) as api:
        job = api.follow_job(api.post("/v1/collections", json={"name": "x"})["id"])

Every call sends the workspace's key; any answer that is not 2xx, and a service that does not
answer, raise ServiceError with the status and the error envelope's code and message."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import httpx

# A job in one of these states does not change any more.
TERMINAL = ("succeeded", "failed", "cancelled")


class ServiceError(Exception):
    """A request the service refused (`status`, and the error envelope's `code` and `message`),
    or one it did not answer (`status` None, `message` says why)."""

    def __init__(
        self,
        what: str,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        base_url: str = "",
    ) -> None:
        super().__init__(message)
        self.what = what
        self.message = message
        self.status = status
        self.code = code
        self.base_url = base_url

    def __str__(self) -> str:
        if self.status is None:
            return f"{self.what}: the service did not answer ({self.message})"
        detail = f"{self.code}: {self.message}" if self.code else self.message
        return f"{self.what}: HTTP {self.status}: {detail}"

    def brief(self) -> str:
        """One line for a terminal: the status and the service's message, or where the
        service was looked for."""
        if self.status is None:
            return (
                f"cannot reach the service at {self.base_url} ({self.message}); is "
                "`docadapt serve` running there? (--url)"
            )
        return f"HTTP {self.status}: {self.message if self.code else self.message[:200]}"


def bearer(api_key: str) -> dict[str, str]:
    """The header that authenticates a request with `api_key`."""
    return {"Authorization": f"Bearer {api_key}"}


class ServiceClient:
    """The service's REST API over `http` (an httpx.Client with the service's base URL), with a
    workspace's `api_key` (or ready-made `headers`) on every request."""

    def __init__(
        self,
        http: httpx.Client,
        api_key: str | None = None,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.http = http
        self.headers = {**(headers or {}), **(bearer(api_key) if api_key else {})}

    @classmethod
    @contextmanager
    def connect(
        cls, url: str, api_key: str | None = None, *, timeout_s: float = 60
    ) -> Iterator[ServiceClient]:
        """A client of the service at `url` over its own connection, closed on leaving."""
        with httpx.Client(base_url=url, timeout=timeout_s) as http:
            yield cls(http, api_key)

    @property
    def base_url(self) -> str:
        return str(self.http.base_url)

    def request(
        self, method: str, path: str, *, what: str | None = None, **kwargs: Any
    ) -> httpx.Response:
        """The response to a request that succeeded; ServiceError otherwise (`what` names the
        request in its message, "METHOD path" unless given)."""
        what = what or f"{method} {path}"
        headers = {**self.headers, **kwargs.pop("headers", {})}
        try:
            response = self.http.request(method, path, headers=headers, **kwargs)
        except httpx.HTTPError as exc:
            raise ServiceError(what, str(exc), base_url=self.base_url) from exc
        if response.is_success:
            return response
        code, message = error_envelope(response)
        raise ServiceError(
            what, message, status=response.status_code, code=code, base_url=self.base_url
        )

    def call(self, method: str, path: str, *, expect_json: bool = True, **kwargs: Any) -> Any:
        """The JSON body of a successful request (its text without `expect_json`)."""
        response = self.request(method, path, **kwargs)
        return response.json() if expect_json else response.text

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.call("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Any:
        return self.call("POST", path, **kwargs)

    def delete(self, path: str) -> None:
        self.request("DELETE", path)

    def content(self, path: str, params: Mapping[str, str] | None = None) -> bytes:
        """The raw body of a successful GET (a rendered report)."""
        return self.request("GET", path, params=params).content

    # -- resources --

    def create_workspace(self, admin_key: str, name: str) -> tuple[str, str]:
        """A new workspace named `name`, made with the admin key: (its id, its API key)."""
        body = self.post(
            "/v1/workspaces",
            json={"name": name},
            headers=bearer(admin_key),
            what=f"creating workspace {name!r}",
        )
        return body["workspace"]["id"], body["api_key"]

    def examples(self, augmentation_id: str) -> list[dict[str, Any]]:
        """An augmentation's examples (the JSON lines of its export)."""
        text = self.get(f"/v1/augmentations/{augmentation_id}/examples", expect_json=False)
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    def job(self, job_id: str) -> dict[str, Any]:
        return dict(self.get(f"/v1/jobs/{job_id}"))

    def jobs(self, *, status: str | None = None, kind: str | None = None) -> list[dict[str, Any]]:
        """This workspace's jobs, newest first, of `status` and `kind` when given."""
        params = {k: v for k, v in {"status": status, "kind": kind}.items() if v}
        return list(self.get("/v1/jobs", params=params)["data"])

    def cancel_job(self, job_id: str) -> dict[str, Any]:
        return dict(self.post(f"/v1/jobs/{job_id}/cancel"))

    def follow_job(
        self,
        job_id: str,
        on_poll: Callable[[dict[str, Any]], None] | None = None,
        *,
        poll_s: float = 1.0,
        timeout_s: float | None = None,
    ) -> dict[str, Any]:
        """Poll a job until it ends, passing each state to `on_poll`; returns the final job.
        TimeoutError when it has not ended after `timeout_s`."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            job = self.job(job_id)
            if on_poll is not None:
                on_poll(job)
            if job["status"] in TERMINAL:
                return job
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} still {job['status']} after {timeout_s} s")
            time.sleep(poll_s)


def error_envelope(response: httpx.Response) -> tuple[str | None, str]:
    """The (code, message) of the service's error envelope; (None, the body's start) when the
    body is not one."""
    try:
        body = response.json()
    except ValueError:
        return None, response.text[:500]
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return str(error.get("code")), str(error.get("message"))
    return None, json.dumps(body)[:500]


def async_client(
    url: str, api_key: str, *, timeout_s: float, max_connections: int
) -> httpx.AsyncClient:
    """An async connection to the service with the workspace's key, for many requests at once
    (`docadapt perf load`); answers are the caller's to judge."""
    limits = httpx.Limits(
        max_connections=max_connections, max_keepalive_connections=max_connections
    )
    return httpx.AsyncClient(
        base_url=url, headers=bearer(api_key), timeout=timeout_s, limits=limits
    )
