from __future__ import annotations

import contextlib
import shutil
import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, UploadFile, status
from fastapi.responses import Response
from sqlalchemy import select

from adapters.base_model import model_fingerprint
from service.audit.log import AuditEntry
from service.augment.examples import select_training_examples
from service.core.deps import CurrentWorkspace, JobBudget, RuntimeDep, SessionDep, audited
from service.core.errors import (
    Conflict,
    PayloadTooLarge,
    ServiceUnavailable,
    Unprocessable,
)
from service.core.openapi import binary_body, errors
from service.core.owned import get_owned
from service.db.tables import Adapter, Augmentation
from service.jobs import records
from service.training import registry
from service.training.schemas import AdapterCreate, AdapterCreated, AdapterPublic, AdaptersPublic

router = APIRouter(tags=["adapters"])


@router.post(
    "/v1/collections/{collection_id}/adapters",
    status_code=status.HTTP_201_CREATED,
    dependencies=[JobBudget],
    responses=errors(409, 429),
)
def create_adapter(
    collection_id: str,
    body: AdapterCreate,
    session: SessionDep,
    runtime: RuntimeDep,
    workspace: CurrentWorkspace,
) -> AdapterCreated:
    """Queue a training job; the adapter is served once it is trained and passes the canary."""
    from adapters.train import TrainConfig
    from service.collections.records import get_collection, list_documents
    from service.training.job import KIND

    collection = get_collection(session, workspace.id, collection_id)
    registry.check_name_free(session, workspace.id, body.name)
    try:
        config = TrainConfig.from_dict(body.hyperparameters)
    except (TypeError, ValueError) as exc:
        raise Unprocessable(f"invalid hyperparameters: {exc}", code="invalid_parameters") from exc
    problems = config.validate(runtime.settings.vllm_max_lora_rank)
    if problems:
        raise Unprocessable(
            "invalid hyperparameters: " + "; ".join(problems),
            code="invalid_parameters",
            details={"problems": problems},
        )
    docs = list_documents(session, workspace.id, collection.id)
    if not docs:
        raise Unprocessable(f"collection {collection.id} has no documents to train on")
    if body.augmentation_id:
        aug = get_owned(session, Augmentation, body.augmentation_id, workspace.id, "augmentation")
        if aug.collection_id != collection.id:
            raise Unprocessable(f"augmentation {aug.id} belongs to another collection")
        if aug.status != "succeeded":
            raise Unprocessable(f"augmentation {aug.id} is {aug.status}, not succeeded")
        selection = select_training_examples(session, aug, body.examples)
    elif "examples" in body.model_fields_set:
        raise Unprocessable(
            "`examples` chooses among an augmentation's examples: give `augmentation_id` too"
        )
    else:
        selection = None
    holdout = None
    if body.holdout_evalset_id:
        from service.evaluate.evalsets import apply_holdout, resolve_holdout

        holdout = resolve_holdout(session, workspace.id, collection.id, body.holdout_evalset_id)
        selection = apply_holdout(session, selection, holdout)
    from dataclasses import asdict

    adapter = Adapter(
        workspace_id=workspace.id,
        name=body.name,
        collection_id=collection.id,
        augmentation_id=body.augmentation_id,
        source="trained",
        status="queued",
        base_model=runtime.base_model_name,
        base_model_hash=model_fingerprint(runtime.model_dir),
        document_versions={d.id: d.text_sha256 for d in docs},
        example_selection=selection,
        hyperparameters={
            "mode": body.mode,
            "train": asdict(config),
            **({"holdout": holdout} if holdout else {}),
        },
        rank=config.rank,
    )
    registry.add_adapter(session, adapter)  # a 409 if a concurrent request took the name
    job = records.create_job(
        session,
        workspace.id,
        KIND,
        {"adapter_id": adapter.id},
        subject_id=adapter.id,
        max_active=runtime.settings.max_active_jobs_per_workspace,
    )
    adapter.job_id = job.id
    session.commit()
    return AdapterCreated(**dict(registry.adapter_public(adapter)), job=records.job_public(job))


MAX_ADAPTER_ARCHIVE_BYTES = 512 * 1024 * 1024


def require_serving(runtime: RuntimeDep) -> Any:
    if runtime.vllm is None:
        raise ServiceUnavailable("no vLLM server is configured; adapters cannot be loaded")
    if not runtime.adapters_enabled:
        raise ServiceUnavailable(f"adapters are disabled: {runtime.adapters_disabled_reason}")
    return runtime.vllm


