"""Adapter folders in an S3-compatible bucket: the one place that parses `s3://bucket/prefix`,
checks object keys, and downloads a folder into a local cache verified against its manifest.

A folder is stored (service.core.storage_s3.S3Storage.put_folder) as its files plus a manifest
object (each file's size and SHA-256) written last. `fetch_folder` copies only folders whose
manifest is there, checks every file against it, and renames the verified copy into the cache in
one step, under a file lock per key; the copy is reused while the bucket's manifest is unchanged.
Both the service (S3Storage.local_folder) and docadapt's vLLM plugin (adapters/vllm/remote_load.py,
a replica on another machine loading an adapter straight from the bucket) use it.

Errors of the bucket itself (botocore's) pass through for the caller to word; a missing manifest
is a FileNotFoundError, a file that differs from its manifest an ArtifactDamaged."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from filelock import FileLock

MANIFEST = ".docadapt-manifest.json"
MISSING_CODES = {"404", "NoSuchKey", "NotFound"}
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$")
_CHUNK = 1 << 20


class ArtifactDamaged(RuntimeError):
    """A downloaded file is not what the manifest says was stored; no copy was kept."""


def check_key(key: str) -> str:
    """`key` when it is a relative path of plain parts; ValueError otherwise (an absolute path,
    a backslash or NUL, or an empty, "." or ".." part), in every backend alike."""
    if not isinstance(key, str) or not key:
        raise ValueError("storage key is empty")
    if key.startswith("/") or "\\" in key or "\0" in key:
        raise ValueError(f"storage key is not a relative path: {key!r}")
    if any(part in ("", ".", "..") for part in key.split("/")):
        raise ValueError(f"storage key has an empty, '.' or '..' part: {key!r}")
    return key


def parse_s3_url(url: str, setting: str = "DOCADAPT_STORAGE_URL") -> tuple[str, str]:
    """(bucket, prefix) of `s3://bucket/prefix`; ValueError naming `setting` otherwise."""
    parsed = urlparse(url)
    if parsed.scheme != "s3" or not _BUCKET.match(parsed.netloc or ""):
        raise ValueError(
            f"{setting} must be s3://bucket/prefix with a bucket name of 3 to 63 "
            f"lowercase letters, digits, dots and hyphens, not {url!r}"
        )
    if parsed.query or parsed.fragment or parsed.params:
        raise ValueError(f"{setting} takes no query or fragment: {url!r}")
    prefix = parsed.path.strip("/")
    if prefix:
        check_key(prefix)
    return parsed.netloc, prefix


def s3_client(
    endpoint_url: str | None, region: str | None, *, attempts: int = 3, connect_s: float = 5
) -> Any:
    """A boto3 S3 client; credentials from the standard AWS sources (variables, profiles)."""
    import boto3
    from botocore.config import Config

    config = Config(
        connect_timeout=connect_s,
        read_timeout=60,
        retries={"max_attempts": attempts, "mode": "standard"},
        # Path-style URLs (endpoint/bucket/key): what MinIO, Ceph and most other servers take.
        s3={"addressing_style": "path"} if endpoint_url else None,
    )
    return boto3.session.Session().client(
        "s3", endpoint_url=endpoint_url or None, region_name=region or None, config=config
    )


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def cached_paths(cache_dir: Path, key: str) -> tuple[Path, Path]:
    """(the folder's local copy, the manifest it was verified against) for `key`."""
    check_key(key)
    return cache_dir / "folders" / key, cache_dir / "manifests" / f"{key}.json"


def drop_cached(cache_dir: Path, key: str) -> None:
    """Forget this machine's copy of `key`."""
    target, mark = cached_paths(cache_dir, key)
    shutil.rmtree(target, ignore_errors=True)
    mark.unlink(missing_ok=True)


def fetch_folder(
    client: Any, bucket: str, name: str, cache_dir: Path, key: str, where: str
) -> Path:
    """The cached copy of the folder stored under object name `name` (its cache key: `key`),
    downloaded and verified first when the cache lacks it or holds another version. One process
    at a time per key (a file lock). `where` names the bucket in messages."""
    from botocore.exceptions import ClientError

    try:
        wanted = client.get_object(Bucket=bucket, Key=f"{name}/{MANIFEST}")["Body"].read()
    except ClientError as exc:
        if str(exc.response.get("Error", {}).get("Code", "")) in MISSING_CODES:
            raise FileNotFoundError(errno.ENOENT, f"no finished folder in {where}", key) from None
        raise
    target, mark = cached_paths(cache_dir, key)
    locks = cache_dir / "locks"
    for folder in (target.parent, mark.parent, locks):
        folder.mkdir(parents=True, exist_ok=True)
    lock_name = hashlib.sha256(key.encode()).hexdigest()[:32] + ".lock"
    with FileLock(str(locks / lock_name)):
        if target.is_dir() and mark.is_file() and mark.read_bytes() == wanted:
            return target
        files = json.loads(wanted)["files"]
        staged = Path(tempfile.mkdtemp(dir=target.parent, prefix=".tmp-"))
        old = staged.with_name(staged.name + "-old")
        try:
            for file, want in files.items():
                dest = staged / check_key(file)
                _download(client, bucket, f"{name}/{file}", dest, want, f"{key}/{file}", where)
            mark.unlink(missing_ok=True)
            if target.exists():
                os.rename(target, old)
            os.rename(staged, target)
            tmp_mark = mark.with_name(mark.name + ".tmp")
            tmp_mark.write_bytes(wanted)
            os.replace(tmp_mark, mark)
        finally:
            shutil.rmtree(staged, ignore_errors=True)
            shutil.rmtree(old, ignore_errors=True)
    return target


def _download(
    client: Any, bucket: str, name: str, dest: Path, want: dict[str, Any], key: str, where: str
) -> None:
    """Stream one object to `dest`, checking its size and SHA-256 against the manifest."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    h, size = hashlib.sha256(), 0
    with dest.open("wb") as fh:
        body = client.get_object(Bucket=bucket, Key=name)["Body"]
        for chunk in body.iter_chunks(_CHUNK):
            h.update(chunk)
            size += len(chunk)
            fh.write(chunk)
    if size != want["size"] or h.hexdigest() != want["sha256"]:
        raise ArtifactDamaged(
            f"{key} in the file storage ({where}) is not what was stored "
            f"({size} bytes, sha256 {h.hexdigest()[:12]}; the manifest says {want['size']} "
            f"bytes, {str(want['sha256'])[:12]}): it was changed or damaged, store it again"
        )
