"""A vLLM replica on another machine loads an adapter straight from the bucket (adapters/vllm/
remote_load.py over adapters/artifacts_s3.py), against the real S3-compatible server of
tests/storage/conftest.py: an s3:// lora_path of the configured bucket and prefix becomes a
verified local copy; every other bucket, prefix, scheme or hub id is refused before anything is
fetched. vLLM's own load handler (OpenAIServingModels, no engine) runs in-process with the wrap
the plugin installs, in front of a stand-in engine that records what it was asked to load."""

from __future__ import annotations

import asyncio
from http import HTTPStatus
from pathlib import Path
from typing import Any

import pytest

from adapters.vllm import plugin, remote_load
from adapters.vllm.remote_load import Refused, local_lora_path
from service.core.storage_s3 import S3Storage
from tests.storage.conftest import S3Server, s3_client

PREFIX = "docadapt/prod"
KEY = "ws1/adapters/a1"
FILES = {"adapter_config.json": b'{"r": 8}', "adapter_model.safetensors": b"W" * 3000}


@pytest.fixture
def stored(s3_server: S3Server, bucket: str, tmp_path: Path) -> S3Storage:
    """The API's storage with one adapter folder written by put_folder."""
    src = tmp_path / "src"
    src.mkdir()
    for name, data in FILES.items():
        (src / name).write_bytes(data)
    storage = S3Storage(
        bucket, PREFIX, cache_dir=tmp_path / "api-cache", endpoint_url=s3_server.endpoint_url
    )
    storage.put_folder(KEY, src)
    return storage


@pytest.fixture
def vllm_env(
    monkeypatch: pytest.MonkeyPatch, s3_server: S3Server, bucket: str, tmp_path: Path
) -> Path:
    """The environment of a vLLM replica configured for the bucket; returns its cache dir."""
    cache = tmp_path / "vllm-cache"
    monkeypatch.setenv(remote_load.STORAGE_ENV, f"s3://{bucket}/{PREFIX}/")
    monkeypatch.setenv(remote_load.ENDPOINT_ENV, s3_server.endpoint_url)
    monkeypatch.setenv(remote_load.CACHE_ENV, str(cache))
    return cache


@pytest.fixture
def no_fetch(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to open a bucket client fails the test: a refusal must fetch nothing."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a refused lora_path opened an S3 client")

    monkeypatch.setattr(remote_load, "s3_client", refuse)


