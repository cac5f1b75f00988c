"""Rules about binary relations: comparatives, known inverse pairs, and statement normalization.

The decomposed strategy uses them to normalize and invert an extracted relation before it asks
the teacher; the quality gate uses them to recognise an output that contradicts its source. A
135M teacher swaps the names of a comparison without flipping it most of the time
(notes/teacher.md), so what rules can decide is decided by rules.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

# Recorded on examples composed by rules alone; bump when the tables or rules change.
RULES_VERSION = "2026-11-25.1"

# -- tokens -----------------------------------------------------------------------------------

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


# -- comparatives -----------------------------------------------------------------------------

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


# -- general relations ------------------------------------------------------------------------

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


# -- rule extraction --------------------------------------------------------------------------

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
