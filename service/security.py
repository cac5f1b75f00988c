"""API keys: generated with `secrets`, stored as sha256 digests, compared in constant time."""

from __future__ import annotations

import hashlib
import os
import secrets
from pathlib import Path

from service.config import Settings

KEY_PREFIX = "dak_"


def generate_api_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_api_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def keys_match(presented: str, expected: str) -> bool:
    return secrets.compare_digest(presented.encode("utf-8"), expected.encode("utf-8"))


def resolve_admin_key(settings: Settings) -> tuple[str, bool]:
    """The admin key: from settings, else from the data dir, else generated now.

    Returns (key, generated_now). A generated key is written to data_dir/admin_key with
    mode 0600 so only the owner can read it."""
    if settings.admin_key is not None:
        return settings.admin_key.get_secret_value(), False
    path = Path(settings.data_dir) / "admin_key"
    if path.exists():
        return path.read_text().strip(), False
    path.parent.mkdir(parents=True, exist_ok=True)
    key = "daadmin_" + secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key + "\n")
    return key, True
