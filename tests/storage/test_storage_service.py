"""The service on a bucket: what the API writes lands in the S3-compatible server (moto's, in its
own process), and a second service instance with an empty data folder of its own (a worker or
a vLLM machine elsewhere, sharing only the database and the bucket) reads the same documents and
the same adapter, down to a local folder vLLM could load."""

from __future__ import annotations

import asyncio
import io
import tarfile
from collections.abc import Callable
from pathlib import Path

from fastapi.testclient import TestClient

from service.core.config import Settings
from service.core.model_services import _resolver
from service.core.storage_s3 import MANIFEST, S3Storage
from service.main import create_app
from tests.fixtures import documents as fx
from tests.integration.conftest import new_workspace
from tests.storage.conftest import S3Server, bucket_keys

PREFIX = "acme-prod"


def _upload(client: TestClient, auth: dict[str, str], col: str, *files: tuple[str, bytes]):
    parts = [("files", (name, data, "application/octet-stream")) for name, data in files]
    return client.post(f"/v1/collections/{col}/documents", files=parts, headers=auth)


def _files_under(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


def _store_trained_adapter(client: TestClient, adapter_id: str, peft_dir: Path) -> str:
    """Store an adapter's files and mark it ready, as the training job does once it trained."""
    from service.db.tables import Adapter
    from service.training import registry

    runtime = client.app.state.runtime  # type: ignore[attr-defined]
    with runtime.session_factory() as session:
        adapter = session.get(Adapter, adapter_id)
        registry.store_artifact(runtime.storage, adapter, peft_dir)
        registry.set_status(adapter, "ready")
        session.commit()
        return str(adapter.artifact_sha256)


def _download(client: TestClient, auth: dict[str, str], adapter_id: str) -> dict[str, bytes]:
    r = client.get(f"/v1/adapters/{adapter_id}/download", headers=auth)
    assert r.status_code == 200, r.text
    with tarfile.open(fileobj=io.BytesIO(r.content)) as tar:
        return {
            m.name: tar.extractfile(m).read()  # type: ignore[union-attr]
            for m in tar.getmembers()
            if m.isfile()
        } | {"X-Artifact-SHA256": r.headers["X-Artifact-SHA256"].encode()}


def test_documents_and_adapters_live_in_the_bucket_and_a_second_machine_reads_them(
    make_settings: Callable[..., Settings],
    s3_server: S3Server,
    bucket: str,
    base_model_dir: Path,
    tmp_path: Path,
) -> None:
    from adapters.peft_validation import validate_peft_adapter
    from adapters.selfcheck import make_random_adapter
    from service.training.registry import folder_sha256

    on_bucket = {
        "storage_url": f"s3://{bucket}/{PREFIX}",
        "s3_endpoint_url": s3_server.endpoint_url,
    }
    api_dir = tmp_path / "api-data"
    database_url = f"sqlite:///{api_dir / 'docadapt.db'}"
    with TestClient(create_app(make_settings(data_dir=api_dir, **on_bucket))) as api:
        auth = new_workspace(api)
        col = api.post("/v1/collections", json={"name": "handbook"}, headers=auth).json()["id"]
        r = _upload(api, auth, col, ("facts.txt", fx.GOOD_DOCUMENTS["notes.txt"]()))
        assert r.status_code == 201, r.text
        r = _upload(api, auth, col, ("notes.pdf", fx.GOOD_DOCUMENTS["notes.pdf"]()))
        assert r.status_code == 201, r.text
        docs = api.get(f"/v1/collections/{col}/documents", headers=auth).json()["data"]
        assert len(docs) == 2
        texts = {d["id"]: api.get(f"/v1/documents/{d['id']}", headers=auth).json() for d in docs}
        for detail in texts.values():
            assert fx.SENTENCES[0] in detail["text"]

        # The API wrote every file into the bucket, under the prefix, and none to its disk.
        keys = bucket_keys(s3_server.endpoint_url, bucket)
        for doc_id in texts:
            base = f"{PREFIX}/workspaces/"
            mine = [k for k in keys if k.startswith(base) and f"/{doc_id}/" in k]
            assert sorted(k.rsplit("/", 1)[1] for k in mine) == ["original", "text.txt"], keys
        assert _files_under(api_dir / "files") == []

        r = api.post(f"/v1/collections/{col}/adapters", json={"name": "facts-v1"}, headers=auth)
        assert r.status_code == 201, r.text
        adapter_id = r.json()["id"]
        peft_dir = make_random_adapter(tmp_path / "trained", 3, base_model_dir)
        sha = _store_trained_adapter(api, adapter_id, peft_dir)
        artifact = [k for k in bucket_keys(s3_server.endpoint_url, bucket) if adapter_id in k]
        assert {k.rsplit("/", 1)[1] for k in artifact} == {
            MANIFEST,
            "adapter_config.json",
            "adapter_model.safetensors",
        }
        downloaded = _download(api, auth, adapter_id)
        assert downloaded["X-Artifact-SHA256"] == sha.encode()

        # Another machine: its own empty data folder, the same database and bucket.
        other_dir = tmp_path / "worker-machine"
        other = make_settings(data_dir=other_dir, database_url=database_url, **on_bucket)
        with TestClient(create_app(other)) as second:
            for doc_id, detail in texts.items():
                got = second.get(f"/v1/documents/{doc_id}", headers=auth)
                assert got.status_code == 200, got.text
                assert got.json()["text"] == detail["text"]
            assert _download(second, auth, adapter_id) == downloaded

            # What vLLM on that machine loads (the replicas' on-demand resolver, by served
            # name): a verified local copy of the bucket's folder in this machine's data dir.
            runtime = second.app.state.runtime  # type: ignore[attr-defined]
            assert isinstance(runtime.storage, S3Storage)
            with runtime.session_factory() as session:
                from service.db.tables import Adapter

                served = str(session.get(Adapter, adapter_id).served_name)
            resolve = _resolver(runtime)
            folder = asyncio.run(resolve(served))
            assert folder is not None and folder.is_relative_to(other_dir.resolve())
            assert asyncio.run(resolve("no-such-adapter")) is None
            assert folder_sha256(folder) == sha
            assert validate_peft_adapter(folder, base_model_dir, 16) == []

        # Deleting through the API deletes in the bucket.
        doc_id = next(iter(texts))
        assert api.delete(f"/v1/documents/{doc_id}", headers=auth).status_code == 204
        assert api.delete(f"/v1/adapters/{adapter_id}", headers=auth).status_code == 204
        left = bucket_keys(s3_server.endpoint_url, bucket)
        assert not [k for k in left if doc_id in k or adapter_id in k], left
        assert len(left) == 2  # the other document's two files
