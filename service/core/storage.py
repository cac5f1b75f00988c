"""File storage behind one small interface (`Storage`): the local data folder, or an
S3-compatible bucket (service.core.storage_s3) so that workers and vLLM replicas on other
machines read what the API wrote. `open_storage` picks one from the settings.

Keys are built by the service from ids (never from user-supplied file names), and both backends
refuse a key that is absolute or has an empty, "." or ".." part. Where code needs a real folder
(vLLM loads an adapter from one), `local_folder` gives it: the folder itself here, a verified
local copy of the bucket's objects there; `put_folder` stores a finished folder as one unit."""

from __future__ import annotations

import errno
import logging
import os
import shutil
import stat
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from adapters.artifacts_s3 import check_key
from service.core.errors import DISK_FULL_MESSAGE, InsufficientStorage, ServiceUnavailable

if TYPE_CHECKING:
    from service.core.config import Settings

log = logging.getLogger("docadapt")

_DISK_FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT}


def disk_full(exc: BaseException | None) -> bool:
    """Whether `exc`, or an error that caused it, says a disk is full: ENOSPC or EDQUOT from the
    OS, SQLite's SQLITE_FULL, PostgreSQL's disk_full (SQLSTATE 53100)."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in _DISK_FULL_ERRNOS:
            return True
        if "database or disk is full" in str(exc):  # sqlite3's text for SQLITE_FULL
            return True
        if "53100" in (getattr(exc, "sqlstate", None), getattr(exc, "pgcode", None)):
            return True
        exc = getattr(exc, "orig", None) or exc.__cause__ or exc.__context__
    return False


def private_dir(path: Path) -> Path:
    """Create `path` (and missing parents) owner-only (0700); an existing folder that others
    can enter is narrowed to 0700. Everything docadapt keeps lives below such a folder, so no
    other account on the machine reads a company's documents, adapters or database."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        os.chmod(path, mode & 0o700)
        log.warning("data folder %s was open to others (%o); narrowed to owner-only", path, mode)
    return path


class StorageUnavailable(ServiceUnavailable):
    """The file storage cannot be used now (unreachable, refused credentials, no such bucket):
    a 503 whose message says what to fix, never a 500 with a stack trace."""

    code = "storage_unavailable"


class Storage(Protocol):
    """Where company files live: uploaded documents and adapter artifacts, by key."""

    def put_bytes(self, key: str, data: bytes) -> None:
        """Store `data` at `key`, whole or not at all."""

    def put_text(self, key: str, text: str) -> None: ...

    def read_bytes(self, key: str) -> bytes:
        """The bytes at `key`; FileNotFoundError when there are none."""

    def read_text(self, key: str) -> str: ...

    def exists(self, key: str) -> bool:
        """Whether `key` is a file or a folder (a prefix of files)."""

    def delete_tree(self, key: str) -> None:
        """Remove the file at `key` and every file below it; nothing there is no error."""

    def list_files(self, key: str) -> list[str]:
        """The files below `key`, as sorted paths relative to it ([] when there are none)."""

    def put_folder(self, key: str, folder: Path) -> None:
        """Store the files of a finished local folder at `key`, replacing what was there; a
        reader of `local_folder` never gets a mix of the old files and the new."""

    def local_folder(self, key: str) -> Path:
        """A local folder holding the files `put_folder` stored at `key` (FileNotFoundError when
        none was stored there). Read it only: it may be the storage itself or a shared cache."""

    def check(self) -> None:
        """Raise StorageUnavailable, saying what to fix, when the storage cannot be used."""

    def describe(self) -> str:
        """Where the files live, for messages (never a credential)."""


