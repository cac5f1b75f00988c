"""Active <-> passive: "Priya Nandakumar leads the Platform team." <-> "The Platform team is led
by Priya Nandakumar." (tense, modals, negation, coordinated verbs and framing kept)."""

from __future__ import annotations

from collections.abc import Sequence

from service.augment.structure.clause import Clause
from service.augment.structure.nlp import _inflect
from service.augment.structure.phrases import (
    _join,
    _lower_first,
    _plural,
    _sentence,
    _span_text,
    _subtree,
)
from service.augment.structure.rewrite import Rewrite, _be, _front, _moved
from service.augment.structure.words import (
    _FOCUS,
    _MEASURE_ENTS,
    _MODALS,
    _NO_PASSIVE,
    _NON_REFERENTIAL,
    _PERSONAL,
)


def _verb_group(clause: Clause) -> tuple[str, str, str] | None:
    """(tense, modal words, negation) of an active clause: tense is "pres", "past" or "modal",
    where the modal words are what precedes the participle ("must", "has", "will not")."""
    aux = [t for t in clause.aux if t.dep_ == "aux"]
    neg = "not" if any(t.dep_ == "neg" for t in clause.aux) else ""
    verb = clause.verb
    if not aux:
        if verb.tag_ in {"VBZ", "VBP"}:
            return "pres", "", neg
        if verb.tag_ == "VBD":
            return "past", "", neg
        return None
    if len(aux) == 1:
        a = aux[0]
        if a.lower_ in _MODALS and verb.tag_ == "VB":
            return "modal", a.text, neg
        if a.lemma_ == "do" and verb.tag_ == "VB":
            return ("past" if a.tag_ == "VBD" else "pres"), "", neg
        if a.lemma_ == "have" and verb.tag_ == "VBN":
            return "perfect", a.text, neg
    return None


def to_passive(clause: Clause, subject_text: str | None = None) -> Rewrite | str:
    """ "S V O" -> "O be V-ed by S" (see the module docstring)."""
    if clause.kind != "active":
        return "not_active"
    if any(v.lemma_.lower() in _NO_PASSIVE for v in clause.verbs):
        return "verb_does_not_passivize"
    head = clause.obj_head
    if head.pos_ == "PRON" or head.lower_ in _NON_REFERENTIAL | _PERSONAL:
        return "pronoun_object"
    if head.ent_type_ in _MEASURE_ENTS or head.like_num or head.pos_ == "NUM":
        return "measure_object"
    if any(t.dep_ in {"ccomp", "xcomp"} for t in clause.obj):
        return "clausal_object"
    if any(t.dep_ == "conj" and t.pos_ in {"VERB", "AUX"} for t in clause.obj):
        return "unclear_coordination"  # "leads the team and reports to X": a verb in the object
    for conj in (t for t in clause.obj if t.dep_ == "conj"):
        first_det = any(c.dep_ == "det" for c in conj.head.children)
        if first_det and conj.pos_ != "PROPN" and not any(c.dep_ == "det" for c in conj.children):
            return "unclear_coordination"  # "the Finance team and reports to X": not two things
    if any(t.dep_ == "poss" and t.pos_ == "PRON" for t in clause.obj):
        return "possessive_in_object"  # "their buddy" would come before what it refers to
    if any(t.lower_ in _FOCUS for t in clause.subject):
        return "focus_on_subject"  # "Only the CEO may book ...": the focus does not move
    if any(a.lower_ in _FOCUS for a in clause.pre_adverbs):
        return "focus_adverb"  # "Lena also keeps X" -> "X is also kept by Lena": someone else?
    if clause.subject[0].lower_ in {"this", "these"}:
        return "document_as_agent"  # "This catalogue lists X" -> "X is listed in", not "by"
    group = _verb_group(clause)
    if group is None:
        return "unusual_verb_group"
    tense, modal, neg = group
    participles = []
    for v in clause.verbs:
        form = _inflect(v.lemma_, "VBN")
        if form is None:
            return "no_participle"
        participles.append(form)
    verbs_text = (
        participles[0]
        if len(participles) == 1
        else (", ".join(participles[:-1]) + " and " + participles[-1])
    )
    if clause.particles:
        if len(clause.verbs) > 1:
            return "particle_with_coordination"
        verbs_text += " " + " ".join(p.text for p in clause.particles)
    plural = _plural(head, clause.obj)
    if tense == "modal":
        be = _join(modal, neg, "be")
    elif tense == "perfect":
        have = "have" if plural else "has"
        be = _join(have, neg, "been")
    else:
        be = _join(_be(plural, tense), neg)
    adverbs = " ".join(a.text for a in clause.pre_adverbs)
    subject = subject_text or _lower_first(
        _span_text(clause.subject), clause.subject[0], clause.names
    )
    obj = _span_text(clause.obj)
    obj_start = _moved(obj, clause.obj, bool(clause.front))
    text = _join(_front(clause), obj_start, be, adverbs, verbs_text, "by", subject, clause.back)
    return Rewrite(_sentence(text), "passive", obj, subject)


