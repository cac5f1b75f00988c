"""Requests over a `ReplicaSet`: `RoutingTransport` (an httpx transport that picks a replica per
request and retries on the next one when a replica is unreachable) and `ReplicaClient`, the
`VLLMClient` that uses it. `connect(spec)` gives the right client for one URL or several."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import httpx

from adapters.vllm.client import VLLMClient, VLLMUnavailable
from adapters.vllm.config import BASE_MODEL_NAME
from adapters.vllm.replicas import (
    PLACEHOLDER_URL,
    Replica,
    ReplicaSet,
    Resolver,
    inspect_body,
    split_urls,
)


class RoutingTransport(httpx.AsyncBaseTransport):
    """Sends each request to the replica `ReplicaSet.choose` picks. Connection failures, and a
    non-streaming request whose replica dropped it, go to the next replica (generations and
    scoring have no side effects, so sending one again is safe); the replica is marked down."""

    def __init__(self, replicas: ReplicaSet, *, max_connections: int = 64) -> None:
        self.replicas = replicas
        self._inner = httpx.AsyncHTTPTransport(
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=32)
        )

    async def aclose(self) -> None:
        await self._inner.aclose()
        await self.replicas.aclose()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await self.replicas.maybe_refresh()
        content = await request.aread()
        model, stream, affinity = inspect_body(content)
        tried: list[Replica] = []
        last: Exception | None = None
        while True:
            await self.replicas.ensure_loaded(model)  # again after a replica went down
            replica = self.replicas.choose(model, affinity, exclude=tried)
            if replica is None:
                break
            tried.append(replica)
            try:
                return await self._send(replica, request, content, stream)
            except httpx.TransportError as exc:
                self.replicas.mark_down(replica, repr(exc))
                last = exc
        if last is not None:
            raise last
        raise httpx.ConnectError("no vLLM replica is healthy", request=request)

    async def _send(
        self, replica: Replica, request: httpx.Request, content: bytes, stream: bool
    ) -> httpx.Response:
        url = httpx.URL(replica.url + request.url.raw_path.decode("ascii"))
        headers = [(k, v) for k, v in request.headers.multi_items() if k.lower() != "host"]
        forwarded = httpx.Request(
            request.method, url, headers=headers, content=content, extensions=request.extensions
        )
        replica.in_flight += 1
        replica.sent += 1
        try:
            resp = await self._inner.handle_async_request(forwarded)
            if stream:
                body = _CountedStream(resp, replica, self.replicas)
                return httpx.Response(resp.status_code, headers=resp.headers, stream=body)
            try:
                raw = b"".join([chunk async for chunk in resp.aiter_raw()])
            finally:
                await resp.aclose()
        except BaseException:
            replica.in_flight -= 1
            raise
        replica.in_flight -= 1
        return httpx.Response(resp.status_code, headers=resp.headers, stream=httpx.ByteStream(raw))


class _CountedStream(httpx.AsyncByteStream):
    """A streamed body that keeps its replica's in-flight count until it is closed."""

    def __init__(self, resp: httpx.Response, replica: Replica, replicas: ReplicaSet) -> None:
        self._resp = resp
        self._replica = replica
        self._replicas = replicas
        self._closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._resp.aiter_raw():
                yield chunk
        except httpx.TransportError as exc:
            self._replicas.mark_down(self._replica, repr(exc))
            raise

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            self._replica.in_flight -= 1
            await self._resp.aclose()


class ReplicaClient(VLLMClient):
    """A `VLLMClient` over several vLLM replicas (see `ReplicaSet`)."""

    def __init__(
        self,
        urls: Sequence[str] | str,
        *,
        api_key: str | None = None,
        timeout: float = 600.0,
        base_model: str = BASE_MODEL_NAME,
        copies: int | None = None,
        resolver: Resolver | None = None,
        refresh_s: float = 5.0,
    ) -> None:
        self.replicas = ReplicaSet(
            split_urls(urls),
            api_key=api_key,
            base_model=base_model,
            copies=copies,
            resolver=resolver,
            refresh_s=refresh_s,
            timeout=timeout,
        )
        self._transport = RoutingTransport(self.replicas)
        super().__init__(
            PLACEHOLDER_URL, api_key=api_key, timeout=timeout, transport=self._transport
        )

    @property
    def urls(self) -> list[str]:
        return [r.url for r in self.replicas.replicas]

    async def is_ready(self) -> bool:
        """At least one replica serves (the others are skipped until they answer again)."""
        await self.replicas.refresh()
        return bool(self.replicas.healthy)

    async def models(self) -> list[str]:
        """The models every healthy replica serves (so a loader loads what any one lacks)."""
        await self.replicas.refresh()
        healthy = self.replicas.healthy
        if not healthy:
            raise VLLMUnavailable("no vLLM replica is reachable")
        common = set.intersection(*(r.loaded for r in healthy))
        return [self.replicas.base_model, *sorted(common)]

    async def load_lora_adapter(self, name: str, path: str) -> None:
        await self.replicas.load_adapter(name, Path(path))

    async def unload_lora_adapter(self, name: str) -> None:
        await self.replicas.unload_adapter(name)


def connect(spec: str | Sequence[str], *, api_key: str | None = None, **kwargs: Any) -> VLLMClient:
    """A `VLLMClient` for one URL, a `ReplicaClient` for several (comma-separated or a list)."""
    urls = split_urls(spec)
    if not urls:
        raise ValueError("no vLLM URL given")
    if len(urls) == 1 and not kwargs.get("resolver"):
        timeout = kwargs.get("timeout", 600.0)
        return VLLMClient(urls[0], api_key=api_key, timeout=timeout)
    return ReplicaClient(urls, api_key=api_key, **kwargs)
