"""The evaluation job: every eval item under every mode (base, icl, rag, adapters, adapters with
retrieval) through the worker's vLLM, each result stored as it comes (the unique (evaluation,
mode, item) row makes a repeat impossible, and a resumed job skips what is stored), then latency
probes and the report.

The modes' contexts (icl, rag) are built in `service.evaluate.contexts`."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

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
from service.evaluate.contexts import (
    ModeContext,
    TokenCounts,
    context_budget,
    icl_context,
    rag_context,
    token_counts,
)
from service.evaluate.evalset import EvalItem
from service.evaluate.scoring import ItemResult, LatencyProbe, Mode, Scorer
from service.jobs.context import JobContext
from service.report.build import build_report
from service.report.costs import AdapterCostInputs, Prices
from service.serving.icl_context import PassageRef

log = logging.getLogger("docadapt.evaluate")

KIND = "evaluation"


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
        from adapters.vllm.client import VLLMUnavailable
        from adapters.vllm.config import kv_block_size
        from adapters.vllm.routing import connect

        if not ctx.vllm_url:
            raise ServiceUnavailable("no vLLM is configured for this worker; nothing can be scored")
        p = ctx.params
        key = ctx.settings.vllm_api_key
        client = connect(ctx.vllm_url, api_key=key.get_secret_value() if key else None)
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
            passages = _passages_for(session, ev, collection, specs)
            adapters = _ready_adapters(session, specs)
            done = {
                (m, i)
                for m, i in session.execute(
                    select(EvalResult.mode, EvalResult.item_id).where(
                        EvalResult.evaluation_id == ev.id
                    )
                )
            }
            probes = dict(ev.latency or {})
            meta = _report_meta(ev, collection, evalset, len(items), adapters, specs)
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
        modes, public_model = _modes(
            specs, items, passages, budgets, counts, p["rag_top_k"], adapters, meta
        )
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


def _passages_for(
    session: Session, ev: Evaluation, collection: Collection, specs: list[dict[str, Any]]
) -> list[PassageRef]:
    """The collection's passages when a mode puts documents in its prompts (none otherwise)."""
    kinds = {s["kind"] for s in specs}
    needs_passages = bool(kinds & {"icl", "rag", "adapter+rag"})
    passages = (
        collection_passage_refs(session, ev.workspace_id, ev.collection_id)
        if needs_passages
        else []
    )
    if needs_passages and not passages:
        raise Unprocessable(f"collection {collection.id} has no documents any more")
    return passages


def _ready_adapters(session: Session, specs: list[dict[str, Any]]) -> dict[str, Adapter]:
    """The adapter of each adapter mode by the mode's name; 422 for one no longer ready."""
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
    return adapters


def _report_meta(
    ev: Evaluation,
    collection: Collection,
    evalset: EvalSet,
    item_count: int,
    adapters: dict[str, Adapter],
    specs: list[dict[str, Any]],
) -> dict[str, Any]:
    """The report's description of the evaluation (the modes add their contexts')."""
    specs_by_name = {s["name"]: s for s in specs}
    meta: dict[str, Any] = {
        "title": f"Evaluation of {collection.name}: {evalset.name}",
        "evaluation_id": ev.id,
        "collection": f"{collection.name} ({collection.id})",
        "eval set": f"{evalset.name} ({evalset.id}, {item_count} items)",
    }
    for name, adapter in adapters.items():
        if specs_by_name[name]["kind"] != "adapter":
            continue
        meta[f"adapter {name}"] = f"{adapter.id}, {adapter.source}" + (
            f", augmentation {adapter.augmentation_id}" if adapter.augmentation_id else ""
        )
    return meta


def _modes(
    specs: list[dict[str, Any]],
    items: list[EvalItem],
    passages: list[PassageRef],
    budgets: dict[str, int],
    counts: TokenCounts,
    rag_top_k: int,
    adapters: dict[str, Adapter],
    meta: dict[str, Any],
) -> tuple[list[Mode], dict[str, str]]:
    """Each spec's scoring mode with its context, and the model name each reports under (the
    icl and rag contexts' descriptions are added to `meta`)."""
    modes: list[Mode] = []
    public_model: dict[str, str] = {}
    rag: ModeContext | None = None  # rag and adapter+rag share one retrieval
    for spec in specs:
        name, kind = spec["name"], spec["kind"]
        if kind in ("rag", "adapter+rag") and rag is None:
            rag = rag_context(items, passages, budgets, counts.text, rag_top_k)
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
    return modes, public_model
