"""Sending a prepared request to vLLM and relaying its answer: `model` rewritten back to what the
caller asked, `docadapt` added, the stream passed through event by event, engine errors turned
into `DocadaptError`s, and the request's `UsageRecord` handed to `record_usage`."""

from __future__ import annotations

import inspect
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx

from adapters.vllm.client import VLLMClient, VLLMRequestError, VLLMUnavailable
from service.serving.errors import EngineRejected, EngineUnavailable
from service.serving.icl_context import ContextResult, PassageRef
from service.serving.results import JSONResult, Mode, StreamResult, UsageRecord

log = logging.getLogger("docadapt.serving")

_T = TypeVar("_T")
MaybeAwaitable = _T | Awaitable[_T]
RecordUsage = Callable[[UsageRecord], MaybeAwaitable[None]]


@dataclass(frozen=True)
class Target:
    mode: Mode
    requested: str
    engine_model: str
    adapter: str | None = None
    collection_id: str | None = None
    passages: Sequence[PassageRef] = ()
    top_k: int | None = None  # retrieval: the question's top_k passages, not the whole collection


@dataclass(frozen=True)
class Prepared:
    target: Target
    path: str
    payload: dict[str, Any]
    prompt_tokens: int
    context: ContextResult | None
    stream: bool
    wants_usage: bool

    def info(self) -> dict[str, Any]:
        """The `docadapt` field added to answers."""
        out: dict[str, Any] = {"mode": self.target.mode}
        if self.target.adapter:
            out["adapter"] = self.target.adapter
        if self.context is not None:
            out.update(
                collection_id=self.target.collection_id,
                context_truncated=self.context.truncated,
                passages_used=self.context.passages_used,
                passages_total=self.context.total_passages,
                context_tokens=self.context.prompt_tokens,
            )
        if self.target.top_k is not None:
            out["top_k"] = self.target.top_k
        return out

    def headers(self) -> dict[str, str]:
        out = {"X-Docadapt-Mode": self.target.mode}
        if self.context is not None:
            out["X-Docadapt-Context-Truncated"] = "true" if self.context.truncated else "false"
            out["X-Docadapt-Passages"] = (
                f"{self.context.passages_used}/{self.context.total_passages}"
            )
        return out


