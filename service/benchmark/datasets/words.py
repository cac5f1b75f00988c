"""Pronounceable nonsense words, deterministic for a seed, disjoint between datasets.

Words are 4-5 letters from a few syllable shapes ("femp", "glon", "troff", "bamok", "abme").
None ends in s, x, y, z or h, so a plural or a third-person verb is always the word plus "s".
A candidate is refused when it, its plural or its participle is a word-initial token of the
embedded model's vocabulary (`stoplist.txt`: real words the model knows), and when it is within
one edit of a word already drawn, so two nonsense words are never one typo apart.

All datasets of one seed draw from one stream: dataset number ``i`` of ``n`` takes the stream's
words ``i, i+n, i+2n, ...``, so the words of a dataset depend only on the seed and its number,
and no word is shared between datasets.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from functools import lru_cache
from importlib import resources

_SINGLE = "bdfgjklmnprtvwz"
_DOUBLE = (
    "bl",
    "br",
    "dr",
    "fl",
    "fr",
    "gl",
    "gr",
    "kl",
    "kr",
    "pl",
    "pr",
    "sk",
    "sl",
    "sn",
    "sp",
    "st",
    "tr",
    "sm",
    "sw",
    "tw",
)
_VOWELS = "aeiou"
_FINAL_SINGLE = "bdgklmnprtf"
_FINAL_DOUBLE = (
    "mp",
    "nt",
    "nk",
    "nd",
    "ld",
    "lk",
    "lp",
    "lf",
    "rb",
    "rd",
    "rk",
    "rm",
    "rn",
    "rp",
    "rt",
    "ft",
    "pt",
    "ff",
    "ll",
    "ck",
    "rg",
    "lm",
)
_MEDIAL = ("bm", "rp", "lb", "nd", "sk", "rv", "lt", "mb", "nk", "rd", "lp", "st")
_FINAL_VOWELS = "aoui"
# Real words the vocabulary list misses (seen in drawn samples).
_EXTRA_STOP = frozenset({"skid", "gaff", "glug", "tiki", "dido", "zork", "bazar", "kilo", "tofu"})


def participle(verb: str) -> str:
    """Past participle of a nonsense verb: "flob" -> "flobbed", "abme" -> "abmed"."""
    if verb.endswith("e"):
        return verb + "d"
    if (
        len(verb) >= 3
        and verb[-1] in _FINAL_SINGLE
        and verb[-2] in _VOWELS
        and verb[-3] not in _VOWELS
    ):
        return verb + verb[-1] + "ed"
    return verb + "ed"


def _candidate(rng: random.Random) -> str:
    shape = rng.randrange(6)
    v = rng.choice
    if shape == 0:
        return v(_SINGLE) + v(_VOWELS) + v(_FINAL_DOUBLE)
    if shape == 1:
        return v(_DOUBLE) + v(_VOWELS) + v(_FINAL_SINGLE)
    if shape == 2:
        return v(_DOUBLE) + v(_VOWELS) + v(_FINAL_DOUBLE)
    if shape == 3:
        return v(_SINGLE) + v(_VOWELS) + v(_SINGLE) + v(_VOWELS) + v(_FINAL_SINGLE)
    if shape == 4:
        return v(_VOWELS) + v(_MEDIAL) + "e"
    return v(_SINGLE) + v(_VOWELS) + v(_SINGLE) + v(_FINAL_VOWELS)


@lru_cache(maxsize=1)
def stoplist() -> frozenset[str]:
    """Real words the generator must not produce (see the header of stoplist.txt)."""
    text = resources.files(__package__).joinpath("stoplist.txt").read_text(encoding="utf-8")
    listed = {line.strip() for line in text.splitlines() if line.strip() and line[0] != "#"}
    return frozenset(listed | _EXTRA_STOP)


def _deletions(word: str) -> set[str]:
    return {word[:i] + word[i + 1 :] for i in range(len(word))}


class _Stream:
    """The seed's word stream, grown on demand; words are never within one edit of each other."""

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(f"docadapt-words:{seed}")
        self.words: list[str] = []
        self._taken: set[str] = set()
        self._deleted: set[str] = set()  # one-deletion variants of taken words

    def grow(self, count: int) -> None:
        stop = stoplist()
        while len(self.words) < count:
            word = _candidate(self._rng)
            if word in stop or word + "s" in stop or participle(word) in stop:
                continue
            variants = _deletions(word)
            # Distance 1: a shared deletion variant, or one word is a deletion of the other.
            if word in self._taken or word in self._deleted or variants & self._deleted:
                continue
            if variants & self._taken:
                continue
            self.words.append(word)
            self._taken.add(word)
            self._deleted |= variants


@lru_cache(maxsize=8)
def _stream(seed: int) -> _Stream:
    return _Stream(seed)


def nonsense_words(seed: int, index: int, of: int) -> Iterator[str]:
    """An endless iterator over the nonsense words of dataset number ``index`` (of ``of``) for
    ``seed``: the same words in the same order every time, none shared with another index."""
    if not 0 <= index < of:
        raise ValueError(f"dataset index {index} out of range 0..{of - 1}")
    stream = _stream(seed)
    position = index
    while True:
        stream.grow(position + 1)
        yield stream.words[position]
        position += of
