"""What the query API accepts, refuses, and forwards to the engine (no engine needed)."""

from __future__ import annotations

from typing import Any

import pytest

from service.serving.guard import (
    GuardLimits,
    RequestRejected,
    check_prompt_length,
    check_request,
    engine_fields,
)
from service.serving.protocol import (
    ChatCompletionRequest,
    CompletionRequest,
    parse_chat_request,
    parse_completion_request,
)

LIMITS = GuardLimits(max_model_len=8192, vocab_size=49152)
USER = [{"role": "user", "content": "Hello?"}]


def chat(**fields: Any) -> ChatCompletionRequest:
    return parse_chat_request({"model": "base", "messages": USER, **fields})


def completion(**fields: Any) -> CompletionRequest:
    return parse_completion_request({"model": "base", "prompt": "Once", **fields})


def rejected_param(fn: Any, *args: Any, **kwargs: Any) -> str | None:
    with pytest.raises(RequestRejected) as info:
        fn(*args, **kwargs)
    assert info.value.status_code == 400
    assert info.value.code == "invalid_parameter"
    assert info.value.message
    return info.value.param


def test_openai_fields_are_accepted_and_forwarded() -> None:
    req = chat(
        temperature=0.7,
        top_p=0.9,
        n=2,
        stop=["\n"],
        max_completion_tokens=20,
        presence_penalty=0.5,
        frequency_penalty=-0.5,
        logprobs=True,
        top_logprobs=3,
        logit_bias={"42": -100},
        user="u-1",
        metadata={"k": "v"},
        store=False,
        top_k=40,
        min_p=0.05,
        repetition_penalty=1.1,
    )
    check_request(req, LIMITS)
    sent = engine_fields(req)
    assert sent["temperature"] == 0.7 and sent["top_k"] == 40 and sent["n"] == 2
    assert sent["max_completion_tokens"] == 20 and sent["logit_bias"] == {"42": -100}
    # Platform-only fields and the model/messages are not part of the sampling fields.
    assert not {"metadata", "store", "model", "messages"} & sent.keys()


@pytest.mark.parametrize(
    ("field", "value"),
    [("chat_template", "{{ 1 }}"), ("priority", 1), ("temperatur", 0.5), ("guided_json", {})],
)
def test_unknown_and_engine_internal_fields_are_refused_by_name(field: str, value: Any) -> None:
    assert rejected_param(chat, **{field: value}) == field


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("tools", [{"type": "function", "function": {"name": "f"}}]),
        ("tool_choice", "auto"),
        ("best_of", 3),
        ("reasoning_effort", "high"),
        ("prompt_logprobs", 1),
    ],
)
def test_unsupported_openai_features_are_refused_with_a_reason(field: str, value: Any) -> None:
    with pytest.raises(RequestRejected) as info:
        chat(**{field: value})
    assert info.value.param == field
    assert "not" in info.value.message or "Use" in info.value.message


def test_empty_values_of_unsupported_features_ask_for_nothing() -> None:
    req = chat(tools=None, tool_choice="none", modalities=["text"], best_of=1)
    check_request(req, LIMITS)


def test_seed_with_sampling_is_refused_because_it_crashes_the_engine() -> None:
    assert rejected_param(check_request, chat(seed=1, temperature=0.7), LIMITS) == "seed"
    # Temperature left to the engine's default samples too.
    assert rejected_param(check_request, chat(seed=1), LIMITS) == "seed"
    assert rejected_param(check_request, completion(seed=3, top_p=0.5), LIMITS) == "seed"


def test_seed_at_temperature_zero_is_accepted_and_not_forwarded() -> None:
    req = chat(seed=1, temperature=0)
    check_request(req, LIMITS)
    assert "seed" not in engine_fields(req)


