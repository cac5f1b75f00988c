"""What the query layer needs from the database: the caller's adapters, a collection's passages,
and a record of every answered query (for cost reports and /metrics)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from service.collections.records import collection_passage_refs
from service.core import metrics
from service.core.errors import Conflict, NotFound, ServiceUnavailable
from service.core.runtime import Runtime
from service.core.suggest import adapter_hint, collection_hint
from service.db.tables import Adapter, QueryRecord
from service.serving.icl_context import PassageRef
from service.serving.serving import QueryService, UsageRecord
from service.training import registry


def build_query_service(runtime: Runtime) -> QueryService:
    data = _QueryData(runtime)
    return QueryService(
        runtime.vllm,
        runtime.tokenizer,
        resolve_adapter=data.resolve_adapter,
        load_collection_passages=data.passages,
        record_usage=data.record,
        hint_unknown=data.hint_unknown,
        max_model_len=runtime.settings.vllm_max_model_len,
        icl_budget_tokens=runtime.settings.icl_budget_tokens,
    )


class _QueryData:
    """The query layer's database reads and writes, each off the event loop in a thread."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.factory: sessionmaker[Session] = runtime.session_factory

    async def resolve_adapter(self, workspace_id: str, name: str) -> str | None:
        return await asyncio.to_thread(self.resolve_adapter_sync, workspace_id, name)

    async def passages(self, workspace_id: str, collection_id: str) -> Sequence[PassageRef] | None:
        return await asyncio.to_thread(self.passages_sync, workspace_id, collection_id)

    async def record(self, record: UsageRecord) -> None:
        await asyncio.to_thread(self.record_sync, record)

    def resolve_adapter_sync(self, workspace_id: str, name: str) -> str | None:
        with self.factory() as session:
            row = session.scalar(
                select(Adapter).where(
                    Adapter.workspace_id == workspace_id,
                    (Adapter.name == name) | (Adapter.id == name),
                    Adapter.status != "deleted",
                )
            )
            if row is None:
                return None
            if not self.runtime.adapters_enabled:
                raise ServiceUnavailable(
                    f"adapters are disabled on this server: {self.runtime.adapters_disabled_reason}"
                )
            if row.status != "ready":
                raise Conflict(
                    f"adapter {name!r} is not ready (status {row.status}"
                    + (f": {row.status_reason}" if row.status_reason else "")
                    + ")",
                    code="adapter_not_ready",
                )
            return row.served_name

    def passages_sync(self, workspace_id: str, collection_id: str) -> Sequence[PassageRef] | None:
        with self.factory() as session:
            try:
                return collection_passage_refs(session, workspace_id, collection_id)
            except NotFound:
                return None

    def record_sync(self, record: UsageRecord) -> None:
        adapter_id = None
        with self.factory() as session:
            if record.adapter:
                found = registry.resolve_served_name(session, record.workspace_id, record.adapter)
                adapter_id = found.id if found else None
            session.add(
                QueryRecord(
                    workspace_id=record.workspace_id,
                    mode=record.mode,
                    model=record.model,
                    adapter_id=adapter_id,
                    collection_id=record.collection_id,
                    prompt_tokens=record.prompt_tokens,
                    completion_tokens=record.completion_tokens,
                    latency_s=record.latency_s,
                    context_truncated=bool(record.context_truncated),
                )
            )
            session.commit()
        metrics.QUERIES.labels(record.mode).inc()
        metrics.PROMPT_TOKENS.labels(record.mode).inc(record.prompt_tokens)
        metrics.COMPLETION_TOKENS.labels(record.mode).inc(record.completion_tokens)
        metrics.LATENCY.labels(record.mode).observe(record.latency_s)

    def hint_unknown(self, workspace_id: str, given: str, param: str) -> str:
        with self.factory() as session:
            if param == "retrieval":
                return collection_hint(session, workspace_id, given, as_model=False)
            if given.startswith("icl:"):  # model 'icl:<a collection's name>'
                return collection_hint(session, workspace_id, given[4:], as_model=True)
            return adapter_hint(session, workspace_id, given)