def to_active(clause: Clause, subject_text: str | None = None) -> Rewrite | str:
    """ "O be V-ed by S" -> "S V O"."""
    if clause.kind != "passive":
        return "not_passive"
    if any(a.lower_ in _FOCUS for a in clause.pre_adverbs):
        return "focus_adverb"
    agent = clause.obj_head
    pobj = next(c for c in agent.children if c.dep_ == "pobj")
    if pobj.pos_ == "PRON":
        return "pronoun_agent"
    if clause.particles:
        return "particle"
    aux = [t for t in clause.aux if t.dep_ == "aux"]
    auxpass = [t for t in clause.aux if t.dep_ == "auxpass"]
    neg = any(t.dep_ == "neg" for t in clause.aux)
    if len(auxpass) != 1 or auxpass[0].lemma_ != "be":
        return "unusual_verb_group"
    agent_phrase = [t for t in _subtree(pobj)]
    plural = _plural(pobj, agent_phrase)
    lemmas = [v.lemma_ for v in clause.verbs]
    if any(v.tag_ != "VBN" for v in clause.verbs):
        return "unusual_verb_group"
    if not aux:
        tense = "past" if auxpass[0].tag_ == "VBD" else "pres"
        if neg:
            do = "did" if tense == "past" else ("do" if plural else "does")
            words = [do, "not", _coordinate(lemmas)]
        else:
            tag = "VBD" if tense == "past" else ("VBP" if plural else "VBZ")
            forms = [_inflect(lemma, tag) for lemma in lemmas]
            if any(f is None for f in forms):
                return "no_verb_form"
            words = [_coordinate(forms)]  # type: ignore[arg-type]
    elif len(aux) == 1 and aux[0].lower_ in _MODALS and auxpass[0].lower_ == "be":
        words = [aux[0].text, "not" if neg else "", _coordinate(lemmas)]
    elif len(aux) == 1 and aux[0].lemma_ == "have" and auxpass[0].lower_ == "been":
        have = "have" if plural else "has"
        words = [have, "not" if neg else "", _coordinate([v.text for v in clause.verbs])]
    else:
        return "unusual_verb_group"
    adverbs = " ".join(a.text for a in clause.pre_adverbs)
    new_subject = _moved(_span_text(agent_phrase), agent_phrase, bool(clause.front))
    obj = subject_text or _lower_first(_span_text(clause.subject), clause.subject[0], clause.names)
    verb_words = _join(*words[:-1], adverbs, words[-1]) if adverbs else _join(*words)
    text = _join(_front(clause), new_subject, verb_words, obj, clause.back)
    return Rewrite(_sentence(text), "active", _span_text(agent_phrase), obj)


def _coordinate(words: Sequence[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]
