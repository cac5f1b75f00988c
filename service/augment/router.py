from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, status
from fastapi.responses import StreamingResponse
from pydantic import ValidationError
from sqlalchemy import select

from service.augment.examples import (
    count_matching,
    example_public,
    examples_query,
    get_example,
    review_counts,
    review_example,
    review_examples,
)
from service.augment.job import KIND, augmentation_stats, build_params
from service.augment.schemas import (
    EXAMPLE_STRATEGIES,
    AugmentationCreate,
    AugmentationPublic,
    AugmentationsPublic,
    ExampleFilter,
    ExamplePublic,
    ExampleReviewCreate,
    ExamplesPublic,
    ExamplesReviewCreate,
    ExamplesReviewPublic,
    ReviewState,
)
from service.augment.teachers import job_teacher
from service.collections.records import get_collection, list_documents
from service.core.deps import (
    CurrentWorkspace,
    JobBudget,
    RuntimeDep,
    SessionDep,
    read_jsonl_body,
)
from service.core.errors import (
    Unprocessable,
)
from service.core.jsonl import LineError, json_objects, refusal
from service.core.openapi import errors
from service.core.owned import get_owned
from service.db.tables import Augmentation, AugmentedExample, utcnow
from service.jobs import records

router = APIRouter(tags=["augmentations"])


def augmentation_public(session: SessionDep, aug: Augmentation) -> AugmentationPublic:
    job = session.get(records.Job, aug.job_id) if aug.job_id else None
    stats = aug.stats or {}
    if aug.status in ("queued", "running"):  # live figures while the job runs
        stats = augmentation_stats(session, aug.id, previous=aug.stats)
    return AugmentationPublic.model_validate(
        {
            "id": aug.id,
            "collection_id": aug.collection_id,
            "status": aug.status,
            "source": aug.source,
            "params": aug.params,
            "document_count": len(aug.document_ids or []),
            "stats": stats,
            "job": records.job_public(job) if job else None,
            "created_at": aug.created_at,
            "finished_at": aug.finished_at,
        }
    )


def get_augmentation(session: SessionDep, workspace_id: str, augmentation_id: str) -> Augmentation:
    return get_owned(session, Augmentation, augmentation_id, workspace_id, "augmentation")


@router.post(
    "/v1/collections/{collection_id}/augmentations",
    status_code=status.HTTP_201_CREATED,
    dependencies=[JobBudget],
    responses=errors(429),
)
def create_augmentation(
    collection_id: str,
    body: AugmentationCreate,
    session: SessionDep,
    runtime: RuntimeDep,
    workspace: CurrentWorkspace,
) -> AugmentationPublic:
    collection = get_collection(session, workspace.id, collection_id)
    docs = list_documents(session, workspace.id, collection.id)
    if not docs:
        raise Unprocessable(f"collection {collection.id} has no documents to augment")
    params = body.model_dump(exclude_none=True)
    problems = build_params(params, None).validate()
    if problems:
        raise Unprocessable("; ".join(problems), code="invalid_parameters")
    teacher = job_teacher(params.pop("teacher", None), runtime.settings, runtime.secret_key)
    if teacher is not None:
        params["teacher"] = teacher
    has_endpoint = teacher is not None and ("name" in teacher or "base_url" in teacher)
    if not has_endpoint and runtime.vllm is None and not runtime.settings.teacher_base_url:
        raise Unprocessable(
            "no teacher: this service has no vLLM and no DOCADAPT_TEACHER_BASE_URL; "
            "name one with `teacher.name` or `teacher.base_url`",
            code="no_teacher",
        )
    aug = Augmentation(
        workspace_id=workspace.id,
        collection_id=collection.id,
        params={k: v for k, v in params.items() if k != "teacher"},
        document_ids=[d.id for d in docs],
    )
    session.add(aug)
    session.flush()
    job = records.create_job(
        session,
        workspace.id,
        KIND,
        params,
        subject_id=aug.id,
        max_active=runtime.settings.max_active_jobs_per_workspace,
    )
    aug.job_id = job.id
    session.commit()
    return augmentation_public(session, aug)


