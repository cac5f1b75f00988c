"""DOCADAPT_VLLM_ADAPTER_SOURCE=bucket: the service checks an adapter from its local copy (rank,
canary) but tells vLLM to load the folder's s3:// URL, which a replica on another machine fetches
and verifies itself (adapters/vllm/remote_load.py). The "replica" here is an in-process stand-in
client whose load runs the plugin's own path rewrite against the real S3-compatible server."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from adapters.vllm import remote_load
from adapters.vllm.client import PromptLogprobs
from adapters.vllm.loader import AdapterLoader
from service.core.config import Settings
from service.core.model_services import _resolver
from service.core.storage import vllm_adapter_root
from service.core.storage_s3 import S3Storage
from service.db.session import make_engine, make_session_factory, migrate
from service.db.tables import Adapter, Workspace
from service.training import registry
from tests.storage.conftest import S3Server

PREFIX = "acme/prod"
KEY = "ws_1/adapters/ad_1"


class StandInReplica:
    """The parts of a vLLM client that activate() uses. A load resolves `lora_path` as docadapt's
    plugin does in a replica's API server (in this process's environment) and keeps the result;
    the adapter changes the canary's log-probabilities."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.sent_local: list[str] = []
        self.loaded: dict[str, str] = {}

    async def models(self) -> list[str]:
        return ["base", *self.loaded]

    async def load_lora_adapter(self, name: str, path: str) -> None:
        self.sent.append(path)
        self.loaded[name] = await asyncio.to_thread(remote_load.local_lora_path, path)
        self.sent_local.append(self.loaded[name])

    async def unload_lora_adapter(self, name: str) -> None:
        self.loaded.pop(name, None)

    async def is_ready(self) -> bool:
        return True

    async def prompt_logprobs(self, model: str, text: str) -> PromptLogprobs:
        shift = 0.5 if model != "base" else 0.0
        return PromptLogprobs([1, 2, 3], [None, -1.0 - shift, -2.0])


@pytest.fixture
def db(tmp_path: Path) -> sessionmaker[Session]:
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    migrate(engine)
    factory = make_session_factory(engine)
    with factory() as s:
        s.add(Workspace(id="ws_1", name="w"))
        s.commit()
    return factory


def _stored_adapter(
    db: sessionmaker[Session], storage: S3Storage, tmp_path: Path, rank: int = 8
) -> str:
    src = tmp_path / f"peft-{rank}"
    src.mkdir()
    (src / "adapter_config.json").write_text(f'{{"r": {rank}, "lora_alpha": 16}}')
    (src / "adapter_model.safetensors").write_bytes(b"W" * 2048)
    storage.put_folder(KEY, src)
    with db() as s:
        s.add(
            Adapter(
                id="ad_1",
                workspace_id="ws_1",
                name="ft",
                served_name="ad_1-ft",
                source="trained",
                status="validating",
                base_model="m",
                base_model_hash="h",
                artifact_key=KEY,
            )
        )
        s.commit()
    return "ad_1"


@pytest.fixture
def storage(s3_server: S3Server, bucket: str, tmp_path: Path) -> S3Storage:
    return S3Storage(
        bucket, PREFIX, cache_dir=tmp_path / "api-cache", endpoint_url=s3_server.endpoint_url
    )


@pytest.fixture
def replica_env(
    monkeypatch: pytest.MonkeyPatch, s3_server: S3Server, bucket: str, tmp_path: Path
) -> Path:
    cache = tmp_path / "replica-cache"
    monkeypatch.setenv(remote_load.STORAGE_ENV, f"s3://{bucket}/{PREFIX}")
    monkeypatch.setenv(remote_load.ENDPOINT_ENV, s3_server.endpoint_url)
    monkeypatch.setenv(remote_load.CACHE_ENV, str(cache))
    return cache


def test_the_setting_is_local_by_default_and_bucket_needs_a_bucket(tmp_path: Path) -> None:
    local = Settings(data_dir=tmp_path, storage_url="s3://company-bucket/docadapt/prod/")
    assert local.vllm_adapter_source == "local" and vllm_adapter_root(local) is None
    bucket = Settings(
        data_dir=tmp_path,
        storage_url="s3://company-bucket/docadapt/prod/",
        vllm_adapter_source="bucket",
    )
    assert vllm_adapter_root(bucket) == "s3://company-bucket/docadapt/prod"
    with pytest.raises(ValueError, match="needs DOCADAPT_STORAGE_URL"):
        Settings(data_dir=tmp_path, vllm_adapter_source="bucket")


def test_activate_sends_the_bucket_url_and_the_replica_loads_a_verified_copy(
    db: sessionmaker[Session],
    storage: S3Storage,
    bucket: str,
    replica_env: Path,
    tmp_path: Path,
) -> None:
    adapter_id = _stored_adapter(db, storage, tmp_path)
    replica = StandInReplica()
    loader = AdapterLoader(replica, max_lora_rank=16, remote_root=f"s3://{bucket}/{PREFIX}")  # type: ignore[arg-type]
    adapter = asyncio.run(registry.activate(db, storage, loader, adapter_id))
    assert adapter.status == "ready", adapter.status_reason
    assert replica.sent == [f"s3://{bucket}/{PREFIX}/{KEY}"]
    fetched = Path(replica.loaded["ad_1-ft"])
    assert fetched.is_relative_to(replica_env)
    assert (fetched / "adapter_model.safetensors").read_bytes() == b"W" * 2048


