"""A sentence's main clause read off its dependency parse: subject, verb group, object and the
framing before and after them, or the reason the parse cannot be trusted."""

from __future__ import annotations

from dataclasses import dataclass

from service.augment.structure.phrases import _contiguous, _runs, _span_text, _subtree
from service.augment.structure.words import (
    _FRAMING_DEPS,
    _FRONT_FRAMING_DEPS,
    _MASS_NOUNS,
    _PLURAL_QUANTIFIERS,
    _POSSESSIVES,
)


@dataclass
class Clause:
    """The main clause of a sentence, read off its parse."""

    verb: object  # the root token
    subject: list  # type: ignore[type-arg]
    subject_head: object
    verbs: list  # type: ignore[type-arg]  # the root and its coordinated verbs sharing the object
    aux: list  # type: ignore[type-arg]  # auxiliaries and negation before the verb, in order
    pre_adverbs: list  # type: ignore[type-arg]  # adverbs inside the verb group ("also")
    particles: list  # type: ignore[type-arg]
    obj: list  # type: ignore[type-arg]  # direct object, attribute or agent phrase
    obj_head: object | None
    kind: str  # "active", "passive", "copula"
    front: str  # framing before the subject ("If a laptop is lost,")
    back: str  # framing after the object ("within 24 hours")
    negated: bool
    names: frozenset[str] = frozenset()


def _subject_of(verb):  # type: ignore[no-untyped-def]
    subs = [c for c in verb.children if c.dep_ in {"nsubj", "nsubjpass"}]
    return subs[0] if len(subs) == 1 else None


def read_clause(doc, names: frozenset[str] = frozenset()) -> Clause | str:  # type: ignore[no-untyped-def]
    """The sentence's main clause, or the reason it has no clause a rewrite can trust."""
    found = _verb_and_subject(doc)
    if isinstance(found, str):
        return found
    verb, subj = found
    children = sorted(verb.children, key=lambda t: t.i)
    verbs = _verb_chain(verb)
    if isinstance(verbs, str):
        return verbs
    obj_kind = _object_of(verb, subj, verbs, children)
    if isinstance(obj_kind, str):
        return obj_kind
    obj, kind = obj_kind
    aux = [c for c in children if c.dep_ in {"aux", "auxpass", "neg"} and c.i < verb.i]
    pre_adverbs = [
        c
        for c in children
        if c.dep_ == "advmod"
        and subj.i < c.i < verb.i
        and c.i > min([a.i for a in aux], default=subj.i)
    ]
    particles = [c for c in children if c.dep_ == "prt"]
    subject = _subtree(subj)
    obj_tokens = _subtree(obj)
    problem = _phrase_problem(subject, subj, obj_tokens, obj)
    if problem is not None:
        return problem
    used = {t.i for t in subject} | {t.i for t in obj_tokens} | {t.i for t in aux}
    used |= {t.i for t in pre_adverbs} | {t.i for t in particles} | {v.i for v in verbs}
    for v in verbs[1:]:
        used |= {c.i for c in v.children if c.dep_ == "cc"}
    used |= {c.i for c in children if c.dep_ == "cc" and verbs[1:] and c.i < verbs[-1].i}
    framing = _framing(doc, children, verbs, used, subject, obj_tokens)
    if isinstance(framing, str):
        return framing
    front_tokens, back_tokens = framing
    body_end = len(doc) - (1 if doc[-1].is_punct else 0)
    covered = len(front_tokens) + len(back_tokens) + len(used) + (len(doc) - body_end)
    if covered != len(doc):
        return "unexplained_words"
    negated = any(c.dep_ == "neg" for c in aux) or any(t.lower_ == "no" for t in subject[:1])
    return Clause(
        verb=verb,
        subject=subject,
        subject_head=subj,
        verbs=verbs,
        aux=aux,
        pre_adverbs=pre_adverbs,
        particles=particles,
        obj=obj_tokens,
        obj_head=obj,
        kind=kind,
        front=_span_text([t for t in front_tokens if not (t.is_punct and t is front_tokens[-1])]),
        back=" ".join(
            _span_text(part) for part in _runs([t for t in back_tokens if t.text != ","])
        ),
        negated=negated,
        names=names,
    )


def _verb_and_subject(doc) -> tuple | str:  # type: ignore[no-untyped-def,type-arg]
    """The root verb and its one nominal subject, or why the sentence has no such clause."""
    roots = [t for t in doc if t.dep_ == "ROOT"]
    if len(roots) != 1:
        return "several_sentences"
    verb = roots[0]
    if verb.pos_ not in {"VERB", "AUX"}:
        return "no_verb"
    if any(t.text == "?" for t in doc):
        return "question"
    subj = _subject_of(verb)
    if subj is None:
        return "no_subject"
    if any(c.dep_ in {"csubj", "csubjpass", "expl"} for c in verb.children):
        return "clausal_subject"
    return verb, subj


