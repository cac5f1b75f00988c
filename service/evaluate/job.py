"""The evaluation job: every eval item under every mode (base, icl, rag, adapters, adapters with
retrieval) through the worker's vLLM, each result stored as it comes (the unique (evaluation,
mode, item) row makes a repeat impossible, and a resumed job skips what is stored), then latency
probes and the report.

The icl mode follows the query API's `icl:` policy (service.serving.icl_context): all of the
collection's documents in the prompt when they fit the budget (one shared, cacheable prefix), else
for each question the BM25-most-relevant passages that fit. The budget is the query API's:
min(icl_budget_tokens, max_model_len - the rest of the prompt - the answer's room - slack).
rag puts the question's top passages by the same BM25 ranking in the same template; adapter+rag
sends exactly rag's prompts to an adapter instead of the base model."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from service.collections.records import collection_passage_refs
from service.core.errors import ServiceUnavailable, Unprocessable
from service.db.tables import (
    Adapter,
    Augmentation,
    Collection,
    EvalResult,
    EvalSet,
    Evaluation,
    utcnow,
)
from service.evaluate.evalset import EvalItem
from service.evaluate.scoring import CONTEXT_SEPARATOR, ItemResult, LatencyProbe, Mode, Scorer
from service.jobs.context import JobContext
from service.report.build import build_report
from service.report.costs import AdapterCostInputs, Prices
from service.serving.icl_context import (
    PassageRef,
    build_icl_context,
    fit_budget,
    icl_system_prompt,
    retrieve,
)

log = logging.getLogger("docadapt.evaluate")

KIND = "evaluation"
# Tokens kept free besides the answer, as the query API does (token-boundary effects).


# -- contexts -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class TokenCounts:
    """How the base tokenizer counts what a query sends (see `token_counts`)."""

    text: Callable[[str], int]  # plain text, no special tokens
    prompt: Callable[[str], int]  # a completion prompt, special tokens added as vLLM does
    chat: Callable[[list[dict[str, str]]], int]  # chat messages with the generation prompt
    continuation: Callable[[str, str], int]  # a choice's tokens after a prompt


def token_counts(scorer: Scorer) -> TokenCounts:
    """Counts with the scorer's tokenizer, exactly as the scorer builds its requests."""

    tokenizer = scorer.tokenizer

    def chat(messages: list[dict[str, str]]) -> int:
        # As the query API counts a chat: the rendered template, then its tokens.
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return len(tokenizer.encode(text, add_special_tokens=False))

    return TokenCounts(
        text=lambda t: len(tokenizer.encode(t, add_special_tokens=False)),
        prompt=lambda t: len(scorer.encode_prompt(t)),
        chat=chat,
        continuation=lambda p, c: len(scorer.encode_continuation(p, c)),
    )


def context_budget(
    item: EvalItem,
    counts: TokenCounts,
    *,
    budget_tokens: int,
    max_model_len: int,
    max_tokens: int,
) -> int:
    """Most context tokens `item`'s prompt can take: the query API's ICL budget, for the
    completion prompt a multiple-choice item is scored with (room for its longest choice) or the
    chat a generation item sends (room for `max_tokens`)."""
    if item.choices is not None:
        skeleton = icl_system_prompt("") + CONTEXT_SEPARATOR + item.question
        fixed = counts.prompt(skeleton)
        reserve = max(counts.continuation(skeleton, c) for c in item.choices)
    else:
        messages = [
            {"role": "system", "content": icl_system_prompt("")},
            {"role": "user", "content": item.question},
        ]
        fixed, reserve = counts.chat(messages), max_tokens
    return fit_budget(budget_tokens, max_model_len, fixed, reserve)


@dataclass(frozen=True)
class ModeContext:
    """A mode's context: one text for every item (`shared`), or one per item id."""

    shared: str | None
    per_item: dict[str, str]
    description: str

    def source(self) -> str | Callable[[EvalItem], str]:
        if self.shared is not None:
            return self.shared
        texts = self.per_item
        return lambda item: texts[item.id]


