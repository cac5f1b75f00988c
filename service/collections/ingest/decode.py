"""Bytes to text for the text formats (plain text and Markdown), with one stated rule:

1. a byte-order mark decides (UTF-8, UTF-16 or UTF-32), and the text must be valid in it;
2. else the text must be UTF-8;
3. else, as the one fallback, Windows-1252 (the legacy Windows code page, a superset of
   Latin-1's letters), when every byte is a Windows-1252 character, no byte is a control
   character and nothing in the file reads as UTF-8 (UTF-8 with damaged bytes is refused, since
   decoding it as Windows-1252 turns every accented letter into two wrong ones);
4. anything else is refused with the offset of the first byte that does not fit.

Guessing among other code pages (what charset detection does) is not attempted: on short texts
it picks a wrong one as readily as a right one, and a wrong guess trains nonsense into an
adapter. The encoding used is recorded on the document (`text_encoding`)."""

from __future__ import annotations

import codecs
import re

# Longest BOM first: UTF-32-LE's BOM begins with UTF-16-LE's.
_BOMS: tuple[tuple[bytes, str, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32", "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32", "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig", "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16", "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16", "utf-16"),
)
FALLBACK_ENCODING = "windows-1252"
# A well-formed UTF-8 sequence of two to four bytes (RFC 3629): its presence in a file that is
# not valid UTF-8 as a whole means UTF-8 with damaged bytes, not a legacy code page.
_UTF8_MULTIBYTE = re.compile(
    rb"[\xC2-\xDF][\x80-\xBF]|\xE0[\xA0-\xBF][\x80-\xBF]|[\xE1-\xEC\xEE\xEF][\x80-\xBF]{2}"
    rb"|\xED[\x80-\x9F][\x80-\xBF]|\xF0[\x90-\xBF][\x80-\xBF]{2}|[\xF1-\xF3][\x80-\xBF]{3}"
    rb"|\xF4[\x80-\x8F][\x80-\xBF]{2}"
)
# Control bytes that no text file holds (tab, newlines, form feed and vertical tab are fine).
_CONTROL_BYTE = re.compile(rb"[\x00-\x08\x0E-\x1F\x7F]")


class TextDecodeError(ValueError):
    """The bytes are not text in an encoding this module reads; the message says why, in words
    that follow the file's name ("'notes.txt' is not ...")."""


def bom_encoding(data: bytes) -> str | None:
    """The codec a leading byte-order mark names, or None without one."""
    for bom, codec, _ in _BOMS:
        if data.startswith(bom):
            return codec
    return None


def decode(data: bytes) -> tuple[str, str]:
    """The text of a text file and the encoding it was read in ("utf-8", "utf-16", "utf-32" or
    "windows-1252"), by the rule in this module's docstring. Raises TextDecodeError. The text
    never starts with a BOM."""
    for bom, codec, label in _BOMS:
        if data.startswith(bom):
            try:
                return data.decode(codec).lstrip("\ufeff"), label
            except UnicodeDecodeError as exc:
                raise TextDecodeError(
                    f"starts with a {label.upper()} byte-order mark but is not valid "
                    f"{label.upper()}: {_where(data, exc.start)}; save it again as UTF-8"
                ) from exc
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError as exc:
        bad = exc.start
    if _UTF8_MULTIBYTE.search(data):
        raise TextDecodeError(
            f"is not valid UTF-8: {_where(data, bad)}, while the rest reads as UTF-8 (a damaged "
            "or cut file, or two encodings mixed); save it again as UTF-8"
        )
    control = _CONTROL_BYTE.search(data)
    if control is not None:
        raise TextDecodeError(
            f"is not UTF-8 text ({_where(data, bad)}) and holds control characters "
            f"({_where(data, control.start())}), so it is not Windows-1252 text either; "
            "save it as UTF-8"
        )
    try:
        return data.decode("cp1252"), FALLBACK_ENCODING
    except UnicodeDecodeError as exc:
        raise TextDecodeError(
            f"is neither UTF-8 ({_where(data, bad)}) nor Windows-1252 "
            f"({_where(data, exc.start)}); save it as UTF-8"
        ) from exc


def decode_text(data: bytes) -> str:
    """The text of a text file (see `decode`); raises TextDecodeError."""
    return decode(data)[0]


def decode_prefix(data: bytes, limit: int = 4096) -> str:
    """A lenient decoding of the first ``limit`` bytes, good enough to sniff markup."""
    encoding = bom_encoding(data) or "utf-8"
    return data[:limit].decode(encoding, errors="replace").lstrip("\ufeff")


def _where(data: bytes, offset: int) -> str:
    return f"byte 0x{data[offset]:02X} at offset {offset}"