class LocalStorage:
    """Files in a folder of this machine (the data dir's files/)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, key: str) -> Path:
        """The local path of a key; refuses keys that would leave the storage root."""
        p = (self.root / check_key(key)).resolve()
        if not p.is_relative_to(self.root.resolve()):
            raise ValueError(f"storage key escapes the root: {key!r}")
        return p

    def put_bytes(self, key: str, data: bytes) -> None:
        """Write atomically (temp file + rename), so a reader never sees half a file."""
        target = self.path(key)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(data)
                os.replace(tmp, target)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            if disk_full(exc):
                raise InsufficientStorage(DISK_FULL_MESSAGE) from exc
            raise

    def put_text(self, key: str, text: str) -> None:
        self.put_bytes(key, text.encode("utf-8"))

    def read_bytes(self, key: str) -> bytes:
        return self.path(key).read_bytes()

    def read_text(self, key: str) -> str:
        return self.read_bytes(key).decode("utf-8")

    def exists(self, key: str) -> bool:
        return self.path(key).exists()

    def delete_tree(self, key: str) -> None:
        p = self.path(key)
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)

    def list_files(self, key: str) -> list[str]:
        p = self.path(key)
        if not p.is_dir():
            return []
        return sorted(
            f.relative_to(p).as_posix()
            for f in p.rglob("*")
            if f.is_file() and not f.name.startswith(".tmp-")
        )

    def put_folder(self, key: str, folder: Path) -> None:
        """Copy `folder` beside the target, then swap it in with renames."""
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        staged = Path(tempfile.mkdtemp(dir=target.parent, prefix=".tmp-"))
        old = staged.with_name(staged.name + "-old")
        try:
            shutil.copytree(folder, staged, dirs_exist_ok=True)
            if target.exists():
                os.rename(target, old)
            os.rename(staged, target)
        except OSError as exc:
            shutil.rmtree(staged, ignore_errors=True)
            if old.exists() and not target.exists():
                os.rename(old, target)
            if disk_full(exc):
                raise InsufficientStorage(DISK_FULL_MESSAGE) from exc
            raise
        shutil.rmtree(old, ignore_errors=True)

    def local_folder(self, key: str) -> Path:
        p = self.path(key)
        if not p.is_dir():
            raise FileNotFoundError(f"no folder stored at {key!r}")
        return p

    def check(self) -> None:
        if not self.root.is_dir() or not os.access(self.root, os.W_OK | os.X_OK):
            raise StorageUnavailable(f"the data folder {self.root} is missing or not writable")

    def describe(self) -> str:
        return f"the local folder {self.root}"


def open_storage(settings: Settings) -> Storage:
    """The storage the settings name: DOCADAPT_STORAGE_URL's bucket (s3://bucket/prefix), else
    the data dir's files/ folder. A bucket's local copies go under the data dir's cache/."""
    if not settings.storage_url:
        return LocalStorage(settings.data_dir / "files")
    from service.core.storage_s3 import S3Storage, parse_s3_url

    bucket, prefix = parse_s3_url(settings.storage_url)
    return S3Storage(
        bucket,
        prefix,
        cache_dir=settings.data_dir / "cache" / "storage",
        endpoint_url=settings.s3_endpoint_url,
        region=settings.s3_region,
    )


def storage_env(settings: Settings) -> dict[str, str]:
    """The DOCADAPT_* variables that give a worker process (or a local vLLM child) the same
    storage as `settings`, and the same choice of what vLLM loads adapters from."""
    env = {
        "DOCADAPT_STORAGE_URL": settings.storage_url or "",
        # Workers activate adapters too: they send vLLM what the API would.
        "DOCADAPT_VLLM_ADAPTER_SOURCE": settings.vllm_adapter_source,
    }
    if settings.s3_endpoint_url:
        env["DOCADAPT_S3_ENDPOINT_URL"] = settings.s3_endpoint_url
    if settings.s3_region:
        env["DOCADAPT_S3_REGION"] = settings.s3_region
    return env


def vllm_adapter_root(settings: Settings) -> str | None:
    """The s3://bucket/prefix below which vLLM is sent adapters' URLs (DOCADAPT_VLLM_ADAPTER_SOURCE
    =bucket; docadapt's vLLM plugin fetches them), or None: vLLM gets local paths."""
    if settings.vllm_adapter_source != "bucket" or not settings.storage_url:
        return None
    from adapters.artifacts_s3 import parse_s3_url

    bucket, prefix = parse_s3_url(settings.storage_url)
    return f"s3://{bucket}/{prefix}".rstrip("/")
