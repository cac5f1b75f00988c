"""Turn raw teacher outputs into standalone statements and filter them.

Stages, each counted in `YieldStats`: a teacher output is split into statements (list items,
lines, and for sentence-level strategies sentences); each statement is normalized; statements
that are too short or long, or that copy the source, are dropped; the quality gate runs
(`gate.py`); exact and near-duplicates are dropped last, so a duplicate of a gated statement is
not counted twice.
"""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from service.augment.relations import tokens
from service.augment.types import YieldStats

_BULLET_RE = re.compile(r"^\s*(?:[-*•·–>]+|\(?\d{1,3}[.):]|\(?[a-hA-H][.)])\s+")
_LABEL_RE = re.compile(
    r"^\s*(?:\*\*)?(?:rephrasings?|reversals?|reversed|inferences?|inferred|answer|output|"
    r"statements?|facts?|follows|conclusion|connection|sentence|result|example)"
    r"\s*\d*\s*(?:\*\*)?\s*[:：]\s*",
    re.IGNORECASE,
)
_LEAD_IN_RE = re.compile(
    r"^(?:here (?:are|is) [^:]*:|sure[,!.]?|okay[,!.]?)\s*$", re.IGNORECASE
)
_QUOTES = "\"'“”‘’`*_"
_WS_RE = re.compile(r"\s+")


@dataclass(frozen=True)
class FilterConfig:
    """Bounds a kept statement must satisfy."""

    min_words: int = 3
    max_words: int = 60
    max_chars: int = 400
    copy_threshold: float = 0.9  # token-sequence similarity to the source that counts as a copy
    near_duplicate_threshold: float = 0.9
    split_sentences: bool = True  # global inferences are chains: keep them whole


@functools.lru_cache(maxsize=1)
def _segmenter():  # pysbd builds its rules once; cached instead of built at import time
    import pysbd

    return pysbd.Segmenter(language="en", clean=False)


def split_sentences(text: str) -> list[str]:
    """Sentences of a text (pysbd, the segmenter ingest uses)."""
    text = text.strip()
    if not text:
        return []
    return [s.strip() for s in _segmenter().segment(text) if s.strip()]


def normalize_statement(text: str) -> str:
    """One statement tidied: list marker, label, quotes and markdown stripped, spaces collapsed,
    first letter capitalized, final punctuation ensured. Empty if nothing is left."""
    text = _WS_RE.sub(" ", text).strip()
    for _ in range(3):  # "1. Reversal: - ..." peels in layers
        before = text
        text = _BULLET_RE.sub("", text)
        text = _LABEL_RE.sub("", text)
        text = text.strip().strip(_QUOTES).strip()
        if text == before:
            break
    if not text or not any(c.isalnum() for c in text):
        return ""
    if text[-1] not in ".!?":
        text = text.rstrip(",;:-–") + "."
    return text[0].upper() + text[1:]


def split_statements(output: str, *, split_sentences_too: bool, cut_markers: Sequence[str] = (),
                     truncated: bool = False) -> list[str]:
    """Standalone statements in one teacher output.

    Anything from the first cut marker on (the model starting a new few-shot example) is
    dropped; then the output splits on lines (list items), and optionally into sentences. When
    the output was cut by the token limit (`truncated`), its unfinished last piece is dropped.
    """
    text = output.replace("\r\n", "\n")
    for marker in cut_markers:
        if marker and marker in text:
            text = text.split(marker, 1)[0]
    pieces: list[str] = []
    for line in text.split("\n"):
        if not line.strip() or _LEAD_IN_RE.match(line.strip()):
            continue
        line = _BULLET_RE.sub("", line)
        line = _LABEL_RE.sub("", line)
        if split_sentences_too:
            pieces.extend(split_sentences(line))
        else:
            pieces.append(line)
    if truncated and pieces and pieces[-1].rstrip()[-1:] not in ".!?":
        pieces.pop()
    return [s for s in (normalize_statement(p) for p in pieces) if s]


def _stem(tok: str) -> str:
    return tok[:-1] if len(tok) > 3 and tok.endswith("s") and not tok.endswith("ss") else tok


def similarity_key(text: str) -> tuple[str, ...]:
    """The token sequence two statements are compared on (light stemming, no articles)."""
    return tuple(_stem(t) for t in tokens(text) if t not in {"the", "a", "an"})


def similarity(a: Sequence[str], b: Sequence[str]) -> float:
    """Order-aware similarity of two token sequences in [0, 1] (difflib ratio).

    Order matters on purpose: "A are more X than B" and "B are more X than A" share every word
    but say opposite things, so they must not count as copies of each other.
    """
    if not a and not b:
        return 1.0
    return difflib.SequenceMatcher(None, a, b, autojunk=False).ratio()


class Deduplicator:
    """Remembers kept statements; exact duplicates across a whole run, near ones within a unit."""

    def __init__(self, threshold: float) -> None:
        self.threshold = threshold
        self._seen: set[tuple[str, ...]] = set()

    def check(self, key: tuple[str, ...], unit_keys: list[tuple[str, ...]]) -> str | None:
        """Reason to drop `key` ("duplicate"/"near_duplicate"), or None after recording it."""
        if key in self._seen:
            return "duplicate"
        if any(similarity(key, other) >= self.threshold for other in unit_keys):
            return "near_duplicate"
        self._seen.add(key)
        unit_keys.append(key)
        return None


def filter_statements(
    statements: Iterable[str],
    *,
    sources: Sequence[str],
    config: FilterConfig,
    dedup: Deduplicator,
    stats: YieldStats,
    gate: bool = True,
    gate_sources: Sequence[str] | None = None,
) -> list[str]:
    """Statements that pass length bounds, copy check, the quality gate and deduplication.

    `sources` are the texts a copy is judged against (the unit); `gate_sources` the texts the
    gate checks contradictions against (default: `sources`). Every drop is counted in `stats`
    under its reason; `stats.parsed` and `stats.kept` are incremented here.
    """
    from service.augment.gate import contradiction  # gate imports this module's splitter

    source_keys = [similarity_key(s) for s in sources]
    unit_keys: list[tuple[str, ...]] = []
    kept: list[str] = []
    for statement in statements:
        stats.parsed += 1
        n_words = len(statement.split())
        key = similarity_key(statement)
        reason: str | None = None
        if n_words < config.min_words:
            reason = "too_short"
        elif n_words > config.max_words or len(statement) > config.max_chars:
            reason = "too_long"
        elif any(similarity(key, sk) >= config.copy_threshold for sk in source_keys):
            reason = "copy_of_source"
        elif gate and (found := contradiction(statement, gate_sources or sources)) is not None:
            reason = f"gate:{found}"
        else:
            reason = dedup.check(key, unit_keys)
        if reason is None:
            kept.append(statement)
            stats.kept += 1
        else:
            stats.drop(reason)
    return kept
