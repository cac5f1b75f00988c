"""What the query layer hands back: a complete answer, a streamed one, and what an answered request
cost."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Mode = Literal["base", "adapter", "icl", "rag", "adapter+rag"]


@dataclass(frozen=True)
class UsageRecord:
    """What one answered request cost, for the cost reports."""

    workspace_id: str
    mode: Mode
    model: str  # as the caller named it
    adapter: str | None  # the caller's adapter name (modes "adapter", "adapter+rag")
    collection_id: str | None  # modes "icl", "rag", "adapter+rag"
    prompt_tokens: int
    completion_tokens: int
    latency_s: float  # from receiving the request to the last byte of the answer
    cached_tokens: int | None  # prompt tokens served from vLLM's prefix cache, when it reports it
    stream: bool
    time_to_first_token_s: float | None = None  # streams only
    context_truncated: bool | None = None  # modes "icl", "rag", "adapter+rag"
    completed: bool = True  # False when a stream ended early (client gone, engine failed)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class JSONResult:
    """A complete answer: the OpenAI-shaped JSON body and headers to send with it."""

    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class StreamResult:
    """A streamed answer: server-sent event chunks ("data: {...}\\n\\n", last "data: [DONE]\\n\\n").

    vLLM accepted the request before this is returned, so errors it would raise already have.
    """

    chunks: AsyncIterator[str]
    headers: dict[str, str] = field(default_factory=dict)
    media_type: str = "text/event-stream"