def icl_context(
    items: Sequence[EvalItem],
    passages: Sequence[PassageRef],
    budgets: dict[str, int],
    count_tokens: Callable[[str], int],
) -> ModeContext:
    """The query API's ICL context for each item; shared when every item got all passages."""
    per_item: dict[str, str] = {}
    cut = 0
    empty = 0
    tokens: list[int] = []
    for item in items:
        ctx = build_icl_context(
            passages, item.question, budget_tokens=budgets[item.id], count_tokens=count_tokens
        )
        per_item[item.id] = ctx.text
        cut += ctx.truncated
        empty += ctx.passages_used == 0
        tokens.append(ctx.prompt_tokens)
    if not cut and len(set(per_item.values())) <= 1:
        text = next(iter(per_item.values()), "")
        return ModeContext(
            text,
            {},
            f"all {len(passages)} passages, {max(tokens, default=0)} tokens, "
            "one shared prefix for every item",
        )
    description = (
        f"documents cut to the token budget for {cut} of {len(items)} items "
        f"(BM25-most-relevant passages that fit, {min(tokens)}-{max(tokens)} tokens)"
    )
    if empty:
        description += f"; {empty} items had no room for any passage"
    return ModeContext(None, per_item, description)


def rag_context(
    items: Sequence[EvalItem],
    passages: Sequence[PassageRef],
    budgets: dict[str, int],
    count_tokens: Callable[[str], int],
    top_k: int,
) -> ModeContext:
    """Each item's top `top_k` passages by BM25 (the ICL policy's retriever), in document order,
    cut to the ICL budget when they do not fit."""
    per_item = {}
    for item in items:
        top = retrieve(passages, item.question, top_k)
        ctx = build_icl_context(
            top, item.question, budget_tokens=budgets[item.id], count_tokens=count_tokens
        )
        per_item[item.id] = ctx.text
    return ModeContext(None, per_item, f"top {top_k} of {len(passages)} passages by BM25")


# -- adapters' one-time cost inputs -------------------------------------------------------------


def adapter_cost_record(session: Any, adapter: Adapter) -> dict[str, Any]:
    """What an adapter's records say it consumed, as AdapterCostInputs fields (empty for an
    imported adapter). Teacher tokens come from its augmentation's stats; training tokens and
    wall time from its training metrics (wall time x processes: device-hours)."""
    out: dict[str, Any] = {}
    if adapter.augmentation_id:
        aug = session.get(Augmentation, adapter.augmentation_id)
        stats = (aug.stats if aug is not None else None) or {}
        if stats:
            strategies = stats.get("strategies") or {}
            out["teacher_prompt_tokens"] = int(stats.get("prompt_tokens") or 0)
            out["teacher_completion_tokens"] = int(stats.get("completion_tokens") or 0)
            out["teacher_cached_prompt_tokens"] = min(
                out["teacher_prompt_tokens"],
                sum(int(s.get("cached_prompt_tokens") or 0) for s in strategies.values()),
            )
    metrics = adapter.metrics or {}
    if adapter.source == "trained" and metrics:
        wall = float(metrics.get("job_wall_s") or metrics.get("train_seconds") or 0.0)
        world = max(1, int(metrics.get("world_size") or 1))
        device = str(metrics.get("device") or "")
        out["training_tokens"] = int(metrics.get("tokens_trained") or 0)
        out["training_wall_s"] = wall * world
        # torchrun with several processes means GPUs; a single process says its device if any.
        accelerated = device.startswith("cuda") or (not device and world > 1)
        out["training_hardware"] = "accelerator" if accelerated else "cpu"
    return out


# -- the executor -------------------------------------------------------------------------------


@dataclass
class _Plan:
    items: list[EvalItem]
    modes: list[Mode]
    done: set[tuple[str, str]]
    probes: dict[str, Any]
    meta: dict[str, Any]
    public_model: dict[str, str]  # mode name -> what results call its model


