"""Rewrites of "X is ...": identity ("X is the Y" -> "The Y is X"), membership ("One Y is X"),
inclusion ("X is part of Y" -> "Y includes X") and the attribute's relative clause as its own
sentence."""

from __future__ import annotations

from collections.abc import Sequence

from service.augment.structure.clause import Clause, _subject_of
from service.augment.structure.phrases import (
    _capital,
    _definite,
    _is_proper_start,
    _join,
    _lower_first,
    _plural,
    _sentence,
    _span_text,
    _subtree,
)
from service.augment.structure.rewrite import Rewrite, _be, _front, _moved
from service.augment.structure.words import _NO_PASSIVE, _REL_PRONOUNS


def invert_copula(clause: Clause, subject_text: str | None = None) -> list[Rewrite] | str:
    """ "X is the Y" -> "The Y is X"; "X is a Y" -> "One Y is X"; plus a relative clause of the
    attribute as its own sentence."""
    if clause.kind != "copula":
        return "not_copula"
    if clause.negated:
        return "negated_identity"  # "X is not the Y" says nothing about what the Y is
    if any(t.dep_ == "aux" for t in clause.aux):
        return "modal_identity"
    attr = clause.obj_head
    det = next((c for c in attr.children if c.dep_ in {"det", "poss"}), None)
    subj_head = clause.subject_head
    if subj_head.pos_ == "PRON" and subject_text is None:
        return "pronoun_subject"
    tense = "past" if clause.verb.tag_ == "VBD" else "pres"
    be = clause.verb.lower_
    subject = subject_text or _lower_first(
        _span_text(clause.subject), clause.subject[0], clause.names
    )
    attr_text = _span_text(clause.obj)
    if any(t.text in {",", ";", "("} for t in clause.obj) and not _closed_relative(clause.obj):
        return "attribute_with_aside"  # "a customer-facing service, not an internal tool"
    out: list[Rewrite] = []
    if det is not None and det.lower_ == "the" and det.i == clause.obj[0].i:
        # "X is the Y" names the one Y: the inverse holds whatever X is.
        be = _be(_plural(attr, clause.obj), tense)
        new_subject = _moved(attr_text, clause.obj, bool(clause.front))
        text = _join(_front(clause), new_subject, be, subject, clause.back)
        out.append(Rewrite(_sentence(text), "identity", attr_text, subject))
    elif _part_of(clause) is not None:
        # "The IT Helpdesk is part of the Platform team" / "Every team lead is a member of the
        # Leadership Forum" -> "The Platform team includes the IT Helpdesk"
        container = _part_of(clause)
        if clause.front or clause.back or tense != "pres":
            return "part_with_framing"
        plural_container = container.split()[-1].endswith("s") and not container[:1].isupper()
        verb = "include" if plural_container else "includes"
        member = subject if _is_proper_start(clause.subject[0], clause.names) else subject
        text = _join(_capital(container), verb, member)
        out.append(Rewrite(_sentence(text), "inclusion", container, subject))
        return out
    elif det is None and attr.pos_ == "PROPN" and _definite(subj_head) and len(clause.obj) <= 4:
        # "(For security incidents,) the incident commander is Marco Bianchi" -> "Marco Bianchi
        # is the incident commander": a name as the attribute of a definite description.
        be = _be(_plural(attr, clause.obj), tense)
        new_subject = attr_text if clause.front else _capital(attr_text)
        text = _join(_front(clause), new_subject, be, subject, clause.back)
        out.append(Rewrite(_sentence(text), "identity", attr_text, subject))
        return out
    elif det is not None and det.lower_ in {"a", "an"} and be in {"are", "were"}:
        # "Zarp are a type of glon" -> "Glon include zarp": a class inside a class.
        words = [t.lower_ for t in clause.obj[:3]]
        if words[1:3] not in (["type", "of"], ["kind", "of"]) or len(clause.obj) < 4:
            return "generic_subject"
        if clause.front or clause.back:
            return "inclusion_with_framing"
        container = _span_text(clause.obj[3:])
        member = subject if _is_proper_start(clause.subject[0], clause.names) else subject.lower()
        verb = "include" if tense == "pres" else "included"
        text = _join(_capital(container), verb, member)
        out.append(Rewrite(_sentence(text), "inclusion", container, subject))
    elif det is not None and det.lower_ in {"a", "an"} and det.i == clause.obj[0].i:
        named = subject_text is not None or _is_proper_start(clause.subject[0], clause.names)
        if (
            not named
            or subj_head.pos_ not in {"PROPN", "NOUN"}
            or _plural(subj_head, clause.subject)
        ):
            return "generic_subject"  # "A laptop is a device": a class, not one thing
        if clause.back or clause.front:
            return "membership_with_framing"
        rest = _span_text(clause.obj[1:])
        text = _join("One", rest, _be(False, tense), subject)
        out.append(Rewrite(_sentence(text), "membership", "one " + rest, subject))
    else:
        return "attribute_without_article"
    rel = _relative_as_sentence(clause, attr, subject)
    if rel is not None:
        out.append(rel)
    return out