@dataclass(frozen=True)
class Forwarder:
    """One request's way to vLLM and back, recording its usage with `record_usage`."""

    client: VLLMClient
    record_usage: RecordUsage | None

    async def forward(
        self, workspace_id: str, prep: Prepared, started: float
    ) -> JSONResult | StreamResult:
        if prep.stream:
            try:
                resp = await self.client.open_stream(prep.path, prep.payload)
            except (VLLMUnavailable, VLLMRequestError) as exc:
                raise self._engine_error(exc, prep.target) from None
            return StreamResult(self._relay(workspace_id, prep, resp, started), prep.headers())
        try:
            body = await self.client.post_json(prep.path, prep.payload)
        except (VLLMUnavailable, VLLMRequestError) as exc:
            raise self._engine_error(exc, prep.target) from None
        body["model"] = prep.target.requested
        body["docadapt"] = prep.info()
        usage = body.get("usage") or {}
        await self._record(
            workspace_id,
            prep,
            usage,
            latency_s=time.perf_counter() - started,
            ttft_s=None,
            completed=True,
        )
        return JSONResult(body, prep.headers())

    async def _relay(
        self, workspace_id: str, prep: Prepared, resp: httpx.Response, started: float
    ) -> AsyncIterator[str]:
        """vLLM's event stream, with `model` rewritten and `docadapt` on the first chunk."""
        usage: dict[str, Any] = {}
        ttft: float | None = None
        chunks_with_output = 0
        completed = False
        first = True
        try:
            async for line in resp.aiter_lines():
                if not line.startswith("data:"):
                    continue
                data = line[len("data:") :].strip()
                if data == "[DONE]":
                    completed = True
                    yield "data: [DONE]\n\n"
                    break
                try:
                    chunk = json.loads(data)
                except ValueError:
                    log.warning("unparseable chunk from vLLM: %.200s", data)
                    continue
                if "error" in chunk:
                    yield _sse(_public_error(chunk, prep.target))
                    continue
                if chunk.get("usage"):
                    usage = chunk["usage"]
                choices = chunk.get("choices") or []
                if choices and ttft is None and _has_output(choices):
                    ttft = time.perf_counter() - started
                chunks_with_output += sum(1 for c in choices if _has_output([c]))
                if not prep.wants_usage:
                    if not choices:
                        continue  # the usage-only chunk the caller did not ask for
                    chunk.pop("usage", None)
                chunk["model"] = prep.target.requested
                if first:
                    chunk["docadapt"] = prep.info()
                    first = False
                yield _sse(chunk)
        except httpx.HTTPError as exc:
            log.warning("stream from vLLM broke off: %r", exc)
            err = EngineUnavailable("The inference engine stopped while answering; try again.")
            yield _sse({"error": {"code": err.code, "message": err.message}})
            yield "data: [DONE]\n\n"
        finally:
            await resp.aclose()
            if not usage:
                usage = {
                    "prompt_tokens": prep.prompt_tokens,
                    "completion_tokens": chunks_with_output,
                }
            await self._record(
                workspace_id,
                prep,
                usage,
                latency_s=time.perf_counter() - started,
                ttft_s=ttft,
                completed=completed,
            )

    async def _record(
        self,
        workspace_id: str,
        prep: Prepared,
        usage: Mapping[str, Any],
        *,
        latency_s: float,
        ttft_s: float | None,
        completed: bool,
    ) -> None:
        if self.record_usage is None:
            return
        details = usage.get("prompt_tokens_details") or {}
        record = UsageRecord(
            workspace_id=workspace_id,
            mode=prep.target.mode,
            model=prep.target.requested,
            adapter=prep.target.adapter,
            collection_id=prep.target.collection_id,
            prompt_tokens=int(usage.get("prompt_tokens") or prep.prompt_tokens),
            completion_tokens=int(usage.get("completion_tokens") or 0),
            latency_s=latency_s,
            cached_tokens=details.get("cached_tokens"),
            stream=prep.stream,
            time_to_first_token_s=ttft_s,
            context_truncated=prep.context.truncated if prep.context is not None else None,
            completed=completed,
        )
        try:
            await maybe_await(self.record_usage(record))
        except Exception:  # a failed cost record must not fail the answer already given
            log.exception("recording usage failed for workspace %s", workspace_id)

    @staticmethod
    def _engine_error(
        exc: VLLMUnavailable | VLLMRequestError, target: Target
    ) -> EngineUnavailable | EngineRejected:
        if isinstance(exc, VLLMUnavailable):
            log.warning("vLLM unavailable: %s", exc)
            return EngineUnavailable(
                "The inference engine is not available right now (starting, restarting or "
                "overloaded); try again shortly."
            )
        if exc.status_code == 404:
            # The registry knows the adapter but vLLM does not (yet): being (re)loaded.
            log.warning("vLLM does not know %s: %s", target.engine_model, exc.detail)
            return EngineUnavailable(
                f"The model '{target.requested}' is not loaded in the engine right now; "
                "try again shortly."
            )
        detail = exc.detail.replace(target.engine_model, target.requested)
        return EngineRejected(detail)


def _has_output(choices: list[dict[str, Any]]) -> bool:
    for c in choices:
        delta = c.get("delta")
        if delta and (delta.get("content") or delta.get("reasoning_content")):
            return True
        if c.get("text"):
            return True
    return False


def _public_error(chunk: dict[str, Any], target: Target) -> dict[str, Any]:
    err = chunk.get("error")
    message = err.get("message", "") if isinstance(err, dict) else str(err)
    message = str(message).replace(target.engine_model, target.requested)
    return {"error": {"code": "engine_error", "message": message}}


def _sse(obj: Mapping[str, Any]) -> str:
    return f"data: {json.dumps(obj, ensure_ascii=False, separators=(',', ':'))}\n\n"


async def maybe_await(value: MaybeAwaitable[_T]) -> _T:
    if inspect.isawaitable(value):
        return await value
    return value
