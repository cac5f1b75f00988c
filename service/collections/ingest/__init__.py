"""Document ingestion: uploaded bytes to normalized text, passages and sentences.

Usage: ``ingest_file(data, filename, count_tokens=..., max_bytes=...)``; every failure a user
can cause is an :class:`IngestError` carrying its HTTP status, code and message. Plain Python
(no FastAPI), so a worker can run it too. File names are only ever reported, never opened."""

from service.collections.ingest.detect import (
    APPLICATION_PDF,
    DOCX,
    EXTENSIONS,
    SUPPORTED_MEDIA_TYPES,
    TEXT_HTML,
    TEXT_MARKDOWN,
    TEXT_PLAIN,
    detect_media_type,
)
from service.collections.ingest.errors import IngestError, clean_filename
from service.collections.ingest.extract import DEFAULT_MAX_DOCX_UNCOMPRESSED, extract_text
from service.collections.ingest.normalize import normalize_text
from service.collections.ingest.pipeline import IngestedDocument, ingest_file
from service.collections.ingest.segment import Passage, segment, split_sentences

__all__ = [
    "APPLICATION_PDF",
    "DEFAULT_MAX_DOCX_UNCOMPRESSED",
    "DOCX",
    "EXTENSIONS",
    "SUPPORTED_MEDIA_TYPES",
    "TEXT_HTML",
    "TEXT_MARKDOWN",
    "TEXT_PLAIN",
    "IngestError",
    "IngestedDocument",
    "Passage",
    "clean_filename",
    "detect_media_type",
    "extract_text",
    "ingest_file",
    "normalize_text",
    "segment",
    "split_sentences",
]
