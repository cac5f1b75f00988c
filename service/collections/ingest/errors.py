"""The one error ingestion raises, and the safe form of a file name used in its messages."""

from __future__ import annotations

import unicodedata

from service.core.errors import DocadaptError

MAX_DISPLAY_NAME = 255


def clean_filename(filename: str | None) -> str:
    """Return a file name fit for messages and records: its last path component only (a client
    may send "../../x" or "C:\\x"), without control or format characters, NFC-normalized, at most
    255 characters, and "(unnamed)" when nothing is left. It is never a path to open."""
    name = unicodedata.normalize("NFC", filename or "")
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    # Control and bidi/format characters could forge or hide text in logs and messages.
    name = "".join(ch for ch in name if unicodedata.category(ch) not in {"Cc", "Cf", "Zl", "Zp"})
    name = name.strip()
    if len(name) > MAX_DISPLAY_NAME:
        name = name[: MAX_DISPLAY_NAME - 1] + "…"
    return name or "(unnamed)"


class IngestError(DocadaptError):
    """A document that cannot be ingested, for a reason the uploader can act on.

    ``status_code`` is 413 (too large), 415 (unsupported type) or 422 (empty, corrupt, no text
    layer, decompression bomb); ``code`` is a stable machine-readable word; ``message`` names the
    file and the reason; ``filename`` is the cleaned name (see :func:`clean_filename`)."""

    def __init__(self, status_code: int, code: str, message: str, filename: str) -> None:
        super().__init__(message, code=code, details={"filename": filename})
        self.status_code = status_code
        self.code = code
        self.message = message
        self.filename = filename

    def __repr__(self) -> str:
        return f"IngestError({self.status_code}, {self.code!r}, {self.message!r})"
