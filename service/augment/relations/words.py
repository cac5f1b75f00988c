"""Word tokens as the relation rules compare them: lowercased, contractions expanded, articles
and the agreement of "to be" set aside."""

from __future__ import annotations

import re

_TOKEN_RE = re.compile(r"[a-z0-9]+(?:['’][a-z]+)?")
_CONTRACTIONS = {
    "isn't": "is not",
    "aren't": "are not",
    "wasn't": "was not",
    "weren't": "were not",
    "doesn't": "does not",
    "don't": "do not",
    "didn't": "did not",
    "can't": "can not",
    "cannot": "can not",
    "won't": "will not",
    "hasn't": "has not",
    "haven't": "have not",
}
ARTICLES = frozenset({"the", "a", "an"})
NEGATIONS = frozenset({"not", "never", "no"})
# Agreement changes ("is" <-> "are") must not hide a copy or a swap.
_BE_CANON = {"is": "be", "are": "be", "was": "be_past", "were": "be_past"}


def tokens(text: str) -> list[str]:
    """Lowercased word tokens with contractions expanded ("isn't" -> "is", "not")."""
    lowered = text.lower().replace("’", "'")
    out: list[str] = []
    for tok in _TOKEN_RE.findall(lowered):
        out.extend(_CONTRACTIONS.get(tok, tok).split())
    return out


def canonical_tokens(text: str) -> list[str]:
    """Tokens without articles, with "is/are" and "was/were" merged: the shape rules compare."""
    return [_BE_CANON.get(t, t) for t in tokens(text) if t not in ARTICLES]
