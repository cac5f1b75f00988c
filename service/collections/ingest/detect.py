"""Decide what a file is from its bytes; its name only tells Markdown from plain text."""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import PurePosixPath

import puremagic

from service.collections.ingest.decode import decode_prefix
from service.collections.ingest.errors import IngestError, clean_filename

TEXT_PLAIN = "text/plain"
TEXT_MARKDOWN = "text/markdown"
TEXT_HTML = "text/html"
APPLICATION_PDF = "application/pdf"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"

SUPPORTED_MEDIA_TYPES: frozenset[str] = frozenset(
    {TEXT_PLAIN, TEXT_MARKDOWN, TEXT_HTML, APPLICATION_PDF, DOCX}
)
# The extension a stored original gets for each media type.
EXTENSIONS: dict[str, str] = {
    TEXT_PLAIN: ".txt",
    TEXT_MARKDOWN: ".md",
    TEXT_HTML: ".html",
    APPLICATION_PDF: ".pdf",
    DOCX: ".docx",
}
SUPPORTED_NAMES = ".txt, .md, .html, .pdf, .docx"

_MARKDOWN_SUFFIXES = {".md", ".markdown", ".mdown", ".mkd"}
_HTML_SUFFIXES = {".html", ".htm", ".xhtml"}
# Names that claim a binary document format: content that is not that format is a damaged file.
_CLAIMED_BINARY = {".pdf": "a PDF", ".docx": "a Word (.docx) document"}