def test_seeded_sampling_is_forwarded_on_engines_that_allow_it() -> None:
    gpu = GuardLimits(max_model_len=8192, vocab_size=49152, seeded_sampling=True)
    req = chat(seed=1, temperature=0.7)
    check_request(req, gpu)
    assert engine_fields(req)["seed"] == 1


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"temperature": 2.5}, "temperature"),
        ({"temperature": -0.1}, "temperature"),
        ({"temperature": float("nan")}, "temperature"),
        ({"top_p": 0}, "top_p"),
        ({"top_p": 1.5}, "top_p"),
        ({"top_k": -2}, "top_k"),
        ({"min_p": 1.5}, "min_p"),
        ({"n": 0}, "n"),
        ({"n": 9}, "n"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"max_completion_tokens": 8192}, "max_completion_tokens"),
        ({"presence_penalty": 2.5}, "presence_penalty"),
        ({"frequency_penalty": -3}, "frequency_penalty"),
        ({"repetition_penalty": 0}, "repetition_penalty"),
        ({"stop": ""}, "stop"),
        ({"stop": [str(i) for i in range(17)]}, "stop"),
        ({"logprobs": True, "top_logprobs": 21}, "top_logprobs"),
        ({"top_logprobs": 2}, "top_logprobs"),
        ({"logit_bias": {"49152": 1}}, "logit_bias"),
        ({"logit_bias": {"abc": 1}}, "logit_bias"),
        ({"logit_bias": {"5": 101}}, "logit_bias"),
        ({"stop_token_ids": [-1]}, "stop_token_ids"),
        ({"min_tokens": 10, "max_tokens": 5}, "min_tokens"),
        ({"response_format": {"type": "json_object"}}, "response_format"),
    ],
)
def test_chat_parameters_out_of_range_are_refused(fields: dict[str, Any], param: str) -> None:
    def run() -> None:
        check_request(chat(**fields), LIMITS)

    assert rejected_param(run) == param


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"logprobs": 21}, "logprobs"),
        ({"prompt": [1, 2, 49152]}, "prompt"),
        ({"prompt": []}, "prompt"),
        ({"prompt": ["a"] * 17}, "prompt"),
        ({"prompt": ["a"] * 8, "n": 5}, "n"),
        ({"suffix": "tail"}, "suffix"),
        ({"stream_options": {"continuous_usage_stats": True}}, "stream_options"),
    ],
)
def test_completion_parameters_out_of_range_are_refused(fields: dict[str, Any], param: str) -> None:
    def run() -> None:
        check_request(completion(**fields), LIMITS)

    assert rejected_param(run) == param


def test_completion_prompt_forms() -> None:
    assert completion(prompt="a").prompts() == ["a"]
    assert completion(prompt=["a", "b"]).prompts() == ["a", "b"]
    assert completion(prompt=[1, 2, 3]).prompts() == [[1, 2, 3]]
    assert completion(prompt=[[1], [2, 3]]).prompts() == [[1], [2, 3]]
    req = completion(prompt=[1, 2], echo=True, logprobs=2, max_tokens=1)
    check_request(req, LIMITS)
    assert engine_fields(req) == {"echo": True, "logprobs": 2, "max_tokens": 1}


def test_prompt_length_is_checked_against_the_context() -> None:
    check_prompt_length(8000, 192, LIMITS, param="messages")
    check_prompt_length(8191, None, LIMITS, param="messages")
    assert rejected_param(check_prompt_length, 8192, None, LIMITS, param="messages") == "messages"
    with pytest.raises(RequestRejected) as info:
        check_prompt_length(8000, 500, LIMITS, param="prompt")
    assert info.value.param == "max_tokens"
    assert "at most 192" in info.value.message


def test_messages_text_parts_developer_role_and_returned_assistant_messages() -> None:
    req = parse_chat_request(
        {
            "model": "base",
            "messages": [
                {"role": "developer", "content": "Be brief."},
                {
                    "role": "user",
                    "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}],
                },
                {"role": "assistant", "content": "ok", "refusal": None, "tool_calls": []},
                {"role": "user", "content": "again"},
            ],
        }
    )
    sent = [m.engine_message() for m in req.messages]
    assert sent[0] == {"role": "system", "content": "Be brief."}
    assert sent[1]["content"] == "a\nb"
    assert sent[2] == {"role": "assistant", "content": "ok"}
    assert req.last_user_text() == "again"


@pytest.mark.parametrize(
    "message",
    [
        {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]},
        {"role": "tool", "content": "42", "tool_call_id": "c1"},
        {"role": "assistant", "content": "", "tool_calls": [{"id": "c1"}]},
        {"role": "wizard", "content": "hi"},
    ],
)
def test_messages_the_models_cannot_take_are_refused(message: dict[str, Any]) -> None:
    assert rejected_param(parse_chat_request, {"model": "base", "messages": [message]}) == (
        "messages"
    )


def test_missing_and_malformed_fields_name_the_field() -> None:
    assert rejected_param(parse_chat_request, {"model": "base"}) == "messages"
    assert rejected_param(parse_chat_request, {"messages": USER}) == "model"
    assert rejected_param(parse_completion_request, {"model": "base", "prompt": 3}) == "prompt"
    assert rejected_param(parse_chat_request, {"model": "base", "messages": []}) == "messages"