def test_the_rank_check_still_runs_on_the_local_copy_before_anything_is_sent(
    db: sessionmaker[Session], storage: S3Storage, bucket: str, replica_env: Path, tmp_path: Path
) -> None:
    adapter_id = _stored_adapter(db, storage, tmp_path, rank=64)
    replica = StandInReplica()
    loader = AdapterLoader(replica, max_lora_rank=16, remote_root=f"s3://{bucket}/{PREFIX}")  # type: ignore[arg-type]
    adapter = asyncio.run(registry.activate(db, storage, loader, adapter_id))
    assert adapter.status == "failed" and "rank 64" in (adapter.status_reason or "")
    assert replica.sent == []


def test_without_the_setting_vllm_gets_the_local_path(
    db: sessionmaker[Session], storage: S3Storage, replica_env: Path, tmp_path: Path
) -> None:
    adapter_id = _stored_adapter(db, storage, tmp_path)
    replica = StandInReplica()
    loader = AdapterLoader(replica, max_lora_rank=16)  # type: ignore[arg-type]
    assert asyncio.run(registry.activate(db, storage, loader, adapter_id)).status == "ready"
    [sent] = replica.sent
    assert Path(sent) == (tmp_path / "api-cache" / "folders" / KEY).resolve()
    assert not replica_env.exists()  # the replica fetched nothing


def test_reload_and_on_demand_loads_send_the_bucket_url(
    db: sessionmaker[Session],
    storage: S3Storage,
    s3_server: S3Server,
    bucket: str,
    replica_env: Path,
    tmp_path: Path,
) -> None:
    _stored_adapter(db, storage, tmp_path)
    with db() as s:
        s.get(Adapter, "ad_1").status = "ready"  # type: ignore[union-attr]
        s.commit()
    root = f"s3://{bucket}/{PREFIX}"
    replica = StandInReplica()
    loader = AdapterLoader(replica, max_lora_rank=16, remote_root=root)  # type: ignore[arg-type]
    assert asyncio.run(registry.reload_ready_adapters(db, storage, loader)) == 1
    assert replica.sent == [f"{root}/{KEY}"]

    settings = Settings(
        data_dir=tmp_path / "d",
        storage_url=root,
        s3_endpoint_url=s3_server.endpoint_url,
        vllm_adapter_source="bucket",
    )
    runtime = SimpleNamespace(
        settings=settings, session_factory=db, storage=storage, adapters_enabled=True
    )
    resolve = _resolver(runtime)  # type: ignore[arg-type]
    assert asyncio.run(resolve("ad_1-ft")) == f"{root}/{KEY}"
    assert asyncio.run(resolve("no-such-adapter")) is None
    storage.delete_tree(KEY)
    assert asyncio.run(resolve("ad_1-ft")) is None  # its files are gone from the bucket


def test_the_storage_env_names_the_same_bucket_for_workers_and_local_vllm(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What `docadapt serve` hands its workers and, with a bucket source, its vLLM children."""
    from service.core.storage import storage_env

    settings = Settings(
        data_dir=tmp_path,
        storage_url="s3://company-bucket/p",
        s3_endpoint_url="http://minio:9000",
        vllm_adapter_source="bucket",
    )
    env = storage_env(settings)
    assert remote_load.BucketSource.from_env(env) == remote_load.BucketSource(
        "company-bucket", "p", "http://minio:9000", None, remote_load.cache_dir(env)
    )
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    worker = Settings(data_dir=tmp_path / "worker")
    assert vllm_adapter_root(worker) == "s3://company-bucket/p"


def test_the_isolation_self_check_s_probe_adapters_go_through_the_bucket_too(
    storage: S3Storage,
    bucket: str,
    replica_env: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A remote replica cannot read the probe adapters in the API's data dir either: with a
    bucket source they are stored under _selfcheck/ and vLLM is sent their URLs."""
    from adapters import selfcheck
    from adapters.vllm import checks

    folders = []
    for seed in (1, 2):
        folder = tmp_path / f"probe-{seed}"
        folder.mkdir()
        (folder / "adapter_config.json").write_text('{"r": 8}')
        (folder / "adapter_model.safetensors").write_bytes(bytes([seed]) * 512)
        folders.append(folder)
    monkeypatch.setattr(selfcheck, "_probe_adapters", lambda *args: folders)
    seen: list[list[str]] = []

    async def isolation_check(client: StandInReplica, names: list[str], **kw: object) -> Any:
        seen.append(sorted(client.loaded))
        return SimpleNamespace(passed=True, summary=lambda: "ok")

    monkeypatch.setattr(checks, "isolation_check", isolation_check)
    root = f"s3://{bucket}/{PREFIX}"
    replica = StandInReplica()
    runtime = SimpleNamespace(
        settings=SimpleNamespace(vllm_max_loras=2, data_dir=tmp_path),
        model_dir=tmp_path,
        adapter_loader=AdapterLoader(replica, max_lora_rank=16, remote_root=root),  # type: ignore[arg-type]
        storage=storage,
        extras={},
    )
    for _ in range(2):  # the second start finds them stored
        assert asyncio.run(selfcheck.run_isolation_self_check(runtime)).passed
    names = [selfcheck._name(f) for f in folders]
    assert seen == [sorted(names)] * 2
    assert replica.sent == [f"{root}/_selfcheck/{n}" for n in names] * 2
    assert all(Path(p).is_relative_to(replica_env) for p in replica.sent_local)
