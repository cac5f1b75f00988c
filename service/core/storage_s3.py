"""The bucket backend of service.core.storage: files as objects in an S3-compatible bucket
(AWS S3, MinIO, Ceph, R2, ...) through boto3, under `s3://bucket/prefix`.

A folder stored with `put_folder` ends with a manifest object (each file's size and SHA-256),
written last: `local_folder` copies only folders whose manifest is there, checks every file
against it, and renames the verified copy into the local cache in one step. The copy is kept and
reused while the bucket's manifest is unchanged, so each machine downloads a folder once. That
download lives in adapters/artifacts_s3.py, shared with the vLLM plugin that loads adapters
straight from the bucket (adapters/vllm/remote_load.py).
Every failure of the bucket (unreachable, refused credentials, no such bucket) becomes a
StorageUnavailable that says what to fix; a missing object is a FileNotFoundError as on disk."""

from __future__ import annotations

import contextlib
import errno
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from adapters.artifacts_s3 import (
    MANIFEST,
    MISSING_CODES,
    ArtifactDamaged,
    drop_cached,
    fetch_folder,
    parse_s3_url,
    sha256_file,
)
from adapters.artifacts_s3 import s3_client as _client
from service.core.storage import StorageUnavailable, check_key

__all__ = ["MANIFEST", "S3Storage", "parse_s3_url"]

_CREDENTIAL_CODES = {
    "403",
    "AccessDenied",
    "AllAccessDisabled",
    "ExpiredToken",
    "Forbidden",
    "InvalidAccessKeyId",
    "InvalidClientTokenId",
    "InvalidToken",
    "SignatureDoesNotMatch",
}
_MISSING_CODES = MISSING_CODES


