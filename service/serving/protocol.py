"""Request models of the OpenAI-compatible query API (`/v1/chat/completions`, `/v1/completions`).

What is accepted, and why:
- The OpenAI fields the engine can honour are accepted and forwarded to vLLM: model, messages /
  prompt, max_tokens, max_completion_tokens, temperature, top_p, n, stop, stream, stream_options
  (include_usage), presence_penalty, frequency_penalty, logit_bias, logprobs, top_logprobs, echo,
  seed, user, response_format. Their ranges are checked by `service.serving.guard`.
- A few vLLM sampling extensions are forwarded too (clients send them through `extra_body`):
  top_k, min_p, repetition_penalty, min_tokens, ignore_eos, stop_token_ids,
  include_stop_str_in_output, skip_special_tokens.
- OpenAI platform fields with no meaning here (`store`, `metadata`, `service_tier`) are accepted
  and not forwarded, so clients that set them keep working.
- docadapt's own `retrieval` ({"collection_id", "top_k"}; clients send it through `extra_body`)
  puts a collection's top passages for the question in the prompt of an adapter (adapter+rag) or
  of `base` (rag); it is read here and never forwarded.
- Everything else is refused with a 400 that names the field: features this service does not
  offer (tools, audio, beam search, suffix ...) with a reason, and unknown fields, so a typo is not
  silently ignored and no engine-internal knob (chat_template, prompt_embeds, priority, ...) ever
  reaches the shared engine from a user.

Parse request bodies with `parse_chat_request` / `parse_completion_request`: they raise
`RequestRejected` (400, with the field) instead of pydantic's ValidationError.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from service.serving.errors import RequestRejected

# Fields a client may send that mean nothing here; accepted, never forwarded.
IGNORED_FIELDS = frozenset({"store", "metadata", "service_tier"})

# Known fields this service refuses, with the reason given to the user.
_NO_TOOLS = "Tool and function calling is not supported by this service."
REFUSED_FIELDS: dict[str, str] = {
    "tools": _NO_TOOLS,
    "tool_choice": _NO_TOOLS,
    "functions": _NO_TOOLS,
    "function_call": _NO_TOOLS,
    "parallel_tool_calls": _NO_TOOLS,
    "audio": "Audio input and output are not supported; the models here read and write text.",
    "modalities": "Only text output is supported; omit 'modalities'.",
    "prediction": "Predicted outputs are not supported.",
    "web_search_options": "Web search is not supported.",
    "reasoning_effort": "The served models do not have a reasoning mode; omit 'reasoning_effort'.",
    "best_of": "best_of is not supported; use n and choose among the choices yourself.",
    "use_beam_search": "Beam search is not supported by this service.",
    "suffix": "Insertion (suffix) is not supported by the served models.",
    "prompt_embeds": "Prompt embeddings are not accepted; send text or token ids.",
    "prompt_logprobs": "Use echo=true with logprobs on /v1/completions for prompt log-probs.",
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StreamOptions(_Strict):
    include_usage: bool | None = None


class ResponseFormat(_Strict):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: dict[str, Any] | None = None


# The evaluation's rag_top_k default and range, so a query can ask what an evaluation measured.
DEFAULT_RETRIEVAL_TOP_K = 3
MAX_RETRIEVAL_TOP_K = 50


class Retrieval(_Strict):
    """Retrieve from a collection of the caller's workspace: the `top_k` passages most relevant
    (BM25) to the question (the last user message; the prompt on /v1/completions) go in the
    prompt, in the ICL template, as the evaluation's rag and adapter+rag modes put them."""

    collection_id: str = Field(min_length=1)
    top_k: int = Field(default=DEFAULT_RETRIEVAL_TOP_K, ge=1, le=MAX_RETRIEVAL_TOP_K)


class TextPart(_Strict):
    type: Literal["text"]
    text: str


# Keys of an assistant message as OpenAI returns it; sending such a message back is fine as long as
# they carry nothing (no tool calls).
_RETURNED_MESSAGE_KEYS = frozenset(
    {"refusal", "tool_calls", "function_call", "audio", "annotations", "reasoning_content"}
)


