"""Several vLLM servers as one serving tier.

`ReplicaSet` knows each replica's health, requests in flight and the adapters it has loaded (what
its /v1/models lists). `RoutingTransport` is an httpx transport that sends each request to one
replica: a healthy one that has the requested model, the least busy of them; a request with a long
prompt prefers the replica its prefix hashes to (rendezvous hashing), so repeated `icl:` contexts
and scoring behind one context find vLLM's prefix cache warm, unless that replica is busier than
the least busy by more than `affinity_slack`. A replica that refuses the connection or drops a
non-streaming request is marked down and the request goes to the next one; a replica comes back
when its /v1/models answers again (probed at most every `refresh_s` seconds).

`ReplicaClient` is a `VLLMClient` over that transport, so everything that takes a `VLLMClient`
(query layer, teacher, scoring, adapter loader, checks) works on a replica set unchanged. Loading
an adapter goes to every healthy replica that lacks it (or to `copies` of them; the others load it
on demand through `resolver` when a request names it), and `models()` lists only the models every
healthy replica serves, so a keeper that loads "what vLLM lacks" fills a restarted replica.

`connect(spec)` builds a `VLLMClient` for one URL and a `ReplicaClient` for several
(comma-separated).
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adapters.vllm.client import VLLMClient, VLLMRequestError, VLLMUnavailable
from adapters.vllm.config import BASE_MODEL_NAME

log = logging.getLogger(__name__)

PLACEHOLDER_URL = "http://vllm-replicas"
AFFINITY_MIN_CHARS = 1024  # shorter prompts gain little from a warm prefix cache
AFFINITY_PREFIX_CHARS = 4096  # the part of a long prompt that picks its replica
AFFINITY_PREFIX_TOKENS = 1024
PROBE_TIMEOUT_S = 10.0  # a replica that does not list its models in this time counts as down

Resolver = Callable[[str], Awaitable[Path | str | None]]


def split_urls(spec: str | Sequence[str]) -> list[str]:
    """The replica URLs of `spec`: a comma-separated string or a list; order kept, no repeats."""
    parts = spec.split(",") if isinstance(spec, str) else list(spec)
    urls: list[str] = []
    for part in parts:
        url = part.strip().rstrip("/")
        if url and url not in urls:
            urls.append(url)
    return urls


@dataclass
class Replica:
    """One vLLM server of the set, as the router last saw it."""

    url: str
    client: VLLMClient
    healthy: bool = True  # until a probe or a request says otherwise
    in_flight: int = 0
    loaded: set[str] = field(default_factory=set)  # what its /v1/models listed, and loads since
    sent: int = 0  # requests routed here
    last_error: str | None = None

    def serves(self, model: str | None, base_model: str) -> bool:
        return model is None or model == base_model or model in self.loaded

    def info(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "healthy": self.healthy,
            "in_flight": self.in_flight,
            "adapters": sorted(self.loaded),
            "sent": self.sent,
            "last_error": self.last_error,
        }


class ReplicaSet:
    """The replicas, their health and load, and where each request goes."""

    def __init__(
        self,
        urls: Sequence[str],
        *,
        api_key: str | None = None,
        base_model: str = BASE_MODEL_NAME,
        copies: int | None = None,
        resolver: Resolver | None = None,
        refresh_s: float = 5.0,
        affinity_slack: int = 2,
        timeout: float = 600.0,
    ) -> None:
        if not urls:
            raise ValueError("a replica set needs at least one vLLM URL")
        self.replicas = [
            Replica(u, VLLMClient(u, api_key=api_key, timeout=timeout)) for u in split_urls(urls)
        ]
        self.base_model = base_model
        self.copies = copies
        self.resolver = resolver
        self.refresh_s = refresh_s
        self.affinity_slack = affinity_slack
        self._refreshed_at = float("-inf")
        self._refresh_lock: asyncio.Lock | None = None
        self._load_locks: dict[str, asyncio.Lock] = {}
        self._turn = itertools.count()

    async def aclose(self) -> None:
        for replica in self.replicas:
            await replica.client.aclose()

    # --- health ---------------------------------------------------------------------------

    async def refresh(self) -> list[Replica]:
        """Ask every replica for its models; returns the replicas that came back up."""
        results = await asyncio.gather(*(self._probe(r) for r in self.replicas))
        self._refreshed_at = time.monotonic()
        return [r for r, came_back in zip(self.replicas, results, strict=True) if came_back]

    async def _probe(self, replica: Replica) -> bool:
        was = replica.healthy
        try:
            resp = await replica.client.request("GET", "/v1/models", timeout=PROBE_TIMEOUT_S)
            models = [m["id"] for m in resp.json().get("data", [])]
        except (VLLMUnavailable, VLLMRequestError, ValueError) as exc:
            self.mark_down(replica, str(exc))
            return False
        replica.loaded = {m for m in models if m != self.base_model}
        replica.healthy = True
        return not was

    async def maybe_refresh(self) -> None:
        """Refresh when the last probe is older than `refresh_s`; one probe at a time, and a
        request that finds one running goes on with what the router knows."""
        if time.monotonic() - self._refreshed_at < self.refresh_s:
            return
        if self._refresh_lock is None:
            self._refresh_lock = asyncio.Lock()
        if self._refresh_lock.locked() and self._refreshed_at > float("-inf"):
            return
        async with self._refresh_lock:
            if time.monotonic() - self._refreshed_at >= self.refresh_s:
                await self.refresh()

    def mark_down(self, replica: Replica, reason: str) -> None:
        if replica.healthy:
            log.warning("vLLM replica %s is down: %s", replica.url, reason[:300])
        replica.healthy = False
        replica.last_error = reason[:500]

    @property
    def healthy(self) -> list[Replica]:
        return [r for r in self.replicas if r.healthy]

    def info(self) -> list[dict[str, Any]]:
        return [r.info() for r in self.replicas]

    # --- routing --------------------------------------------------------------------------

    def choose(
        self, model: str | None, affinity: str | None = None, exclude: Sequence[Replica] = ()
    ) -> Replica | None:
        """The replica for a request: healthy, serving `model`, least busy; a long prefix's
        preferred replica unless it is busier than the least busy by more than the slack.
        With no healthy replica serving `model`, any healthy one (vLLM then answers 404)."""
        healthy = [r for r in self.replicas if r.healthy and r not in exclude]
        if not healthy:
            return None
        pool = [r for r in healthy if r.serves(model, self.base_model)] or healthy
        least = min(r.in_flight for r in pool)
        if affinity is not None and len(pool) > 1:
            preferred = max(pool, key=lambda r: _rendezvous(affinity, r.url))
            if preferred.in_flight <= least + self.affinity_slack:
                return preferred
        idle = [r for r in pool if r.in_flight == least]
        return idle[next(self._turn) % len(idle)]

    async def ensure_loaded(self, model: str | None) -> None:
        """Load `model` on demand (through the resolver) when no healthy replica has it."""
        if model is None or model == self.base_model or self.resolver is None:
            return
        if any(r.serves(model, self.base_model) for r in self.healthy):
            return
        async with self._load_lock(model):  # one query of many asks the resolver
            if any(r.serves(model, self.base_model) for r in self.healthy):
                return
            path = await self.resolver(model)
            if path is not None:
                await self._load(model, path, 1)

    # --- adapters -------------------------------------------------------------------------

    async def load_adapter(self, name: str, path: Path | str, *, copies: int | None = None) -> int:
        """Load `name` into the healthy replicas that lack it (at most `copies` holders, fewest
        adapters first); returns how many replicas hold it. A replica that cannot be reached is
        marked down and skipped (the keeper fills it when it is back); a refusal raises."""
        async with self._load_lock(name):
            return await self._load(name, path, copies if copies is not None else self.copies)

    def _load_lock(self, name: str) -> asyncio.Lock:
        return self._load_locks.setdefault(name, asyncio.Lock())

    async def _load(self, name: str, path: Path | str, want: int | None) -> int:
        holders = [r for r in self.healthy if name in r.loaded]
        missing = sorted(
            (r for r in self.healthy if name not in r.loaded), key=lambda r: len(r.loaded)
        )
        if want is not None:
            missing = missing[: max(0, want - len(holders))]
        results = await asyncio.gather(
            *(self._load_one(r, name, str(path)) for r in missing), return_exceptions=True
        )
        for result in results:
            if isinstance(result, BaseException) and not isinstance(result, VLLMUnavailable):
                raise result
        held = len([r for r in self.replicas if r.healthy and name in r.loaded])
        if held == 0:
            raise VLLMUnavailable(f"no vLLM replica could load adapter {name!r}")
        return held

    async def _load_one(self, replica: Replica, name: str, path: str) -> None:
        try:
            await replica.client.load_lora_adapter(name, path)
        except VLLMRequestError as exc:
            if "has already been loaded" not in exc.detail:
                raise
        except VLLMUnavailable as exc:
            if not await replica.client.is_ready():
                self.mark_down(replica, str(exc))
            raise
        replica.loaded.add(name)

    async def unload_adapter(self, name: str) -> int:
        """Unload `name` from every healthy replica; returns how many had it. A 404 is fine."""
        unloaded = 0
        for replica in self.healthy:
            try:
                await replica.client.unload_lora_adapter(name)
                unloaded += 1
            except VLLMRequestError as exc:
                if exc.status_code != 404:
                    raise
            except VLLMUnavailable as exc:
                self.mark_down(replica, str(exc))
            replica.loaded.discard(name)
        if unloaded == 0:
            raise VLLMRequestError(404, f"no replica had adapter {name!r}")
        return unloaded


def _rendezvous(key: str, url: str) -> int:
    return int.from_bytes(hashlib.blake2b(f"{key}|{url}".encode(), digest_size=8).digest(), "big")


def inspect_body(content: bytes) -> tuple[str | None, bool, str | None]:
    """A JSON request's model, whether it streams, and its affinity key (None: short prompt)."""
    if not content:
        return None, False, None
    try:
        body = json.loads(content)
    except ValueError:
        return None, False, None
    if not isinstance(body, dict):
        return None, False, None
    model = body.get("model") if isinstance(body.get("model"), str) else None
    return model, bool(body.get("stream")), _affinity(model, body)


def _affinity(model: str | None, body: dict[str, Any]) -> str | None:
    prompt = body.get("prompt")
    messages = body.get("messages")
    if isinstance(prompt, list) and prompt and isinstance(prompt[0], int):
        if len(prompt) * 4 < AFFINITY_MIN_CHARS:
            return None
        head = ",".join(map(str, prompt[:AFFINITY_PREFIX_TOKENS]))
    elif isinstance(prompt, str):
        head = prompt
    elif isinstance(messages, list) and messages and isinstance(messages[0], dict):
        first = messages[0].get("content")
        head = first if isinstance(first, str) else json.dumps(first)
    else:
        return None
    if len(head) < AFFINITY_MIN_CHARS:
        return None
    return f"{model}|{head[:AFFINITY_PREFIX_CHARS]}"
