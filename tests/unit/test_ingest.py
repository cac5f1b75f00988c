"""ingest_file end to end on generated documents: every format, every bad input."""

from __future__ import annotations

import time
import tracemalloc

import pytest

from service.collections.ingest import (
    APPLICATION_PDF,
    DOCX,
    TEXT_HTML,
    TEXT_MARKDOWN,
    TEXT_PLAIN,
    IngestedDocument,
    IngestError,
    ingest_file,
)
from tests.fixtures import documents

MAX_BYTES = 5_000_000


def word_count(text: str) -> int:
    return len(text.split())


def ingest(data: bytes, filename: str, **kwargs: int) -> IngestedDocument:
    options = {"max_bytes": MAX_BYTES, **kwargs}
    return ingest_file(data, filename, count_tokens=word_count, **options)


def refused(data: bytes, filename: str, **kwargs: int) -> IngestError:
    with pytest.raises(IngestError) as caught:
        ingest(data, filename, **kwargs)
    return caught.value


@pytest.mark.parametrize(
    ("filename", "media_type"),
    [
        ("notes.txt", TEXT_PLAIN),
        ("notes.md", TEXT_MARKDOWN),
        ("notes.html", TEXT_HTML),
        ("notes.pdf", APPLICATION_PDF),
        ("notes.docx", DOCX),
    ],
)
def test_every_format_keeps_the_sentences(filename: str, media_type: str) -> None:
    doc = ingest(documents.GOOD_DOCUMENTS[filename](), filename)

    assert doc.media_type == media_type
    sentences = [s for p in doc.passages for s in p.sentences]
    for sentence in documents.SENTENCES:
        assert sentence in doc.text
        assert sentence in sentences
    assert documents.TITLE in doc.text
    assert doc.sentence_count == len(sentences)
    assert doc.token_count == word_count(doc.text)
    assert [p.index for p in doc.passages] == list(range(len(doc.passages)))


def test_markup_and_boilerplate_are_gone() -> None:
    html = ingest(documents.html_document(), "page.html").text
    assert html.startswith(documents.TITLE)  # no doctype, title or navigation before it
    for unwanted in ("<p>", "script text", "color: red", "Navigation link", "Menu title"):
        assert unwanted not in html
    assert "Quellburg | 7" in html  # table rows stay rows

    markdown = ingest(documents.markdown_document(), "notes.md").text
    for unwanted in ("**", "# ", "](", "https://example.com"):
        assert unwanted not in markdown
    assert "Read more" in markdown


def test_pdf_over_several_pages_keeps_every_page() -> None:
    doc = ingest(documents.pdf_document(pages=3), "long.pdf")
    for page in (1, 2, 3):
        assert f"{documents.TITLE} {page}" in doc.text
    assert doc.text.count(documents.SENTENCES[0]) == 3


def test_same_content_in_two_formats_hashes_the_same() -> None:
    plain = ingest(b"Femp are more dangerous than glon.\r\n\r\nAll troff are glon.\r\n", "a.txt")
    html = ingest(
        b"<html><body><p>Femp are more dangerous than glon.</p><p>All troff are glon.</p>",
        "b.html",
    )
    assert plain.text == html.text
    assert plain.sha256 == html.sha256
    assert plain.content_sha256 != html.content_sha256


def test_text_encodings_are_decoded() -> None:
    sentence = "Café Zürich serves crème brûlée."
    for data in (
        sentence.encode("utf-8"),
        sentence.encode("utf-8-sig"),
        sentence.encode("utf-16"),  # with a BOM
        sentence.encode("cp1252"),
    ):
        assert ingest(data, "menu.txt").text == sentence


def test_too_large_is_413() -> None:
    error = refused(documents.oversized_text(1001), "big.txt", max_bytes=1000)
    assert (error.status_code, error.code) == (413, "too_large")
    assert "big.txt" in error.message
    ingest(documents.oversized_text(1000), "exactly.txt", max_bytes=1000)


@pytest.mark.parametrize(
    ("data", "filename"),
    [
        (b"", "empty.txt"),
        (b" \n\t\r\n  ", "blank.md"),
        (b"<html><head><title>t</title></head><body><script>x()</script></body></html>", "e.html"),
        (b"\xef\xbb\xbf\xe2\x80\x8b\n", "invisible.txt"),  # BOM and a zero-width space
    ],
)
def test_empty_is_422(data: bytes, filename: str) -> None:
    error = refused(data, filename)
    assert (error.status_code, error.code) == (422, "empty_file")
    assert filename in error.message


