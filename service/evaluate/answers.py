"""Matching a generated answer against the expected one (SQuAD-style normalization)."""

from __future__ import annotations

import re
import string
import unicodedata

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = set(string.punctuation)


def normalize_answer(text: str) -> str:
    """SQuAD-style normalization: NFKC, lower case, punctuation and articles removed, spaces
    collapsed."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = "".join(
        ch for ch in text if ch not in _PUNCT and not unicodedata.category(ch).startswith("P")
    )
    return " ".join(_ARTICLES.sub(" ", text).split())


def _normalized_pair(prediction: str, answer: str) -> tuple[str, str]:
    pred, ans = normalize_answer(prediction), normalize_answer(answer)
    if not ans:  # an answer made only of articles/punctuation: compare it lower-cased instead
        pred, ans = " ".join(prediction.lower().split()), " ".join(answer.lower().split())
    return pred, ans


def exact_match(prediction: str, answer: str) -> bool:
    """The normalized prediction equals the normalized answer."""
    pred, ans = _normalized_pair(prediction, answer)
    return pred == ans


def contains_answer(prediction: str, answer: str) -> bool:
    """The normalized answer occurs in the normalized prediction as whole words."""
    pred, ans = _normalized_pair(prediction, answer)
    return bool(ans) and f" {ans} " in f" {pred} "