_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
_OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # legacy .doc/.xls/.ppt
# WHATWG MIME sniffing: bytes that never occur in text ("binary data bytes").
_BINARY_BYTES = bytes([*range(0x00, 0x09), 0x0B, *range(0x0E, 0x1B), *range(0x1C, 0x20)])
_TEXT_BOMS = (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")
# WHATWG's "HTML" patterns: the first tag after leading whitespace.
_HTML_START = re.compile(
    r"\s*(<!doctype\s+html|<!--|<(html|head|body|script|iframe|h1|div|font|table|a|style|title|b"
    r"|br|p)[\s>/])",
    re.IGNORECASE,
)
# An XML declaration, comments and a doctype, then <svg. The comment body is a tempered dot, so
# a run of comments parses one way only (no catastrophic backtracking on hostile input).
_SVG = re.compile(
    r"(?:<\?xml[^>]*>\s*)?(?:<!--(?:(?!-->).)*-->\s*|<!DOCTYPE[^>]*>\s*)*<svg[\s>]", re.DOTALL
)
_SNIFF_BYTES = 4096
_STRICT_TEXT_BYTES = 8192


def suffix_of(filename: str) -> str:
    """The lower-case extension of a (cleaned) file name, "" when it has none."""
    return PurePosixPath(clean_filename(filename)).suffix.lower()


def looks_like_text(data: bytes) -> bool:
    """True when ``data`` is text by WHATWG's rule, applied to the first 8 KB: a Unicode BOM,
    or no binary control bytes; further on, a stray one in a thousand (a DOS end-of-file
    mark, a NUL in an export) is tolerated, and removed by normalization."""
    if data.startswith(_TEXT_BOMS):
        return True
    head = data[:_STRICT_TEXT_BYTES]
    # bytes.translate with a delete table is a fast C-level scan.
    if len(head.translate(None, _BINARY_BYTES)) != len(head):
        return False
    binary = len(data) - len(data.translate(None, _BINARY_BYTES))
    return binary * 1000 <= len(data)


def _is_pdf(data: bytes) -> bool:
    # Readers accept the header anywhere in the first 1024 bytes; text before it means a text
    # file that mentions "%PDF-", not a PDF.
    at = data.find(b"%PDF-", 0, 1024)
    return at == 0 or (at > 0 and not looks_like_text(data[:at]))


def _zip_kind(data: bytes, suffix: str) -> str | None:
    """DOCX for a Word package (or a damaged zip that claims to be one), None for another zip.
    Reads only the central directory: nothing is decompressed here."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = set(archive.namelist())
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError):
        # A truncated or damaged package: call it DOCX when it says so, so extraction can report
        # it as a corrupt Word file rather than an unknown type.
        claims_word = suffix == ".docx" or b"word/document.xml" in data[: 1 << 20]
        return DOCX if claims_word else None
    return DOCX if "word/document.xml" in names else None


def _describe_binary(data: bytes) -> str | None:
    """A human name for a binary type we do not support, or None when nothing matches well."""
    if data.startswith(_OLE2_MAGIC):
        return "a legacy Microsoft Office file (.doc/.xls/.ppt)"
    if data.startswith(_ZIP_MAGIC):
        return "a zip archive that is not a Word (.docx) document"
    try:
        matches = puremagic.magic_string(data)
    except (puremagic.PureError, ValueError):
        return None
    # Signatures of 3+ bytes; shorter ones (e.g. "MZ") match random data too often to trust.
    good = [m for m in matches if m.confidence >= 0.3]
    if not good:
        return None
    best = good[0]
    return f"{best.name} ({best.mime_type})" if best.mime_type else best.name


def _unsupported_text_format(data: bytes) -> str | None:
    """Document and image formats that are text on disk but markup to a reader."""
    head = decode_prefix(data, _SNIFF_BYTES).lstrip()
    if head.startswith("{\\rtf"):
        return "Rich Text Format (RTF)"
    if head.startswith("%!PS"):
        return "PostScript"
    if _SVG.match(head):
        return "an SVG image"
    return None


def detect_media_type(data: bytes, filename: str) -> str:
    """Return the media type of ``data``, one of :data:`SUPPORTED_MEDIA_TYPES`, judged by content.

    PDF and DOCX are recognized by their signatures whatever the name (a PDF named .txt is a PDF).
    Other content that is text is Markdown when named .md/.markdown, HTML when named .html/.htm
    or when it starts like HTML (WHATWG sniffing), and plain text otherwise.

    Raises IngestError: 415 ``unsupported_type`` for any other content (images, archives,
    executables, legacy .doc, and the text-based RTF, PostScript and SVG); 422 ``corrupt_file``
    when the name claims .pdf or .docx but the content is not that format (a damaged or
    misnamed file, text included: we refuse rather than guess, and the message says to rename
    it to .txt to upload it as text)."""
    name = clean_filename(filename)
    suffix = suffix_of(name)

    if _is_pdf(data):
        return APPLICATION_PDF
    if data.startswith(_ZIP_MAGIC) and _zip_kind(data, suffix) == DOCX:
        return DOCX

    is_text = looks_like_text(data)
    claimed = _CLAIMED_BINARY.get(suffix)
    if claimed is not None and (is_text or _describe_binary(data) is None):
        found = "text" if is_text else "unrecognizable bytes"
        hint = " (rename it to .txt to upload it as text)" if is_text else ""
        raise IngestError(
            422,
            "corrupt_file",
            f"'{name}' is named as {claimed} but its content is {found}, not {claimed}: "
            f"the file is damaged or misnamed{hint}.",
            name,
        )
    text_format = _unsupported_text_format(data) if is_text else None
    if not is_text or text_format is not None:
        what = text_format or _describe_binary(data) or "binary data of an unknown type"
        raise IngestError(
            415,
            "unsupported_type",
            f"'{name}' is not a supported document: its content is {what}. "
            f"Supported: {SUPPORTED_NAMES} (recognized by content, not by name).",
            name,
        )

    # Markdown may hold raw HTML (a README that opens with <div>), so its name wins the tie.
    if suffix in _MARKDOWN_SUFFIXES:
        return TEXT_MARKDOWN
    if suffix in _HTML_SUFFIXES or _HTML_START.match(decode_prefix(data, _SNIFF_BYTES)):
        return TEXT_HTML
    return TEXT_PLAIN