def _verb_chain(verb) -> list | str:  # type: ignore[no-untyped-def,type-arg]
    """The root and the verbs coordinated with it that share its subject and object ("builds
    and maintains X"), or why the coordination is not that."""
    verbs = [verb]
    cur = verb
    while True:
        conj = [c for c in cur.children if c.dep_ == "conj" and c.pos_ in {"VERB", "AUX"}]
        if not conj:
            break
        if len(conj) > 1 or _subject_of(conj[0]) is not None:
            return "coordinated_clauses"
        cur = conj[0]
        verbs.append(cur)
    if any(c.dep_ == "conj" and c.pos_ not in {"VERB", "AUX"} for c in verb.children):
        return "unclear_coordination"  # a verb coordinated with a noun: the parse is unsure
    for v in verbs[:-1]:
        extra = [c for c in v.children if c.dep_ not in {"cc", "conj", "punct", "nsubj"}]
        if v is verb:
            extra = [
                c
                for c in extra
                if c.dep_ in {"dobj", "attr", "agent", "acomp", "prt"}
                or (c.i > verbs[-1].i and c.dep_ not in {"aux", "auxpass", "neg"})
            ]
        if extra:
            return "coordinated_verbs_with_own_parts"
    return verbs


def _object_of(verb, subj, verbs: list, children: list) -> tuple | str:  # type: ignore[no-untyped-def,type-arg]
    """(object head, clause kind): the attribute of a copula, the agent of a passive or the
    direct object of an active clause; or why there is not exactly one."""
    last = verbs[-1]
    is_copula = verb.lemma_ == "be" and verb.dep_ == "ROOT"
    passive = any(c.dep_ == "auxpass" for c in verb.children) or subj.dep_ == "nsubjpass"
    obj_children = list(last.children) if len(verbs) > 1 else children
    if is_copula:
        attrs = [c for c in children if c.dep_ == "attr"]
        if len(attrs) != 1:
            return "no_attribute"  # "is important", "is in Lisbon": nothing to invert
        return attrs[0], "copula"
    if passive:
        agents = [c for c in obj_children if c.dep_ == "agent"]
        if len(agents) != 1:
            return "passive_without_agent"
        pobj = [c for c in agents[0].children if c.dep_ == "pobj"]
        if len(pobj) != 1:
            return "passive_without_agent"
        return agents[0], "passive"
    dobjs = [c for c in obj_children if c.dep_ == "dobj"]
    if len(dobjs) != 1:
        return "no_object"
    return dobjs[0], "active"


def _phrase_problem(subject: list, subj, obj_tokens: list, obj) -> str | None:  # type: ignore[no-untyped-def,type-arg]
    """Why the subject or object phrase cannot move, or None when both can."""
    if not _contiguous(subject) or not _contiguous(obj_tokens):
        return "discontinuous_phrase"
    for phrase, head in ((subject, subj), (obj_tokens, obj)):
        if phrase[0].lower_ in _POSSESSIVES:
            return "possessive_pronoun"  # "Its archive": whose, once the sentence stands alone?
        if (
            phrase[0].lower_ in _PLURAL_QUANTIFIERS
            and head.tag_ == "NN"
            and head.lower_ not in _MASS_NOUNS | {"staff"}
        ):
            return "unclear_number"  # "All team leads report": "leads" read as the verb
    return None


def _framing(doc, children: list, verbs: list, used: set, subject: list, obj_tokens: list):  # type: ignore[no-untyped-def,type-arg]
    """(front tokens, back tokens): everything else hanging off the verb group is framing,
    before the subject or after the object; anything between the parts (or a part we do not
    know) makes the parse untrusted, and the reason is returned instead."""
    front_tokens: list = []  # type: ignore[type-arg]
    back_tokens: list = []  # type: ignore[type-arg]
    between: list = []  # type: ignore[type-arg]
    for child in [*children, *(c for v in verbs[1:] for c in v.children)]:
        if child.i in used or child.dep_ == "punct" and child.i == len(doc) - 1:
            continue
        if child.dep_ in {"conj", "cc"} and child.head.i in {v.i for v in verbs}:
            continue
        part = _subtree(child)
        if child.dep_ == "punct":
            (front_tokens if child.i < subject[0].i else back_tokens).extend(part)
            continue
        if child.dep_ not in _FRAMING_DEPS:
            return f"unknown_part:{child.dep_}"
        if child.pos_ == "PROPN" and (
            part[0].text == "," or (part[0].i > 0 and doc[part[0].i - 1].text == ",")
        ):
            return "appositive_framing"  # "by the legal counsel, Marta Gomes": whose name?
        if part[-1].i < subject[0].i:
            if child.dep_ not in _FRONT_FRAMING_DEPS:
                return "unclear_framing"
            front_tokens.extend(part)
        elif part[0].i > obj_tokens[-1].i:
            back_tokens.extend(part)
        elif part[0].i > verbs[-1].i and part[-1].i < obj_tokens[0].i and child.dep_ == "prep":
            between.extend(part)  # "was founded in 2009 by X": the framing goes after X
        else:
            return "framing_inside_clause"
    front_tokens.sort(key=lambda t: t.i)
    back_tokens.sort(key=lambda t: t.i)
    between.sort(key=lambda t: t.i)
    back_tokens = between + back_tokens
    if front_tokens and not _contiguous(front_tokens):
        return "discontinuous_framing"
    return front_tokens, back_tokens