def test_empty_docx_is_422() -> None:
    error = refused(documents.empty_docx(), "blank.docx")
    assert (error.status_code, error.code) == (422, "empty_file")


def test_pdf_without_text_layer_is_422() -> None:
    error = refused(documents.pdf_without_text(), "scan.pdf")
    assert (error.status_code, error.code) == (422, "no_text_layer")
    assert "scan.pdf" in error.message and "text layer" in error.message


def test_password_protected_pdf_is_422() -> None:
    error = refused(documents.encrypted_pdf(), "locked.pdf")
    assert (error.status_code, error.code) == (422, "encrypted_file")
    assert "locked.pdf" in error.message and "password" in error.message


def test_pdf_with_only_an_owner_password_is_read() -> None:
    doc = ingest(documents.encrypted_pdf(user_password=""), "no-print.pdf")
    assert documents.SENTENCES[0] in doc.text


def test_macro_enabled_word_file_is_415() -> None:
    error = refused(documents.docm_document(), "macro.docx")
    assert (error.status_code, error.code) == (415, "unsupported_type")
    assert "macro.docx" in error.message and "macro-enabled" in error.message


@pytest.mark.parametrize(
    ("build", "filename"),
    [(documents.corrupt_pdf, "broken.pdf"), (documents.corrupt_docx, "broken.docx")],
)
def test_corrupt_files_are_422_and_named(build: object, filename: str) -> None:
    error = refused(build(), filename)  # type: ignore[operator]
    assert (error.status_code, error.code) == (422, "corrupt_file")
    assert filename in error.message and "damaged" in error.message
    assert error.filename == filename


def test_corrupt_pdf_is_found_by_content_whatever_its_name() -> None:
    error = refused(documents.corrupt_pdf(), "broken.txt")
    assert (error.status_code, error.code) == (422, "corrupt_file")


def test_docx_bomb_is_refused_without_inflating_it() -> None:
    bomb = documents.docx_bomb()  # 200 MB of zeros in a ~200 KB zip
    assert len(bomb) < 1_000_000
    tracemalloc.start()
    started = time.perf_counter()
    try:
        error = refused(bomb, "bomb.docx", max_bytes=10_000_000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (error.status_code, error.code) == (422, "decompression_bomb")
    assert "bomb.docx" in error.message
    assert time.perf_counter() - started < 2.0
    assert peak < 20_000_000  # inflating it would take 200 MB


def test_docx_that_understates_its_size_is_refused_without_inflating_it() -> None:
    liar = documents.docx_lying_bomb()  # declares 5 KB, inflates to 100 MB
    tracemalloc.start()
    try:
        error = refused(liar, "liar.docx")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (error.status_code, error.code) == (422, "corrupt_file")
    assert "liar.docx" in error.message
    assert peak < 20_000_000


def test_pdf_bomb_is_refused() -> None:
    bomb = documents.pdf_bomb()  # one content stream of 80 MB of spaces in ~80 KB
    started = time.perf_counter()
    error = refused(bomb, "bomb.pdf")
    assert (error.status_code, error.code) == (422, "decompression_bomb")
    assert "bomb.pdf" in error.message
    assert time.perf_counter() - started < 10.0


def test_docx_bomb_under_the_total_limit_is_refused_by_its_ratio() -> None:
    error = refused(documents.docx_bomb(20_000_000), "small-bomb.docx")
    assert (error.status_code, error.code) == (422, "decompression_bomb")
    assert "compressed" in error.message


def test_docx_total_limit_is_a_parameter() -> None:
    good = documents.docx_document()
    error = refused(good, "notes.docx", max_docx_uncompressed=10_000)
    assert error.code == "decompression_bomb"
    assert ingest(good, "notes.docx").media_type == DOCX


@pytest.mark.parametrize(
    ("build", "filename"),
    [
        (documents.png_image, "photo.png"),
        (documents.png_image, "photo.txt"),
        (documents.png_image, "photo.pdf"),
        (documents.zip_archive, "archive.docx"),
        (lambda: b"MZ\x90\x00\x03\x00\x00\x00\x04\x00" + bytes(200), "tool.exe"),
    ],
)
def test_unsupported_content_is_415(build: object, filename: str) -> None:
    error = refused(build(), filename)  # type: ignore[operator]
    assert (error.status_code, error.code) == (415, "unsupported_type")
    assert filename in error.message


def test_file_names_are_cleaned_in_messages() -> None:
    error = refused(b"", "../../etc/\x1b[31mpasswd\n.txt")
    assert error.filename == "[31mpasswd.txt"
    assert "\x1b" not in error.message and "/etc" not in error.message
