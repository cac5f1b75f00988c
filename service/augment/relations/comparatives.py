"""Comparatives ("Kreb are more dangerous than quom", "Morv are dimmer than jolp"): parsed into
a dimension and a sign, compared, and inverted by the antonym tables."""

from __future__ import annotations

import re
from dataclasses import dataclass

from service.augment.relations.words import ARTICLES, tokens

# Antonym pairs of gradable adjectives (base forms): (positive, negative).
ANTONYM_PAIRS: tuple[tuple[str, str], ...] = (
    ("bright", "dim"),
    ("heavy", "light"),
    ("fast", "slow"),
    ("quick", "slow"),
    ("large", "small"),
    ("big", "small"),
    ("tall", "short"),
    ("long", "short"),
    ("old", "young"),
    ("strong", "weak"),
    ("warm", "cold"),
    ("hot", "cold"),
    ("warm", "cool"),
    ("hard", "soft"),
    ("loud", "quiet"),
    ("noisy", "quiet"),
    ("rich", "poor"),
    ("high", "low"),
    ("wide", "narrow"),
    ("broad", "narrow"),
    ("thick", "thin"),
    ("deep", "shallow"),
    ("early", "late"),
    ("wet", "dry"),
    ("clean", "dirty"),
    ("dangerous", "safe"),
    ("expensive", "cheap"),
    ("happy", "sad"),
    ("difficult", "easy"),
    ("good", "bad"),
    ("common", "rare"),
    ("smooth", "rough"),
    ("sharp", "dull"),
    ("healthy", "sick"),
    ("beautiful", "ugly"),
    ("fierce", "gentle"),
    ("near", "far"),
    ("close", "distant"),
    ("sweet", "bitter"),
    ("dense", "sparse"),
    ("loose", "tight"),
    ("full", "empty"),
    ("smart", "dumb"),
    ("intelligent", "stupid"),
    ("friendly", "hostile"),
    ("modern", "ancient"),
    ("new", "old"),
    ("active", "passive"),
    ("busy", "idle"),
    ("sturdy", "fragile"),
    ("popular", "unpopular"),
    ("curious", "indifferent"),
)
# Adjectives that compare with "more", however short ("more common", not "commoner").
_MORE_ADJECTIVES = frozenset(
    {
        "common",
        "fragile",
        "popular",
        "unpopular",
        "curious",
        "afraid",
        "alive",
        "aware",
        "alone",
        "certain",
        "correct",
        "famous",
        "modern",
        "complex",
        "recent",
        "distant",
        "hostile",
        "stupid",
        "passive",
        "active",
        "ancient",
        "idle",
        "bitter",
    }
)
# Irregular or spelling-changing comparatives -> base form.
_IRREGULAR_ER = {
    "better": "good",
    "worse": "bad",
    "further": "far",
    "farther": "far",
    "elder": "old",
    "bigger": "big",
    "hotter": "hot",
    "thinner": "thin",
    "dimmer": "dim",
    "sadder": "sad",
    "wetter": "wet",
    "fatter": "fat",
}
# Comparative form of each base adjective that takes -er (the rest take "more X").
_ER_FORM = {base: er for er, base in _IRREGULAR_ER.items() if er not in {"further", "elder"}}
_ER_FORM["far"] = "farther"

_BASE_TO_DIM: dict[str, tuple[str, int]] = {}
for _pos, _neg in ANTONYM_PAIRS:
    _BASE_TO_DIM.setdefault(_pos, (_pos, +1))
    _BASE_TO_DIM.setdefault(_neg, (_pos, -1))
# Preferred antonym of each base (the first pair that names it).
_ANTONYM: dict[str, str] = {}
for _pos, _neg in ANTONYM_PAIRS:
    _ANTONYM.setdefault(_pos, _neg)
    _ANTONYM.setdefault(_neg, _pos)
_LONG_ADJ_SUFFIXES = (
    "ous",
    "ful",
    "ive",
    "ent",
    "ant",
    "ic",
    "al",
    "ing",
    "ed",
    "less",
    "ible",
    "able",
)


def er_candidates(word: str) -> list[str]:
    """Possible base forms of an -er comparative ("bigger" -> big, "nicer" -> nice, ...)."""
    word = word.lower()
    if word in _IRREGULAR_ER:
        return [_IRREGULAR_ER[word]]
    if not word.endswith("er") or len(word) < 4:
        return []
    stem = word[:-2]
    out = []
    if stem.endswith("i"):
        out.append(stem[:-1] + "y")  # happier -> happy
    out.append(stem)  # brighter -> bright
    out.append(stem + "e")  # nicer -> nice
    if len(stem) >= 2 and stem[-1] == stem[-2]:
        out.append(stem[:-1])  # bigger -> big
    return out


