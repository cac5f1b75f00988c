"""Normalized text into passages (about 150 words, on paragraph and sentence boundaries) and
sentences (pysbd, English rules)."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import pysbd

from service.collections.ingest.normalize import LIST_ITEM

log = logging.getLogger(__name__)

DEFAULT_TARGET_WORDS = 150
DEFAULT_MIN_WORDS = 30


@dataclass(frozen=True, slots=True)
class Passage:
    """A passage of a document: its position, its text, and the sentences that make it up
    (each sentence appears verbatim in ``text``)."""

    index: int
    text: str
    sentences: tuple[str, ...]


@dataclass(slots=True)
class _Unit:
    """A piece of text that stays inside one passage: a paragraph, or part of a long one."""

    sentences: list[str]
    list_item: bool

    @property
    def words(self) -> int:
        return sum(len(s.split()) for s in self.sentences)

    @property
    def text(self) -> str:
        return " ".join(self.sentences)


def split_sentences(text: str) -> list[str]:
    """The sentences of one paragraph by pysbd's English rules, stripped; together they hold
    every word of ``text`` in order. Line breaks inside the paragraph count as spaces (PDF and
    hard-wrapped text break lines mid-sentence)."""
    flat = " ".join(text.split())
    if not flat:
        return []
    # A Segmenter keeps per-call state on itself, so one per call keeps threads apart. Its
    # processor's sentences are matched back to the text with str.find: pysbd's own regex
    # matching compiles one pattern per sentence (half the time) and drops unmatched ones.
    pieces = pysbd.Segmenter(language="en", clean=False).processor(flat).process()
    sentences: list[str] = []
    cursor = 0
    for piece in pieces:
        piece = piece.strip()
        if not piece:
            continue
        at = flat.find(piece, cursor)
        if at < 0 or flat[cursor:at].strip():
            log.debug("pysbd altered a paragraph; keeping it as one sentence: %.80r", flat)
            return [flat]
        sentences.append(piece)
        cursor = at + len(piece)
    rest = flat[cursor:].strip()
    return [*sentences, rest] if rest else sentences


def segment(
    text: str,
    *,
    target_words: int = DEFAULT_TARGET_WORDS,
    min_words: int = DEFAULT_MIN_WORDS,
) -> list[Passage]:
    """Split normalized text (paragraphs separated by blank lines) into passages.

    Each paragraph, and each list item line, is a unit. A unit longer than ``target_words`` is
    split at sentence boundaries into near-equal parts of at most ``target_words``. A single
    longer sentence stays whole unless it exceeds twice ``target_words``: such a "sentence" is
    a table or list without punctuation, and is cut into near-equal runs of words. A unit
    shorter than ``min_words`` (a heading, a list item, a one-line paragraph) is merged with its
    neighbour while the passage stays within ``target_words + min_words``. Passage indexes
    count from 0. Within a passage, merged paragraphs are separated by a blank line, list items
    by a line break; inside a paragraph, line breaks become spaces."""
    units = [
        part for unit in _units(text, target_words) for part in _split_long(unit, target_words)
    ]
    groups: list[list[_Unit]] = []
    for unit in units:
        if groups:
            current = groups[-1]
            words = sum(u.words for u in current)
            small = words < min_words or unit.words < min_words
            if small and words + unit.words <= target_words + min_words:
                current.append(unit)
                continue
        groups.append([unit])
    return [
        Passage(
            index=i,
            text=_join(group),
            sentences=tuple(s for unit in group for s in unit.sentences),
        )
        for i, group in enumerate(groups)
    ]


def _units(text: str, target_words: int) -> list[_Unit]:
    units = []
    for paragraph in text.split("\n\n"):
        block: list[str] = []
        blocks: list[tuple[list[str], bool]] = []
        for line in paragraph.split("\n"):
            heading_above = len(block) == 1 and bool(blocks) and _is_heading(block[0], line)
            if LIST_ITEM.match(line) or not blocks or heading_above:
                block = [line]
                blocks.append((block, bool(LIST_ITEM.match(line))))
            else:
                block.append(line)
        for lines, list_item in blocks:
            sentences = [
                piece
                for sentence in split_sentences("\n".join(lines))
                for piece in _cut_overlong(sentence, target_words)
            ]
            if sentences:
                units.append(_Unit(sentences, list_item))
    return units


_HEADING_MAX_WORDS = 6
# A line that ends in one of these continues on the next line; a heading does not.
_CONTINUES = frozenset(
    {
        *("the", "a", "an", "of", "and", "or", "to", "for", "in", "on", "with", "by", "at"),
        *("from", "as", "is", "are", "was", "were", "its", "their", "our"),
    }
)


def _is_heading(line: str, following: str) -> bool:
    """Whether `line` is a heading written straight above its text (a plain-text or PDF
    section title: "Quarry Software" over "Quarry Software licenses Ledger ..."), so that it
    is not read as the start of the sentence below it. A wrapped line of running text is
    longer, or ends in punctuation or a word that continues."""
    words = line.split()
    return (
        0 < len(words) <= _HEADING_MAX_WORDS
        and line[:1].isupper()
        and line.rstrip()[-1:] not in ".,;:!?-"
        and words[-1].lower() not in _CONTINUES
        and following[:1].isupper()
    )


def _cut_overlong(sentence: str, target_words: int) -> list[str]:
    words = sentence.split()
    if len(words) <= 2 * target_words:
        return [sentence]
    size = math.ceil(len(words) / math.ceil(len(words) / target_words))
    return [" ".join(words[i : i + size]) for i in range(0, len(words), size)]


def _split_long(unit: _Unit, target_words: int) -> list[_Unit]:
    if unit.words <= target_words or len(unit.sentences) == 1:
        return [unit]
    # Near-equal parts avoid a long passage followed by a stub.
    per_part = unit.words / math.ceil(unit.words / target_words)
    parts: list[_Unit] = []
    current: list[str] = []
    count = 0
    for sentence in unit.sentences:
        n = len(sentence.split())
        if current and (count + n > target_words or count >= per_part):
            parts.append(_Unit(current, unit.list_item))
            current, count = [], 0
        current.append(sentence)
        count += n
    if current:
        parts.append(_Unit(current, unit.list_item))
    return parts


def _join(group: list[_Unit]) -> str:
    text = group[0].text
    for unit in group[1:]:
        text += ("\n" if unit.list_item else "\n\n") + unit.text
    return text
