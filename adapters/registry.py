"""The adapter registry: records in the database are the source of truth for which adapters
exist, which weights they are, and which must be loaded in vLLM. vLLM's memory is a cache of it:
after a vLLM restart, `reload_ready_adapters` puts every ready adapter back."""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import re
import secrets
import shutil
import tarfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from service.db.tables import Adapter, utcnow
from service.errors import Conflict, NotFound
from service.storage import LocalStorage

log = logging.getLogger("docadapt.registry")

LIVE = ("queued", "training", "loading", "ready", "failed")
ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")


def served_name_for(adapter_id: str) -> str:
    """vLLM-side name: derived from the random adapter id plus salt, so never reused."""
    return f"{adapter_id}-{secrets.token_hex(3)}"


def check_name_free(session: Session, workspace_id: str, name: str) -> None:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}", name):
        from service.errors import Unprocessable

        raise Unprocessable(
            f"adapter name {name!r} is invalid: use 1-100 letters, digits, '.', '_' or '-'"
        )
    if name == "base" or name.startswith("icl:"):
        from service.errors import Unprocessable

        raise Unprocessable(f"adapter name {name!r} is reserved")
    taken = session.scalar(
        select(Adapter.id).where(
            Adapter.workspace_id == workspace_id, Adapter.name == name, Adapter.status.in_(LIVE)
        )
    )
    if taken is not None:
        raise Conflict(f"an adapter named {name!r} already exists in this workspace ({taken})")


def get_adapter(session: Session, workspace_id: str, adapter_id: str) -> Adapter:
    adapter = session.get(Adapter, adapter_id)
    if adapter is None or adapter.workspace_id != workspace_id or adapter.status == "deleted":
        raise NotFound(f"adapter {adapter_id} not found")
    return adapter


def resolve_served_name(session: Session, workspace_id: str, name_or_id: str) -> Adapter | None:
    """The caller's ready adapter called `name_or_id` (its name or id), else None."""
    return session.scalar(
        select(Adapter).where(
            Adapter.workspace_id == workspace_id,
            (Adapter.name == name_or_id) | (Adapter.id == name_or_id),
            Adapter.status == "ready",
        )
    )


def list_adapters(
    session: Session, workspace_id: str, collection_id: str | None = None
) -> list[Adapter]:
    query = select(Adapter).where(Adapter.workspace_id == workspace_id, Adapter.status != "deleted")
    if collection_id:
        query = query.where(Adapter.collection_id == collection_id)
    return list(session.scalars(query.order_by(Adapter.created_at)))


def artifact_key(adapter: Adapter) -> str:
    return f"workspaces/{adapter.workspace_id}/adapters/{adapter.id}"


def store_artifact(
    storage: LocalStorage, adapter: Adapter, source_dir: Path, extra_files: Sequence[Path] = ()
) -> None:
    """Copy the adapter's files, and `extra_files` that travel with it (its training config,
    metrics, loss curve), into storage and record the checksum of them all on the row."""
    key = artifact_key(adapter)
    target = storage.path(key)
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    for item in [*sorted(source_dir.iterdir()), *extra_files]:
        if item.is_file():
            shutil.copy2(item, target / item.name)
    adapter.artifact_key = key
    adapter.artifact_sha256 = folder_sha256(target)


def folder_sha256(folder: Path) -> str:
    """A checksum over the names and contents of the files in a folder, in name order."""
    h = hashlib.sha256()
    for item in sorted(folder.iterdir()):
        if item.is_file():
            h.update(item.name.encode() + b"\0")
            with item.open("rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    h.update(chunk)
    return h.hexdigest()


def archive_bytes(storage: LocalStorage, adapter: Adapter) -> bytes:
    """The adapter's files as a .tar.gz (a PEFT folder named after the adapter)."""
    if not adapter.artifact_key:
        raise Conflict(f"adapter {adapter.id} has no files yet (status {adapter.status})")
    folder = storage.path(adapter.artifact_key)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for item in sorted(folder.iterdir()):
            if item.is_file():
                tar.add(item, arcname=f"{adapter.name}/{item.name}")
    return buf.getvalue()


def adapter_public(adapter: Adapter) -> dict[str, Any]:
    return {
        "id": adapter.id,
        "name": adapter.name,
        "model": adapter.name,
        "status": adapter.status,
        "status_reason": adapter.status_reason,
        "source": adapter.source,
        "collection_id": adapter.collection_id,
        "augmentation_id": adapter.augmentation_id,
        "review": review_public(adapter.example_selection),
        "job_id": adapter.job_id,
        "base_model": adapter.base_model,
        "base_model_hash": adapter.base_model_hash,
        "dataset_hash": adapter.dataset_hash,
        "document_versions": adapter.document_versions,
        "hyperparameters": adapter.hyperparameters,
        "metrics": adapter.metrics,
        "rank": adapter.rank,
        "artifact_sha256": adapter.artifact_sha256,
        "created_at": adapter.created_at,
        "updated_at": adapter.updated_at,
        "ready_at": adapter.ready_at,
    }


def review_public(selection: dict[str, Any] | None) -> dict[str, Any] | None:
    """Which of its augmentation's examples the adapter trains on, by review state, and the
    hash of their ids (the ids themselves stay in the record); None without an augmentation or
    for adapters requested before reviews existed (they train on every example)."""
    if not selection:
        return None
    return {k: v for k, v in selection.items() if k != "example_ids"}


def set_status(adapter: Adapter, status: str, reason: str | None = None) -> None:
    adapter.status = status
    adapter.status_reason = reason
    adapter.updated_at = utcnow()
    if status == "ready":
        adapter.ready_at = utcnow()


async def activate(
    session_factory: sessionmaker[Session], storage: LocalStorage, loader: Any, adapter_id: str
) -> Adapter:
    """Load an adapter into vLLM and run the canary; the row ends `ready` or `failed` with why.

    `loader` is an adapters.vllm.AdapterLoader for the vLLM that serves this deployment."""
    from adapters.vllm import canary_check

    with session_factory() as session:
        adapter = session.get(Adapter, adapter_id)
        assert adapter is not None and adapter.artifact_key
        path = storage.path(adapter.artifact_key)
        served = adapter.served_name
    try:
        await loader.load(served, path)
        canary = await canary_check(loader.client, served)
        ok, reason = canary.passed, canary.reason
    except Exception as exc:  # noqa: BLE001 - any load failure becomes the adapter's status
        ok, reason = False, f"vLLM could not load the adapter: {exc}"
    if not ok:
        with contextlib.suppress(Exception):  # it may never have loaded
            await loader.unload(served)
    with session_factory() as session:
        adapter = session.get(Adapter, adapter_id)
        assert adapter is not None
        set_status(adapter, "ready" if ok else "failed", None if ok else reason)
        session.commit()
        session.refresh(adapter)
        return adapter


async def reload_ready_adapters(
    session_factory: sessionmaker[Session], storage: LocalStorage, loader: Any
) -> int:
    """Load every ready adapter that vLLM lacks (after a restart); returns how many it loaded."""
    with session_factory() as session:
        rows = list(session.scalars(select(Adapter).where(Adapter.status == "ready")))
    if not rows:
        return 0
    present = set(await loader.client.models())
    loaded = 0
    for row in rows:
        if not row.artifact_key or row.served_name in present:
            continue
        try:
            await loader.load(row.served_name, storage.path(row.artifact_key))
            loaded += 1
        except Exception as exc:  # noqa: BLE001 - one bad adapter must not block the others
            log.error("could not reload adapter %s: %s", row.id, exc)
    return loaded
