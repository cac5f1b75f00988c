"""General relations: the table of known inverse pairs, symmetric phrases, and a relation
phrase normalized and inverted by rule."""

from __future__ import annotations

import re

from service.augment.relations.comparatives import (
    er_candidates,
    invert_comparative_phrase,
    parse_comparative,
)
from service.augment.relations.words import ARTICLES, tokens

# Known inverse pairs, both directions registered: "A <left> B" means "B <right> A".
_INVERSE_PAIRS: tuple[tuple[str, str], ...] = (
    ("is a type of", "includes"),
    ("are a type of", "include"),
    ("is a kind of", "includes"),
    ("are a kind of", "include"),
    ("is a part of", "has as a part"),
    ("is part of", "includes"),
    ("are part of", "include"),
    ("founded", "was founded by"),
    ("created", "was created by"),
    ("wrote", "was written by"),
    ("built", "was built by"),
    ("owns", "is owned by"),
    ("own", "are owned by"),
    ("owned", "was owned by"),
    ("acquired", "was acquired by"),
    ("employs", "works for"),
    ("employ", "work for"),
    ("manages", "is managed by"),
    ("leads", "is led by"),
    ("supervises", "reports to"),
    ("teaches", "is taught by"),
    ("is the parent of", "is the child of"),
    ("is the mother of", "is the child of"),
    ("is the father of", "is the child of"),
    ("is the teacher of", "is the student of"),
    ("is the employer of", "is the employee of"),
    ("is the owner of", "is owned by"),
    ("is the founder of", "was founded by"),
    ("is the author of", "was written by"),
    ("is above", "is below"),
    ("are above", "are below"),
    ("is north of", "is south of"),
    ("is east of", "is west of"),
    ("is before", "is after"),
    ("precedes", "follows"),
    ("contains", "is contained in"),
    ("contain", "are contained in"),
    ("is inside", "contains"),
    ("eats", "is eaten by"),
    ("eat", "are eaten by"),
    ("hunts", "is hunted by"),
    ("hunt", "are hunted by"),
    ("causes", "is caused by"),
    ("cause", "are caused by"),
    ("replaced", "was replaced by"),
    ("uses", "is used by"),
    ("use", "are used by"),
    ("depends on", "is a dependency of"),
)
_SYMMETRIC_WORDS = frozenset(
    {
        "and",
        "or",
        "married",
        "similar",
        "same",
        "equal",
        "equals",
        "as",
        "with",
        "sibling",
        "siblings",
        "near",
        "next",
        "neighbor",
        "neighbors",
        "neighbour",
        "met",
        "beside",
        "adjacent",
        "like",
        "alike",
        "identical",
        "partner",
        "partners",
        "cousin",
        "cousins",
        "friend",
        "friends",
        "between",
        "versus",
        "vs",
        "different",
        "unlike",
    }
)


def _canon_phrase(phrase: str) -> str:
    """Lookup key of a relation phrase: lowercase tokens, no articles."""
    return " ".join(t for t in tokens(phrase) if t not in ARTICLES)


_INVERSE: dict[str, str] = {}
for _a, _b in _INVERSE_PAIRS:
    _INVERSE.setdefault(_canon_phrase(_a), _b)
    _INVERSE.setdefault(_canon_phrase(_b), _a)

_COPULAS = frozenset({"is", "are", "was", "were"})


def is_symmetric(phrase: str) -> bool:
    """True when a relation phrase reads the same both ways ("is married to", "is as big as")."""
    return any(t in _SYMMETRIC_WORDS for t in tokens(phrase))


def is_bare_copula(phrase: str) -> bool:
    """ "is", "are a", "was the": an attribute or identity, not an invertible relation."""
    toks = [t for t in tokens(phrase) if t not in ARTICLES]
    return len(toks) <= 1 and all(t in _COPULAS for t in toks)


def invert_relation(phrase: str) -> tuple[str, str] | None:
    """Inverse of a normalized relation phrase by rule, with the rule's name; None if unknown.

    "A <phrase> B" means the same as "B <inverse> A".
    """
    canon = _canon_phrase(phrase)
    if not canon:
        return None
    if is_symmetric(canon):
        return canon, "symmetric"
    comp = parse_comparative(f"x {canon} y")
    if comp is not None and not comp.negated:
        inv = invert_comparative_phrase(comp.degree, comp.adjective, comp.copula)
        if inv is not None:
            return inv, "comparative"
    if canon in _INVERSE:
        return _INVERSE[canon], "table"
    toks = canon.split()
    # "was acquired by" <-> "acquired": a regular past passive and its active.
    if len(toks) == 3 and toks[0] in {"was", "were"} and toks[2] == "by" and toks[1].endswith("ed"):
        return toks[1], "passive"
    if len(toks) == 1 and toks[0].endswith("ed") and len(toks[0]) > 4:
        return f"was {toks[0]} by", "passive"
    return None


_RELATION_FILLER_RE = re.compile(r"^(?:also|actually|really|indeed|in fact)\s+")


def normalize_relation(phrase: str, source: str | None = None) -> str:
    """A relation phrase in the form the rule tables use: lowercase, single spaces, no filler,
    and, for a comparative that lost its verb ("dimmer"), the copula and "than" put back from
    the source sentence ("are dimmer than")."""
    canon = _RELATION_FILLER_RE.sub("", " ".join(tokens(phrase)))
    toks = canon.split()
    if not toks:
        return canon
    src = tokens(source) if source else []
    src_copula = next((t for t in src if t in _COPULAS), None)
    copula = src_copula or "are"
    is_comparative_word = (
        toks[0] in {"more", "less"}
        or bool(er_candidates(toks[0]))
        and ("than" in src or toks[-1] == "than")
    )
    if toks[0] not in _COPULAS and is_comparative_word and len(toks) <= 3:
        toks = [copula, *toks]
    elif (
        toks[0] in _COPULAS and src_copula and src_copula != toks[0] and canon not in " ".join(src)
    ):
        toks[0] = copula  # the teacher's "is" where the source says "are"
    if (
        toks[0] in _COPULAS
        and len(toks) >= 2
        and (toks[1] in {"more", "less"} or er_candidates(toks[1]))
        and toks[-1] != "than"
        and "than" in src
    ):
        toks.append("than")
    return " ".join(toks)
