"""Linked strategy: inferences across sentences and documents, made by explicit steps.

The free-form global prompt asks a teacher to connect a document to the corpus in one go; a
135M teacher gets 6% of that right. This strategy does the steps itself, on the parse
(`structure/`):
1. facts: every sentence is read into categorical facts with its sentence id ("All internal
   tools are maintained by the Platform team": class "internal tool", predicate "are maintained
   by the Platform team"; "Tidemark is an internal tool": Tidemark is a member of that class;
   "Priya Nandakumar leads the Platform team": a relation with a named object);
2. joins, each a valid inference:
   - inheritance: X is a M, all M P -> X P ("Tidemark is maintained by the Platform team");
     no M P -> X does not P;
   - syllogisms: all/some S are M, all M P -> all/some S P; all S are M, no M P -> no S P
     (with the conversions of "no" and "some": Barbara, Celarent, Darii and the moods that
     reduce to them);
   - chains: A r B, B s C -> "A r B, which s C" (who for a person);
3. sentences by template, agreement and negation by rule, each with the ids of the sentences
   it rests on. A fact whose parse is uncertain takes part in nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from service.augment.filters.postprocess import Deduplicator, filter_statements, split_sentences
from service.augment.params import AugmentParams
from service.augment.runner import UnitWork
from service.augment.structure import (
    collection_names,
    made_by_rule,
    parse,
    read_clause,
    replace_subject,
    resolve_subject,
    rewrites,
    to_passive,
)
from service.augment.structure.clause import _subject_of
from service.augment.structure.nlp import _inflect
from service.augment.structure.phrases import (
    _drop_glued_heading,
    _is_proper_start,
    _lower_first,
    _plural,
    _span_text,
    _subtree,
)
from service.augment.structure.words import _MODALS
from service.augment.teacher import Teacher
from service.augment.types import Example, Unit, UnitResult, YieldStats

_UNIVERSAL = {"all": "all", "every": "all", "each": "all", "no": "no", "some": "some"}


@dataclass(frozen=True)
class Fact:
    """One statement read off a sentence.

    kind "class": `quantifier` (all | no | some) members of class `subject_key` `predicate`
    (a verb phrase agreeing with a plural subject: "are maintained by ...", "may access ...");
    `object_key` is set when the predicate is "are <class>" (an inclusion between classes).
    kind "member": the individual `subject` is a member of class `object_key`.
    kind "relation": `subject` <predicate>, whose object is the named `object`.
    """

    kind: str
    unit_id: str
    document_id: str
    sentence: str
    subject: str  # the subject's words (a class without its quantifier)
    subject_key: str
    predicate: str
    quantifier: str = ""
    object: str = ""
    object_key: str = ""
    person: bool = False
    passive_of: str = ""  # a relation's passive without its agent ("Manifest is built by")


def _class_key(tokens: Sequence) -> str:  # type: ignore[type-arg]
    """A noun phrase as a class: lemmas without determiners and quantifiers ("all internal
    tools" -> "internal tool")."""
    words = [t.lemma_.lower() for t in tokens if t.dep_ not in {"det", "predet"} and not t.is_punct]
    return " ".join(words)


def _entity_key(text: str) -> str:
    words = text.lower().split()
    while words and words[0] in {"the", "a", "an"}:
        words = words[1:]
    return " ".join(words)


def _plain_class(head, tokens: Sequence) -> bool:  # type: ignore[no-untyped-def,type-arg]
    """A class named without restriction: determiners, adjectives and compounds only (a
    relative clause or prepositional phrase would make it a subset)."""
    return all(t.i == head.i or t.dep_ in {"det", "predet", "amod", "compound"} for t in tokens)


def _predicate(doc, subject: Sequence) -> str | None:  # type: ignore[no-untyped-def,type-arg]
    rest = [t for t in doc if t.i > subject[-1].i]
    while rest and rest[-1].is_punct:
        rest = rest[:-1]
    root = next(t for t in doc if t.dep_ == "ROOT")
    if not rest or not (
        rest[0].i == root.i or (rest[0].head.i == root.i and rest[0].dep_ in {"aux", "auxpass"})
    ):
        return None  # the words after the subject do not start its verb: the parse is off
    if not rest or any(t.pos_ == "PRON" and t.lower_ not in {"that", "which", "who"} for t in rest):
        return None
    return _span_text(rest)


def read_facts(unit_id: str, document_id: str, sentence: str, doc, names) -> list[Fact]:  # type: ignore[no-untyped-def]
    """The facts of one parsed sentence (see `Fact`); none when its parse is uncertain."""
    roots = [t for t in doc if t.dep_ == "ROOT"]
    if len(roots) != 1:
        return []
    root = roots[0]
    subj = _subject_of(root)
    if subj is None or subj.pos_ == "PRON" or any(t.text in {"?", ";"} for t in doc):
        return []
    subject = _subtree(subj)
    if subject[0].i != 0 and not all(t.is_punct for t in doc[: subject[0].i]):
        return []  # framing before the subject ("If ...,") conditions the whole statement
    base = {"unit_id": unit_id, "document_id": document_id, "sentence": sentence}
    det = subject[0].lower_ if subject[0].dep_ in {"det", "predet"} else ""
    quantifier = _UNIVERSAL.get(det, "")
    # A plural without a determiner is a class: "Contractors are external staff", and
    # "Zarp are a type of glon" (the verb says plural where the tagger may not).
    bare_plural = not det and (
        (subj.tag_ == "NNS" and subj.pos_ == "NOUN")
        or (root.lower_ in {"are", "were"} and len(subject) == 1)
    )
    if (quantifier or bare_plural) and _plain_class(subj, subject):
        fact = _class_fact(base, doc, root, subj, subject, quantifier or "all")
        return [fact] if fact is not None else []
    named = subj.pos_ == "PROPN" or _is_proper_start(subject[0], names) or det == "the"
    if not named or _plural(subj, subject) or subject[0].i != 0:
        return []
    subject_text = _lower_first(_span_text(subject), subject[0], names)
    person = subj.ent_type_ == "PERSON"
    attr = next((c for c in root.children if c.dep_ == "attr"), None)
    negated = any(c.dep_ == "neg" for c in root.children)
    if root.lemma_ == "be" and root.tag_ == "VBZ" and attr is not None and not negated:
        fact = _member_fact(base, attr, subject_text, person)
    else:
        fact = _relation_fact(base, doc, subject, subject_text, person, names)
    return [fact] if fact is not None else []


def _class_fact(base: dict, doc, root, subj, subject: Sequence, quantifier: str) -> Fact | None:  # type: ignore[no-untyped-def,type-arg]
    """ "All/No/Some <class> <predicate>" as a class fact; None when its parse is uncertain."""
    predicate = _predicate(doc, subject)
    if predicate is None:
        return None
    if quantifier == "no" and any(t.dep_ == "neg" for t in doc):
        return None
    words = _span_text([t for t in subject if t.dep_ not in {"det", "predet"}])
    object_key = ""
    attr_tokens = _class_attribute(doc, root)
    if attr_tokens is not None:
        object_key = _class_key(attr_tokens)
        predicate = f"are {_span_text(attr_tokens)}"
    if subj.tag_ == "NN" and quantifier in {"all", "no"} and not _plural(subj, subject):
        predicate = _agree(predicate, plural=True)  # "Every employee must" -> plural form
        if predicate is None:
            return None
    return Fact(
        "class",
        **base,
        subject=words,
        subject_key=_class_key(subject),
        predicate=predicate,
        quantifier=quantifier,
        object_key=object_key,
    )


def _class_attribute(doc, root) -> list | None:  # type: ignore[no-untyped-def,type-arg]
    """The class a class is said to be in ("are yomp", "are a type of glon"), as tokens; None
    when the predicate is not "are <class>" ending the sentence."""
    # "are yomp" (attr), or a bare word the tagger took for an adjective ("are glon")
    attr = next((c for c in root.children if c.dep_ == "attr"), None) or next(
        (c for c in root.children if c.dep_ == "acomp" and not list(c.children)), None
    )
    if root.lemma_ != "be" or attr is None or any(c.dep_ == "neg" for c in root.children):
        return None
    attr_tokens = _subtree(attr)
    opening = [t.lower_ for t in attr_tokens[:3]]
    if opening[1:3] in (["type", "of"], ["kind", "of"]) and opening[0] in {"a", "an"}:
        attr_tokens = attr_tokens[3:]  # "are a type of glon": the class is glon
        attr = next((t for t in attr_tokens if t.dep_ == "pobj"), None)
    if (
        attr is not None
        and attr_tokens
        and _plain_class(attr, attr_tokens)
        and attr_tokens[-1].i == len(doc) - 2
    ):
        return attr_tokens
    return None


def _member_fact(base: dict, attr, subject_text: str, person: bool) -> Fact | None:  # type: ignore[no-untyped-def,type-arg]
    """ "Harbor is an internal tool for deploying ...", "Beacon is an internal tool and runs in
    ...": a member of the class its head words name (None without "a"/"an")."""
    attr_det = next((c for c in attr.children if c.dep_ == "det"), None)
    if attr_det is None or attr_det.lower_ not in {"a", "an"}:
        return None
    head_tokens = [t for t in _subtree(attr) if t.i <= attr.i]
    return Fact(
        "member",
        **base,
        subject=subject_text,
        subject_key=_entity_key(subject_text),
        predicate="",
        object_key=_class_key(head_tokens),
        person=person,
    )


def _relation_fact(  # type: ignore[no-untyped-def]
    base: dict,  # type: ignore[type-arg]
    doc,
    subject: Sequence,  # type: ignore[type-arg]
    subject_text: str,
    person: bool,
    names,
) -> Fact | None:
    """A named subject's relation, read off its active or passive clause; its object is kept
    when it is named and ends the sentence, so the fact can start a chain."""
    clause = read_clause(doc, names)
    if isinstance(clause, str) or clause.kind not in {"active", "passive"} or clause.front:
        return None
    obj_phrase = clause.obj if clause.kind == "active" else clause.obj[1:]
    obj_head = clause.obj_head if clause.kind == "active" else clause.obj[-1]
    obj_named = obj_head.pos_ == "PROPN" or (
        obj_phrase and obj_phrase[0].lower_ == "the" and obj_head.pos_ in {"NOUN", "PROPN"}
    )
    predicate = _predicate(doc, subject)
    if not predicate:
        return None
    # A named object ending the sentence can start a chain ("... leads the Platform team").
    ends_named = obj_named and obj_phrase[-1].i == len(doc) - 2 and not clause.back
    passive_of = ""
    if ends_named and clause.kind == "active":
        made = to_passive(clause)
        tail = f" by {subject_text}."
        if not isinstance(made, str) and made.text.endswith(tail):
            passive_of = made.text[: -len(tail)] + " by"
    return Fact(
        "relation",
        **base,
        subject=subject_text,
        subject_key=_entity_key(subject_text),
        predicate=predicate,
        object=_span_text(obj_phrase) if ends_named else "",
        person=person,
        passive_of=passive_of,
    )


# -- agreement --------------------------------------------------------------------------------

_SINGULAR = {"are": "is", "were": "was", "have": "has", "do": "does"}
_PLURAL = {v: k for k, v in _SINGULAR.items()}


def _agree(predicate: str, plural: bool) -> str | None:
    """The predicate with its first verb agreeing with a singular or plural subject; None if
    its first word is no verb."""
    first, _, rest = predicate.partition(" ")
    low = first.lower()
    if low in _MODALS:
        return predicate
    change, keep = (_PLURAL, _SINGULAR) if plural else (_SINGULAR, _PLURAL)
    if low in change:
        return f"{change[low]} {rest}".strip()
    if low in keep:
        return predicate
    verb = parse([f"{'They' if plural else 'It'} {predicate}"])[0][1]
    if verb.pos_ not in {"VERB", "AUX"}:
        return None
    if verb.tag_ == "VBD":
        return predicate
    form = _inflect(verb.lemma_, "VBP" if plural else "VBZ")
    return f"{form} {rest}".strip() if form else None


def _negate(predicate: str, plural: bool) -> str | None:
    """ "may access X" -> "may not access X"; "are X" -> "is not X" (singular); a main verb
    -> "does not V"."""
    first, _, rest = predicate.partition(" ")
    low = first.lower()
    if low in _MODALS or low in {"is", "are", "was", "were", "has", "have"}:
        agreed = _agree(predicate, plural) or predicate
        head, _, tail = agreed.partition(" ")
        return f"{head} not {tail}".strip()
    doc = parse([f"They {predicate}"])[0]
    verb = doc[1]
    if verb.pos_ != "VERB" or verb.tag_ not in {"VBP", "VBZ", "VB"}:
        return None
    return f"{'do' if plural else 'does'} not {verb.lemma_} {rest}".strip()


# -- joins ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Inference:
    text: str
    rule: str
    premises: tuple[Fact, Fact]


def _sentence(text: str) -> str:
    text = " ".join(text.split())
    return text[:1].upper() + text[1:].rstrip(" .") + "."


def _converses(facts: Sequence[Fact]) -> list[Fact]:
    """ "No M are P" is "No P are M", "Some M are P" is "Some P are M" (classes only)."""
    out = []
    for f in facts:
        if f.kind == "class" and f.object_key and f.quantifier in {"no", "some"}:
            attr_words = f.predicate.split(" ", 1)[1] if " " in f.predicate else ""
            if not attr_words:
                continue
            out.append(
                replace(
                    f,
                    subject=attr_words,
                    subject_key=f.object_key,
                    predicate=f"are {f.subject}",
                    object_key=f.subject_key,
                )
            )
    return out


def infer(facts: Sequence[Fact]) -> list[Inference]:
    """Every one-step inference from two facts of different sentences (see the module)."""
    all_facts = [*facts, *_converses(facts)]
    generic: dict[str, list[Fact]] = {}
    for f in all_facts:
        if f.kind == "class" and f.quantifier in {"all", "no"}:
            generic.setdefault(f.subject_key, []).append(f)
    by_subject: dict[str, list[Fact]] = {}
    for f in facts:
        if f.kind == "relation":
            by_subject.setdefault(f.subject_key, []).append(f)
    out: list[Inference] = []
    for first in all_facts:
        if first.kind == "member":
            for rule in generic.get(first.object_key, []):
                if rule.sentence == first.sentence:
                    continue
                if rule.quantifier == "all":
                    predicate = _agree(rule.predicate, plural=False)
                else:
                    predicate = _negate(rule.predicate, plural=False)
                if predicate:
                    text = _sentence(f"{first.subject} {predicate}")
                    out.append(Inference(text, "inheritance", (first, rule)))
        elif first.kind == "class" and first.object_key and first.quantifier in {"all", "some"}:
            for rule in generic.get(first.object_key, []):
                if rule.sentence == first.sentence or rule.subject_key == first.subject_key:
                    continue
                if first.quantifier == "some" and rule.quantifier == "no":
                    continue  # Ferio ("some S are not P"): not written
                quantifier = "no" if rule.quantifier == "no" else first.quantifier
                predicate = _agree(rule.predicate, plural=True)
                if predicate:
                    text = _sentence(f"{quantifier} {first.subject} {predicate}")
                    out.append(Inference(text, "syllogism", (first, rule)))
        elif first.kind == "relation" and first.object:
            for second in by_subject.get(_entity_key(first.object), []):
                if second.sentence == first.sentence or not first.person:
                    continue
                # "Chen Wei leads the Product Engineering team" + "the Product Engineering team
                # builds Manifest" -> "Chen Wei leads the team that builds Manifest"
                words = first.object.split()
                if words[0].lower() != "the" or len(words) < 3 or second.person:
                    continue
                verb_part = first.predicate[: -len(first.object)].strip()
                text = _sentence(
                    f"{first.subject} {verb_part} the {words[-1].lower()} that {second.predicate}"
                )
                out.append(Inference(text, "chain", (first, second)))
                # and from the other side: "Manifest is built by the team Chen Wei leads"
                if second.object and second.passive_of:
                    lead = verb_part.split()[0]
                    text = _sentence(
                        f"{second.passive_of} the {words[-1].lower()} {first.subject} {lead}"
                    )
                    out.append(Inference(text, "chain", (second, first)))
    return out


def _with_resolved_pronoun(sentence: str, previous: str, names) -> str:  # type: ignore[no-untyped-def]
    previous = _drop_glued_heading(previous)
    docs = parse([sentence, previous] if previous else [sentence])
    referent = resolve_subject(docs[0], docs[1] if previous else None, names)
    return replace_subject(docs[0], referent) if referent else sentence


def _statements(sentence: str) -> list[str]:
    """A sentence split after a colon that introduces statements ("The relationships between
    glon, troff and yomp are: All glon are yomp." -> its second part)."""
    head, sep, tail = sentence.partition(": ")
    if sep and tail[:1].isupper():
        return [tail]
    return [sentence]


def prepare(units: Sequence[Unit], teacher: Teacher, params: AugmentParams) -> UnitWork:
    """Inferences whose first premise lies in each unit; see `run_strategy`. The teacher is not
    asked: every step is a rule on the parse."""
    del teacher
    names = collection_names(u.text for u in units)
    sentences: list[tuple[Unit, str]] = []
    for unit in units:
        previous = unit.context
        for sentence in split_sentences(unit.text):
            for part in _statements(_drop_glued_heading(sentence)):
                sentences.append((unit, _with_resolved_pronoun(part, previous, names)))
                previous = part
    # Each sentence in its own voice and in the other (the decomposed rewrite), so that
    # "Manifest is built by the Product Engineering team" also joins as "... builds Manifest".
    readings: list[tuple[Unit, str, str]] = []
    for unit, sentence in sentences:
        readings.append((unit, sentence, sentence))
        made, _ = rewrites(sentence, "", names)
        readings.extend(
            (unit, sentence, r.text) for r in made if r.kind in {"active", "passive", "split"}
        )
    docs = parse(text for _, _, text in readings)
    facts: list[Fact] = []
    for (unit, sentence, text), doc in zip(readings, docs, strict=True):
        for fact in read_facts(unit.id, unit.document_id, text, doc, names):
            facts.append(replace(fact, sentence=sentence))
    by_first: dict[str, list[Inference]] = {}
    for inference in infer(facts):
        by_first.setdefault(inference.premises[0].unit_id, []).append(inference)
    dedup = Deduplicator(params.filters.near_duplicate_threshold)
    filters = replace(params.filters, copy_threshold=1.01, max_words=80, max_chars=600)

    async def process(unit: Unit, stats: YieldStats) -> UnitResult:
        examples: list[Example] = []
        inferences = by_first.get(unit.id, [])
        if not inferences:
            stats.no_statement("no_inference")
        for inference in inferences:
            first, second = inference.premises
            kept = filter_statements(
                [inference.text],
                sources=[first.sentence, second.sentence],
                config=filters,
                dedup=dedup,
                stats=stats,
                gate=params.gate,
            )
            examples.extend(
                Example(
                    text=text,
                    strategy="linked",
                    document_id=unit.document_id,
                    unit_ids=[first.unit_id, second.unit_id],
                    source_text=f"{first.sentence} {second.sentence}",
                    **made_by_rule(f"linked:{inference.rule}"),  # type: ignore[arg-type]
                    context_document_ids=sorted({second.document_id} - {first.document_id}),
                    detail={
                        "rule": inference.rule,
                        "premises": [first.sentence, second.sentence],
                    },
                )
                for text in kept
            )
        return UnitResult(unit.id, unit.document_id, examples, stats)

    return UnitWork(units, process, concurrency=8)
