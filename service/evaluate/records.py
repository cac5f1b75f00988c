"""Eval sets and evaluations: storing, validating, reading and rendering, shared by the REST API
and the CLI (no FastAPI here).

Every function that takes a workspace id never returns another workspace's rows: a foreign id is
indistinguishable from a missing one (404)."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from service.collections.records import collection_passage_refs, get_collection
from service.core.config import Settings
from service.core.errors import Conflict, NotFound, Unprocessable
from service.core.jsonl import refusal
from service.core.owned import get_owned
from service.db.tables import Adapter, EvalResult, EvalSet, Evaluation, Job
from service.evaluate.evalset import EvalSetError, parse_evalset_jsonl
from service.evaluate.evalset_schemas import EvalSetPublic
from service.evaluate.evalsets import generated_fields, require_ready
from service.evaluate.job import KIND
from service.evaluate.schemas import EvaluationCreate, EvaluationPublic, ResultsPage
from service.evaluate.stats import accuracy_of
from service.jobs import records
from service.report.costs import AdapterCostInputs, Prices

# Mode names an adapter cannot take (its mode is then called "adapter:<name>").
BUILTIN_MODES = ("base", "icl", "rag", "adapter", "adapter+rag")
# Modes that name no model of their own: they apply to every adapter of `adapter_ids`.
ADAPTER_MODES = ("adapter", "adapter+rag")
# Modes whose prompts carry the collection's passages.
CONTEXT_MODES = ("icl", "rag", "adapter+rag")
REPORT_FORMATS = {
    "json": "application/json",
    "md": "text/markdown; charset=utf-8",
    "html": "text/html; charset=utf-8",
}


# -- eval sets ----------------------------------------------------------------------------------


def create_evalset(
    session: Session, workspace_id: str, collection_id: str, data: bytes, name: str | None
) -> EvalSet:
    """Parse and store a JSONL eval set for a collection, whole or not at all.

    A refused file raises Unprocessable whose message names every bad line (what is wrong with
    the first 50) and whose details list each one as {"line", "message"}."""
    collection = get_collection(session, workspace_id, collection_id)
    try:
        items = parse_evalset_jsonl(data)
    except EvalSetError as exc:
        raise Unprocessable(
            refusal(exc.errors, "eval set"),
            code="invalid_evalset",
            details={"errors": [e.model_dump() for e in exc.errors]},
        ) from exc
    name = (name or "").strip() or f"eval set of {collection.name}"
    if len(name) > 200:
        raise Unprocessable("the eval set name is longer than 200 characters")
    evalset = EvalSet(
        workspace_id=workspace_id,
        collection_id=collection.id,
        name=name,
        items=[item.model_dump(mode="json", exclude_none=True) for item in items],
        item_count=len(items),
    )
    session.add(evalset)
    session.flush()
    return evalset


def get_evalset(session: Session, workspace_id: str, evalset_id: str) -> EvalSet:
    return get_owned(session, EvalSet, evalset_id, workspace_id, "eval set")


def list_evalsets(session: Session, workspace_id: str, collection_id: str) -> list[EvalSet]:
    get_collection(session, workspace_id, collection_id)
    return list(
        session.scalars(
            select(EvalSet)
            .where(EvalSet.collection_id == collection_id)
            .order_by(EvalSet.created_at, EvalSet.id)
        )
    )


def evalset_public(evalset: EvalSet, *, with_items: bool = False) -> EvalSetPublic:
    items = evalset.items or []
    out: dict[str, Any] = {
        "id": evalset.id,
        "collection_id": evalset.collection_id,
        "name": evalset.name,
        "item_count": evalset.item_count,
        "multiple_choice_count": sum(1 for i in items if i.get("choices")),
        "categories": sorted({i["category"] for i in items if i.get("category")}),
        "created_at": evalset.created_at,
        **generated_fields(evalset, with_items=with_items),
    }
    if with_items:
        out["items"] = items
    return EvalSetPublic.model_validate(out)


# -- creating an evaluation ---------------------------------------------------------------------


def _find_adapter(session: Session, workspace_id: str, ref: str) -> Adapter:
    adapter = session.scalar(
        select(Adapter)
        .where(
            Adapter.workspace_id == workspace_id,
            (Adapter.id == ref) | (Adapter.name == ref),
            Adapter.status != "deleted",
        )
        .order_by(Adapter.created_at.desc())
        .limit(1)
    )
    if adapter is None:
        raise NotFound(f"adapter {ref} not found")
    return adapter


def create_evaluation(
    session: Session, workspace_id: str, body: EvaluationCreate, settings: Settings
) -> Evaluation:
    """Validate the request completely, then store the evaluation and queue its job.

    404: the collection, eval set or an adapter is not in this workspace. 422: the eval set
    belongs to another collection, an adapter is not ready, no mode is asked for, adapter or
    adapter+rag without adapters, icl/rag/adapter+rag on a collection without passages, or
    invalid prices. 429: the workspace already has its most queued or running jobs.

    Every adapter of `adapter_ids` is scored alone (mode kind "adapter", named after it); with
    "adapter+rag" in `modes` each is scored again with the rag passages in its prompt (kind
    "adapter+rag", named "<its mode name>+rag"), after all the adapters alone."""
    collection = get_collection(session, workspace_id, body.collection_id)
    evalset = get_evalset(session, workspace_id, body.evalset_id)
    require_ready(evalset)  # 409 while a generated set is written, or when it failed
    if evalset.collection_id != collection.id:
        raise Unprocessable(
            f"eval set {evalset.id} belongs to collection {evalset.collection_id}, "
            f"not {collection.id}"
        )
    specs, by_ref = _mode_specs(session, workspace_id, body)
    if set(CONTEXT_MODES) & set(body.modes) and not collection_passage_refs(
        session, workspace_id, collection.id
    ):
        raise Unprocessable(
            f"collection {collection.id} has no documents, so icl, rag and adapter+rag have no "
            "context"
        )
    costs = _checked_costs(body, by_ref, settings)
    params = body.model_dump(exclude={"adapter_costs"}) | {
        "mode_specs": specs,
        "adapter_costs": costs,
    }
    evaluation = Evaluation(
        workspace_id=workspace_id,
        collection_id=collection.id,
        evalset_id=evalset.id,
        params=params,
    )
    session.add(evaluation)
    session.flush()
    job = records.create_job(
        session,
        workspace_id,
        KIND,
        params,
        subject_id=evaluation.id,
        max_active=settings.max_active_jobs_per_workspace,
    )
    evaluation.job_id = job.id
    session.flush()
    return evaluation


def _mode_specs(
    session: Session, workspace_id: str, body: EvaluationCreate
) -> tuple[list[dict[str, Any]], dict[str, Adapter]]:
    """The job's mode specs (built-in modes, each adapter alone, then adapter+rag), and the
    ready adapter each reference of `adapter_ids` names."""
    if not body.modes and not body.adapter_ids:
        raise Unprocessable("nothing to evaluate: name at least one mode or adapter")
    asked = [m for m in body.modes if m in ADAPTER_MODES]
    if asked and not body.adapter_ids:
        raise Unprocessable(
            f"mode {asked[0]} scores the adapters of adapter_ids, and none is named: add at "
            "least one adapter id or name to adapter_ids"
        )
    specs: list[dict[str, Any]] = [
        {"name": m, "kind": m} for m in body.modes if m not in ADAPTER_MODES
    ]
    by_ref: dict[str, Adapter] = {}
    for ref in body.adapter_ids:
        adapter = _find_adapter(session, workspace_id, ref)
        if adapter.status != "ready":
            reason = f" ({adapter.status_reason})" if adapter.status_reason else ""
            raise Unprocessable(
                f"adapter {adapter.name} ({adapter.id}) is {adapter.status}, not ready{reason}"
            )
        by_ref[ref] = adapter
        if any(s.get("adapter_id") == adapter.id for s in specs):
            continue
        name = adapter.name
        if name in BUILTIN_MODES or any(s["name"] == name for s in specs):
            name = f"adapter:{adapter.name}"
        specs.append({"name": name, "kind": "adapter", "adapter_id": adapter.id})
    if "adapter+rag" in body.modes:
        specs += _adapter_rag_specs(specs, {a.id: a for a in by_ref.values()})
    return specs, by_ref


def _checked_costs(
    body: EvaluationCreate, by_ref: dict[str, Adapter], settings: Settings
) -> dict[str, dict[str, Any]]:
    """The adapters' cost overrides by adapter id, and the prices, checked (422 when invalid)."""
    costs: dict[str, dict[str, Any]] = {}
    for ref, override in body.adapter_costs.items():
        if ref not in by_ref:
            raise Unprocessable(f"adapter_costs names {ref!r}, which is not one of adapter_ids")
        values = override.model_dump(exclude_none=True)
        try:
            AdapterCostInputs(**values)
        except ValueError as exc:
            raise Unprocessable(f"adapter_costs[{ref!r}]: {exc}") from exc
        costs[by_ref[ref].id] = values
    try:
        Prices.from_settings(settings, **body.prices.model_dump())
    except ValueError as exc:
        raise Unprocessable(f"invalid prices: {exc}") from exc
    return costs