@router.post(
    "/v1/adapters/import", status_code=status.HTTP_201_CREATED, responses=errors(409, 413, 503)
)
async def import_adapter(
    file: Annotated[UploadFile, File(description="A PEFT LoRA adapter as .tar.gz or .zip")],
    name: Annotated[str, Form(description="The adapter's name in this workspace")],
    session: SessionDep,
    runtime: RuntimeDep,
    workspace: CurrentWorkspace,
) -> AdapterPublic:
    from adapters.peft_validation import safe_extract_archive, validate_peft_adapter

    require_serving(runtime)
    registry.check_name_free(session, workspace.id, name)
    data = await file.read(MAX_ADAPTER_ARCHIVE_BYTES + 1)
    if len(data) > MAX_ADAPTER_ARCHIVE_BYTES:
        raise PayloadTooLarge(f"adapter archive larger than {MAX_ADAPTER_ARCHIVE_BYTES} bytes")
    scratch = Path(tempfile.mkdtemp(dir=runtime.settings.data_dir, prefix=".import-"))
    try:
        try:
            folder = safe_extract_archive(data, scratch)
        except ValueError as exc:
            raise Unprocessable(f"{file.filename}: {exc}", code="invalid_adapter") from exc
        problems = validate_peft_adapter(
            folder, runtime.model_dir, runtime.settings.vllm_max_lora_rank
        )
        if problems:
            raise Unprocessable(
                f"{file.filename} is not an adapter vLLM can serve on this base model: "
                + "; ".join(problems),
                code="invalid_adapter",
                details={"problems": problems},
            )
        import json

        config = json.loads((folder / "adapter_config.json").read_text())
        adapter = Adapter(
            workspace_id=workspace.id,
            name=name,
            source="imported",
            status="loading",
            base_model=runtime.base_model_name,
            base_model_hash=model_fingerprint(runtime.model_dir),
            hyperparameters={k: config.get(k) for k in ("r", "lora_alpha", "target_modules")},
            rank=int(config.get("r") or 0),
        )
        registry.add_adapter(session, adapter)
        registry.store_artifact(runtime.storage, adapter, folder)
        session.commit()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    adapter = await registry.activate(
        runtime.session_factory, runtime.storage, runtime.adapter_loader, adapter.id
    )
    public = registry.adapter_public(adapter)
    if adapter.status != "ready":
        raise Unprocessable(
            f"adapter {adapter.id} failed its check after loading: {adapter.status_reason}",
            code="adapter_check_failed",
            details={"adapter": public.model_dump(mode="json")},
        )
    return public


@router.get("/v1/adapters")
def list_adapters(
    session: SessionDep, workspace: CurrentWorkspace, collection_id: str | None = None
) -> AdaptersPublic:
    rows = registry.list_adapters(session, workspace.id, collection_id)
    return AdaptersPublic(data=[registry.adapter_public(a) for a in rows])


@router.get("/v1/adapters/{adapter_id}")
def get_adapter(adapter_id: str, session: SessionDep, workspace: CurrentWorkspace) -> AdapterPublic:
    return registry.adapter_public(registry.get_adapter(session, workspace.id, adapter_id))


@router.get(
    "/v1/adapters/{adapter_id}/download",
    response_class=Response,
    responses={
        200: binary_body(
            "application/gzip",
            "A PEFT adapter folder named after the adapter, as .tar.gz: adapter_config.json "
            "(base_model_name_or_path is the base model's name), the weights, the training config "
            "and metrics, and a model card (README.md). X-Artifact-SHA256 is the checksum of "
            "every file but the model card (service.training.registry.folder_sha256).",
        ),
        **errors(409),
    },
)
def download_adapter(
    adapter_id: str, session: SessionDep, runtime: RuntimeDep, workspace: CurrentWorkspace
) -> Response:
    adapter = registry.get_adapter(session, workspace.id, adapter_id)
    files = registry.export_files(runtime.storage, adapter, _model_card(session, adapter))
    return Response(
        registry.archive_bytes(adapter, files),
        media_type="application/gzip",
        headers={
            "Content-Disposition": f'attachment; filename="{adapter.name}.tar.gz"',
            "X-Artifact-SHA256": registry.files_sha256(files),
        },
    )


def _model_card(session: SessionDep, adapter: Adapter) -> str:
    """The adapter's model card: its record, its documents' names and its augmentation's
    strategies (adapters.model_card)."""
    from adapters.model_card import render_model_card
    from service.db.tables import Document

    names = [
        d.filename
        for d in session.scalars(
            select(Document)
            .where(Document.id.in_(list(adapter.document_versions or {})))
            .order_by(Document.created_at, Document.id)
        )
    ]
    strategies: list[str] = []
    if adapter.augmentation_id:
        aug = session.get(Augmentation, adapter.augmentation_id)
        if aug is not None and aug.workspace_id == adapter.workspace_id:
            strategies = list((aug.params or {}).get("strategies") or [])
    return render_model_card(registry.model_card_facts(adapter, names, strategies))


@router.delete("/v1/adapters/{adapter_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_adapter(
    adapter_id: str,
    session: SessionDep,
    runtime: RuntimeDep,
    workspace: CurrentWorkspace,
    audit: Annotated[AuditEntry, audited("adapter.delete", "adapter", "adapter_id")],
) -> None:
    adapter = registry.get_adapter(session, workspace.id, adapter_id)
    audit.resource_id, audit.details = adapter.id, {"name": adapter.name}
    if adapter.status in ("queued", "training") and adapter.job_id:
        # A job that already ended (cancelled before a worker took it) has nothing to cancel.
        with contextlib.suppress(Conflict):
            records.request_cancel(session, workspace.id, adapter.job_id)
    if runtime.adapter_loader is not None and adapter.status == "ready":
        await runtime.adapter_loader.unload(adapter.served_name)
    if adapter.artifact_key:
        runtime.storage.delete_tree(adapter.artifact_key)
    registry.set_status(adapter, "deleted")
    adapter.artifact_key = None
    session.commit()
