"""The query layer against the real vLLM with the real base model: base, adapter and `icl:` answers,
OpenAI-shaped streams, error mapping, and a sweep of sampling parameters on short and long prompts
that each answer or are refused with a 400, with the engine still up afterwards."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from openai.types import Completion
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from adapters.vllm.client import VLLMClient
from adapters.vllm.server import LocalVLLMServer
from service.benchmark.random_lora import make_random_lora
from service.serving.errors import EngineUnavailable, ModelNotFound, RequestRejected
from service.serving.icl_context import PassageRef
from service.serving.serving import JSONResult, QueryService, StreamResult, UsageRecord

pytestmark = pytest.mark.e2e

WS, OTHER_WS = "ws-a", "ws-b"
ADAPTER = "support-bot"
T = TypeVar("T")


@dataclass
class Served:
    url: str
    api_key: str | None
    model_dir: Path
    max_model_len: int
    tokenizer: Any
    adapter_engine_name: str


@pytest.fixture(scope="module")
def served(
    vllm_server: LocalVLLMServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    """The served base model's tokenizer and a random LoRA adapter loaded for these tests."""
    from transformers import AutoTokenizer

    vllm_url, api_key = vllm_server.url, vllm_server.config.api_key
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    response = httpx.get(f"{vllm_url}/v1/models", headers=headers, timeout=30)
    response.raise_for_status()
    models = response.json()["data"]
    base = next(m for m in models if m["id"] == "base")
    model_dir = Path(base["root"])
    lora_dir = make_random_lora(model_dir, tmp_path_factory.mktemp("lora") / "serving-test", r=8)
    name = f"serving-test-{uuid.uuid4().hex[:8]}"
    httpx.post(
        f"{vllm_url}/v1/load_lora_adapter",
        json={"lora_name": name, "lora_path": str(lora_dir)},
        headers=headers,
        timeout=120,
    ).raise_for_status()
    try:
        yield Served(
            vllm_url,
            api_key,
            model_dir,
            int(base["max_model_len"]),
            AutoTokenizer.from_pretrained(model_dir, local_files_only=True),
            name,
        )
    finally:
        httpx.post(
            f"{vllm_url}/v1/unload_lora_adapter",
            json={"lora_name": name},
            headers=headers,
            timeout=60,
        )


def passages_from(doc_texts: dict[str, list[str]], tokenizer: Any) -> list[PassageRef]:
    return [
        PassageRef(doc, doc.title(), i, text, len(tokenizer.encode(text, add_special_tokens=False)))
        for doc, texts in doc_texts.items()
        for i, text in enumerate(texts)
    ]


def small_collection(tokenizer: Any) -> list[PassageRef]:
    return passages_from(
        {
            "fleet": ["The delivery van Brimble is painted orange.", "Brimble is parked in Leeds."],
            "staff": ["Mara Quell leads the night shift.", "The night shift starts at ten."],
        },
        tokenizer,
    )


def large_collection(tokenizer: Any) -> list[PassageRef]:
    """About 1,500 tokens of filler with one passage about the Vexlor pump."""
    filler = [
        f"Meeting note {i}: the committee reviewed budget line {i * 7} and postponed item {i + 3}."
        for i in range(60)
    ]
    filler.insert(37, "The Vexlor pump in hall nine is serviced every Tuesday by Ida Renn.")
    return passages_from({"notes": filler[:30], "minutes": filler[30:]}, tokenizer)


@dataclass
class Harness:
    service: QueryService
    records: list[UsageRecord]
    client: VLLMClient


def run_with_service(
    served: Served,
    body: Callable[[Harness], Awaitable[T]],
    *,
    url: str | None = None,
    icl_budget_tokens: int = 6000,
    adapters: dict[tuple[str, str], str] | None = None,
) -> T:
    """Build a QueryService like the API does and run `body` with it."""
    table = {(WS, ADAPTER): served.adapter_engine_name} if adapters is None else adapters
    collections = {
        (WS, "small"): small_collection(served.tokenizer),
        (WS, "large"): large_collection(served.tokenizer),
    }

    async def main() -> T:
        client = VLLMClient(url or served.url, api_key=served.api_key, timeout=300)
        records: list[UsageRecord] = []
        service = QueryService(
            client,
            served.tokenizer,
            resolve_adapter=lambda ws, name: table.get((ws, name)),
            load_collection_passages=lambda ws, cid: collections.get((ws, cid)),
            record_usage=records.append,
            max_model_len=served.max_model_len,
            icl_budget_tokens=icl_budget_tokens,
        )
        try:
            return await body(Harness(service, records, client))
        finally:
            await service.aclose()
            await client.aclose()

    return asyncio.run(main())