def _adapter_rag_specs(
    specs: list[dict[str, Any]], adapters: dict[str, Adapter]
) -> list[dict[str, Any]]:
    """One adapter+rag spec per adapter spec, named "<adapter mode>+rag" unless that name is
    taken (by an adapter called so), then "adapter+rag:<adapter name>", then by its id.
    `adapters`: the specs' adapters by id."""
    taken = {s["name"] for s in specs}
    out: list[dict[str, Any]] = []
    for spec in [s for s in specs if s["kind"] == "adapter"]:
        adapter = adapters[spec["adapter_id"]]
        candidates = (
            f"{spec['name']}+rag",
            f"adapter+rag:{adapter.name}",
            f"adapter+rag:{adapter.id}",
        )
        name = next(c for c in candidates if c not in taken)
        taken.add(name)
        out.append({"name": name, "kind": "adapter+rag", "adapter_id": adapter.id})
    return out


# -- reading ------------------------------------------------------------------------------------


def get_evaluation(session: Session, workspace_id: str, evaluation_id: str) -> Evaluation:
    return get_owned(session, Evaluation, evaluation_id, workspace_id, "evaluation")


def list_evaluations(
    session: Session, workspace_id: str, collection_id: str | None = None
) -> list[Evaluation]:
    query = select(Evaluation).where(Evaluation.workspace_id == workspace_id)
    if collection_id is not None:
        get_collection(session, workspace_id, collection_id)
        query = query.where(Evaluation.collection_id == collection_id)
    return list(session.scalars(query.order_by(Evaluation.created_at, Evaluation.id)))


