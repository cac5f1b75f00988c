"""Turn raw teacher outputs into standalone statements and filter them.

Stages, each counted in `YieldStats`: a teacher output is split into statements (list items,
lines, and for sentence-level strategies sentences); each statement is normalized; statements
that are too short or long, hold a redaction placeholder nothing maps back (the teacher made it
up: `unrestorable_placeholder`), are repetitive, copies of the source, or not about the source
(a name the source lacks, too few of its words) are dropped; the quality gate runs (`gate.py`);
exact and near-duplicates are dropped last, so a duplicate of a gated statement is not counted
twice.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from service.augment.filters.gate import contradiction
from service.augment.redact import PLACEHOLDER_RE, UNRESTORABLE
from service.augment.relations import tokens
from service.augment.types import YieldStats
from service.collections.ingest.segment import split_sentences as ingest_sentences

_BULLET_RE = re.compile(r"^\s*(?:[-*•·–>]+|\(?\d{1,3}[.):]|\(?[a-hA-H][.)])\s+")
_LABEL_RE = re.compile(
    r"^\s*(?:\*\*)?(?:rephrasings?|reversals?|reversed|inferences?|inferred|answer|output|"
    r"statements?|facts?|follows|conclusion|connection|sentence|result|example)"
    r"\s*\d*\s*(?:\*\*)?\s*[:：]\s*",
    re.IGNORECASE,
)
_LEAD_IN_RE = re.compile(r"^(?:here (?:are|is) [^:]*:|sure[,!.]?|okay[,!.]?)\s*$", re.IGNORECASE)
_QUOTES = "\"'“”‘’`*_"
_WS_RE = re.compile(r"\s+")


@dataclass(frozen=True)
class FilterConfig:
    """Bounds a kept statement must satisfy."""

    min_words: int = 3
    max_words: int = 60
    max_chars: int = 400
    copy_threshold: float = 0.9  # token-sequence similarity to the source that counts as a copy
    # Share of a statement's content words its sources must contain; below it the teacher is
    # writing about something else (0 turns the check off).
    min_grounding: float = 0.6
    near_duplicate_threshold: float = 0.9
    split_sentences: bool = True  # global inferences are chains: keep them whole


def split_sentences(text: str) -> list[str]:
    """Sentences of a text, by the splitter ingest uses, line by line (a line break in a
    teacher's output ends a statement)."""
    return [s for line in text.splitlines() for s in ingest_sentences(line)]


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


def split_statements(
    output: str,
    *,
    split_sentences_too: bool,
    cut_markers: Sequence[str] = (),
    truncated: bool = False,
) -> list[str]:
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


_BE = {"is": "be", "are": "be", "was": "be", "were": "be"}


def similarity_key(text: str) -> tuple[str, ...]:
    """The token sequence two statements are compared on (light stemming, no articles, one
    form of "to be")."""
    return tuple(_BE.get(t, _stem(t)) for t in tokens(text) if t not in {"the", "a", "an"})


_FUNCTION_WORDS = frozenset(
    {
        "than",
        "that",
        "this",
        "with",
        "which",
        "there",
        "their",
        "also",
        "from",
        "have",
        "they",
        "them",
        "were",
        "into",
        "because",
    }
)


def is_repetitive(key: Sequence[str]) -> bool:
    """True for degenerate loops ("lighter lighter lighter ..."): one content word four times or
    more (more in long statements), or under half the words distinct."""
    content = [t for t in key if len(t) >= 4 and t not in _FUNCTION_WORDS]
    if not content:
        return False
    most = max(content.count(t) for t in set(content))
    return most >= max(4, len(key) // 6) or (len(key) >= 8 and len(set(key)) < len(key) / 2)


def similarity(a: Sequence[str], b: Sequence[str]) -> float:
    """Order-aware similarity of two token sequences in [0, 1] (difflib ratio).

    Order matters on purpose: "A are more X than B" and "B are more X than A" share every word
    but say opposite things, so they must not count as copies of each other.
    """
    if not a and not b:
        return 1.0
    return difflib.SequenceMatcher(None, a, b, autojunk=False).ratio()


def _contains_run(whole: Sequence[str], part: Sequence[str]) -> bool:
    n = len(part)
    return any(whole[i : i + n] == part for i in range(len(whole) - n + 1))


def is_copy(key: Sequence[str], source_key: Sequence[str], threshold: float) -> bool:
    """True if a statement repeats its source: nearly the same token sequence, or a contiguous
    piece of the source holding most of it ("founded by X" from "founded by X in 1998")."""
    if similarity(key, source_key) >= threshold:
        return True
    return len(key) >= 0.6 * len(source_key) and _contains_run(source_key, key)


_CAPITALIZED_RE = re.compile(r"(?<=[a-z,;] )([A-Z][a-zA-Z]+)")
_GROUNDING_IGNORE = frozenset(
    {
        "than",
        "that",
        "this",
        "these",
        "those",
        "with",
        "which",
        "there",
        "their",
        "also",
        "from",
        "have",
        "has",
        "had",
        "they",
        "them",
        "into",
        "because",
        "therefore",
        "thus",
        "hence",
        "both",
        "each",
        "every",
        "some",
        "other",
        "others",
        "more",
        "less",
        "most",
        "least",
        "same",
        "not",
        "and",
        "but",
        "are",
        "was",
        "were",
        "can",
        "will",
        "would",
        "could",
        "should",
        "its",
        "for",
        "all",
        "any",
        "one",
        "two",
        "who",
        "whom",
        "whose",
        "what",
        "when",
        "where",
        "while",
        "does",
        "did",
        "been",
        "being",
        "then",
        "such",
        "very",
        "just",
        "only",
        "like",
        "means",
        "true",
        "follows",
        "learned",
        "earlier",
        "know",
        "known",
    }
)


def _content_stems(text: str) -> list[str]:
    return [_stem(t) for t in tokens(text) if len(t) >= 3 and t not in _GROUNDING_IGNORE]


def grounding(statement: str, source_stems: set[str]) -> float:
    """Share of the statement's content words (stemmed) that occur in its sources."""
    words = _content_stems(statement)
    if not words:
        return 1.0
    return sum(w in source_stems for w in words) / len(words)


def unknown_name(statement: str, source_words: set[str]) -> str | None:
    """A capitalized name inside the statement that no source mentions ("Lichtenfels"), which a
    small teacher invents or copies from its examples; None if there is none."""
    for name in _CAPITALIZED_RE.findall(statement):
        if name.lower() not in source_words and _stem(name.lower()) not in source_words:
            return name
    return None


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
    foreign_names: frozenset[str] = frozenset(),
) -> list[str]:
    """Statements that pass length bounds, copy check, the quality gate and deduplication.

    `sources` are the texts a copy is judged against (the unit); `gate_sources` the texts the
    gate checks contradictions against (default: `sources`). Every drop is counted in `stats`
    under its reason; `stats.parsed` and `stats.kept` are incremented here.
    """

    source_keys = [similarity_key(s) for s in sources]
    source_words = {t for s in sources for t in tokens(s)}
    source_stems = {_stem(t) for t in source_words}
    # A document may hold placeholder-shaped text of its own; only a teacher's invention counts.
    source_placeholders = {m.group() for s in sources for m in PLACEHOLDER_RE.finditer(s)}
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
        elif any(m.group() not in source_placeholders for m in PLACEHOLDER_RE.finditer(statement)):
            reason = UNRESTORABLE
        elif is_repetitive(key):
            reason = "repetitive"
        elif any(is_copy(key, sk, config.copy_threshold) for sk in source_keys):
            reason = "copy_of_source"
        elif unknown_name(statement, source_words):
            reason = "unknown_name"
        elif grounding(statement, source_stems) < config.min_grounding:
            reason = "ungrounded"
        elif (
            gate
            and (found := contradiction(statement, gate_sources or sources, foreign_names))
            is not None
        ):
            reason = f"gate:{found}"
        else:
            reason = dedup.check(key, unit_keys)
        if reason is None:
            kept.append(statement)
            stats.kept += 1
        else:
            stats.drop(reason)
    return kept
