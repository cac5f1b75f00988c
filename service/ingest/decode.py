"""Bytes to text for the text formats: BOM, then UTF-8, then charset detection, then cp1252."""

from __future__ import annotations

import codecs

import charset_normalizer

# Longest BOM first: UTF-32-LE's BOM begins with UTF-16-LE's.
_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def bom_encoding(data: bytes) -> str | None:
    """The codec a leading byte-order mark names, or None without one."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return encoding
    return None


def decode_text(data: bytes) -> str:
    """Decode a text file. A BOM decides; else strict UTF-8; else the encoding
    charset_normalizer finds, but Windows-1252 when that is among its best guesses (it often
    ties with its neighbours on short texts); else Windows-1252, then Latin-1, which never
    fails. The result never starts with a BOM; undecodable bytes under a BOM become U+FFFD."""
    encoding = bom_encoding(data)
    if encoding is not None:
        return data.decode(encoding, errors="replace")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    matches = list(charset_normalizer.from_bytes(data))
    if matches:
        # Short texts fit several code pages equally well; the commonest one wins such a tie.
        tied = [m for m in matches if m.chaos <= matches[0].chaos]
        if not any("cp1252" in m.could_be_from_charset for m in tied):
            return str(matches[0])
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def decode_prefix(data: bytes, limit: int = 4096) -> str:
    """A lenient decoding of the first ``limit`` bytes, good enough to sniff markup."""
    encoding = bom_encoding(data) or "utf-8"
    return data[:limit].decode(encoding, errors="replace").lstrip("\ufeff")