def ask(text: str, **fields: Any) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": text}], "temperature": 0, **fields}


def answer_text(result: JSONResult | StreamResult) -> str:
    assert isinstance(result, JSONResult)
    return ChatCompletion.model_validate(result.body).choices[0].message.content or ""


def test_base_chat_answers_counts_tokens_like_vllm_and_records_usage(served: Served) -> None:
    async def body(h: Harness) -> None:
        req = {"model": "base", **ask("What is the capital of France?", max_tokens=12)}
        result = await h.service.chat(WS, req)
        assert isinstance(result, JSONResult)
        completion = ChatCompletion.model_validate(result.body)
        assert completion.model == "base"
        assert completion.choices[0].message.content
        assert result.body["docadapt"] == {"mode": "base"}
        # The guard's prompt count is the engine's.
        counted = h.service.tokens.chat(req["messages"])
        assert completion.usage is not None and completion.usage.prompt_tokens == counted
        (rec,) = h.records
        assert (rec.workspace_id, rec.mode, rec.adapter) == (WS, "base", None)
        assert rec.prompt_tokens == counted and 0 < rec.completion_tokens <= 12
        assert rec.latency_s > 0 and not rec.stream

    run_with_service(served, body)


def test_adapter_answers_for_its_workspace_only(served: Served) -> None:
    async def body(h: Harness) -> None:
        question = ask("Name three colours.", max_tokens=16)
        base = answer_text(await h.service.chat(WS, {"model": "base", **question}))
        tuned = await h.service.chat(WS, {"model": ADAPTER, **question})
        assert isinstance(tuned, JSONResult)
        assert tuned.body["model"] == ADAPTER  # never the engine-side name
        assert served.adapter_engine_name not in json.dumps(tuned.body)
        assert answer_text(tuned) != base  # the random adapter's weights were used
        assert h.records[-1].mode == "adapter" and h.records[-1].adapter == ADAPTER

        with pytest.raises(ModelNotFound) as info:
            await h.service.chat(OTHER_WS, {"model": ADAPTER, **question})
        assert info.value.status_code == 404
        with pytest.raises(ModelNotFound):
            await h.service.completion(OTHER_WS, {"model": ADAPTER, "prompt": "Hi"})
        with pytest.raises(ModelNotFound):
            await h.service.chat(WS, {"model": served.adapter_engine_name, **question})

    run_with_service(served, body)


def test_adapter_known_to_the_registry_but_not_to_vllm_is_503(served: Served) -> None:
    async def body(h: Harness) -> None:
        with pytest.raises(EngineUnavailable) as info:
            await h.service.chat(WS, {"model": "ghost", **ask("Hi", max_tokens=2)})
        assert info.value.status_code == 503
        assert "ghost" in info.value.message and "serving-" not in info.value.message

    run_with_service(served, body, adapters={(WS, "ghost"): "serving-never-loaded"})


def test_icl_answers_from_the_collection_and_says_when_it_was_cut(served: Served) -> None:
    budget = 300

    async def body(h: Harness) -> None:
        full = await h.service.chat(
            WS, {"model": "icl:small", **ask("What colour is the van Brimble?", max_tokens=16)}
        )
        assert isinstance(full, JSONResult)
        info = full.body["docadapt"]
        assert info["mode"] == "icl" and info["collection_id"] == "small"
        assert info["context_truncated"] is False
        assert info["passages_used"] == info["passages_total"] == 4
        assert full.headers["X-Docadapt-Context-Truncated"] == "false"
        assert "orange" in answer_text(full).lower()

        cut = await h.service.chat(
            WS,
            {"model": "icl:large", **ask("When is the Vexlor pump serviced?", max_tokens=16)},
        )
        assert isinstance(cut, JSONResult)
        info = cut.body["docadapt"]
        assert info["context_truncated"] is True
        assert 0 < info["passages_used"] < info["passages_total"] == 61
        assert info["context_tokens"] <= budget
        assert cut.headers["X-Docadapt-Context-Truncated"] == "true"
        assert cut.body["model"] == "icl:large"
        rec = h.records[-1]
        assert rec.mode == "icl" and rec.collection_id == "large" and rec.context_truncated
        assert info["context_tokens"] < rec.prompt_tokens < budget + 150
        assert "tuesday" in answer_text(cut).lower()

        comp = await h.service.completion(
            WS, {"model": "icl:small", "prompt": "Mara Quell leads the", "max_tokens": 4}
        )
        assert isinstance(comp, JSONResult)
        Completion.model_validate(comp.body)
        assert comp.body["docadapt"]["passages_used"] == 4

        with pytest.raises(ModelNotFound):
            await h.service.chat(OTHER_WS, {"model": "icl:small", **ask("Hi")})
        with pytest.raises(ModelNotFound):
            await h.service.chat(WS, {"model": "icl:nope", **ask("Hi")})

    run_with_service(served, body, icl_budget_tokens=budget)


