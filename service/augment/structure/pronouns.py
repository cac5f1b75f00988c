"""An opening subject pronoun ("It", "They", "He", "She") resolved to the previous sentence's
subject, when nothing else there could be meant."""

from __future__ import annotations

from service.augment.structure.clause import _subject_of
from service.augment.structure.phrases import (
    _capital,
    _contiguous,
    _definite,
    _is_proper_start,
    _lower_first,
    _plural,
    _span_text,
    _subtree,
)
from service.augment.structure.words import _SUBJECT_PRONOUNS


def resolve_subject(doc, previous, names: frozenset[str] = frozenset()) -> str | None:  # type: ignore[no-untyped-def]
    """The previous sentence's subject when `doc` opens with a subject pronoun that can only
    mean it ("It", "They", "He", "She"); None when there is no pronoun or no safe referent.

    The subject of the sentence before is the referent English readers take; another noun of
    the same kind named as a subject or object there (not just inside a phrase of place or
    time) makes it ambiguous."""
    subj = doc[0] if len(doc) else None
    if subj is None or subj.lower_ not in _SUBJECT_PRONOUNS or not subj.dep_.startswith("nsubj"):
        return None
    if previous is None:
        return None
    prev_roots = [t for t in previous if t.dep_ == "ROOT"]
    if len(prev_roots) != 1:
        return None
    prev_subj = _subject_of(prev_roots[0])
    if prev_subj is None or prev_subj.pos_ == "PRON":
        return None
    phrase = _subtree(prev_subj)
    if not _contiguous(phrase) or any(t.dep_ in {"relcl", "acl", "appos"} for t in phrase):
        return None
    want = _SUBJECT_PRONOUNS[subj.lower_]
    person = prev_subj.ent_type_ == "PERSON"
    plural = _plural(prev_subj, phrase)
    if want == "person" and not person:
        return None
    if want == "sg" and (person or plural):
        return None
    if want == "pl" and not plural:
        return None
    named = prev_subj.pos_ == "PROPN" or _is_proper_start(phrase[0], names) or _definite(prev_subj)
    if not named:
        return None  # "A laptop ... It ...": an indefinite is no referent to name
    copula_attr = {
        t.i for t in previous if t.dep_ == "attr" and t.head.i == prev_roots[0].i
    }  # "Ledger is the finance system": the attribute is the subject itself
    main = {prev_roots[0].i} | {c.i for c in prev_roots[0].children if c.dep_ == "conj"}
    rivals = [
        t
        for t in previous
        if t.dep_ in {"dobj", "attr", "nsubj", "nsubjpass", "conj", "appos"}
        and (t.head.i in main or t.head.dep_ in {"dobj", "attr", "conj"})
        and t.i not in {p.i for p in phrase}
        and t.i not in copula_attr
        and t.pos_ in {"PROPN", "NOUN"}
        and (t.ent_type_ == "PERSON") == person
        and _plural(t, _subtree(t)) == plural
    ]
    if rivals:
        return None
    return _lower_first(_span_text(phrase), phrase[0], names)


def replace_subject(doc, replacement: str) -> str:  # type: ignore[no-untyped-def]
    """The sentence with its opening pronoun replaced (the referent's words, capitalized)."""
    rest = "".join(t.text_with_ws for t in doc[1:])
    return _capital(replacement) + " " + rest
