"""The adapter registry: records in the database are the source of truth for which adapters
exist, which weights they are, and which must be loaded in vLLM. vLLM's memory is a cache of it:
after a vLLM restart, `reload_ready_adapters` puts every ready adapter back."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import json
import logging
import re
import secrets
import shutil
import tarfile
import tempfile
from collections.abc import Sequence
from datetime import UTC
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from service.core.errors import Conflict, NotFound
from service.core.schemas import without_paths
from service.core.storage import Storage
from service.db.tables import Adapter, new_id, utcnow
from service.training.schemas import AdapterPublic

log = logging.getLogger("docadapt.registry")

LIVE = ("queued", "training", "loading", "ready", "failed")
ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")


def served_name_for(adapter_id: str) -> str:
    """vLLM-side name: derived from the random adapter id plus salt, so never reused."""
    return f"{adapter_id}-{secrets.token_hex(3)}"


def check_name_free(session: Session, workspace_id: str, name: str) -> None:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}", name):
        from service.core.errors import Unprocessable

        raise Unprocessable(
            f"adapter name {name!r} is invalid: use 1-100 letters, digits, '.', '_' or '-'"
        )
    if name == "base" or name.startswith("icl:"):
        from service.core.errors import Unprocessable

        raise Unprocessable(f"adapter name {name!r} is reserved")
    taken = session.scalar(
        select(Adapter.id).where(
            Adapter.workspace_id == workspace_id, Adapter.name == name, Adapter.status.in_(LIVE)
        )
    )
    if taken is not None:
        raise Conflict(f"an adapter named {name!r} already exists in this workspace ({taken})")


def add_adapter(session: Session, adapter: Adapter) -> None:
    """Insert a new adapter row, its id and vLLM name set first. `check_name_free` answers the
    common case; a concurrent request that took the name after that check meets the unique index
    of live names, and this answers it the same way: 409, with the transaction rolled back."""
    adapter.id = adapter.id or new_id("ad")
    adapter.served_name = adapter.served_name or served_name_for(adapter.id)
    session.add(adapter)
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        check_name_free(session, adapter.workspace_id, adapter.name)  # the 409, naming the winner
        raise


def get_adapter(session: Session, workspace_id: str, adapter_id: str) -> Adapter:
    """The workspace's live adapter with this id or, failing that, this name (names are unique
    among live adapters); 404 otherwise, saying what the user probably meant when it can."""
    adapter = session.get(Adapter, adapter_id)
    if adapter is None or adapter.workspace_id != workspace_id or adapter.status == "deleted":
        adapter = session.scalar(
            select(Adapter).where(
                Adapter.workspace_id == workspace_id,
                Adapter.name == adapter_id,
                Adapter.status != "deleted",
            )
        )
    if adapter is None:
        from service.core.suggest import adapter_hint

        hint = adapter_hint(session, workspace_id, adapter_id)
        raise NotFound(f"adapter {adapter_id} not found (give its id or its name).{hint}")
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


MODEL_CARD = "README.md"
ADAPTER_CONFIG = "adapter_config.json"


def store_artifact(
    storage: Storage, adapter: Adapter, source_dir: Path, extra_files: Sequence[Path] = ()
) -> None:
    """Copy the adapter's files, and `extra_files` that travel with it (its training config,
    metrics, loss curve), into storage as one folder and record the checksum of them all on the
    row. The folder is put together beside `source_dir` (a local scratch folder) first.

    The adapter_config.json's `base_model_name_or_path` (peft writes the path it loaded the base
    from: a server path) becomes the base model's name, and a model card in the source (peft's
    empty template, or an imported one) is not kept: the download writes one from the record."""
    key = artifact_key(adapter)
    with tempfile.TemporaryDirectory(dir=source_dir.parent, prefix=".artifact-") as staging:
        folder = Path(staging)
        for item in [*sorted(source_dir.iterdir()), *extra_files]:
            if item.is_file() and item.name != MODEL_CARD:
                shutil.copy2(item, folder / item.name)
        config = folder / ADAPTER_CONFIG
        if config.is_file():
            config.write_bytes(portable_adapter_config(config.read_bytes(), adapter.base_model))
        storage.put_folder(key, folder)
        adapter.artifact_key = key
        adapter.artifact_sha256 = folder_sha256(folder)


def portable_adapter_config(raw: bytes, base_model: str) -> bytes:
    """adapter_config.json with `base_model_name_or_path` set to the base model's name (never a
    path of this server); other keys as they were. Unparseable input is returned unchanged."""
    try:
        config = json.loads(raw)
    except ValueError:
        return raw
    if not isinstance(config, dict):
        return raw
    config["base_model_name_or_path"] = base_model_label(base_model)
    return (json.dumps(config, indent=2, sort_keys=True) + "\n").encode()


def base_model_label(value: str | None) -> str:
    """The base model's name as responses show it. Rows written before names were stored hold
    the model folder's absolute path: shown as the model's name all the same."""
    from adapters.base_model import EMBEDDED_MODEL_DIRNAME, EMBEDDED_MODEL_NAME

    text = (value or "").rstrip("/")
    if "/" not in text and "\\" not in text:
        return text
    if not Path(text).is_absolute():
        return text  # a Hugging Face id such as "HuggingFaceTB/SmolLM2-135M-Instruct"
    name = Path(text).name
    return EMBEDDED_MODEL_NAME if name == EMBEDDED_MODEL_DIRNAME else name


def folder_sha256(folder: Path) -> str:
    """A checksum over the names and contents of an adapter's files in a folder, in name order.
    The model card (README.md) is left out: it is written from the record at each download, and
    the record's metrics grow after the files are stored (the knowledge check)."""
    h = hashlib.sha256()
    for item in sorted(folder.iterdir()):
        if item.is_file() and item.name != MODEL_CARD:
            h.update(item.name.encode() + b"\0")
            with item.open("rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    h.update(chunk)
    return h.hexdigest()


def export_files(storage: Storage, adapter: Adapter, model_card: str) -> dict[str, bytes]:
    """The files a download ships, by name: the stored files, adapter_config.json naming the base
    model (also for adapters stored before it did), and the model card."""
    if not adapter.artifact_key:
        raise Conflict(f"adapter {adapter.id} has no files yet (status {adapter.status})")
    key = adapter.artifact_key
    files: dict[str, bytes] = {}
    for name in storage.list_files(key):
        if "/" not in name and name != MODEL_CARD:
            files[name] = storage.read_bytes(f"{key}/{name}")
    if ADAPTER_CONFIG in files:
        files[ADAPTER_CONFIG] = portable_adapter_config(files[ADAPTER_CONFIG], adapter.base_model)
    files[MODEL_CARD] = model_card.encode()
    return dict(sorted(files.items()))


def files_sha256(files: dict[str, bytes]) -> str:
    """`folder_sha256` of these files, as if written to a folder."""
    h = hashlib.sha256()
    for name in sorted(files):
        if name != MODEL_CARD:
            h.update(name.encode() + b"\0" + files[name])
    return h.hexdigest()


def archive_bytes(adapter: Adapter, files: dict[str, bytes]) -> bytes:
    """The files as a .tar.gz: a PEFT folder named after the adapter."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(f"{adapter.name}/{name}")
            info.size, info.mode = len(data), 0o644
            info.mtime = int((adapter.ready_at or adapter.created_at or utcnow()).timestamp())
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def model_card_facts(
    adapter: Adapter, documents: Sequence[str] = (), strategies: Sequence[str] = ()
) -> Any:
    """The facts for the adapter's model card (adapters.model_card)."""
    from adapters.base_model import EMBEDDED_MODEL_NAME
    from adapters.model_card import ModelCardFacts

    hp = adapter.hyperparameters or {}
    train = hp.get("train") or {}
    base = base_model_label(adapter.base_model)
    return ModelCardFacts(
        name=adapter.name,
        base_model=base,
        base_model_hash=adapter.base_model_hash,
        source=adapter.source,
        rank=adapter.rank,
        lora_alpha=train.get("alpha", hp.get("lora_alpha")),
        target_modules=train.get("target_modules", hp.get("target_modules")),
        created_at=_iso(adapter.created_at),
        document_count=len(adapter.document_versions or {}),
        documents=list(documents),
        augmentation_id=adapter.augmentation_id,
        strategies=list(strategies),
        example_selection=review_public(adapter.example_selection),
        hyperparameters=hp,
        metrics=adapter.metrics or {},
        embedded_base=base == EMBEDDED_MODEL_NAME,
    )


def _iso(ts: Any) -> str | None:
    if ts is None:
        return None
    aware = ts if ts.tzinfo is not None else ts.replace(tzinfo=UTC)
    return aware.astimezone(UTC).isoformat().replace("+00:00", "Z")


def adapter_public(adapter: Adapter) -> AdapterPublic:
    return AdapterPublic.model_validate(
        {
            "id": adapter.id,
            "name": adapter.name,
            "model": adapter.name,
            "status": adapter.status,
            "status_reason": without_paths(adapter.status_reason),
            "source": adapter.source,
            "collection_id": adapter.collection_id,
            "augmentation_id": adapter.augmentation_id,
            "review": review_public(adapter.example_selection),
            "job_id": adapter.job_id,
            "base_model": base_model_label(adapter.base_model),
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
    )


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
    session_factory: sessionmaker[Session], storage: Storage, loader: Any, adapter_id: str
) -> Adapter:
    """Load an adapter into vLLM and run the canary; the row ends `ready` or `failed` with why.

    `loader` is an adapters.vllm.loader.AdapterLoader for the vLLM that serves this deployment."""
    from adapters.vllm.checks import canary_check

    with session_factory() as session:
        adapter = session.get(Adapter, adapter_id)
        assert adapter is not None and adapter.artifact_key
        key = adapter.artifact_key
        served = adapter.served_name
    try:
        # The storage's own folder, or a verified copy of the bucket's: checked here, and what
        # vLLM loads unless the loader sends it the bucket's URL (DOCADAPT_VLLM_ADAPTER_SOURCE).
        path = await asyncio.to_thread(storage.local_folder, key)
        await loader.load(served, path, key=key)
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
    session_factory: sessionmaker[Session], storage: Storage, loader: Any
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
            path = await asyncio.to_thread(storage.local_folder, row.artifact_key)
            await loader.load(row.served_name, path, key=row.artifact_key)
            loaded += 1
        except Exception as exc:  # noqa: BLE001 - one bad adapter must not block the others
            log.error("could not reload adapter %s: %s", row.id, exc)
    return loaded
