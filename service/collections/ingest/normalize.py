"""One canonical form for extracted text, so equal content hashes equal and segments cleanly."""

from __future__ import annotations

import re
import unicodedata

# Invisible characters that only get in the way of matching text: soft hyphen, zero-width
# space/joiners, word joiner, BOM. (NFKC keeps them.)
_INVISIBLE = dict.fromkeys(map(ord, "\u00ad\u200b\u200c\u200d\u2060\ufeff"), None)
# Line and paragraph breaks in all their spellings.
_BREAKS = str.maketrans({"\r": "\n", "\v": "\n", "\x85": "\n", "\u2028": "\n",
                         "\f": "\n\n", "\u2029": "\n\n"})  # fmt: skip
# A word broken over a line with a hyphen, continued in lower case: "infor-\nmation".
_LINE_HYPHEN = re.compile(r"(?<=[^\W\d_])[-\u2010]\n(?=[^\W\d_])")
# Control characters (Unicode category Cc) but tab and line feed, and lone surrogates.
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")
_SPACES = re.compile(r"[^\S\n]+")  # any whitespace but a line break
_BLANK_RUN = re.compile(r"\n{2,}")
# A line that starts a list item keeps its line break; other lines of a paragraph are joined.
LIST_ITEM = re.compile(r"^(?:[-*+•◦▪‣]|\(?\d{1,3}[.)]|\(?[a-z]\))\s")


def normalize_text(text: str) -> str:
    """Return ``text`` in canonical form: Unicode NFKC (ligatures, full-width forms and
    non-breaking spaces become plain), invisible and control characters removed, runs of spaces
    and tabs one space, words hyphenated across a line break joined ("infor-\\nmation" ->
    "information"; "Anglo-\\nSaxon" -> "Anglo-Saxon"), each paragraph on one line (wrapped lines
    joined by a space; only a line that starts a list item, "- x" or "2. x", keeps its line
    break) and paragraphs separated by exactly one blank line, whatever line endings or blank
    runs separated them before. Idempotent; "" when nothing visible is left."""
    text = text.replace("\r\n", "\n").translate(_BREAKS)
    text = unicodedata.normalize("NFKC", text).translate(_INVISIBLE)
    text = _CONTROLS.sub("", text)
    text = _SPACES.sub(" ", text)
    text = "\n".join(line.strip() for line in text.split("\n"))
    text = _LINE_HYPHEN.sub(_join_hyphenated, text)
    paragraphs = (_unwrap(p) for p in _BLANK_RUN.split(text.strip()))
    return "\n\n".join(p for p in paragraphs if p)


def _unwrap(paragraph: str) -> str:
    # PDFs and hard-wrapped text break lines mid-sentence; only list items start a new line.
    lines = [line for line in paragraph.split("\n") if line]
    return "".join(
        ("\n" if LIST_ITEM.match(line) else " ") + line if i else line
        for i, line in enumerate(lines)
    )


def _join_hyphenated(match: re.Match[str]) -> str:
    # Only a lower-case continuation is one word; "Anglo-\nSaxon" keeps its hyphen, on one line.
    following = match.string[match.end() : match.end() + 1]
    return "" if following.islower() else match.group(0)[0]