class EvaluationExecutor:
    kind = KIND

    def run(self, ctx: JobContext) -> dict[str, Any]:
        return asyncio.run(self._run(ctx))

    async def _run(self, ctx: JobContext) -> dict[str, Any]:
        from adapters.base_model import load_tokenizer
        from adapters.vllm.client import VLLMClient, VLLMUnavailable
        from adapters.vllm.config import kv_block_size

        if not ctx.vllm_url:
            raise ServiceUnavailable("no vLLM is configured for this worker; nothing can be scored")
        p = ctx.params
        key = ctx.settings.vllm_api_key
        client = VLLMClient(ctx.vllm_url, api_key=key.get_secret_value() if key else None)
        scorer = Scorer(
            client,
            load_tokenizer(ctx.model_dir),
            concurrency=p["concurrency"],
            max_tokens=p["max_tokens"],
            kv_block_tokens=kv_block_size(ctx.settings),
        )
        try:
            plan = self._plan(ctx, scorer)
            total = len(plan.modes) * len(plan.items)
            counter = {"n": len(plan.done)}
            # What earlier attempts stored and this one skips (shows in the job's metrics).
            ctx.progress(counter["n"], total, message="scoring", skipped_results=len(plan.done))
            for mode in plan.modes:
                pending = [i for i in plan.items if (mode.name, i.id) not in plan.done]
                if not pending:
                    continue

                def store(result: ItemResult, mode: Mode = mode) -> None:
                    self._store(
                        ctx, result.model_copy(update={"model": plan.public_model[mode.name]})
                    )
                    counter["n"] += 1
                    ctx.progress(counter["n"], total, message=f"scoring {mode.name}")

                await scorer.score(pending, [mode], on_result=store)
            if p.get("measure_latency", True):
                for mode in plan.modes:
                    if mode.name in plan.probes:
                        continue
                    ctx.progress(total, total, message=f"probing latency of {mode.name}")
                    probe = await scorer.probe_latency(
                        plan.items, mode, samples=p.get("latency_samples", 3)
                    )
                    plan.probes[mode.name] = probe.model_dump()
                    self._save_probes(ctx, plan.probes)
        except VLLMUnavailable as exc:
            raise ServiceUnavailable(f"vLLM became unavailable: {exc}") from exc
        finally:
            await client.aclose()
        ctx.progress(total, total, message="building the report")
        report = self._report(ctx, plan)
        return {
            "evaluation_id": ctx.subject_id,
            "primary_accuracy": report["summary"]["primary_accuracy"],
        }

    def _plan(self, ctx: JobContext, scorer: Scorer) -> _Plan:
        p = ctx.params
        specs: list[dict[str, Any]] = p["mode_specs"]
        with ctx.session_factory() as session:
            ev = session.get(Evaluation, ctx.subject_id)
            assert ev is not None
            ev.status = "running"
            evalset = session.get(EvalSet, ev.evalset_id)
            collection = session.get(Collection, ev.collection_id)
            if evalset is None or collection is None:
                raise Unprocessable("the evaluation's collection or eval set was deleted")
            items = [EvalItem.model_validate(i) for i in evalset.items]
            kinds = {s["kind"] for s in specs}
            needs_passages = bool(kinds & {"icl", "rag", "adapter+rag"})
            passages = (
                collection_passage_refs(session, ev.workspace_id, ev.collection_id)
                if needs_passages
                else []
            )
            if needs_passages and not passages:
                raise Unprocessable(f"collection {collection.id} has no documents any more")
            adapters: dict[str, Adapter] = {}
            for spec in specs:
                if spec["kind"] not in ("adapter", "adapter+rag"):
                    continue
                adapter = session.get(Adapter, spec["adapter_id"])
                if adapter is None or adapter.status != "ready":
                    state = "deleted" if adapter is None else adapter.status
                    raise Unprocessable(
                        f"adapter {spec['name']} ({spec['adapter_id']}) is {state}, not ready"
                    )
                adapters[spec["name"]] = adapter
            done = {
                (m, i)
                for m, i in session.execute(
                    select(EvalResult.mode, EvalResult.item_id).where(
                        EvalResult.evaluation_id == ev.id
                    )
                )
            }
            probes = dict(ev.latency or {})
            specs_by_name = {s["name"]: s for s in specs}
            meta: dict[str, Any] = {
                "title": f"Evaluation of {collection.name}: {evalset.name}",
                "evaluation_id": ev.id,
                "collection": f"{collection.name} ({collection.id})",
                "eval set": f"{evalset.name} ({evalset.id}, {len(items)} items)",
            }
            for name, adapter in adapters.items():
                if specs_by_name[name]["kind"] != "adapter":
                    continue
                meta[f"adapter {name}"] = f"{adapter.id}, {adapter.source}" + (
                    f", augmentation {adapter.augmentation_id}" if adapter.augmentation_id else ""
                )
            session.commit()

        counts = token_counts(scorer)
        budgets = {
            item.id: context_budget(
                item,
                counts,
                budget_tokens=ctx.settings.icl_budget_tokens,
                max_model_len=ctx.settings.vllm_max_model_len,
                max_tokens=p["max_tokens"],
            )
            for item in items
        }
        modes: list[Mode] = []
        public_model: dict[str, str] = {}
        rag: ModeContext | None = None  # rag and adapter+rag share one retrieval
        for spec in specs:
            name, kind = spec["name"], spec["kind"]
            if kind in ("rag", "adapter+rag") and rag is None:
                rag = rag_context(items, passages, budgets, counts.text, p["rag_top_k"])
                meta["rag context"] = rag.description
            if kind == "base":
                modes.append(Mode.base(name=name))
            elif kind == "icl":
                context = icl_context(items, passages, budgets, counts.text)
                modes.append(Mode.icl(context.source(), name=name))
                meta["icl context"] = context.description
            elif kind == "rag":
                assert rag is not None
                modes.append(Mode.rag(rag.source(), name=name))
            elif kind == "adapter+rag":
                assert rag is not None
                modes.append(Mode.adapter_rag(adapters[name].served_name, rag.source(), name))
            else:
                modes.append(Mode.adapter(adapters[name].served_name, name=name))
            public_model[name] = adapters[name].name if name in adapters else "base"
        return _Plan(items, modes, done, probes, meta, public_model)

    def _store(self, ctx: JobContext, result: ItemResult) -> None:
        with ctx.session_factory() as session:
            session.add(
                EvalResult(
                    evaluation_id=ctx.subject_id,
                    mode=result.mode,
                    item_id=result.item_id,
                    category=result.category,
                    correct=result.correct,
                    details=result.model_dump(mode="json"),
                    prompt_tokens=result.prompt_tokens,
                    completion_tokens=result.completion_tokens,
                    latency_s=result.latency_s,
                )
            )
            try:
                session.commit()
            except IntegrityError:
                session.rollback()  # stored by an earlier attempt; never twice

    def _save_probes(self, ctx: JobContext, probes: dict[str, Any]) -> None:
        with ctx.session_factory() as session:
            ev = session.get(Evaluation, ctx.subject_id)
            assert ev is not None
            ev.latency = dict(probes)
            session.commit()

    def _report(self, ctx: JobContext, plan: _Plan) -> dict[str, Any]:
        p = ctx.params
        specs: list[dict[str, Any]] = p["mode_specs"]
        order = {s["name"]: k for k, s in enumerate(specs)}
        position = {item.id: k for k, item in enumerate(plan.items)}
        prices = Prices.from_settings(ctx.settings, **(p.get("prices") or {}))
        with ctx.session_factory() as session:
            rows = session.scalars(
                select(EvalResult.details).where(EvalResult.evaluation_id == ctx.subject_id)
            )
            results = [ItemResult.model_validate(d) for d in rows]
            results = [r for r in results if r.mode in order and r.item_id in position]
            results.sort(key=lambda r: (order[r.mode], position[r.item_id]))
            adapter_inputs: dict[str, AdapterCostInputs] = {}
            knowledge: dict[str, Any] = {}
            meta = dict(plan.meta)
            for spec in specs:
                if spec["kind"] not in ("adapter", "adapter+rag"):
                    continue
                adapter = session.get(Adapter, spec["adapter_id"])
                record = adapter_cost_record(session, adapter) if adapter is not None else {}
                override = (p.get("adapter_costs") or {}).get(spec["adapter_id"]) or {}
                sources = [s for s, v in (("its records", record), ("the request", override)) if v]
                if sources:
                    # adapter+rag pays its adapter's one-time cost too
                    adapter_inputs[spec["name"]] = AdapterCostInputs(**(record | override))
                checked = ((adapter.metrics or {}) if adapter is not None else {}).get("knowledge")
                if spec["kind"] == "adapter" and checked:
                    knowledge[spec["name"]] = checked
                if spec["kind"] == "adapter":
                    meta[f"adapter {spec['name']}"] += (
                        "; one-time cost inputs from " + " and ".join(sources)
                        if sources
                        else "; no one-time cost records"
                    )
        latency = {m: LatencyProbe.model_validate(v) for m, v in plan.probes.items() if m in order}
        meta["generated_at"] = utcnow().isoformat(timespec="seconds")
        report = build_report(
            results,
            prices=prices,
            adapters=adapter_inputs,
            latency=latency,
            meta=meta,
            knowledge=knowledge,
        )
        with ctx.session_factory() as session:
            ev = session.get(Evaluation, ctx.subject_id)
            assert ev is not None
            ev.report = report
            session.commit()
        return report

    def on_end(self, ctx: JobContext, status: str, error: str | None) -> None:
        with ctx.session_factory() as session:
            ev = session.get(Evaluation, ctx.subject_id)
            if ev is None:
                return
            ev.status = status
            ev.finished_at = utcnow()
            session.commit()