@router.get("/v1/collections/{collection_id}/augmentations")
def list_augmentations(
    collection_id: str, session: SessionDep, workspace: CurrentWorkspace
) -> AugmentationsPublic:
    get_collection(session, workspace.id, collection_id)
    rows = session.scalars(
        select(Augmentation)
        .where(Augmentation.collection_id == collection_id)
        .order_by(Augmentation.created_at)
    )
    return AugmentationsPublic(data=[augmentation_public(session, a) for a in rows])


@router.get("/v1/augmentations/{augmentation_id}")
def read_augmentation(
    augmentation_id: str, session: SessionDep, workspace: CurrentWorkspace
) -> AugmentationPublic:
    return augmentation_public(session, get_augmentation(session, workspace.id, augmentation_id))


def example_filter(
    strategy: Annotated[str | None, Query(description=", ".join(EXAMPLE_STRATEGIES))] = None,
    review: Annotated[ReviewState | None, Query()] = None,
    flagged: Annotated[bool | None, Query()] = None,
    score_below: Annotated[
        float | None, Query(description="Only examples with a score below this.")
    ] = None,
    score_above: Annotated[
        float | None, Query(description="Only examples with a score above this.")
    ] = None,
) -> ExampleFilter:
    """The listing's filters; a bad value is a 422 that names it."""
    try:
        return ExampleFilter(
            strategy=strategy,
            review=review,
            flagged=flagged,
            score_below=score_below,
            score_above=score_above,
        )
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg'].removeprefix('Value error, ')}"
            for e in exc.errors()
        )
        raise Unprocessable(f"invalid filter: {problems}", code="invalid_filter") from exc


ExampleFilterDep = Annotated[ExampleFilter, Depends(example_filter)]


def _example_json(row: AugmentedExample) -> dict[str, Any]:
    return example_public(row).model_dump(mode="json")


@router.get(
    "/v1/augmentations/{augmentation_id}/examples",
    response_model=None,
    responses={
        200: {
            "description": "format=jsonl (the default): every matching example, one JSON object "
            "a line; format=json: one page with the total and the review counts.",
            "model": ExamplesPublic,
            "content": {"application/x-ndjson": {"schema": {"type": "string"}}},
        }
    },
)
def read_examples(
    augmentation_id: str,
    session: SessionDep,
    runtime: RuntimeDep,
    workspace: CurrentWorkspace,
    filters: ExampleFilterDep,
    format: str = Query("jsonl", pattern="^(jsonl|json)$"),
    offset: int = Query(0, ge=0),
    limit: int = Query(100, ge=1, le=1000),
) -> StreamingResponse | dict[str, Any]:
    """JSONL streams every matching example; JSON gives one page (offset, limit), the matching
    total and the whole augmentation's counts by review state."""
    aug = get_augmentation(session, workspace.id, augmentation_id)
    query = examples_query(aug.id, filters)
    if format == "json":
        rows = session.scalars(query.offset(offset).limit(limit))
        return ExamplesPublic(
            data=[example_public(r) for r in rows],
            total=count_matching(session, aug.id, filters),
            offset=offset,
            limit=limit,
            counts=review_counts(session, aug.id),
        ).model_dump(mode="json")

    def lines() -> Iterator[bytes]:
        with runtime.session_factory() as s:
            for row in s.scalars(query.execution_options(yield_per=500)):
                yield (json.dumps(_example_json(row)) + "\n").encode()

    return StreamingResponse(lines(), media_type="application/x-ndjson")


@router.get("/v1/augmentations/{augmentation_id}/examples/{example_id}")
def read_example(
    augmentation_id: str, example_id: int, session: SessionDep, workspace: CurrentWorkspace
) -> ExamplePublic:
    aug = get_augmentation(session, workspace.id, augmentation_id)
    return example_public(get_example(session, aug, example_id))


@router.post(
    "/v1/augmentations/{augmentation_id}/examples/{example_id}/review", responses=errors(409)
)
def review_one_example(
    augmentation_id: str,
    example_id: int,
    body: ExampleReviewCreate,
    session: SessionDep,
    workspace: CurrentWorkspace,
) -> ExamplePublic:
    """Approve, reject or reset (to pending) one example; the note replaces the previous one."""
    aug = get_augmentation(session, workspace.id, augmentation_id)
    row = review_example(session, aug, example_id, body.decision, body.note)
    session.commit()
    return example_public(row)