def parse_sse(raw: str) -> list[dict[str, Any] | str]:
    """Events of an OpenAI-style stream: JSON objects, then the literal "[DONE]"."""
    assert raw.endswith("\n\n")
    events: list[dict[str, Any] | str] = []
    for block in raw.strip("\n").split("\n\n"):
        assert block.startswith("data: "), block
        data = block[len("data: ") :]
        events.append("[DONE]" if data == "[DONE]" else json.loads(data))
    return events


async def collect(result: JSONResult | StreamResult) -> list[dict[str, Any] | str]:
    assert isinstance(result, StreamResult)
    assert result.media_type == "text/event-stream"
    return parse_sse("".join([chunk async for chunk in result.chunks]))


def test_streams_parse_as_openai_chunks_and_usage_is_recorded(served: Served) -> None:
    async def body(h: Harness) -> None:
        events = await collect(
            await h.service.chat(WS, {"model": ADAPTER, "stream": True, **ask("Hi", max_tokens=8)})
        )
        assert events[-1] == "[DONE]"
        chunks = [ChatCompletionChunk.model_validate(e) for e in events[:-1]]
        assert chunks and all(c.model == ADAPTER and c.choices for c in chunks)
        assert all(c.usage is None for c in chunks)  # not asked for, not sent
        assert "".join(c.choices[0].delta.content or "" for c in chunks)
        rec = h.records[-1]
        assert rec.stream and rec.completed and rec.mode == "adapter"
        assert 0 < rec.completion_tokens <= 8 and rec.prompt_tokens > 0
        assert rec.time_to_first_token_s is not None and rec.time_to_first_token_s <= rec.latency_s

        events = await collect(
            await h.service.chat(
                WS,
                {
                    "model": "icl:small",
                    "stream": True,
                    "stream_options": {"include_usage": True},
                    **ask("Who leads the night shift?", max_tokens=8),
                },
            )
        )
        chunks = [ChatCompletionChunk.model_validate(e) for e in events[:-1]]
        assert chunks[-1].usage is not None and not chunks[-1].choices
        assert chunks[-1].usage.prompt_tokens == h.records[-1].prompt_tokens
        first = events[0]
        assert isinstance(first, dict) and first["docadapt"]["mode"] == "icl"

        events = await collect(
            await h.service.completion(
                WS, {"model": "base", "prompt": "One, two,", "max_tokens": 5, "stream": True}
            )
        )
        assert events[-1] == "[DONE]"
        # Completion chunks carry finish_reason null until the last one, as OpenAI's do (the
        # openai client builds them without validation), so check their shape by hand.
        chunks = [e for e in events[:-1] if isinstance(e, dict)]
        assert len(chunks) == len(events) - 1
        assert all(c["object"] == "text_completion" and c["model"] == "base" for c in chunks)
        assert "".join(c["choices"][0]["text"] for c in chunks if c["choices"])

    run_with_service(served, body)


def test_engine_down_is_503(served: Served) -> None:
    async def body(h: Harness) -> None:
        for call in (
            h.service.chat(WS, {"model": "base", **ask("Hi")}),
            h.service.chat(WS, {"model": "base", "stream": True, **ask("Hi")}),
        ):
            with pytest.raises(EngineUnavailable) as info:
                await call
            assert info.value.status_code == 503 and "127.0.0.1" not in info.value.message

    run_with_service(served, body, url="http://127.0.0.1:9")