class S3Storage:
    """Files in an S3-compatible bucket, with local copies of folders under `cache_dir`."""

    def __init__(
        self,
        bucket: str,
        prefix: str,
        *,
        cache_dir: Path,
        endpoint_url: str | None = None,
        region: str | None = None,
    ) -> None:
        self.bucket, self.prefix = bucket, prefix.strip("/")
        self.endpoint_url = endpoint_url
        self.cache_dir = cache_dir
        self._client = _client(endpoint_url, region, attempts=3, connect_s=5)
        # Readiness asks once and quickly: an unreachable bucket answers within seconds.
        self._probe = _client(endpoint_url, region, attempts=1, connect_s=3)

    def describe(self) -> str:
        url = f"s3://{self.bucket}/{self.prefix}".rstrip("/")
        return f"{url} at {self.endpoint_url}" if self.endpoint_url else url

    def _name(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    @contextlib.contextmanager
    def _errors(self, doing: str, key: str | None = None) -> Iterator[None]:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            yield
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if key is not None and code in _MISSING_CODES:
                raise FileNotFoundError(errno.ENOENT, f"not in {self.describe()}", key) from exc
            raise self._unavailable(exc, code, doing) from exc
        except BotoCoreError as exc:
            raise self._unavailable(exc, "", doing) from exc

    def _unavailable(self, exc: Exception, code: str, doing: str) -> StorageUnavailable:
        from botocore.exceptions import ClientError, NoCredentialsError, PartialCredentialsError

        where = f"the file storage ({self.describe()}) could not {doing}"
        if isinstance(exc, NoCredentialsError | PartialCredentialsError):
            why = (
                f"{where}: no credentials; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or "
                "another standard AWS credential source)"
            )
        elif code in _CREDENTIAL_CODES:
            why = (
                f"{where}: the server refused the credentials ({code}); check AWS_ACCESS_KEY_ID, "
                "AWS_SECRET_ACCESS_KEY and the bucket's access policy"
            )
        elif code in ("NoSuchBucket", *_MISSING_CODES):
            why = (
                f"{where}: the bucket {self.bucket!r} does not exist; create it or correct "
                "DOCADAPT_STORAGE_URL"
            )
        elif isinstance(exc, ClientError):
            message = exc.response.get("Error", {}).get("Message", "")
            why = f"{where}: {code} {message}".rstrip()
        else:
            why = (
                f"{where}: the server is unreachable ({exc}); check DOCADAPT_S3_ENDPOINT_URL, "
                "the network and that the server runs"
            )
        return StorageUnavailable(why)

    def put_bytes(self, key: str, data: bytes) -> None:
        with self._errors("store a file"):
            self._client.put_object(Bucket=self.bucket, Key=self._name(key), Body=data)

    def put_text(self, key: str, text: str) -> None:
        self.put_bytes(key, text.encode("utf-8"))

    def read_bytes(self, key: str) -> bytes:
        with self._errors("read a file", key):
            body = self._client.get_object(Bucket=self.bucket, Key=self._name(key))["Body"]
            return body.read()

    def read_text(self, key: str) -> str:
        return self.read_bytes(key).decode("utf-8")

    def exists(self, key: str) -> bool:
        try:
            with self._errors("look up a file", key):
                self._client.head_object(Bucket=self.bucket, Key=self._name(key))
            return True
        except FileNotFoundError:
            return any(True for _ in self._objects(key))

    def _objects(self, key: str) -> Iterator[tuple[str, int]]:
        """(name relative to `key`, size) of every object below `key`."""
        start = self._name(key) + "/"
        pages = self._client.get_paginator("list_objects_v2")
        with self._errors("list files"):
            for page in pages.paginate(Bucket=self.bucket, Prefix=start):
                for item in page.get("Contents", []):
                    yield item["Key"][len(start) :], int(item["Size"])

    def list_files(self, key: str) -> list[str]:
        return sorted(name for name, _ in self._objects(key) if name != MANIFEST)

    def _delete(self, names: list[str]) -> None:
        with self._errors("delete files"):
            for i in range(0, len(names), 1000):
                objects = [{"Key": n} for n in names[i : i + 1000]]
                done = self._client.delete_objects(
                    Bucket=self.bucket, Delete={"Objects": objects, "Quiet": True}
                )
                if done.get("Errors"):
                    first = done["Errors"][0]
                    raise StorageUnavailable(
                        f"the file storage ({self.describe()}) kept {len(done['Errors'])} "
                        f"files it was asked to delete: {first.get('Code')} {first.get('Key')}"
                    )

    def delete_tree(self, key: str) -> None:
        below = [f"{self._name(key)}/{name}" for name, _ in self._objects(key)]
        self._delete([self._name(key), *below])
        # This machine's copy goes too (other machines' copies are never used again: their
        # folder's manifest is gone from the bucket).
        drop_cached(self.cache_dir, key)

    def put_folder(self, key: str, folder: Path) -> None:
        """Drop the manifest, upload every file, delete files of an earlier version, then write
        the new manifest: until then `local_folder` refuses the folder rather than mix two."""
        files = {
            p.relative_to(folder).as_posix(): p for p in sorted(folder.rglob("*")) if p.is_file()
        }
        for name in files:
            check_key(name)
        manifest: dict[str, dict[str, Any]] = {}
        with self._errors("store a folder"):
            self._client.delete_object(Bucket=self.bucket, Key=self._name(f"{key}/{MANIFEST}"))
            for name, path in files.items():
                manifest[name] = {"size": path.stat().st_size, "sha256": sha256_file(path)}
                with path.open("rb") as fh:
                    self._client.put_object(
                        Bucket=self.bucket, Key=self._name(f"{key}/{name}"), Body=fh
                    )
        stale = [n for n, _ in self._objects(key) if n not in files and n != MANIFEST]
        self._delete([self._name(f"{key}/{n}") for n in stale])
        body = json.dumps({"files": manifest}, indent=1, sort_keys=True).encode()
        self.put_bytes(f"{key}/{MANIFEST}", body)

    def local_folder(self, key: str) -> Path:
        """The cached copy of the folder at `key`, downloaded and verified first when the cache
        lacks it or holds another version (adapters.artifacts_s3.fetch_folder)."""
        with self._errors("read a folder", key):
            try:
                return fetch_folder(
                    self._client, self.bucket, self._name(key), self.cache_dir, key, self.describe()
                )
            except ArtifactDamaged as exc:
                raise StorageUnavailable(str(exc)) from exc

    def check(self) -> None:
        with self._errors("reach the bucket"):
            self._probe.head_bucket(Bucket=self.bucket)
