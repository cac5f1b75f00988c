"""Quality gate: drop a generated statement that contradicts its source.

A small teacher asked for a reversal mostly swaps the names and keeps the relation ("Kreb are
more dangerous than quom." -> "Quom are more dangerous than kreb."), which states the opposite
of the document (notes/teacher.md: 46-84% of its reversals). Training on that teaches the
contradiction, so such outputs are dropped, with the reason recorded. The gate only judges
what it can recognise; everything else passes.

Reasons:
- swapped_not_flipped: the source's two sides swapped around the same relation;
- flipped_not_swapped: the relation replaced by its inverse, the sides left in place;
- opposite_comparative: a comparison of the same pair on the same dimension, the other way;
- negation_flip: the source with a negation added or removed;
- invalid_conversion: "all A are B" turned into "all B are A";
- unsupported_comparison: the source's pair compared on another dimension, or one side of it
  compared with something the source does not name;
- self_comparison: "A are less X than A";
- example_leak: a name from the prompt's worked examples that the source does not have.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from service.augment.relations import (
    ARTICLES,
    NEGATIONS,
    comparatives_agree,
    invert_relation,
    is_bare_copula,
    is_symmetric,
    parse_comparative,
    tokens,
)
from service.collections.ingest.segment import split_sentences

# Agreement and tense of "to be" merged: "was founded by" and "is founded by" read alike here.
_BE = {"is": "be", "are": "be", "was": "be", "were": "be"}
_MAX_FRAMING_DROP = 4  # tokens of framing ("in 1998") an output may leave out around a swap
_UNIVERSAL = frozenset({"all", "every", "each"})
_LEAD_IN_RE = re.compile(
    r"^(?:so|thus|therefore|hence|also|in other words|this means that|that means|"
    r"it follows that|we know that|i learned (?:earlier )?that|in short|put differently|"
    r"that is|in fact|conversely|equivalently)[,:]?\s+",
    re.IGNORECASE,
)
_MAX_RELATION_TOKENS = 6


def _strip_lead_in(text: str) -> str:
    for _ in range(2):
        text = _LEAD_IN_RE.sub("", text.strip())
    return text


def _shape(text: str) -> list[str]:
    """Tokens without articles; "is/are" merged so agreement changes do not hide a match."""
    return [_BE.get(t, t) for t in tokens(_strip_lead_in(text)) if t not in ARTICLES]


def _plain(text: str) -> list[str]:
    return [t for t in tokens(_strip_lead_in(text)) if t not in ARTICLES]


def _swapped_around(s: list[str], o: list[str]) -> tuple[int, int] | None:
    """(i, j) if o == s[j:] + s[i:j] + s[:i] for some 0 < i < j < len(s), else None."""
    n = len(s)
    if len(o) != n or n < 3:
        return None
    for j in range(2, n):
        tail = s[j:]
        if o[: n - j] != tail:
            continue
        for i in range(1, j):
            if o[n - j : n - i] == s[i:j] and o[n - i :] == s[:i]:
                return i, j
    return None


def _common_ends(s: list[str], o: list[str]) -> tuple[int, int]:
    """Lengths of the common prefix and suffix of two token lists (not overlapping)."""
    pre = 0
    while pre < min(len(s), len(o)) and s[pre] == o[pre]:
        pre += 1
    suf = 0
    while suf < min(len(s), len(o)) - pre and s[-1 - suf] == o[-1 - suf]:
        suf += 1
    return pre, suf


def _check_pair(source: str, output: str) -> str | None:
    s, o = _shape(source), _shape(output)
    if s == o:
        return None
    # Universal quantifier kept in front: "all A are B" -> "all B are A" is not valid.
    if s and o and s[0] == o[0] and s[0] in _UNIVERSAL:
        hit = _swapped_around(s[1:], o[1:])
        if hit is not None:
            i, j = hit
            middle = s[1:][i:j]
            if is_symmetric(" ".join(middle)):
                return None
            return "invalid_conversion" if middle == ["be"] else ("swapped_not_flipped")
    # Shared framing ("in 1999", "In the report,") peeled off both ends first; framing the
    # output left out ("in 1998") is tried dropped from the source.
    pre, suf = _common_ends(s, o)
    core_o = o[pre : len(o) - suf]
    core_s = s[pre : len(s) - suf]
    extra = len(core_s) - len(core_o)
    if 0 <= extra <= 2 * _MAX_FRAMING_DROP:
        for left in range(min(extra, _MAX_FRAMING_DROP) + 1):
            right = extra - left
            if right > _MAX_FRAMING_DROP:
                continue
            hit = _swapped_around(core_s[left : len(core_s) - right], core_o)
            if hit is None:
                continue
            i, j = hit
            start = pre + left
            middle = " ".join(_plain(source)[start + i : start + j])
            if not is_symmetric(middle) and not is_bare_copula(middle):
                return "swapped_not_flipped"
    # The inverse relation with the sides left in place.
    sp, op = _plain(source), _plain(output)
    for i in range(1, len(sp) - 1):
        for j in range(i + 1, min(len(sp), i + 1 + _MAX_RELATION_TOKENS)):
            if op[:i] != sp[:i] or op[len(op) - (len(sp) - j) :] != sp[j:]:
                continue
            inverse = invert_relation(" ".join(sp[i:j]))
            if inverse is None or inverse[1] == "symmetric":
                continue
            inv_tokens = [_BE.get(t, t) for t in tokens(inverse[0]) if t not in ARTICLES]
            if [_BE.get(t, t) for t in op[i : len(op) - (len(sp) - j)]] == inv_tokens:
                return "flipped_not_swapped"
    # Comparisons of the same pair read on one dimension.
    sc, oc = parse_comparative(_strip_lead_in(source)), parse_comparative(_strip_lead_in(output))
    if sc is not None and oc is not None:
        agree = comparatives_agree(sc, oc)
        if agree is True:
            return None
        if agree is False:
            return (
                "swapped_not_flipped"
                if oc.left == sc.right
                and oc.degree == sc.degree
                and (oc.adjective == sc.adjective and oc.negated == sc.negated)
                else "opposite_comparative"
            )
        if agree is None and (sc.left in (oc.left, oc.right) or sc.right in (oc.left, oc.right)):
            # A comparison the source does not make ("noisier" from "dimmer"), or with a
            # stranger: nothing in the source supports it.
            return "unsupported_comparison"
    if sc is not None and _claims_equality(o) and {sc.left, sc.right} <= set(o):
        return "opposite_comparative"  # "A and B are the same" against "A are more X than B"
    # A negation added to (or removed from) the source's own words.
    s_neg = sum(t in NEGATIONS for t in s)
    o = _fold_no_longer(o)
    o_neg = sum(t in NEGATIONS for t in o)
    if s_neg % 2 != o_neg % 2 and {t for t in o if t not in NEGATIONS} <= set(s):
        return "negation_flip"
    return None


def _fold_no_longer(toks: list[str]) -> list[str]:
    out: list[str] = []
    for t in toks:
        if t == "longer" and out and out[-1] == "no":
            continue  # "no longer" is a negation, not a comparative
        out.append(t)
    return out


def _claims_equality(toks: list[str]) -> bool:
    return bool({"same", "equal", "equally", "identical"} & set(toks)) or (
        "as" in toks and toks.count("as") >= 2
    )


def _self_comparison(output: str) -> bool:
    comp = parse_comparative(_strip_lead_in(output))
    return comp is not None and comp.left == comp.right


def _content(text: str) -> set[str]:
    return {t for t in tokens(text) if len(t) > 2}


def contradiction(
    output: str, sources: Sequence[str], foreign_names: frozenset[str] = frozenset()
) -> str | None:
    """The reason `output` contradicts one of the source sentences, or is nonsense, or None.

    `sources` may hold multi-sentence texts; each is split into sentences, and only sentences
    that share at least two words with the output are compared (the checks need both sides).
    `foreign_names` are names from the prompt's worked examples: an output that uses one the
    sources do not is copying the examples (reason example_leak).
    """
    out_words = _content(output)
    if foreign_names:
        leaked = (set(tokens(output)) & foreign_names) - {
            t for source in sources for t in tokens(source)
        }
        if leaked:
            return "example_leak"
    if _self_comparison(output):
        return "self_comparison"
    for source in sources:
        sentences = split_sentences(source) if len(source) > 200 or source.count(". ") else [source]
        for sentence in sentences:
            if len(out_words & _content(sentence)) < 2:
                continue
            reason = _check_pair(sentence, output)
            if reason is not None:
                return reason
    return None