class ChatMessage(_Strict):
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[TextPart]
    name: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _drop_empty_returned_fields(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            return data
        out = dict(data)
        for key in _RETURNED_MESSAGE_KEYS & out.keys():
            if out[key]:
                raise ValueError(f"'{key}' in a message is not supported. {_NO_TOOLS}")
            del out[key]
        if out.get("role") in ("tool", "function"):
            raise ValueError(f"Messages with role '{out['role']}' are not supported. {_NO_TOOLS}")
        return out

    @field_validator("content", mode="before")
    @classmethod
    def _text_parts_only(cls, value: Any) -> Any:
        if isinstance(value, list):
            for part in value:
                kind = part.get("type") if isinstance(part, Mapping) else None
                if kind != "text":
                    raise ValueError(
                        f"Content parts of type {kind!r} are not supported; the models here read "
                        "text only (parts of type 'text')."
                    )
        return value

    def text(self) -> str:
        """The message's content as one string (text parts joined by newlines, as vLLM does)."""
        if isinstance(self.content, str):
            return self.content
        return "\n".join(part.text for part in self.content)

    def engine_message(self) -> dict[str, Any]:
        """The message as sent to vLLM: plain string content; `developer` is sent as `system`
        (the chat templates of the served models know no developer role)."""
        msg: dict[str, Any] = {
            "role": "system" if self.role == "developer" else self.role,
            "content": self.text(),
        }
        if self.name:
            msg["name"] = self.name
        return msg


class _SamplingRequest(_Strict):
    """Fields shared by chat completions and completions."""

    model: str = Field(min_length=1)
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    n: int | None = None
    stop: str | list[str] | None = None
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    logit_bias: dict[str, float] | None = None
    seed: int | None = None
    user: str | None = None
    # OpenAI platform fields: accepted, not forwarded.
    store: bool | None = None
    metadata: dict[str, str] | None = None
    service_tier: str | None = None
    # vLLM sampling extensions (clients pass them in extra_body).
    top_k: int | None = None
    min_p: float | None = None
    repetition_penalty: float | None = None
    min_tokens: int | None = None
    ignore_eos: bool | None = None
    stop_token_ids: list[int] | None = None
    include_stop_str_in_output: bool | None = None
    skip_special_tokens: bool | None = None
    # docadapt: retrieval-augmented prompts (read by the query layer, never forwarded).
    retrieval: Retrieval | None = None

    @property
    def choices_per_prompt(self) -> int:
        return 1 if self.n is None else self.n

    @property
    def stop_list(self) -> list[str]:
        if self.stop is None:
            return []
        return [self.stop] if isinstance(self.stop, str) else list(self.stop)

    @property
    def wants_usage_in_stream(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)

    def completion_limit(self) -> int | None:
        """The maximum number of tokens to generate per choice, None for the engine's default."""
        return self.max_tokens

    def engine_fields(self) -> dict[str, Any]:
        """The sampling fields the user set, as vLLM takes them (without model, messages/prompt,
        stream_options and the ignored platform fields)."""
        skip = {"model", "messages", "prompt", "stream_options", "retrieval", *IGNORED_FIELDS}
        return {
            k: v
            for k, v in self.model_dump(exclude_unset=True, exclude_none=True).items()
            if k not in skip
        }


class ChatCompletionRequest(_SamplingRequest):
    """POST /v1/chat/completions."""

    messages: list[ChatMessage] = Field(min_length=1)
    max_completion_tokens: int | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = None
    response_format: ResponseFormat | None = None

    def completion_limit(self) -> int | None:
        # OpenAI deprecated max_tokens for max_completion_tokens; vLLM prefers the latter too.
        return (
            self.max_completion_tokens
            if self.max_completion_tokens is not None
            else (self.max_tokens)
        )

    def last_user_text(self) -> str:
        """The text of the last user message ('' when there is none): the query for retrieval."""
        for msg in reversed(self.messages):
            if msg.role == "user":
                return msg.text()
        return ""


PromptInput = str | list[str] | list[int] | list[list[int]]


class CompletionRequest(_SamplingRequest):
    """POST /v1/completions."""

    prompt: PromptInput
    max_tokens: int | None = 16  # OpenAI's and vLLM's default for completions
    echo: bool | None = None
    logprobs: int | None = None

    @field_validator("prompt")
    @classmethod
    def _non_empty(cls, value: PromptInput) -> PromptInput:
        if isinstance(value, list) and not value:
            raise ValueError("prompt must not be an empty list")
        return value

    def prompts(self) -> list[str | list[int]]:
        """The prompt(s) as a list: each a string or a list of token ids."""
        p = self.prompt
        if isinstance(p, str):
            return [p]
        if all(isinstance(x, int) for x in p):
            return [list(p)]  # type: ignore[arg-type]
        return list(p)  # type: ignore[arg-type]


def parse_chat_request(body: ChatCompletionRequest | Mapping[str, Any]) -> ChatCompletionRequest:
    """Validate a chat completions body; RequestRejected (400, naming the field) if invalid."""
    if isinstance(body, ChatCompletionRequest):
        return body
    return _parse(ChatCompletionRequest, body)


def parse_completion_request(body: CompletionRequest | Mapping[str, Any]) -> CompletionRequest:
    """Validate a completions body; RequestRejected (400, naming the field) if invalid."""
    if isinstance(body, CompletionRequest):
        return body
    return _parse(CompletionRequest, body)


_Req = TypeVar("_Req", bound=_SamplingRequest)


def _parse(model: type[_Req], body: Mapping[str, Any]) -> _Req:
    if not isinstance(body, Mapping):
        raise RequestRejected("The request body must be a JSON object.")
    for key in body:
        if key in REFUSED_FIELDS and _is_set(key, body[key]):
            raise RequestRejected(REFUSED_FIELDS[key], param=key)
    cleaned = {k: v for k, v in body.items() if not (k in REFUSED_FIELDS and not _is_set(k, v))}
    try:
        return model.model_validate(cleaned)
    except ValidationError as exc:
        raise _rejection(exc) from None


def _is_set(key: str, value: Any) -> bool:
    """Whether a refused field asks for something (null, false, empty, 'none' ask for nothing)."""
    if value is None or value is False or value == [] or value == {}:
        return False
    if key == "tool_choice" and value == "none":
        return False
    if key == "modalities" and value == ["text"]:
        return False
    return not (key == "best_of" and value == 1)


def _rejection(exc: ValidationError) -> RequestRejected:
    err = exc.errors()[0]
    loc = [str(part) for part in err.get("loc", ())]
    # Drop pydantic's union-branch labels (e.g. "str", "list[TextPart]") from the location.
    path = ".".join(p for p in loc if not (p.startswith(("list[", "dict[")) or p in _TYPE_NAMES))
    param = loc[0] if loc else None
    if err.get("type") == "extra_forbidden":
        return RequestRejected(f"Unknown parameter '{path}'.", param=param)
    if err.get("type") == "missing":
        return RequestRejected(f"Missing required parameter '{path}'.", param=param)
    msg = str(err.get("msg", "invalid value"))
    msg = msg.removeprefix("Value error, ")
    return RequestRejected(f"Invalid '{path}': {msg}", param=param)


_TYPE_NAMES = frozenset({"str", "int", "float", "bool", "TextPart", "ChatMessage"})
