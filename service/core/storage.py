"""File storage behind one small interface: a local folder now, an S3-compatible bucket later.

Keys are built by the service from ids (never from user-supplied file names)."""

from __future__ import annotations

import errno
import logging
import os
import shutil
import stat
import tempfile
from pathlib import Path

from service.core.errors import DISK_FULL_MESSAGE, InsufficientStorage

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


class LocalStorage:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, key: str) -> Path:
        """The local path of a key; refuses keys that would leave the storage root."""
        p = (self.root / key).resolve()
        if not p.is_relative_to(self.root.resolve()):
            raise ValueError(f"storage key escapes the root: {key!r}")
        return p

    def put_bytes(self, key: str, data: bytes) -> Path:
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
        return target

    def put_text(self, key: str, text: str) -> Path:
        return self.put_bytes(key, text.encode("utf-8"))

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
