"""The query layer behind `/v1/chat/completions` and `/v1/completions`, usable without HTTP.

`QueryService` resolves `model` (`base`, `icl:<collection id>`, or an adapter name of the caller's
workspace) to what vLLM serves, builds the ICL context when asked (with `retrieval`: the
collection's top passages for the question, mode `rag` on `base` and `adapter+rag` on an adapter,
as the evaluation's modes of those names build them), checks the request with the guard (counting
prompt tokens with the model's tokenizer), forwards it to vLLM, rewrites `model` in the answer
back to what the caller asked, and hands a `UsageRecord` to `record_usage`.

The API layer turns the results into HTTP: `JSONResult` -> JSON response, `StreamResult` -> an
event stream (`text/event-stream`), both with `headers`; every error raised is a
`service.core.errors.DocadaptError` (`RequestRejected` 400, `ModelNotFound` and `CollectionNotFound`
404, `EngineRejected` 400, `EngineUnavailable` 503).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any, TypeVar

from adapters.tokens import TokenCounter
from adapters.vllm.client import VLLMClient
from service.serving.engine import (
    Forwarder,
    MaybeAwaitable,
    Prepared,
    RecordUsage,
    Target,
    maybe_await,
)
from service.serving.errors import (
    CollectionNotFound,
    ModelNotFound,
)
from service.serving.guard import GuardLimits, RequestRejected, check_prompt_length, check_request
from service.serving.guard import engine_fields as guarded_fields
from service.serving.icl_context import (
    ContextResult,
    PassageRef,
    build_icl_context,
    fit_budget,
    icl_system_prompt,
    retrieve,
)
from service.serving.protocol import (
    ChatCompletionRequest,
    CompletionRequest,
    Retrieval,
    parse_chat_request,
    parse_completion_request,
)
from service.serving.results import JSONResult, StreamResult, UsageRecord

# Callers import the results from here, where the query layer makes them.
__all__ = ["JSONResult", "QueryService", "StreamResult", "UsageRecord"]

ICL_PREFIX = "icl:"
BASE_MODEL = "base"
# Separates the ICL prefix from the user's prompt on /v1/completions.
COMPLETION_CONTEXT_SEPARATOR = "\n\n"

_T = TypeVar("_T")
ResolveAdapter = Callable[[str, str], MaybeAwaitable[str | None]]
LoadPassages = Callable[[str, str], MaybeAwaitable[Sequence[PassageRef] | None]]


class QueryService:
    """Answers OpenAI-style chat and completion requests for a workspace through one vLLM."""

    def __init__(
        self,
        client: VLLMClient,
        tokenizer: Any,
        *,
        resolve_adapter: ResolveAdapter,
        load_collection_passages: LoadPassages,
        record_usage: RecordUsage | None = None,
        hint_unknown: Callable[[str, str, str], str] | None = None,
        max_model_len: int,
        icl_budget_tokens: int,
        icl_answer_reserve: int = 512,
        base_model: str = BASE_MODEL,
        limits: GuardLimits | None = None,
    ) -> None:
        """Build once at start.

        `tokenizer`: the base model's Hugging Face tokenizer (chat template included).
        `resolve_adapter(workspace_id, name)`: the vLLM-side name of the workspace's adapter `name`,
        or None (-> 404); it may raise a DocadaptError (e.g. adapter not ready) itself.
        `load_collection_passages(workspace_id, collection_id)`: the collection's passages, or None
        (-> 404). `record_usage(record)`: called once per answered request. All three may be
        plain or async functions.
        `icl_budget_tokens`: most tokens of documents in an `icl:` prompt; less when the question
        and `max_tokens` (or `icl_answer_reserve` when unset) need the room.
        `base_model`: the vLLM model name that `base` and `icl:` requests are sent to.
        `hint_unknown(workspace_id, given, param)`: a sentence saying what a `model` or
        `retrieval` that matched nothing probably meant (a collection's name for its id), or ''.
        """
        self.client = client
        self.tokenizer = tokenizer
        self.tokens = TokenCounter(tokenizer)  # as vLLM counts: budgets and limits rest on it
        self._resolve_adapter = resolve_adapter
        self._load_passages = load_collection_passages
        self._record_usage = record_usage
        self._hint_unknown = hint_unknown
        self.max_model_len = max_model_len
        self.icl_budget_tokens = icl_budget_tokens
        self.icl_answer_reserve = icl_answer_reserve
        self.base_model = base_model
        self.limits = limits or GuardLimits(max_model_len=max_model_len, vocab_size=len(tokenizer))
        # Tokenizing long contexts takes milliseconds: off the event loop, one at a time (a fast
        # tokenizer used from two threads at once can fail with "Already borrowed").
        self._tokenize_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dd-tokenize")

    async def aclose(self) -> None:
        self._tokenize_pool.shutdown(wait=False, cancel_futures=True)

    # ---- public entry points -------------------------------------------------------------

    async def chat(
        self, workspace_id: str, request: ChatCompletionRequest | Mapping[str, Any]
    ) -> JSONResult | StreamResult:
        """Answer a chat completions request (a body dict or a parsed request) for a workspace."""
        return await self._answer(workspace_id, request, parse_chat_request, self._prepare_chat)

    async def completion(
        self, workspace_id: str, request: CompletionRequest | Mapping[str, Any]
    ) -> JSONResult | StreamResult:
        """Answer a completions request (a body dict or a parsed request) for a workspace."""
        return await self._answer(
            workspace_id, request, parse_completion_request, self._prepare_completion
        )

    # ---- internals -----------------------------------------------------------------------

    async def _answer(
        self,
        workspace_id: str,
        request: Any,
        parse: Callable[[Any], Any],
        prepare: Callable[[Any, Any], Any],
    ) -> JSONResult | StreamResult:
        """Parse and check the request, resolve its model, build the upstream call (in the
        tokenizer pool: it tokenizes), send it."""
        started = time.perf_counter()
        req = parse(request)
        check_request(req, self.limits)
        target = await self._resolve(workspace_id, req.model, req.retrieval)
        prepared = await self._in_pool(prepare, req, target)
        return await self._forward(workspace_id, prepared, started)

    async def _in_pool(self, fn: Callable[..., _T], *args: Any) -> _T:
        return await asyncio.get_running_loop().run_in_executor(self._tokenize_pool, fn, *args)

    async def _resolve(
        self, workspace_id: str, model: str, retrieval: Retrieval | None = None
    ) -> Target:
        if model.startswith(ICL_PREFIX):
            if retrieval is not None:
                raise RequestRejected(
                    "An icl: model already has the collection's documents in its prompt; "
                    "'retrieval' is for 'base' or an adapter.",
                    param="retrieval",
                )
            collection_id = model[len(ICL_PREFIX) :].strip()
            if not collection_id:
                raise ModelNotFound(model, "Name a collection: 'icl:<collection id>'.")
            passages = await self._passages(workspace_id, collection_id, param="model")
            return Target(
                "icl", model, self.base_model, collection_id=collection_id, passages=passages
            )
        if model == BASE_MODEL:
            target = Target("base", model, self.base_model)
        else:
            engine_name = await maybe_await(self._resolve_adapter(workspace_id, model))
            if engine_name is None:
                hint = await self._hint(workspace_id, model, "model")
                raise ModelNotFound(model, ModelNotFound(model).message + hint if hint else None)
            target = Target("adapter", model, engine_name, adapter=model)
        if retrieval is None:
            return target
        passages = await self._passages(workspace_id, retrieval.collection_id, param="retrieval")
        return replace(
            target,
            mode="rag" if target.mode == "base" else "adapter+rag",
            collection_id=retrieval.collection_id,
            passages=passages,
            top_k=retrieval.top_k,
        )

    async def _passages(
        self, workspace_id: str, collection_id: str, *, param: str
    ) -> Sequence[PassageRef]:
        """The passages of the workspace's collection; 404 for one it cannot reach, 400 when it
        has none yet. `param` is the request field that named it."""
        passages = await maybe_await(self._load_passages(workspace_id, collection_id))
        if passages is None and param == "retrieval":
            error = CollectionNotFound(collection_id)
            error.message += await self._hint(workspace_id, collection_id, param)
            raise error
        if passages is None:
            raise ModelNotFound(
                f"{ICL_PREFIX}{collection_id}",
                f"The collection '{collection_id}' does not exist or you do not have access to it."
                + await self._hint(workspace_id, f"{ICL_PREFIX}{collection_id}", param),
            )
        if not passages:
            raise RequestRejected(
                f"The collection '{collection_id}' has no passages yet; upload documents "
                "before asking it questions.",
                param=param,
            )
        return passages

    async def _hint(self, workspace_id: str, given: str, param: str) -> str:
        if self._hint_unknown is None:
            return ""
        return await asyncio.to_thread(self._hint_unknown, workspace_id, given, param)

    def _icl_context(
        self, target: Target, query: str, fixed_tokens: int, completion_limit: int | None
    ) -> ContextResult:
        """The collection's context for this query, sized to leave room for the rest: every
        passage that fits (icl), or the query's top_k passages by BM25 (retrieval), in the
        evaluation's rag order (document order, cut to the same budget)."""
        reserve = completion_limit if completion_limit is not None else self.icl_answer_reserve
        budget = fit_budget(self.icl_budget_tokens, self.max_model_len, fixed_tokens, reserve)
        passages = target.passages
        if target.top_k is not None:
            passages = retrieve(passages, query, target.top_k)
        context = build_icl_context(
            passages, query, budget_tokens=budget, count_tokens=self.tokens.text
        )
        # Of the collection, not of the retrieved few; `truncated` says the budget cut those.
        context = replace(context, total_passages=len(target.passages))
        if context.passages_used == 0:
            raise RequestRejected(
                f"No room for the collection's documents: the messages take {fixed_tokens} tokens "
                f"and {reserve} are kept for the answer, of a {self.max_model_len}-token context. "
                "Shorten the messages or lower max_tokens.",
                param="max_tokens" if completion_limit else "messages",
            )
        return context

    def _prepare_chat(self, req: ChatCompletionRequest, target: Target) -> Prepared:
        messages = [m.engine_message() for m in req.messages]
        limit = req.completion_limit()
        context: ContextResult | None = None
        if target.passages:
            skeleton = [{"role": "system", "content": icl_system_prompt("")}, *messages]
            context = self._icl_context(
                target, req.last_user_text(), self.tokens.chat(skeleton), limit
            )
            messages = [{"role": "system", "content": icl_system_prompt(context)}, *messages]
        prompt_tokens = self.tokens.chat(messages)
        check_prompt_length(prompt_tokens, limit, self.limits, param="messages")
        payload = {**guarded_fields(req), "model": target.engine_model, "messages": messages}
        return self._finish(req, target, "/v1/chat/completions", payload, prompt_tokens, context)

    def _prepare_completion(self, req: CompletionRequest, target: Target) -> Prepared:
        prompts = req.prompts()
        limit = req.completion_limit()
        context: ContextResult | None = None
        if target.passages:
            if len(prompts) != 1 or not isinstance(prompts[0], str):
                what = "icl: models take" if target.mode == "icl" else "retrieval takes"
                raise RequestRejected(f"{what} one text prompt per request.", param="prompt")
            question = prompts[0]
            skeleton = icl_system_prompt("") + COMPLETION_CONTEXT_SEPARATOR + question
            context = self._icl_context(target, question, self.tokens.prompt(skeleton), limit)
            prompts = [icl_system_prompt(context) + COMPLETION_CONTEXT_SEPARATOR + question]
        counts = [self.tokens.prompt(p) if isinstance(p, str) else len(p) for p in prompts]
        for count in counts:
            check_prompt_length(count, limit, self.limits, param="prompt")
        prompt: Any = prompts[0] if len(prompts) == 1 else prompts
        payload = {**guarded_fields(req), "model": target.engine_model, "prompt": prompt}
        return self._finish(req, target, "/v1/completions", payload, sum(counts), context)

    @staticmethod
    def _finish(
        req: ChatCompletionRequest | CompletionRequest,
        target: Target,
        path: str,
        payload: dict[str, Any],
        prompt_tokens: int,
        context: ContextResult | None,
    ) -> Prepared:
        stream = bool(req.stream)
        if stream:
            # Always ask for the usage chunk: the cost record needs it; it is dropped on the way
            # out when the caller did not ask for it.
            payload["stream_options"] = {"include_usage": True}
        return Prepared(
            target, path, payload, prompt_tokens, context, stream, req.wants_usage_in_stream
        )

    async def _forward(
        self, workspace_id: str, prep: Prepared, started: float
    ) -> JSONResult | StreamResult:
        return await Forwarder(self.client, self._record_usage).forward(workspace_id, prep, started)