ACCEPTED: list[dict[str, Any]] = [
    {"temperature": 0},
    {"temperature": 0.7},
    {"temperature": 2.0},
    {"temperature": 0.8, "top_p": 0.5},
    {"temperature": 0.8, "top_k": 5},
    {"top_k": -1},
    {"temperature": 0.9, "n": 3},
    {"stop": [".", "\n"]},
    {"max_tokens": 1},
    {"presence_penalty": 1.5},
    {"frequency_penalty": -1.0},
    {"repetition_penalty": 1.3},
    {"temperature": 1.0, "min_p": 0.2},
    {"logprobs": True, "top_logprobs": 5},
    {"seed": 7, "temperature": 0},
    {"min_tokens": 4, "ignore_eos": True},
    {"logit_bias": {"28": 5.0}},
]
REFUSED: list[tuple[dict[str, Any], str]] = [
    ({"seed": 7, "temperature": 0.7}, "seed"),
    ({"seed": 7}, "seed"),
    ({"temperature": 3}, "temperature"),
    ({"top_p": 0}, "top_p"),
    ({"top_k": -5}, "top_k"),
    ({"n": 50}, "n"),
    ({"stop": ""}, "stop"),
    ({"max_tokens": 0}, "max_tokens"),
    ({"max_tokens": 9000}, "max_tokens"),
    ({"presence_penalty": 5}, "presence_penalty"),
    ({"logprobs": True, "top_logprobs": 30}, "top_logprobs"),
    ({"logit_bias": {"999999": 5}}, "logit_bias"),
]


def long_prompt(tokenizer: Any) -> str:
    """A question behind more than one 2,048-token prefill chunk (unique to this run)."""
    tag = uuid.uuid4().hex[:6]
    lines = [
        f"Log line {i} ({tag}): sensor {i % 17} read {i * 13 % 101} units." for i in range(120)
    ]
    text = "\n".join(lines) + "\n\nWhich sensor reported most often?"
    assert len(tokenizer.encode(text, add_special_tokens=False)) > 2200
    return text


def test_sampling_sweep_on_short_and_long_prompts_keeps_the_engine_up(served: Served) -> None:
    prompts = {"short": "Write one sentence about the sea.", "long": long_prompt(served.tokenizer)}

    async def body(h: Harness) -> None:
        # Fill the prefix cache with the long prompt once, so the sweep does not prefill it 17x.
        await h.service.chat(WS, {"model": "base", **ask(prompts["long"], max_tokens=1)})
        gate = asyncio.Semaphore(4)

        async def send(kind: str, fields: dict[str, Any]) -> tuple[str, Any]:
            req = {"model": "base", "messages": [{"role": "user", "content": prompts[kind]}]}
            req.update({"max_tokens": 4, **fields})
            async with gate:
                try:
                    return "ok", await h.service.chat(WS, req)
                except RequestRejected as exc:
                    return "rejected", exc

        cases = [(k, f, None) for k in prompts for f in ACCEPTED]
        cases += [(k, f, param) for k in prompts for f, param in REFUSED]
        # The engine's limit on max_tokens depends on the prompt: only the long one runs over.
        cases.append(("long", {"max_tokens": served.max_model_len - 2000}, "max_tokens"))
        outcomes = await asyncio.gather(*(send(k, f) for k, f, _ in cases))

        for (kind, fields, param), (status, value) in zip(cases, outcomes, strict=True):
            where = f"{kind} prompt, {fields}"
            if param is None:
                assert status == "ok", f"{where}: {value}"
                completion = ChatCompletion.model_validate(value.body)
                assert len(completion.choices) == fields.get("n", 1), where
                if fields.get("logprobs"):
                    assert completion.choices[0].logprobs is not None, where
            else:
                assert status == "rejected", f"{where}: answered instead of refused"
                assert value.status_code == 400 and value.param == param, where

        # Prompt log-probabilities (echo), the scoring path users can reach (short prompt: on a
        # long one it only costs a full prefill, since such requests skip the prefix cache).
        echo = await h.service.completion(
            WS,
            {
                "model": "base",
                "prompt": prompts["short"],
                "echo": True,
                "logprobs": 1,
                "max_tokens": 1,
                "temperature": 0,
            },
        )
        assert isinstance(echo, JSONResult)
        token_logprobs = echo.body["choices"][0]["logprobs"]["token_logprobs"]
        n_prompt = echo.body["usage"]["prompt_tokens"]
        assert len(token_logprobs) == n_prompt + 1  # the prompt, then the generated token
        assert token_logprobs[0] is None and all(x <= 0 for x in token_logprobs[1:])

        # The engine survived all of it and still answers.
        assert await h.client.is_ready()
        after = await h.service.chat(WS, {"model": "base", **ask("Say yes.", max_tokens=4)})
        assert answer_text(after)

    run_with_service(served, body)
