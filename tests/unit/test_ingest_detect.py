"""Media types come from the content; the name only tells Markdown from plain text."""

from __future__ import annotations

import os

import pytest

from service.collections.ingest import (
    APPLICATION_PDF,
    DOCX,
    TEXT_HTML,
    TEXT_MARKDOWN,
    TEXT_PLAIN,
    IngestError,
    clean_filename,
    detect_media_type,
)
from tests.fixtures import documents


def detect_error(data: bytes, filename: str) -> IngestError:
    with pytest.raises(IngestError) as caught:
        detect_media_type(data, filename)
    return caught.value


@pytest.mark.parametrize("filename", ["report.pdf", "report.txt", "report.docx", "report"])
def test_pdf_is_a_pdf_whatever_its_name(filename: str) -> None:
    assert detect_media_type(documents.pdf_document(), filename) == APPLICATION_PDF


@pytest.mark.parametrize("filename", ["memo.docx", "memo.txt", "memo.zip", "memo"])
def test_docx_is_a_docx_whatever_its_name(filename: str) -> None:
    assert detect_media_type(documents.docx_document(), filename) == DOCX


@pytest.mark.parametrize(
    ("data", "filename", "expected"),
    [
        (b"Plain words.", "a.txt", TEXT_PLAIN),
        (b"Plain words.", "README", TEXT_PLAIN),
        (b"Plain words.", "notes.log", TEXT_PLAIN),
        (b"# Heading\n\nWords.", "a.md", TEXT_MARKDOWN),
        (b"# Heading\n\nWords.", "a.markdown", TEXT_MARKDOWN),
        (b"# Heading\n\nWords.", "a.txt", TEXT_PLAIN),  # Markdown only by name
        (b"<div align='center'>Logo</div>\n\n# Title", "README.md", TEXT_MARKDOWN),
        (b"  <!DOCTYPE html><html><body><p>Hi</p></body></html>", "page.txt", TEXT_HTML),
        (b"<p>Hi</p>", "fragment", TEXT_HTML),
        (b"Hi, no tags at all.", "page.html", TEXT_HTML),
        ("<html><body>Grüße</body></html>".encode("utf-16"), "page", TEXT_HTML),
        (b"The header %PDF-1.7 opens every PDF.", "notes.txt", TEXT_PLAIN),
        (b"An old DOS file. " * 1000 + b"\x1a", "dos.txt", TEXT_PLAIN),
    ],
)
def test_text_formats(data: bytes, filename: str, expected: str) -> None:
    assert detect_media_type(data, filename) == expected


@pytest.mark.parametrize("filename", ["notes.pdf", "notes.docx"])
def test_text_named_as_a_binary_format_is_refused_as_damaged(filename: str) -> None:
    # Decision: a .pdf/.docx that holds text is a damaged or misnamed upload; we refuse it
    # (422) and say how to upload it as text, rather than silently storing it as text.
    error = detect_error(b"Femp are more dangerous than glon.\n", filename)
    assert (error.status_code, error.code) == (422, "corrupt_file")
    assert filename in error.message and "rename it to .txt" in error.message


def test_binary_bytes_early_or_often_mean_binary() -> None:
    assert detect_error(b"\x00\x01" + b"text " * 100, "a.txt").code == "unsupported_type"
    assert detect_error(b"text " * 2000 + b"\x00" * 100, "a.txt").code == "unsupported_type"


def test_unrecognizable_bytes_named_pdf_are_damaged_and_otherwise_unsupported() -> None:
    noise = bytes(b ^ 0x5A for b in os.urandom(4096)) + b"\x00\x01"
    assert detect_error(noise, "scan.pdf").code == "corrupt_file"
    assert detect_error(noise, "blob.bin").code == "unsupported_type"


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (documents.png_image(), "image/png"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(600), "legacy Microsoft Office"),
        (documents.zip_archive(), "not a Word"),
        (b"GIF89a\x01\x00\x01\x00\x80\x00\x00" + bytes(30), "GIF"),
        (b"{\\rtf1\\ansi Femp are more dangerous than glon.}", "RTF"),
        (b"%!PS-Adobe-3.0\n/Helvetica findfont", "PostScript"),
        (b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"></svg>', "SVG"),
    ],
)
def test_other_types_are_415_and_named(data: bytes, words: str) -> None:
    error = detect_error(data, "upload.txt")
    assert (error.status_code, error.code) == (415, "unsupported_type")
    assert words in error.message and "upload.txt" in error.message


def test_truncated_docx_is_still_a_docx_so_it_reports_as_damaged() -> None:
    assert detect_media_type(documents.corrupt_docx(), "memo.docx") == DOCX


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("report.pdf", "report.pdf"),
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\me\\memo.docx", "memo.docx"),
        ("evil\u202etxt.exe", "eviltxt.exe"),  # right-to-left override removed
        ("line\nbreak.txt", "linebreak.txt"),
        ("", "(unnamed)"),
        ("dir/", "(unnamed)"),
        ("x" * 300 + ".txt", "x" * 254 + "…"),
    ],
)
def test_clean_filename(raw: str, clean: str) -> None:
    assert clean_filename(raw) == clean
