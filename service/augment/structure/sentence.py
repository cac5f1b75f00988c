"""Every rewrite of one sentence: list markers and glued headings dropped, an opening pronoun
resolved, "X reports to Y", two coordinated verbs split, then the clause rewritten."""

from __future__ import annotations

from service.augment.structure.clause import _subject_of, read_clause
from service.augment.structure.identity import invert_copula
from service.augment.structure.nlp import parse
from service.augment.structure.phrases import (
    _contiguous,
    _drop_glued_heading,
    _join,
    _sentence,
    _span_text,
    _subtree,
)
from service.augment.structure.pronouns import replace_subject, resolve_subject
from service.augment.structure.rewrite import Rewrite
from service.augment.structure.voice import to_active, to_passive
from service.augment.structure.words import (
    _BULLET_RE,
    _MODALS,
    _NON_REFERENTIAL,
    _PERSONAL,
    _POINTS_BACK,
    _POSSESSIVES,
    _SUBJECT_PRONOUNS,
)


def _reports_to(doc, names: frozenset[str]) -> Rewrite | None:  # type: ignore[no-untyped-def]
    """ "X reports to Y." -> "Y is X's manager." (X and Y plain names, nothing else said)."""
    root = next((t for t in doc if t.dep_ == "ROOT"), None)
    if root is None or root.lemma_ != "report" or root.tag_ not in {"VBZ", "VBD"}:
        return None
    subj = _subject_of(root)
    preps = [c for c in root.children if c.dep_ == "prep"]
    others = [c for c in root.children if c.dep_ not in {"nsubj", "prep", "punct"}]
    if subj is None or others or len(preps) != 1 or preps[0].lower_ != "to":
        return None
    pobj = [c for c in preps[0].children if c.dep_ == "pobj"]
    if len(pobj) != 1 or "PERSON" not in {pobj[0].ent_type_, subj.ent_type_}:
        return None
    # "Daniel Okafor, the chief technology officer, reports to ...": the name, not the title
    x = [t for t in _subtree(subj) if t.i <= subj.i and (t.i == subj.i or t.dep_ == "compound")]
    y = _subtree(pobj[0])
    if not all(t.pos_ == "PROPN" for t in [*x, *y]) or not _contiguous(x):
        return None
    be = "was" if root.tag_ == "VBD" else "is"
    text = _sentence(f"{_span_text(y)} {be} {_span_text(x)}'s manager")
    return Rewrite(text, "manager", _span_text(y), _span_text(x))


def split_coordination(doc) -> list[str] | None:  # type: ignore[no-untyped-def]
    """ "The review is written by X and approved by Y." -> "The review is written by X.", "The
    review is approved by Y.": two verbs of one subject, each with its own parts, as two
    sentences (the auxiliaries of the first apply to the second). None unless exactly that."""
    root = next((t for t in doc if t.dep_ == "ROOT"), None)
    if root is None or root.pos_ not in {"VERB", "AUX"}:
        return None
    subj = _subject_of(root)
    conj = [c for c in root.children if c.dep_ == "conj" and c.pos_ in {"VERB", "AUX"}]
    if subj is None or len(conj) != 1 or _subject_of(conj[0]) is not None:
        return None
    second = conj[0]
    if any(c.dep_ == "conj" for c in second.children):
        return None
    subject = _subtree(subj)
    if subject[0].i != 0 or not _contiguous(subject) or subject[0].lower_ in _POSSESSIVES:
        return None
    second_tokens = _subtree(second)
    in_second = {t.i for t in second_tokens}
    first_part = [
        t
        for t in doc
        if t.i > subject[-1].i
        and t.i < second_tokens[0].i
        and t.i not in in_second
        and not (t.dep_ in {"cc", "punct"} and t.head.i == root.i)
    ]
    if second_tokens[-1].i < len(doc) - 2 or not _contiguous(second_tokens):
        return None
    if [t for t in doc if t.i > second_tokens[-1].i and not t.is_punct]:
        return None
    aux = [c for c in root.children if c.dep_ in {"aux", "auxpass", "neg"} and c.i < root.i]
    own_aux = [c for c in second.children if c.dep_ in {"aux", "auxpass"}]
    if own_aux or second.tag_ in {"VBZ", "VBD", "VBP"}:
        aux = []  # "is led by X and supports Y": the second verb is finite on its own
    elif second.tag_ == "VB":
        aux = [a for a in aux if a.lower_ in _MODALS or a.dep_ == "neg"]  # "must X and sign Y"
    if second.lemma_ == "be" and not own_aux and root.lemma_ != "be":
        return None  # "is written by X and is ..." needs its own copula; "writes X and is Y"
    if not _contiguous(first_part):
        return None
    if any(t.lower_ in _POINTS_BACK and t.dep_ == "advmod" for t in second_tokens):
        return None  # "... and is then deleted": "then" needs the first verb
    subject_text = _span_text(subject)
    one = _sentence(_join(subject_text, _span_text(first_part)))
    two = _sentence(_join(subject_text, " ".join(a.text for a in aux), _span_text(second_tokens)))
    return [one, two]


