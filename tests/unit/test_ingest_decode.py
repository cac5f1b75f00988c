"""Text files: UTF-8 (or a BOM's encoding), else Windows-1252 as the one stated fallback, else a
refusal that names the first byte that does not fit; never silent mojibake."""

from __future__ import annotations

import pytest

from service.collections.ingest import IngestError, ingest_file
from service.collections.ingest.decode import TextDecodeError, decode

SENTENCE = "Café Zürich serves crème brûlée."


def test_utf8_and_byte_order_marks_decide() -> None:
    assert decode(SENTENCE.encode("utf-8")) == (SENTENCE, "utf-8")
    assert decode(SENTENCE.encode("utf-8-sig")) == (SENTENCE, "utf-8")
    assert decode(SENTENCE.encode("utf-16")) == (SENTENCE, "utf-16")
    assert decode(SENTENCE.encode("utf-32")) == (SENTENCE, "utf-32")


def test_windows_1252_is_the_stated_fallback() -> None:
    assert decode("“Smart” quotes – and £5.".encode("cp1252")) == (
        "“Smart” quotes – and £5.",
        "windows-1252",
    )


@pytest.mark.parametrize(
    ("data", "why"),
    [
        # UTF-8 with one damaged byte: read as Windows-1252 every é would become "Ã©".
        ("Café Zürich".encode() + b"\xff and more", r"not valid UTF-8: byte 0xFF at offset 13"),
        (b"abc\x81def", r"neither UTF-8 \(byte 0x81 at offset 3\) nor Windows-1252"),
        (b"\xe9t\xe9\x00\x01\x02", r"control characters \(byte 0x00 at offset 3\)"),
        (b"\xff\xfeA\x00\x00\xd8", r"UTF-16 byte-order mark but is not valid UTF-16"),
    ],
)
def test_what_is_not_text_in_a_known_encoding_is_refused(data: bytes, why: str) -> None:
    with pytest.raises(TextDecodeError, match=why):
        decode(data)


def test_an_upload_that_is_not_text_is_a_422_naming_the_file() -> None:
    with pytest.raises(IngestError) as refused:
        ingest_file(
            "Grüße aus Köln".encode() + b"\xc3", "notes.txt", count_tokens=len, max_bytes=99
        )
    err = refused.value
    assert (err.status_code, err.code) == (422, "invalid_encoding")
    assert err.message.startswith("'notes.txt' is not valid UTF-8: byte 0xC3 at offset 17")
    assert ingest_file(b"Plain.", "a.txt", count_tokens=len, max_bytes=99).encoding == "utf-8"
    legacy = ingest_file(SENTENCE.encode("cp1252"), "menu.md", count_tokens=len, max_bytes=99)
    assert (legacy.text, legacy.encoding) == (SENTENCE, "windows-1252")
