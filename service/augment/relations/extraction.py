"""(subject, relation, object) of a sentence whose relation a rule knows, in its own words."""

from __future__ import annotations

import functools
import re

from service.augment.relations.inverses import _INVERSE_PAIRS
from service.augment.relations.words import tokens

_COMPARATIVE_SPAN_RE = re.compile(
    r"^(?P<s>.+?)\s+(?P<r>(?:is|are|was|were)\s+(?:(?:more|less)\s+[A-Za-z-]+|[A-Za-z]+er|"
    r"better|worse)\s+than)\s+(?P<o>.+?)\s*[.!]?$",
    re.IGNORECASE,
)


@functools.cache
def _table_phrase_res() -> list[re.Pattern[str]]:
    phrases = sorted({p for pair in _INVERSE_PAIRS for p in pair}, key=len, reverse=True)
    return [
        re.compile(
            r"^(?P<s>.+?)\s+(?P<r>"
            + r"\s+".join(map(re.escape, p.split()))
            + r")\s+(?P<o>.+?)\s*[.!]?$",
            re.IGNORECASE,
        )
        for p in phrases
    ]


# Framing around a fact ("As the guide explained, X are ...", "Most agree that X ...",
# "... than Y, as every guide explains"): the entity is the part next to the relation.
_LEAD_IN_RE = re.compile(r"^.*(?:,|:|;|\bthat)\s+", re.IGNORECASE)
_TRAILER_RE = re.compile(r"\s*[,;:(].*$")


def rule_triple(sentence: str, comparatives_only: bool = False) -> tuple[str, str, str] | None:
    """(subject, relation, object) of a sentence whose relation a rule knows (a comparative or,
    unless `comparatives_only`, a phrase of the inverse table), in the sentence's own words;
    None otherwise. A lead-in before the subject and a trailing clause after the object are not
    part of the fact."""
    text = " ".join(sentence.split())
    m = _COMPARATIVE_SPAN_RE.match(text)
    if m is None and not comparatives_only:
        for pattern in _table_phrase_res():
            m = pattern.match(text)
            if m is not None:
                break
    if m is None:
        return None
    subject = _LEAD_IN_RE.sub("", m["s"]).strip(" ,")
    obj = _TRAILER_RE.sub("", m["o"]).strip(" ,")
    relation = m["r"]
    if not tokens(subject) or not tokens(obj):
        return None
    return subject, relation, obj
