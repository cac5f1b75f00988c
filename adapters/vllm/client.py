"""A small asynchronous client for the parts of vLLM's OpenAI server docadapt uses.

Everything that talks to vLLM over HTTP (query proxy, augmentation teacher, scoring, adapter
loading) goes through this one client, so timeouts and error mapping live in one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx


class VLLMUnavailable(RuntimeError):
    """vLLM could not be reached or answered with a server error."""


class VLLMRequestError(RuntimeError):
    """vLLM refused a request (4xx); `status_code` and `detail` say why."""

    def __init__(self, status_code: int, detail: str) -> None:
        super().__init__(f"vLLM answered {status_code}: {detail}")
        self.status_code = status_code
        self.detail = detail


@dataclass(frozen=True)
class PromptLogprobs:
    """Per-token log-probabilities of a prompt; the first token has none (None)."""

    token_ids: list[int]
    logprobs: list[float | None]

    def sum_from(self, start: int) -> float:
        """Sum of the log-probabilities of tokens[start:]."""
        return float(sum(lp for lp in self.logprobs[start:] if lp is not None))


class VLLMClient:
    """Async client for one vLLM OpenAI-compatible server."""

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        timeout: float = 600.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ):
        """`transport`: send through it (adapters.vllm.routing's replica router) instead of
        straight to `base_url`."""
        self.base_url = base_url.rstrip("/")
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=5.0),
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=32),
            transport=transport,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Send a request; connection errors and 5xx raise VLLMUnavailable, 4xx VLLMRequestError."""
        try:
            resp = await self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise VLLMUnavailable(f"vLLM at {self.base_url} is unreachable: {exc!r}") from exc
        if resp.status_code >= 500:
            raise VLLMUnavailable(f"vLLM answered {resp.status_code}: {resp.text[:500]}")
        if resp.status_code >= 400:
            raise VLLMRequestError(resp.status_code, _error_detail(resp))
        return resp

    async def open_stream(self, path: str, payload: dict[str, Any]) -> httpx.Response:
        """POST `payload` and return the open streaming response once vLLM accepted it.

        Errors map as in `request` (raised before any chunk is read); the caller reads the body
        with `aiter_lines()` and must `aclose()` the response.
        """
        req = self._http.build_request("POST", path, json=payload)
        try:
            resp = await self._http.send(req, stream=True)
        except httpx.TransportError as exc:
            raise VLLMUnavailable(f"vLLM at {self.base_url} is unreachable: {exc!r}") from exc
        if resp.status_code >= 400:
            try:
                await resp.aread()
            except httpx.TransportError as exc:
                raise VLLMUnavailable(f"vLLM answered {resp.status_code}: {exc!r}") from exc
            finally:
                await resp.aclose()
            if resp.status_code >= 500:
                raise VLLMUnavailable(f"vLLM answered {resp.status_code}: {resp.text[:500]}")
            raise VLLMRequestError(resp.status_code, _error_detail(resp))
        return resp

    async def post_json(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        return (await self.request("POST", path, json=payload)).json()

    async def is_ready(self) -> bool:
        try:
            resp = await self._http.get("/v1/models", timeout=5.0)
        except httpx.TransportError:
            return False
        return resp.status_code == 200

    async def models(self) -> list[str]:
        data = (await self.request("GET", "/v1/models")).json()
        return [m["id"] for m in data.get("data", [])]

    async def completion(self, payload: dict[str, Any]) -> dict[str, Any]:
        return await self.post_json("/v1/completions", payload)

    async def chat(self, payload: dict[str, Any]) -> dict[str, Any]:
        return await self.post_json("/v1/chat/completions", payload)

    async def prompt_logprobs(self, model: str, prompt: str | list[int]) -> PromptLogprobs:
        """Log-probability of every prompt token under `model` (echo, no generation)."""
        data = await self.completion(
            {
                "model": model,
                "prompt": prompt,
                "max_tokens": 1,
                "temperature": 0.0,
                "echo": True,
                "logprobs": 0,
                "prompt_logprobs": 0,
                "return_token_ids": True,
            }
        )
        choice = data["choices"][0]
        raw = choice.get("prompt_logprobs")
        token_ids = choice.get("prompt_token_ids") or data.get("prompt_token_ids") or []
        if raw is None:  # fall back to the echo's logprobs block
            lp = choice["logprobs"]["token_logprobs"]
            return PromptLogprobs(token_ids=list(token_ids), logprobs=list(lp[: len(lp) - 1]))
        values: list[float | None] = []
        for i, entry in enumerate(raw):
            if entry is None:
                values.append(None)
                continue
            tid = token_ids[i] if i < len(token_ids) else None
            pick = entry.get(str(tid)) if tid is not None else None
            if pick is None:
                pick = next(iter(entry.values()))
            values.append(float(pick["logprob"]))
        return PromptLogprobs(token_ids=list(token_ids), logprobs=values)

    async def next_token_logprob(self, model: str, prompt_ids: list[int], token_id: int) -> float:
        """Log-probability of `token_id` right after `prompt_ids` under `model`.

        Unlike `prompt_logprobs`, this reads vLLM's prefix cache (prompt log-probabilities make
        vLLM recompute the whole prompt), so scoring behind a long shared context costs the new
        tokens only. `allowed_token_ids` makes the one generated token `token_id`; vLLM reports
        its log-probability from the logits before that mask (logprobs mode raw_logprobs).
        """
        data = await self.completion(
            {
                "model": model,
                "prompt": prompt_ids,
                "max_tokens": 1,
                "temperature": 0.0,
                "logprobs": 0,
                "allowed_token_ids": [token_id],
                "return_token_ids": True,
            }
        )
        choice = data["choices"][0]
        got = choice.get("token_ids")
        if got is not None and list(got) != [token_id]:
            raise RuntimeError(f"vLLM generated {got}, not the forced token {token_id}")
        return float(choice["logprobs"]["token_logprobs"][0])

    async def load_lora_adapter(self, name: str, path: str) -> None:
        await self.request(
            "POST", "/v1/load_lora_adapter", json={"lora_name": name, "lora_path": path}
        )

    async def unload_lora_adapter(self, name: str) -> None:
        await self.request("POST", "/v1/unload_lora_adapter", json={"lora_name": name})


def _error_detail(resp: httpx.Response) -> str:
    try:
        body = resp.json()
    except ValueError:
        return resp.text[:500]
    err = body.get("error") if isinstance(body, dict) else None
    if isinstance(err, dict):
        return str(err.get("message") or err)
    if isinstance(body, dict) and "detail" in body:
        return str(body["detail"])
    if isinstance(body, dict) and "message" in body:
        return str(body["message"])
    return resp.text[:500]
