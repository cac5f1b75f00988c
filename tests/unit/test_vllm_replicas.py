"""The replica router (adapters.vllm.replicas, routing): which replica a request reaches, adapter
loads over the set, a replica that dies and comes back. Routing logic is checked on plain
`Replica` records and over small HTTP servers that answer like vLLM's adapter and model routes
(each says who answered); tests/e2e/test_stack.py runs two real vLLM replicas behind the API."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI, HTTPException

from adapters.vllm.client import VLLMClient
from adapters.vllm.config import cpu_share
from adapters.vllm.loader import AdapterLoader
from adapters.vllm.replicas import AFFINITY_MIN_CHARS, Replica, ReplicaSet, inspect_body
from adapters.vllm.routing import ReplicaClient, connect


def _replica(url: str, *, loaded: set[str] | None = None, in_flight: int = 0) -> Replica:
    r = Replica(url, client=None)  # type: ignore[arg-type]  # routing never calls it
    r.loaded, r.in_flight = set(loaded or ()), in_flight
    return r


def _set(*replicas: Replica) -> ReplicaSet:
    rs = ReplicaSet(["http://unused"])
    rs.replicas = list(replicas)
    return rs


def test_choose_prefers_replicas_that_have_the_adapter_then_the_least_busy() -> None:
    a, b, c = _replica("a", loaded={"x"}, in_flight=3), _replica("b", in_flight=0), _replica("c")
    c.loaded, c.in_flight = {"x"}, 1
    rs = _set(a, b, c)
    assert rs.choose("x") is c  # b is idle but lacks x
    assert rs.choose("base") is b  # everyone serves base
    c.healthy = False
    assert rs.choose("x") is a
    a.healthy = False
    assert rs.choose("x") is b  # nobody healthy has x: any healthy one (vLLM answers 404)
    b.healthy = False
    assert rs.choose("x") is None


def test_choose_alternates_between_equally_busy_replicas() -> None:
    rs = _set(_replica("a"), _replica("b"))
    picks = Counter(rs.choose("base").url for _ in range(10))  # type: ignore[union-attr]
    assert picks == {"a": 5, "b": 5}


def test_a_long_prefix_sticks_to_one_replica_until_it_is_busier_than_the_slack() -> None:
    a, b = _replica("a"), _replica("b")
    rs = _set(a, b)
    key = "base|" + "the same long context " * 100
    first = rs.choose("base", key)
    assert all(rs.choose("base", key) is first for _ in range(6))
    other = b if first is a else a
    first.in_flight = rs.affinity_slack  # still within the slack
    assert rs.choose("base", key) is first
    first.in_flight = rs.affinity_slack + 1
    assert rs.choose("base", key) is other
    assert rs.choose("base", key, exclude=[other]) is first  # a retry skips the one that failed


def test_inspect_body_reads_model_stream_and_affinity() -> None:
    short = b'{"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": true}'
    assert inspect_body(short) == ("m", True, None)
    context = "d" * AFFINITY_MIN_CHARS
    body = f'{{"model": "base", "messages": [{{"role": "system", "content": "{context}"}}]}}'
    model, stream, key = inspect_body(body.encode())
    assert (model, stream) == ("base", False) and key is not None and key.startswith("base|")
    ids = "[" + ",".join(["7"] * AFFINITY_MIN_CHARS) + "]"
    assert inspect_body(f'{{"model": "a", "prompt": {ids}}}'.encode())[2] is not None
    assert inspect_body(b"not json") == (None, False, None)


def test_cpu_share_splits_the_cpus_between_local_replicas() -> None:
    assert cpu_share(0, 1, [0, 1]) is None
    assert [cpu_share(i, 2, [0, 1]) for i in range(2)] == ["0", "1"]
    assert [cpu_share(i, 2, [0, 1, 2, 3]) for i in range(2)] == ["0-1", "2-3"]
    assert cpu_share(1, 2, [0, 2, 4, 6]) == "4,6"


# --- over HTTP: servers that answer like vLLM's model and adapter routes ---------------------


class FakeVLLM:
    """A server with vLLM's /v1/models, adapter load/unload and a chat route that says which
    server answered (after `delay_s`); 404 for a model it has not loaded, as vLLM answers."""

    def __init__(self, name: str, port: int, delay_s: float = 0.2) -> None:
        self.name, self.port, self.delay_s = name, port, delay_s
        self.loaded: dict[str, str] = {}
        self.server: uvicorn.Server | None = None
        self.thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.get("/v1/models")
        async def models() -> dict[str, Any]:
            return {"data": [{"id": m} for m in ["base", *self.loaded]]}

        @app.post("/v1/load_lora_adapter")
        async def load(body: dict[str, Any]) -> str:
            if body["lora_name"] in self.loaded:
                raise HTTPException(
                    400, f"The lora adapter '{body['lora_name']}' has already been loaded."
                )
            self.loaded[body["lora_name"]] = body["lora_path"]
            return "Success"

        @app.post("/v1/unload_lora_adapter")
        async def unload(body: dict[str, Any]) -> str:
            if self.loaded.pop(body["lora_name"], None) is None:
                raise HTTPException(404, "not found")
            return "Success"

        @app.post("/v1/chat/completions")
        async def chat(body: dict[str, Any]) -> dict[str, Any]:
            if body["model"] != "base" and body["model"] not in self.loaded:
                raise HTTPException(404, f"The model `{body['model']}` does not exist.")
            await asyncio.sleep(self.delay_s)
            return {"model": body["model"], "choices": [{"message": {"content": self.name}}]}

        return app

    def start(self) -> None:
        config = uvicorn.Config(self.app(), host="127.0.0.1", port=self.port, log_level="error")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        assert self.server.started

    def stop(self) -> None:
        assert self.server is not None and self.thread is not None
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.loaded.clear()  # a restarted vLLM has no adapters


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def fakes() -> Any:
    servers = [FakeVLLM("r0", _free_port()), FakeVLLM("r1", _free_port())]
    for s in servers:
        s.start()
    yield servers
    for s in servers:
        if s.server is not None and not s.server.should_exit:
            s.stop()


def _adapter_dir(tmp_path: Path) -> Path:
    d = tmp_path / "adapter"
    d.mkdir(exist_ok=True)
    (d / "adapter_config.json").write_text('{"r": 8, "lora_alpha": 16}')
    return d


async def _ask(client: VLLMClient, model: str) -> str:
    body = await client.chat({"model": model, "messages": [{"role": "user", "content": "q"}]})
    return body["choices"][0]["message"]["content"]


async def _ask_many(client: VLLMClient, model: str, n: int) -> Counter[str]:
    return Counter(await asyncio.gather(*(_ask(client, model) for _ in range(n))))


def test_the_loader_puts_an_adapter_on_every_replica_and_queries_spread(
    fakes: list[FakeVLLM], tmp_path: Path
) -> None:
    async def go() -> None:
        client = connect([f.url for f in fakes])
        assert isinstance(client, ReplicaClient)
        loader = AdapterLoader(client, max_lora_rank=16)
        try:
            assert await loader.load("ad-1", _adapter_dir(tmp_path)) == "loaded"
            assert all("ad-1" in f.loaded for f in fakes)
            assert await loader.load("ad-1", _adapter_dir(tmp_path)) == "already_loaded"
            answered = await _ask_many(client, "ad-1", 8)
            assert answered == {"r0": 4, "r1": 4}, answered  # least in-flight spreads them
            assert await loader.unload("ad-1") is True
            assert not any(f.loaded for f in fakes)
        finally:
            await client.aclose()

    asyncio.run(go())


def test_an_adapter_on_one_replica_is_only_sent_there(fakes: list[FakeVLLM]) -> None:
    async def go() -> None:
        fakes[1].loaded["only-r1"] = "/x"
        client = ReplicaClient([f.url for f in fakes])
        try:
            assert await _ask_many(client, "only-r1", 6) == {"r1": 6}
            assert await client.models() == ["base"]  # not every replica serves it
        finally:
            await client.aclose()

    asyncio.run(go())


def test_a_dead_replica_is_skipped_and_gets_its_adapters_back(
    fakes: list[FakeVLLM], tmp_path: Path
) -> None:
    async def go() -> None:
        client = ReplicaClient([f.url for f in fakes], refresh_s=0.0)
        loader = AdapterLoader(client, max_lora_rank=16)
        try:
            await loader.load("ad-2", _adapter_dir(tmp_path))
            fakes[0].stop()
            # Every query answers, from the replica still up; the dead one is marked down.
            assert await _ask_many(client, "ad-2", 6) == {"r1": 6}
            assert [r.healthy for r in client.replicas.replicas] == [False, True]
            fakes[0].start()  # back, on the same port, with no adapters
            assert await client.models() == ["base"]  # what a keeper sees: ad-2 is missing
            assert await _ask_many(client, "ad-2", 4) == {"r1": 4}  # only r1 has it meanwhile
            assert await loader.load("ad-2", _adapter_dir(tmp_path)) == "loaded"
            assert "ad-2" in fakes[0].loaded
            assert set(await _ask_many(client, "ad-2", 8)) == {"r0", "r1"}
        finally:
            await client.aclose()

    asyncio.run(go())


def test_with_one_copy_an_adapter_loads_on_demand_where_a_query_goes(
    fakes: list[FakeVLLM], tmp_path: Path
) -> None:
    adapter = _adapter_dir(tmp_path)
    asked: list[str] = []

    async def resolver(name: str) -> Path | None:
        asked.append(name)
        return adapter if name.startswith("ad-") else None

    async def go() -> None:
        client = ReplicaClient([f.url for f in fakes], copies=1, resolver=resolver)
        loader = AdapterLoader(client, max_lora_rank=16)
        try:
            await loader.load("ad-a", adapter)
            await loader.load("ad-b", adapter)
            assert sorted(len(f.loaded) for f in fakes) == [1, 1]  # one each, fewest first
            fakes[0].stop()  # whichever held it, one adapter is now nowhere
            lost = "ad-a" if "ad-a" not in fakes[1].loaded else "ad-b"
            assert await _ask_many(client, lost, 3) == {"r1": 3}
            assert asked == [lost] and lost in fakes[1].loaded
            with pytest.raises(Exception, match="404"):
                await _ask(client, "unknown")  # the resolver knows nothing: vLLM's 404
        finally:
            await client.aclose()

    asyncio.run(go())


def test_connect_gives_a_plain_client_for_one_url() -> None:
    async def go() -> None:
        one = connect("http://127.0.0.1:9/")
        two = connect("http://127.0.0.1:9, http://127.0.0.1:10")
        try:
            assert type(one) is VLLMClient and one.base_url == "http://127.0.0.1:9"
            assert isinstance(two, ReplicaClient) and two.urls == [
                "http://127.0.0.1:9",
                "http://127.0.0.1:10",
            ]
            assert await two.is_ready() is False  # nothing listens there
        finally:
            await one.aclose()
            await two.aclose()

    asyncio.run(go())