def evaluation_summary(session: Session, evaluation: Evaluation) -> dict[str, Any]:
    """Primary accuracy per mode with its 95% interval: from the report once there is one,
    else live from the results stored so far."""
    specs = evaluation.params.get("mode_specs", [])
    if evaluation.report:
        acc = evaluation.report["accuracy"]
        modes = {
            m: {k: acc[m]["correct"][k] for k in ("correct", "n", "accuracy", "ci_low", "ci_high")}
            for m in acc
        }
        return {
            "source": "report",
            "n_items": evaluation.report["summary"]["n_items"],
            "modes": modes,
        }
    counts = {
        mode: (int(n), int(k or 0))
        for mode, n, k in session.execute(
            select(
                EvalResult.mode,
                func.count(EvalResult.id),
                func.sum(case((EvalResult.correct, 1), else_=0)),
            )
            .where(EvalResult.evaluation_id == evaluation.id)
            .group_by(EvalResult.mode)
        )
    }
    evalset = session.get(EvalSet, evaluation.evalset_id)
    modes = {}
    for spec in specs:
        n, k = counts.get(spec["name"], (0, 0))
        modes[spec["name"]] = accuracy_of(k, n).model_dump(exclude={"confidence"})
    return {
        "source": "results so far",
        "n_items": evalset.item_count if evalset else None,
        "modes": modes,
    }


def evaluation_public(session: Session, evaluation: Evaluation) -> EvaluationPublic:
    job = session.get(Job, evaluation.job_id) if evaluation.job_id else None
    params = evaluation.params or {}
    return EvaluationPublic.model_validate(
        {
            "id": evaluation.id,
            "collection_id": evaluation.collection_id,
            "evalset_id": evaluation.evalset_id,
            "status": evaluation.status,
            "modes": params.get("mode_specs", []),
            "params": {k: v for k, v in params.items() if k != "mode_specs"},
            "summary": evaluation_summary(session, evaluation),
            "report_ready": evaluation.report is not None,
            "job": records.job_public(job) if job else None,
            "created_at": evaluation.created_at,
            "finished_at": evaluation.finished_at,
        }
    )


def list_results(
    session: Session, evaluation: Evaluation, *, mode: str | None, offset: int, limit: int
) -> ResultsPage:
    """One page of per-item results (in the order they were stored) and the total."""
    query = select(EvalResult).where(EvalResult.evaluation_id == evaluation.id)
    if mode is not None:
        query = query.where(EvalResult.mode == mode)
    total = session.scalar(select(func.count()).select_from(query.subquery()))
    rows = session.scalars(query.order_by(EvalResult.id).offset(offset).limit(limit))
    return ResultsPage.model_validate(
        {
            "data": [row.details for row in rows],
            "total": int(total or 0),
            "offset": offset,
            "limit": limit,
        }
    )


def finished_report(evaluation: Evaluation) -> dict[str, Any]:
    """The stored report; Conflict (409) while the evaluation has not finished with one."""
    if evaluation.status != "succeeded" or evaluation.report is None:
        raise Conflict(
            f"evaluation {evaluation.id} is {evaluation.status}; its report exists once it has "
            "succeeded",
            code="not_finished",
        )
    return evaluation.report


def render_report(report: dict[str, Any], fmt: str) -> tuple[bytes, str]:
    """The report as `fmt` (json, md or html) and its media type. HTML embeds the plot."""
    from service.report.html import render_html
    from service.report.markdown import render_markdown
    from service.report.plot import render_cost_curve_png

    if fmt == "json":
        body = json.dumps(report, indent=2, ensure_ascii=False, default=str).encode()
    elif fmt == "md":
        body = render_markdown(report).encode()
    elif fmt == "html":
        body = render_html(report, render_cost_curve_png(report)).encode()
    else:
        raise Unprocessable(f"unknown report format {fmt!r}: use json, md or html")
    return body, REPORT_FORMATS[fmt]


def cost_curve_png(report: dict[str, Any]) -> bytes:
    from service.report.plot import render_cost_curve_png

    return render_cost_curve_png(report)
