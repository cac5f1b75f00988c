"""The Storage contract, run alike on the local folder and on a bucket of a real S3-compatible
server (moto's, in its own process): what the service stores, reads, lists, deletes and hands
to vLLM as a local folder behaves the same whichever backend holds it."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from service.core.config import Settings
from service.core.storage import (
    LocalStorage,
    Storage,
    StorageUnavailable,
    open_storage,
    storage_env,
)
from service.core.storage_s3 import MANIFEST, S3Storage
from tests.storage.conftest import S3Server, bucket_keys, s3_client

PREFIX = "tenant-a/files"


@pytest.fixture(params=["local", "s3"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    if request.param == "local":
        return LocalStorage(tmp_path / "files")
    server: S3Server = request.getfixturevalue("s3_server")
    name: str = request.getfixturevalue("bucket")
    return S3Storage(name, PREFIX, cache_dir=tmp_path / "cache", endpoint_url=server.endpoint_url)


def _folder(root: Path, files: dict[str, bytes]) -> Path:
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


def _contents(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_files_round_trip_and_are_replaced_whole(storage: Storage) -> None:
    storage.put_bytes("ws/doc1/original", b"\x00\xffbinary")
    storage.put_text("ws/doc1/text.txt", "Café Zürich")
    assert storage.read_bytes("ws/doc1/original") == b"\x00\xffbinary"
    assert storage.read_text("ws/doc1/text.txt") == "Café Zürich"
    storage.put_text("ws/doc1/text.txt", "shorter")
    assert storage.read_text("ws/doc1/text.txt") == "shorter"
    with pytest.raises(FileNotFoundError):
        storage.read_bytes("ws/doc1/missing")


def test_exists_lists_and_deletes_a_tree_but_not_its_namesakes(storage: Storage) -> None:
    for key in ("ws/doc1/original", "ws/doc1/deep/part", "ws/doc10/original", "ws/doc1x"):
        storage.put_bytes(key, key.encode())
    assert storage.exists("ws/doc1") and storage.exists("ws/doc1/original")
    assert not storage.exists("ws/doc") and not storage.exists("ws/doc1/nothing")
    assert storage.list_files("ws/doc1") == ["deep/part", "original"]
    assert storage.list_files("ws/none") == []

    storage.delete_tree("ws/doc1")
    assert not storage.exists("ws/doc1") and storage.list_files("ws/doc1") == []
    # "doc10" and "doc1x" begin with the same letters and stay.
    assert storage.read_bytes("ws/doc10/original") == b"ws/doc10/original"
    assert storage.read_bytes("ws/doc1x") == b"ws/doc1x"
    storage.delete_tree("ws/doc1")  # nothing there: no error
    storage.delete_tree("ws/doc1x")  # a single file
    assert not storage.exists("ws/doc1x")


BAD_KEYS = ["", "/etc/passwd", "../out", "ws/../../out", "ws//doc", "ws/./doc", "ws/", "a\\b"]


def test_keys_that_are_absolute_or_climb_are_refused_before_anything_is_written(
    storage: Storage, tmp_path: Path
) -> None:
    folder = _folder(tmp_path / "src", {"a": b"a"})
    calls: list[tuple[str, tuple[object, ...]]] = [
        ("put_bytes", (b"x",)),
        ("put_text", ("x",)),
        ("read_bytes", ()),
        ("exists", ()),
        ("delete_tree", ()),
        ("list_files", ()),
        ("put_folder", (folder,)),
        ("local_folder", ()),
    ]
    for key in BAD_KEYS:
        for method, args in calls:
            with pytest.raises(ValueError, match="storage key"):
                getattr(storage, method)(key, *args)
    if isinstance(storage, LocalStorage):
        assert [p for p in storage.root.parent.rglob("*") if p.is_file()] == [folder / "a"]
    else:
        assert isinstance(storage, S3Storage)
        assert bucket_keys(str(storage.endpoint_url), storage.bucket) == []


def test_a_folder_is_stored_as_one_and_comes_back_as_a_local_folder(
    storage: Storage, tmp_path: Path
) -> None:
    v1 = {"adapter_config.json": b'{"r": 4}', "weights.bin": b"\x01" * 70_000, "sub/x": b"x"}
    storage.put_folder("ws/adapters/a1", _folder(tmp_path / "v1", v1))
    assert storage.list_files("ws/adapters/a1") == sorted(v1)
    local = storage.local_folder("ws/adapters/a1")
    assert local.is_dir() and _contents(local) == v1

    # A new version replaces the old one whole: a file the new one lacks is gone.
    v2 = {"adapter_config.json": b'{"r": 8}', "weights.bin": b"\x02" * 1000}
    storage.put_folder("ws/adapters/a1", _folder(tmp_path / "v2", v2))
    assert storage.list_files("ws/adapters/a1") == sorted(v2)
    assert _contents(storage.local_folder("ws/adapters/a1")) == v2

    storage.delete_tree("ws/adapters/a1")
    with pytest.raises(FileNotFoundError):
        storage.local_folder("ws/adapters/a1")
    with pytest.raises(FileNotFoundError):
        storage.local_folder("ws/adapters/never")


def test_check_passes_on_a_usable_storage(storage: Storage) -> None:
    storage.check()
    assert storage.describe()


def test_the_bucket_holds_the_objects_under_the_prefix_with_the_manifest_last(
    s3_server: S3Server, bucket: str, tmp_path: Path
) -> None:
    storage = S3Storage(
        bucket, PREFIX, cache_dir=tmp_path / "cache", endpoint_url=s3_server.endpoint_url
    )
    storage.put_text("ws/doc/text.txt", "hello")
    storage.put_folder("ws/adapters/a1", _folder(tmp_path / "src", {"w.bin": b"w"}))
    assert bucket_keys(s3_server.endpoint_url, bucket) == [
        f"{PREFIX}/ws/adapters/a1/{MANIFEST}",
        f"{PREFIX}/ws/adapters/a1/w.bin",
        f"{PREFIX}/ws/doc/text.txt",
    ]
    # Files uploaded without their manifest (an upload cut short) are no finished folder.
    storage.put_bytes("ws/adapters/half/w.bin", b"w")
    with pytest.raises(FileNotFoundError, match="no finished folder"):
        storage.local_folder("ws/adapters/half")


def test_a_folder_is_downloaded_once_and_again_only_when_it_changed(
    s3_server: S3Server, bucket: str, tmp_path: Path
) -> None:
    storage = S3Storage(
        bucket, "", cache_dir=tmp_path / "cache", endpoint_url=s3_server.endpoint_url
    )
    storage.put_folder("a1", _folder(tmp_path / "v1", {"w.bin": b"one"}))
    first = storage.local_folder("a1")
    assert first.is_relative_to(tmp_path / "cache")
    inode = (first / "w.bin").stat().st_ino
    again = storage.local_folder("a1")
    assert again == first and (again / "w.bin").stat().st_ino == inode  # not fetched again

    storage.put_folder("a1", _folder(tmp_path / "v2", {"w.bin": b"two"}))
    assert (storage.local_folder("a1") / "w.bin").read_bytes() == b"two"

    # A second machine (its own cache) gets the same files.
    other = S3Storage(
        bucket, "", cache_dir=tmp_path / "other-cache", endpoint_url=s3_server.endpoint_url
    )
    assert _contents(other.local_folder("a1")) == {"w.bin": b"two"}


def test_a_changed_object_is_refused_and_leaves_no_copy(
    s3_server: S3Server, bucket: str, tmp_path: Path
) -> None:
    storage = S3Storage(
        bucket, "p", cache_dir=tmp_path / "cache", endpoint_url=s3_server.endpoint_url
    )
    storage.put_folder("a1", _folder(tmp_path / "src", {"w.bin": b"weights", "c.json": b"{}"}))
    # Someone rewrites one object behind the service's back (same size, other bytes).
    s3_client(s3_server.endpoint_url).put_object(Bucket=bucket, Key="p/a1/w.bin", Body=b"WEIGHTS")
    with pytest.raises(StorageUnavailable, match="changed or damaged"):
        storage.local_folder("a1")
    assert not (tmp_path / "cache" / "folders" / "a1").exists()
    assert not [p for p in (tmp_path / "cache" / "folders").rglob("*") if p.is_file()]


def test_machines_fetching_one_folder_at_once_each_get_it_whole(
    s3_server: S3Server, bucket: str, tmp_path: Path
) -> None:
    storage = S3Storage(
        bucket, "", cache_dir=tmp_path / "cache", endpoint_url=s3_server.endpoint_url
    )
    files = {f"f{i}": bytes([i]) * 5000 for i in range(8)}
    storage.put_folder("a1", _folder(tmp_path / "src", files))
    results: list[dict[str, bytes]] = []
    errors: list[BaseException] = []

    def fetch() -> None:
        try:
            results.append(_contents(storage.local_folder("a1")))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=fetch) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == [] and results == [files] * 4


def test_settings_choose_the_backend(tmp_path: Path, s3_server: S3Server) -> None:
    local = open_storage(Settings(data_dir=tmp_path / "d"))
    assert isinstance(local, LocalStorage) and local.root == (tmp_path / "d" / "files").resolve()
    chosen = open_storage(
        Settings(
            data_dir=tmp_path / "d",
            storage_url="s3://company-bucket/docadapt/prod/",
            s3_endpoint_url=s3_server.endpoint_url,
        )
    )
    assert isinstance(chosen, S3Storage)
    assert (chosen.bucket, chosen.prefix) == ("company-bucket", "docadapt/prod")
    assert chosen.cache_dir == (tmp_path / "d" / "cache" / "storage").resolve()
    for bad in ("http://bucket/x", "s3://", "s3://Bad_Bucket/x", "s3://bkt/../x", "s3://bkt/x?y=1"):
        with pytest.raises(ValueError, match="DOCADAPT_STORAGE_URL|storage key"):
            Settings(data_dir=tmp_path / "d", storage_url=bad)


def test_workers_started_by_serve_get_the_api_s_storage(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """`docadapt serve` hands its workers storage_env(settings) (service.core.runtime): a worker
    reading its settings from that environment opens the same bucket, and a local API's workers
    stay local although the inherited environment names a bucket."""
    api = Settings(
        data_dir=tmp_path / "api",
        storage_url="s3://company-bucket/docadapt",
        s3_endpoint_url="http://minio.internal:9000",
        s3_region="eu-central-1",
    )
    for name, value in storage_env(api).items():
        monkeypatch.setenv(name, value)
    worker = Settings(data_dir=tmp_path / "worker")
    assert (worker.storage_url, worker.s3_endpoint_url, worker.s3_region) == (
        "s3://company-bucket/docadapt",
        "http://minio.internal:9000",
        "eu-central-1",
    )

    monkeypatch.setenv("DOCADAPT_STORAGE_URL", "s3://someone-elses/bucket")
    local_api = Settings(data_dir=tmp_path / "api", storage_url=None)
    for name, value in storage_env(local_api).items():
        monkeypatch.setenv(name, value)
    assert isinstance(open_storage(Settings(data_dir=tmp_path / "worker")), LocalStorage)