def _contents(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


def test_the_configured_bucket_s_adapter_is_fetched_verified_and_reused(
    stored: S3Storage, bucket: str, vllm_env: Path
) -> None:
    local = Path(local_lora_path(f"s3://{bucket}/{PREFIX}/{KEY}"))
    assert local.is_relative_to(vllm_env)
    assert _contents(local) == FILES
    inode = (local / "adapter_model.safetensors").stat().st_ino
    again = Path(local_lora_path(f"s3://{bucket}/{PREFIX}/{KEY}"))
    assert again == local and (again / "adapter_model.safetensors").stat().st_ino == inode


def test_the_cache_defaults_under_vllm_s_cache_root(
    stored: S3Storage, bucket: str, vllm_env: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv(remote_load.CACHE_ENV)
    monkeypatch.setenv("VLLM_CACHE_ROOT", str(tmp_path / "vllm-root"))
    local = Path(local_lora_path(f"s3://{bucket}/{PREFIX}/{KEY}"))
    assert local.is_relative_to(tmp_path / "vllm-root" / "docadapt-adapters")


def test_a_tampered_object_is_refused_and_leaves_no_copy(
    stored: S3Storage, s3_server: S3Server, bucket: str, vllm_env: Path
) -> None:
    s3_client(s3_server.endpoint_url).put_object(
        Bucket=bucket, Key=f"{PREFIX}/{KEY}/adapter_model.safetensors", Body=b"X" * 3000
    )
    with pytest.raises(Refused, match="changed or damaged") as info:
        local_lora_path(f"s3://{bucket}/{PREFIX}/{KEY}")
    assert info.value.status == HTTPStatus.BAD_REQUEST
    assert not [p for p in (vllm_env / "folders").rglob("*") if p.is_file()]


def test_an_unfinished_folder_is_not_found(stored: S3Storage, bucket: str, vllm_env: Path) -> None:
    stored.put_bytes("ws1/adapters/half/adapter_config.json", b"{}")  # no manifest yet
    with pytest.raises(Refused, match="no finished adapter folder") as info:
        local_lora_path(f"s3://{bucket}/{PREFIX}/ws1/adapters/half")
    assert info.value.status == HTTPStatus.NOT_FOUND


@pytest.mark.parametrize(
    "path",
    [
        "s3://other-bucket/docadapt/prod/ws1/adapters/a1",  # another bucket
        "s3://{bucket}/elsewhere/ws1/adapters/a1",  # another prefix
        "s3://{bucket}/docadapt/production/ws1/adapters/a1",  # a prefix that only starts alike
        "s3://{bucket}/docadapt/prod/../other/a1",  # climbing out of the prefix
        "s3://{bucket}/docadapt/prod//ws1/a1",
        "s3://{bucket}/docadapt/prod/ws1/adapters/a1?versionId=1",
        "s3://{bucket}/docadapt/prod",  # the prefix itself
    ],
)
def test_another_bucket_or_prefix_is_refused_without_fetching(
    path: str, bucket: str, vllm_env: Path, no_fetch: None
) -> None:
    with pytest.raises(Refused, match="outside this server's adapter bucket|storage key") as info:
        local_lora_path(path.format(bucket=bucket))
    assert info.value.status == HTTPStatus.BAD_REQUEST
    assert not vllm_env.exists()


@pytest.mark.parametrize(
    "path",
    [
        "http://127.0.0.1:9/adapter",
        "https://example.com/adapter.tar",
        "hf://someone/adapter",
        "S3A://bucket/docadapt/prod/a1",
        "file:///etc",
        "someone/some-lora",  # a Hugging Face id: vLLM would download it from the hub
    ],
)
def test_other_schemes_and_hub_ids_are_refused(path: str, vllm_env: Path, no_fetch: None) -> None:
    with pytest.raises(Refused) as info:
        local_lora_path(path)
    assert info.value.status == HTTPStatus.BAD_REQUEST
    assert not vllm_env.exists()


def test_without_a_configured_bucket_every_s3_path_is_refused(
    bucket: str, monkeypatch: pytest.MonkeyPatch, no_fetch: None
) -> None:
    monkeypatch.delenv(remote_load.STORAGE_ENV, raising=False)
    with pytest.raises(Refused, match="DOCADAPT_STORAGE_URL is not set"):
        local_lora_path(f"s3://{bucket}/{PREFIX}/{KEY}")
    monkeypatch.setenv(remote_load.STORAGE_ENV, "http://not-a-bucket/x")
    with pytest.raises(Refused, match="misconfigured"):
        local_lora_path(f"s3://{bucket}/{PREFIX}/{KEY}")


def test_local_paths_pass_through_unchanged(tmp_path: Path, no_fetch: None) -> None:
    for path in (str(tmp_path / "adapter"), "/nonexistent/adapter", "~/adapter"):
        assert local_lora_path(path) == path


# --- vLLM's load handler, wrapped as the plugin wraps it ---------------------------------------


class StandInEngine:
    """What OpenAIServingModels needs of an engine client; records each add_lora."""

    model_config = None
    renderer = None
    input_processor = None

    def __init__(self) -> None:
        self.added: list[Any] = []

    async def add_lora(self, lora_request: Any) -> bool:
        self.added.append(lora_request)
        return True


def _serving_models() -> tuple[Any, StandInEngine]:
    from vllm.entrypoints.openai.models.protocol import BaseModelPath
    from vllm.entrypoints.openai.models.serving import OpenAIServingModels

    engine = StandInEngine()
    return OpenAIServingModels(engine, [BaseModelPath(name="base", model_path="/m")]), engine


def _request(path: str, name: str = "a1") -> Any:
    from vllm.entrypoints.serve.lora.protocol import LoadLoRAAdapterRequest

    return LoadLoRAAdapterRequest(lora_name=name, lora_path=path)


def test_the_plugin_wraps_vllm_s_load_handler() -> None:
    from vllm.entrypoints.openai.models.serving import OpenAIServingModels

    plugin.register()
    outcome = plugin.remote_load_outcome() or ""
    assert outcome.startswith("applied") or outcome == "already applied"
    assert remote_load.install() == "already applied"  # once per process, not twice
    handler = OpenAIServingModels.load_lora_adapter
    assert getattr(handler, "__docadapt_remote_load__", False)
    assert not getattr(handler.__wrapped_original__, "__docadapt_remote_load__", False)


def test_vllm_s_handler_loads_the_verified_copy_of_a_bucket_url(
    stored: S3Storage, bucket: str, vllm_env: Path
) -> None:
    remote_load.install()
    models, engine = _serving_models()
    answer = asyncio.run(models.load_lora_adapter(_request(f"s3://{bucket}/{PREFIX}/{KEY}")))
    assert answer == "Success: LoRA adapter 'a1' added successfully."
    [added] = engine.added
    assert Path(added.lora_path).is_relative_to(vllm_env)
    assert _contents(Path(added.lora_path)) == FILES
    assert models.lora_requests["a1"].lora_path == added.lora_path
    # A local path reaches vLLM untouched.
    asyncio.run(models.load_lora_adapter(_request("/srv/adapters/a2", name="a2")))
    assert engine.added[-1].lora_path == "/srv/adapters/a2"


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("s3://other-bucket/docadapt/prod/ws1/adapters/a1", 400),
        ("https://example.com/adapter", 400),
        ("someone/some-lora", 400),
        ("s3://{bucket}/docadapt/prod/ws1/adapters/missing", 404),
    ],
)
def test_vllm_s_handler_answers_refusals_without_reaching_the_engine(
    path: str, status: int, stored: S3Storage, bucket: str, vllm_env: Path
) -> None:
    from vllm.entrypoints.serve.engine.protocol import ErrorResponse

    remote_load.install()
    models, engine = _serving_models()
    answer = asyncio.run(models.load_lora_adapter(_request(path.format(bucket=bucket))))
    assert isinstance(answer, ErrorResponse) and answer.error.code == status
    assert engine.added == [] and models.lora_requests == {}