def _part_of(clause: Clause) -> str | None:
    """The container's words of "X is (a) part of Y" or "X is a member of Y", else None."""
    words = [t.lower_ for t in clause.obj]
    for lead in (["part", "of"], ["a", "part", "of"], ["a", "member", "of"]):
        n = len(lead)
        if (
            words[:n] == lead
            and len(words) > n
            and clause.obj[n].dep_ in {"det", "compound", "amod", "poss"} | {"pobj"}
        ):
            rest = clause.obj[n:]
            if rest[0].lower_ in {"the"} or rest[-1].pos_ == "PROPN":
                return _span_text(rest)
    return None


def _closed_relative(tokens: Sequence) -> bool:  # type: ignore[type-arg]
    """Whether every comma in a phrase opens a relative clause ("the desk, which is open")."""
    commas = [i for i, t in enumerate(tokens) if t.text == ","]
    return all(
        i + 1 < len(tokens) and tokens[i + 1].lower_ in _REL_PRONOUNS for i in commas
    ) and not any(t.text in {";", "("} for t in tokens)


def _relative_as_sentence(clause: Clause, attr, subject: str) -> Rewrite | None:  # type: ignore[no-untyped-def]
    """ "X is the Y (that) Z V ..." -> "Z V X ..."; "X is the Y that V ..." -> "X V ..."."""
    rels = [c for c in attr.children if c.dep_ == "relcl"]
    if len(rels) != 1 or clause.front or clause.back:
        return None
    rel = rels[0]
    toks = _subtree(rel)
    if toks[-1].i != clause.obj[-1].i:
        return None  # something follows the relative clause inside the attribute
    subj = _subject_of(rel)
    if subj is None:
        return None
    body = [t for t in toks]
    if subj.lower_ in _REL_PRONOUNS and subj.i == toks[0].i:
        # subject gap: "the team that maintains X" -> "X-subject maintains X"
        if rel.tag_ not in {"VBZ", "VBD"} or any(c.dep_ == "aux" for c in rel.children):
            return None
        rest = _span_text(body[1:])
        return Rewrite(_sentence(_join(_capital(subject), rest)), "relative", subject, rest)
    # object gap: "the dashboard (that) the Analytics team uses to analyse data"
    if any(c.dep_ in {"dobj", "attr", "ccomp"} for c in rel.children):
        return None
    if rel.lemma_ in _NO_PASSIVE - {"have", "include"} or rel.pos_ != "VERB":
        return None
    if body[0].lower_ in _REL_PRONOUNS:
        body = body[1:]
    subj_tokens = _subtree(subj)
    if subj_tokens[0].i != body[0].i or subj.pos_ == "PRON":
        return None
    after_subject = [t for t in body if t.i > subj_tokens[-1].i]
    # The object goes right after the verb group (verb and particles), before the rest.
    split = 0
    while split < len(after_subject) and (
        after_subject[split].i <= rel.i or after_subject[split].dep_ == "prt"
    ):
        split += 1
    verb_part = _span_text(after_subject[:split])
    tail = _span_text(after_subject[split:])
    new_subject = _span_text(subj_tokens)
    text = _join(_capital(new_subject), verb_part, subject, tail)
    return Rewrite(_sentence(text), "relative", new_subject, subject)