def er_form(base: str) -> str | None:
    """The -er comparative of a base adjective, or None where English uses "more X"."""
    base = base.lower()
    if base in _ER_FORM:
        return _ER_FORM[base]
    if base in _MORE_ADJECTIVES or len(base) > 7 or base.endswith(_LONG_ADJ_SUFFIXES):
        return None
    if base.endswith("y"):
        return base[:-1] + "ier"
    if base.endswith("e"):
        return base + "r"
    return base + "er"


# Synonyms that name the same dimension, so "larger" and "smaller" compare.
_SYNONYM = {
    "large": "big",
    "quick": "fast",
    "noisy": "loud",
    "broad": "wide",
    "intelligent": "smart",
    "close": "near",
}


def dimension(base: str) -> tuple[str, int]:
    """Canonical dimension of a base adjective and its sign (dim -> ("bright", -1))."""
    base = base.lower()
    base = _SYNONYM.get(base, base)
    dim, sign = _BASE_TO_DIM.get(base, (base, +1))
    return _SYNONYM.get(dim, dim), sign


@dataclass(frozen=True)
class Comparative:
    """A parsed comparison: `left` is `sign`*more `dim` than `right` (negation folded in)."""

    left: str
    right: str
    dims: frozenset[tuple[str, int]]  # candidate (dimension, sign) readings of the adjective
    copula: str
    degree: str  # "more", "less" or "er" (the surface form)
    adjective: str  # base adjective for more/less, the -er word itself for "er"
    negated: bool


_COMPARATIVE_RE = re.compile(
    r"^(?P<left>.+?)\s+(?P<cop>is|are|was|were|am|be)(?P<neg>\s+not|\s+never|\s+no)?\s+"
    r"(?:(?P<deg>more|less)\s+(?P<adj>[a-z][a-z-]*)|(?P<er>[a-z]+er|better|worse))"
    r"\s+than\s+(?P<right>.+?)$"
)


def _entity(text: str) -> str:
    return " ".join(t for t in tokens(text) if t not in ARTICLES)


def parse_comparative(statement: str) -> Comparative | None:
    """Parse "A are more X than B" / "A is Xer than B" / "A are not less X than B"; else None."""
    text = " ".join(tokens(statement))
    m = _COMPARATIVE_RE.match(text)
    if m is None:
        return None
    left, right = _entity(m["left"]), _entity(m["right"])
    if not left or not right:
        return None
    negated = bool(m["neg"])
    if m["deg"]:
        base_dim, base_sign = dimension(m["adj"])
        sign = base_sign if m["deg"] == "more" else -base_sign
        dims = frozenset({(base_dim, sign)})
        degree, adjective = m["deg"], m["adj"]
    else:
        cands = er_candidates(m["er"]) or [m["er"]]
        dims = frozenset(dimension(c) for c in cands) | {(m["er"], +1)}
        degree, adjective = "er", m["er"]
    if negated:
        dims = frozenset((d, -s) for d, s in dims)
    return Comparative(left, right, dims, m["cop"], degree, adjective, negated)


def comparatives_agree(source: Comparative, output: Comparative) -> bool | None:
    """True if `output` states the same order as `source`, False if the opposite, None if the
    two do not compare the same pair on the same dimension (nothing to judge)."""
    if {source.left, source.right} != {output.left, output.right} or source.left == source.right:
        return None
    swapped = output.left == source.right
    for dim, sign in output.dims:
        for sdim, ssign in source.dims:
            if dim == sdim:
                out_sign = -sign if swapped else sign
                # A negated comparison ("not more X") is weak: it agrees with the flip, never
                # with the original, so only its contradiction is judged.
                return out_sign == ssign
    return None


def invert_comparative_phrase(degree: str, adjective: str, copula: str) -> str | None:
    """The relation phrase that states the reverse order: "more dangerous" -> "are less
    dangerous than"; "dimmer" -> "are brighter than". None if no rule knows it."""
    if degree == "more":
        return f"{copula} less {adjective} than"
    if degree == "less":
        return f"{copula} more {adjective} than"
    cands = er_candidates(adjective)
    for base in cands:
        if base in _ANTONYM:
            anto = _ANTONYM[base]
            form = er_form(anto)
            return f"{copula} {form} than" if form else f"{copula} more {anto} than"
    return None