def test_a_stand_in_original_sees_the_rewritten_path_and_never_a_refused_one(
    stored: S3Storage, bucket: str, vllm_env: Path
) -> None:
    calls: list[str] = []

    async def original(self: Any, request: Any, base_model_name: str | None = None) -> str:
        calls.append(request.lora_path)
        return "ok"

    wrapped = remote_load.wrap_load_lora_adapter(original)
    url = f"s3://{bucket}/{PREFIX}/{KEY}"
    assert asyncio.run(wrapped(None, _request(url))) == "ok"
    assert calls == [str(vllm_env / "folders" / KEY)]
    for refused in ("s3://other-bucket/x/a1", "http://127.0.0.1:9/a1", "org/lora"):
        answer = asyncio.run(wrapped(None, _request(refused)))
        assert answer.error.code == 400 and answer.error.type == "InvalidUserInput"
    assert len(calls) == 1


def test_vllm_s_http_route_answers_400_for_a_foreign_url(
    bucket: str, vllm_env: Path, monkeypatch: pytest.MonkeyPatch, no_fetch: None
) -> None:
    """POST /v1/load_lora_adapter through vLLM's own FastAPI router."""
    from fastapi import FastAPI
    from fastapi.testclient import TestClient
    from vllm.entrypoints.serve.lora.api_router import _attach_router

    remote_load.install()
    models, engine = _serving_models()
    app = FastAPI()
    _attach_router(app)
    app.state.openai_serving_models = models
    with TestClient(app) as client:
        answer = client.post(
            "/v1/load_lora_adapter",
            json={"lora_name": "a1", "lora_path": f"s3://not-{bucket}/{PREFIX}/{KEY}"},
        )
    assert answer.status_code == 400
    assert "outside this server's adapter bucket" in answer.json()["error"]["message"]
    assert engine.added == []


def test_a_cache_folder_of_another_user_is_not_used(
    bucket: str, vllm_env: Path, monkeypatch: pytest.MonkeyPatch, no_fetch: None
) -> None:
    vllm_env.mkdir()
    monkeypatch.setattr(remote_load.os, "getuid", lambda: vllm_env.stat().st_uid + 1)
    with pytest.raises(Refused, match="belongs to another user") as info:
        local_lora_path(f"s3://{bucket}/{PREFIX}/{KEY}")
    assert info.value.status == HTTPStatus.SERVICE_UNAVAILABLE
