"""API keys: generated with `secrets`, stored as sha256 digests, compared in constant time.
Secrets a job must keep (a per-request teacher key) are sealed with Fernet (AES-128-CBC and
HMAC-SHA256, from `cryptography`) under the deployment's secret key before they are stored."""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import tempfile
from pathlib import Path

from service.core.config import Settings

KEY_PREFIX = "dak_"
SECRET_KEY_FILE = "secret_key"


class SecretUnreadable(ValueError):
    """A sealed value that this secret key cannot open (another key sealed it, or it is damaged)."""


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


def check_secret_key(key: str) -> None:
    """Raise ValueError unless `key` is a Fernet key (32 bytes in url-safe base64)."""
    from cryptography.fernet import Fernet

    try:
        Fernet(key.encode("ascii"))
    except (ValueError, UnicodeEncodeError) as exc:
        raise ValueError(
            "DOCADAPT_SECRET_KEY must be a Fernet key: 32 random bytes in url-safe base64, e.g. "
            'from python -c "from cryptography.fernet import Fernet; '
            'print(Fernet.generate_key().decode())"'
        ) from exc


def resolve_secret_key(settings: Settings) -> str:
    """The key that seals secrets at rest: from settings, else from data_dir/secret_key, else
    generated now into that file (mode 0600). API processes and workers share the data folder,
    so they read the same key."""
    if settings.secret_key is not None:
        return settings.secret_key.get_secret_value()
    from cryptography.fernet import Fernet

    path = Path(settings.data_dir) / SECRET_KEY_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        # Written whole to a private temporary file, then linked into place: a process that
        # starts at the same moment never reads half a key, and only one key ever wins.
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".secret_key-")
        try:
            with os.fdopen(fd, "w") as fh:
                fh.write(Fernet.generate_key().decode("ascii") + "\n")
            with contextlib.suppress(FileExistsError):
                os.link(tmp, path)
        finally:
            os.unlink(tmp)
    key = path.read_text().strip()
    check_secret_key(key)
    return key


def seal(plaintext: str, key: str) -> str:
    """`plaintext` encrypted and authenticated under `key` (a Fernet token, ASCII)."""
    from cryptography.fernet import Fernet

    return Fernet(key.encode("ascii")).encrypt(plaintext.encode("utf-8")).decode("ascii")


def unseal(token: str, key: str) -> str:
    """The plaintext of a `seal` token; SecretUnreadable when `key` cannot open it."""
    from cryptography.fernet import Fernet, InvalidToken

    try:
        return Fernet(key.encode("ascii")).decrypt(token.encode("ascii")).decode("utf-8")
    except (InvalidToken, ValueError) as exc:
        raise SecretUnreadable("the sealed value cannot be opened with this secret key") from exc
