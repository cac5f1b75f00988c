"""One uploaded file to one ingested document: check, detect, extract, normalize, segment, count."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

from service.collections.ingest.decode import decode
from service.collections.ingest.detect import TEXT_MARKDOWN, TEXT_PLAIN, detect_media_type
from service.collections.ingest.errors import IngestError, clean_filename
from service.collections.ingest.extract import DEFAULT_MAX_DOCX_UNCOMPRESSED, extract_text
from service.collections.ingest.normalize import normalize_text
from service.collections.ingest.segment import Passage, segment


@dataclass(frozen=True, slots=True)
class IngestedDocument:
    """What ingestion made of one file.

    ``text`` is the normalized text; ``sha256`` its hex digest (UTF-8), equal for equal content
    whatever the format or encoding it came in, so it identifies duplicates; ``content_sha256``
    is the hex digest of the raw bytes as uploaded."""

    media_type: str
    text: str
    passages: list[Passage]
    sentence_count: int
    token_count: int
    sha256: str
    content_sha256: str
    # How a text or Markdown file's bytes were read (decode.py); None for the other formats.
    encoding: str | None = None


def _size(n: int) -> str:
    return f"{n / 1_000_000:.1f} MB" if n >= 100_000 else f"{n:,} bytes"


def ingest_file(
    data: bytes,
    filename: str,
    *,
    count_tokens: Callable[[str], int],
    max_bytes: int,
    max_docx_uncompressed: int = DEFAULT_MAX_DOCX_UNCOMPRESSED,
) -> IngestedDocument:
    """Turn the bytes of one uploaded file into text, passages, sentences and a token count.

    ``filename`` is used in messages and to tell Markdown from plain text, never as a path.
    ``count_tokens`` counts the tokens of the whole normalized text (the base model's
    tokenizer in the service). Raises IngestError: 413 ``too_large`` when ``data`` exceeds
    ``max_bytes``; 422 ``empty_file`` when the file or its extracted text is empty or only
    whitespace; and whatever :func:`detect_media_type` and :func:`extract_text` raise (415 for
    unsupported content, 422 for damaged files, PDFs without text, decompression bombs)."""
    name = clean_filename(filename)
    if len(data) > max_bytes:
        raise IngestError(
            413,
            "too_large",
            f"'{name}' is {_size(len(data))}, over the upload limit of {_size(max_bytes)}.",
            name,
        )
    if not data.strip():
        raise IngestError(422, "empty_file", f"'{name}' is empty.", name)

    media_type = detect_media_type(data, name)
    text = normalize_text(
        extract_text(data, media_type, name, max_docx_uncompressed=max_docx_uncompressed)
    )
    if not text:
        raise IngestError(
            422, "empty_file", f"'{name}' holds no text (only whitespace or markup).", name
        )
    passages = segment(text)
    encoding = decode(data)[1] if media_type in (TEXT_PLAIN, TEXT_MARKDOWN) else None
    return IngestedDocument(
        media_type=media_type,
        text=text,
        passages=passages,
        sentence_count=sum(len(p.sentences) for p in passages),
        token_count=count_tokens(text),
        sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(),
        content_sha256=hashlib.sha256(data).hexdigest(),
        encoding=encoding,
    )