def rewrites(
    sentence: str, previous: str = "", names: frozenset[str] = frozenset()
) -> tuple[list[Rewrite], str | None]:
    """Every rewrite of `sentence` the parse supports, and the reason when there is none.

    `previous` is the sentence before it in its passage, for an opening pronoun; `names` as
    `collection_names` gives them.
    """
    sentence = _drop_glued_heading(_BULLET_RE.sub("", sentence).strip())
    head, colon, tail = sentence.partition(": ")
    if colon and len(head.split()) <= 3 and tail[:1].isupper():
        sentence = tail  # "Note: Laptops must ...", "A: ..."
    elif ":" in sentence:
        return [], "colon"
    previous = _drop_glued_heading(_BULLET_RE.sub("", previous).strip())
    docs = parse([sentence, previous] if previous else [sentence])
    doc = docs[0]
    out: list[Rewrite] = []
    first = doc[0] if len(doc) else None
    if first is not None and first.lower_ in _SUBJECT_PRONOUNS and first.dep_.startswith("nsubj"):
        referent = resolve_subject(doc, docs[1] if previous else None, names)
        if referent is None:
            return [], "unresolved_pronoun"
        resolved = _sentence(replace_subject(doc, referent))
        out.append(Rewrite(resolved, "resolved", referent, ""))
        doc = parse([resolved])[0]
    elif first is not None and first.lower_ in _NON_REFERENTIAL | _PERSONAL and first.dep_ != "det":
        return [], "pronoun_subject"  # "This is ...", "We ..."; "This policy ..." is a phrase
    if any(t.lower_ in _PERSONAL and t.dep_.startswith("nsubj") for t in doc):
        return out, "personal_subject"
    manager = _reports_to(doc, names)
    if manager is not None:
        out.append(manager)
        return out, None
    clause = read_clause(doc, names)
    parts = split_coordination(doc) if isinstance(clause, str) else None
    if parts is not None:
        reasons = []
        for part in parts:
            out.append(Rewrite(part, "split", "", ""))
            made, why = rewrites(part, "", names)
            out.extend(r for r in made if r.kind != "split")
            reasons.append(why)
        return out, next((r for r in reasons if r), None)
    if isinstance(clause, str):
        return out, clause
    if clause.subject_head.pos_ == "PRON":
        return out, "pronoun_subject"

    if clause.kind == "active":
        made: Rewrite | list[Rewrite] | str = to_passive(clause)
    elif clause.kind == "passive":
        made = to_active(clause)
    else:
        made = invert_copula(clause)
    if isinstance(made, str):
        return out, made
    out.extend(made if isinstance(made, list) else [made])
    return out, None