@router.post("/v1/augmentations/{augmentation_id}/review", responses=errors(409))
def review_many_examples(
    augmentation_id: str,
    body: ExamplesReviewCreate,
    session: SessionDep,
    workspace: CurrentWorkspace,
) -> ExamplesReviewPublic:
    """One decision for the examples named by `example_ids` (all or nothing: an id that is not
    this augmentation's is a 404) or for every example matching `filter`."""
    aug = get_augmentation(session, workspace.id, augmentation_id)
    updated = review_examples(
        session,
        aug,
        body.decision,
        body.note,
        example_ids=body.example_ids,
        example_filter=body.filter,
    )
    session.commit()
    return ExamplesReviewPublic(updated=updated, counts=review_counts(session, aug.id))


_UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "description": 'JSONL, one statement per line: {"text": ..., "document_id"?: ...}; other '
        "keys are ignored, so the JSONL of GET /v1/augmentations/{id}/examples uploads as is.",
        "content": {
            "application/x-ndjson": {"schema": {"type": "string"}},
            "text/plain": {"schema": {"type": "string"}},
        },
    }
}


def _parse_uploaded_lines(
    data: bytes, document_ids: set[str]
) -> tuple[list[tuple[int, str, str | None, str | None]], list[LineError]]:
    """(line, text, document_id, source strategy) per statement, and every bad line's problem."""
    objects, errors = json_objects(data)
    rows: list[tuple[int, str, str | None, str | None]] = []
    for number, record in objects:
        text = record.get("text")
        if not isinstance(text, str) or not text.strip():
            errors.append(LineError(line=number, message='"text" must be a non-empty string'))
            continue
        doc = record.get("document_id")
        if doc is not None and (not isinstance(doc, str) or doc not in document_ids):
            message = f"document_id {doc!r} is not a document of the collection"
            errors.append(LineError(line=number, message=message))
            continue
        strategy = record.get("strategy")
        rows.append((number, text.strip(), doc, strategy if isinstance(strategy, str) else None))
    if not rows and not errors:
        errors.append(LineError(line=0, message="no statements: the body has no non-blank line"))
    return rows, errors


@router.post(
    "/v1/collections/{collection_id}/augmentations/upload",
    status_code=status.HTTP_201_CREATED,
    openapi_extra=_UPLOAD_BODY,
    responses=errors(413, 415),
)
async def upload_augmentation(
    collection_id: str,
    request: Request,
    session: SessionDep,
    runtime: RuntimeDep,
    workspace: CurrentWorkspace,
) -> AugmentationPublic:
    """Store statements written elsewhere (another teacher, a person, a benchmark's truth) as a
    finished augmentation (source "uploaded") that adapters can train on; whole, or refused
    (422) naming every bad line."""
    collection = get_collection(session, workspace.id, collection_id)
    data, _ = await read_jsonl_body(request, runtime.settings.max_upload_bytes, "upload")
    docs = list_documents(session, workspace.id, collection.id)
    rows, errors = _parse_uploaded_lines(data, {d.id for d in docs})
    if errors:
        raise Unprocessable(
            refusal(errors, "upload"),
            code="invalid_upload",
            details={"errors": [e.model_dump() for e in sorted(errors, key=lambda e: e.line)]},
        )
    aug = Augmentation(
        workspace_id=workspace.id,
        collection_id=collection.id,
        params={"strategies": ["uploaded"], "statements": len(rows)},
        document_ids=[d.id for d in docs],
        source="uploaded",
        status="succeeded",
        finished_at=utcnow(),
    )
    session.add(aug)
    session.flush()
    for number, text, doc, source_strategy in rows:
        provenance: dict[str, Any] = {"strategy": "uploaded", "line": number}
        if source_strategy:
            provenance["source_strategy"] = source_strategy
        session.add(
            AugmentedExample(
                augmentation_id=aug.id,
                strategy="uploaded",
                unit_key=f"upload:{number}",
                document_id=doc,
                text=text,
                provenance=provenance,
            )
        )
    session.flush()
    aug.stats = augmentation_stats(session, aug.id)
    session.commit()
    return augmentation_public(session, aug)
