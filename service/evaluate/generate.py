"""Eval sets written from a collection's documents: multiple-choice items, each with one answer
the documents support and wrong answers of the same kind from the same collection.

Every item is a question that asks for the subject of a statement ("Who leads the Platform
team?" from "Priya Nandakumar leads the Platform team."); the statement comes from the
rule-made, high-precision readings of `service/augment/structure.py` and `linked.py`:
- reversed: the document's own statement, asked from its other side: the answer is the
  sentence's subject ("Which tool is for expenses?" when the document says "Ledgerly is the tool
  for expenses"); made only where the parse supports a rewrite, so the clause is read right;
- forward: the stated fact asked in the direction it is written: the subject of its voice or
  identity rewrite is asked ("Which team is led by Priya Nandakumar?");
- cross-document: a fact that follows from two sentences of different documents (inheritance
  along "is a", a chain through a named thing, a syllogism), asked where only one answer
  follows: never the member of a class (every member shares the class's properties).
An item names what it asks about (a proper name or a described thing, never "the meeting" or
"this policy"), its answer is a name, a team or (for identities) a description, and its wrong
answers are phrases of the same kind from the collection that make no statement the collection
supports: not a sentence, rewrite or inference of it, not a phrase written in one sentence with
what the question names, nor one that a class statement ("Every office manager reports to ...")
could make true. No item's question and answer restate a document sentence.

`generate_evalset` also picks the held-out sentences: a seeded share of the sentences the chosen
items rest on, which training then leaves out; their items are marked "<category>/held-out".
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from service.evaluate.evalset import EvalItem, generated_id

CATEGORIES = ("forward", "reversed", "cross-document")
HELD_OUT = "held-out"
DEFAULT_CHOICES = 4
# Rewrites whose new subject is the original's object (or attribute): asking each side is sound.
_VOICE_KINDS = frozenset({"passive", "active", "identity", "manager", "inclusion"})
_DEMONSTRATIVES = frozenset({"this", "these", "that", "those"})
_QUANTIFIERS = ("all", "no", "some")
_MAX_NAME_WORDS = 6
_MAX_DESCRIPTION_WORDS = 14
# Heads of a named group ("the Platform team"): the group is asked with "Which team".
_GROUP_HEADS = frozenset({"team", "department", "committee", "unit", "squad", "group"})
_PARTICIPANT_DEPS = frozenset({"nsubj", "nsubjpass", "dobj", "attr"})
_NEGATIONS = frozenset({"not", "never", "no", "none", "nobody", "neither", "nor", "n't"})
_PERMISSIONS = frozenset({"may", "can", "could", "might"})
# Attribute heads that say where something belongs, not what it is ("part of the Platform team").
_NOT_A_CLASS = frozenset({"part", "member", "type", "kind", "one", "example"})


@dataclass(frozen=True)
class SourceSentence:
    """One sentence of the collection: `key` names it ("<document id>:p<passage>:s<index>", the
    augmentation's unit id), `previous` is the sentence before it in its passage."""

    key: str
    document_id: str
    text: str
    previous: str = ""

    @property
    def sha256(self) -> str:
        return sentence_sha256(self.text)


def sentence_sha256(text: str) -> str:
    """sha256 (hex) of a sentence with its whitespace collapsed."""
    return hashlib.sha256(" ".join(text.split()).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class GeneratedItem:
    """An eval item with how it was made: `statements[i]` is what choice i asserts (the
    question's statement with that choice as its subject), `sources` the keys of the sentences
    it rests on."""

    item: EvalItem
    statements: tuple[str, ...]
    sources: tuple[str, ...]
    rule: str
    held_out: bool = False

    @property
    def base_category(self) -> str:
        return (self.item.category or "").split("/")[0]

    def record(self) -> dict[str, Any]:
        return {
            "id": self.item.id,
            "rule": self.rule,
            "sources": list(self.sources),
            "statements": list(self.statements),
            "held_out": self.held_out,
        }


@dataclass
class Generation:
    items: list[GeneratedItem]
    held_out: list[SourceSentence]
    stats: dict[str, Any] = field(default_factory=dict)


# -- phrases ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Phrase:
    text: str  # as written inside a sentence ("the Platform team")
    kind: str  # person | name | group:<head> | description:<person|thing>

    @property
    def key(self) -> str:
        return _key(self.text)


def _key(text: str) -> str:
    words = text.lower().replace("\u2019", "'").split()
    while words and words[0] in {"the", "a", "an"}:
        words = words[1:]
    return " ".join(words).strip(" .,")


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def _choice(text: str) -> str:
    return _capital(text.strip().rstrip(".")) + "."


def _mid_sentence(tokens: Sequence) -> str:  # type: ignore[type-arg]
    """A phrase's text as it reads inside a sentence: a determiner that opened the sentence
    lower-cased ("The Platform team" -> "the Platform team")."""
    text = "".join(t.text_with_ws for t in tokens).strip()
    first = tokens[0]
    if first.i == 0 and first.dep_ in {"det", "predet"}:
        text = text[:1].lower() + text[1:]
    return text


@dataclass
class _Collection:
    """What the whole collection says, for choosing wrong answers that stay wrong."""

    statements: list[str] = field(default_factory=list)  # resolved sentences and rewrites
    lemma_texts: list[str] = field(default_factory=list)  # the same, lemmatized
    known: set[str] = field(default_factory=set)  # normalized statements it supports
    document_sentences: set[str] = field(default_factory=set)  # normalized, as written
    lowercase_words: set[str] = field(default_factory=set)
    modifiers: set[str] = field(default_factory=set)  # name keys written before a noun
    only_modifier: set[str] = field(default_factory=set)  # ... and never on their own
    inside: set[str] = field(default_factory=set)  # name keys written after a sentence's start
    participants: set[str] = field(default_factory=set)  # names that do or undergo something
    persons: set[str] = field(default_factory=set)
    phrases: dict[str, _Phrase] = field(default_factory=dict)
    types: dict[str, str] = field(default_factory=dict)  # name key -> its class noun
    verbs: dict[str, set[str]] = field(default_factory=dict)  # root lemma -> phrase keys
    classes: list[tuple[str, str]] = field(default_factory=list)  # (class lemmas, statement)
    names: frozenset[str] = frozenset()  # as `structure.collection_names` gives them
    descriptions: list[tuple[str, str]] = field(default_factory=list)  # (description, name)

    lowered: list[str] = field(default_factory=list)  # `statements` in lower case
    _mentions: dict[str, list[int]] = field(default_factory=dict)

    def mentions_of(self, key: str) -> list[int]:
        """Indexes of the statements that name `key` (a whole word or phrase)."""
        found = self._mentions.get(key)
        if found is None:
            pattern = re.compile(rf"(?<![\w-]){re.escape(key)}(?![\w-])")
            found = [i for i, text in enumerate(self.lowered) if pattern.search(text)]
            self._mentions[key] = found
        return found

    def proper(self, token) -> bool:  # type: ignore[no-untyped-def]
        """A proper noun, also where the tagger missed one at a sentence's start ("Compass is
        owned by ..."): a word the collection writes capitalized inside sentences and never in
        lower case."""
        if token.pos_ == "PROPN":
            return True
        text = token.text
        return text[:1].isupper() and text in self.names and f"-{text.lower()}" not in self.names


def _normalize(text: str) -> str:
    text = " ".join(text.replace("\u2019", "'").lower().split())
    return re.sub(r"[\s.!?;:,]+$", "", text)


def _person_shaped(tokens: Sequence, collection: _Collection) -> bool:  # type: ignore[type-arg]
    """Two or three capitalized proper nouns, none a word the collection writes in lower case
    (so "Quarry Software" and "Customer Support" are no persons), none written before a noun
    ("Product Engineering team"), and no repeated word (a glued heading)."""
    words = [t.text for t in tokens]
    if not 2 <= len(words) <= 3 or len(set(words)) != len(words):
        return False
    if not all(collection.proper(t) and t.text[:1].isupper() and t.text.isalpha() for t in tokens):
        return False
    if any(w.lower() in collection.lowercase_words for w in words):
        return False
    return " ".join(words).lower() not in collection.modifiers


def _classify(tokens: Sequence, collection: _Collection) -> _Phrase | None:  # type: ignore[type-arg]
    """The phrase's kind, or None when it is not a name, a person or a named group."""
    if not tokens:
        return None
    if any(t.is_punct or t.dep_ in {"cc", "conj", "poss", "case"} for t in tokens):
        return None
    if any(t.pos_ == "PRON" or t.lower_ in _DEMONSTRATIVES for t in tokens):
        return None
    body = list(tokens)
    det = body[0].lower_ if body[0].dep_ in {"det", "predet"} else ""
    if det:
        body = body[1:]
    if not body or len(body) > _MAX_NAME_WORDS or det not in {"", "the"}:
        return None
    text = _mid_sentence(tokens)
    head = body[-1]
    if all(collection.proper(t) for t in body):
        key = _key(text)
        if not det and key in collection.persons:
            return _Phrase(text, "person")
        if collection.types.get(key) == "team":
            return _Phrase(text, "group:team")  # "Finance approves ...": the Finance team
        if _name_like(body, collection):
            return _Phrase(text, "name")
        return None
    named = det == "the" and any(collection.proper(t) for t in body[:-1])
    if named and head.pos_ == "NOUN" and all(t.pos_ in {"PROPN", "NOUN", "ADJ"} for t in body):
        # "the Platform team", "the Rotterdam data centre": a named thing of a kind
        kind = [head.lemma_.lower()]
        for t in reversed(body[:-1]):
            if t.pos_ != "NOUN" or collection.proper(t):
                break
            kind.insert(0, t.lower_)  # "data centre", not "centre"
        return _Phrase(text, f"group:{' '.join(kind)}")
    return None


def _name_like(tokens: Sequence, collection: _Collection) -> bool:  # type: ignore[type-arg]
    """Whether proper nouns name a thing of their own: every word capitalized, no digits, no
    date, written somewhere inside a sentence (not only where any word is capitalized: "Leave",
    "Screens"), not part of a person's name ("Priya") and not only ever a modifier ("Platform"
    of "Platform team")."""
    words = [t.text for t in tokens]
    key = " ".join(words).lower()
    if not all(w[:1].isupper() and not any(c.isdigit() for c in w) for w in words):
        return False
    if any(t.ent_type_ in {"DATE", "TIME"} for t in tokens):
        return False
    if key not in collection.inside or key in collection.only_modifier:
        return False
    if len(words) == 1 and f"-{key}" in collection.names:
        return False  # "Data" of a glued heading: the collection writes "data" too
    return not any(set(key.split()) <= set(p.split()) for p in collection.persons)


# -- reading the collection -------------------------------------------------------------------


@dataclass(frozen=True)
class _Frame:
    """A statement whose subject an item asks for."""

    text: str
    subject: str  # the subject's words as they appear in `text`
    category: str
    rule: str
    sources: tuple[str, ...]
    other: str = ""  # for identities: the other side (its kind sets "who" or "what")


def clean_sentence(sentence: str) -> str | None:
    """A sentence as the rewrites read it: list marker, glued heading and a short label
    ("A: ", "Note: ") removed; None when a colon remains (a list or a title)."""
    from service.augment.structure import _BULLET_RE, _drop_glued_heading

    text = _drop_glued_heading(_BULLET_RE.sub("", sentence).strip())
    head, colon, tail = text.partition(": ")
    if colon and len(head.split()) <= 3 and tail[:1].isupper():
        text = tail
    elif ":" in text:
        return None
    return " ".join(text.split())


def _readings(sentence: SourceSentence, names: frozenset[str]) -> list[tuple[str, list]]:  # type: ignore[type-arg]
    """(statement, its voice and identity rewrites) for each statement of a sentence: the
    sentence itself (its opening pronoun resolved), or each half of a two-verb sentence."""
    from service.augment.structure import rewrites

    made, _ = rewrites(sentence.text, sentence.previous, names)
    splits = [r for r in made if r.kind == "split"]
    if splits:
        out = []
        for part in splits:
            again, _ = rewrites(part.text, "", names)
            out.append((part.text, [r for r in again if r.kind in _VOICE_KINDS]))
        return out
    resolved = next((r for r in made if r.kind == "resolved"), None)
    base = resolved.text if resolved is not None else clean_sentence(sentence.text)
    if base is None:
        return []
    return [(base, [r for r in made if r.kind in _VOICE_KINDS])]


def _cross_inferences(sentences: Sequence[SourceSentence], names: frozenset[str]) -> list:  # type: ignore[type-arg]
    """linked.py's one-step inferences over the collection (premises keyed by sentence)."""
    from service.augment.strategies.linked import (
        _statements,
        _with_resolved_pronoun,
        infer,
        read_facts,
    )
    from service.augment.structure import _drop_glued_heading, parse, rewrites

    readings: list[tuple[SourceSentence, str, str]] = []
    for s in sentences:
        for part in _statements(_drop_glued_heading(s.text)):
            resolved = _with_resolved_pronoun(part, s.previous, names)
            readings.append((s, resolved, resolved))
            made, _ = rewrites(resolved, "", names)
            readings.extend(
                (s, resolved, r.text) for r in made if r.kind in {"active", "passive", "split"}
            )
    docs = parse(text for _, _, text in readings)
    facts = []
    for (s, resolved, text), doc in zip(readings, docs, strict=True):
        for fact in read_facts(s.key, s.document_id, text, doc, names):
            facts.append(replace(fact, sentence=resolved))
    return infer(facts)


def _subject_at(text: str, subject: str) -> int | None:
    """Where `subject` stands as the statement's subject: its start, or right after framing
    that ends in a comma ("For security incidents, the incident commander is ...")."""
    low, sub = text.lower(), subject.lower().strip()
    if not sub:
        return None
    if low.startswith(sub + " "):
        return 0
    at = low.find(", " + sub + " ")
    if at > 0 and "," not in low[:at]:
        return at + 2
    return None


# -- the generator ----------------------------------------------------------------------------


Progress = Callable[[int, int, str], None]


def generate_evalset(
    sentences: Sequence[SourceSentence],
    *,
    categories: Sequence[str] = CATEGORIES,
    max_items: int = 50,
    hold_out: float = 0.0,
    seed: int = 0,
    choices: int = DEFAULT_CHOICES,
    progress: Progress | None = None,
) -> Generation:
    """Up to `max_items` items in `categories` (balanced, deterministic for a seed), each with
    `choices` options or fewer (at least two) where the collection has fewer of the kind; and
    the held-out sentences (a `hold_out` share of the sentences the items rest on)."""
    from service.augment.structure import collection_names, parse

    unknown = sorted(set(categories) - set(CATEGORIES))
    if unknown:
        raise ValueError(f"unknown categories {unknown}; expected some of {list(CATEGORIES)}")
    if not 0.0 <= hold_out < 1.0:
        raise ValueError("hold_out must be at least 0 and below 1")
    if choices < 2:
        raise ValueError("choices must be at least 2")
    report = progress or (lambda done, total, message: None)
    total = len(sentences) + 2
    names = collection_names(s.text for s in sentences)
    stats: dict[str, Any] = {"sentences": len(sentences), "dropped": {}}

    frames: list[_Frame] = []
    collection = _Collection(names=names)
    collection.document_sentences = {_normalize(s.text) for s in sentences}
    for s in sentences:
        cleaned = clean_sentence(s.text)
        if cleaned:
            collection.document_sentences.add(_normalize(cleaned))
    for s in sentences:
        for line in s.text.splitlines():
            for word in line.split()[1:]:
                word = word.strip("\"'()[],.;:!?")
                if word[:1].islower():
                    collection.lowercase_words.add(word.lower())
    for n, s in enumerate(sentences):
        if n % 25 == 0:
            report(n, total, "reading the sentences")
        for base, made in _readings(s, names):
            collection.statements.append(base)
            for r in made:
                collection.statements.append(r.text)
                if r.kind == "identity":
                    described = [p for p in (r.subject, r.object) if p.lower().startswith("the ")]
                    named = [p for p in (r.subject, r.object) if p not in described]
                    if len(described) == 1 and len(named) == 1:
                        collection.descriptions.append((described[0], named[0]))
                frames.append(
                    _Frame(r.text, r.subject, "forward", f"forward:{r.kind}", (s.key,), r.object)
                )
                frames.append(
                    _Frame(base, r.object, "reversed", f"reversed:{r.kind}", (s.key,), r.subject)
                )
    report(len(sentences), total, "joining facts across documents")
    # Every inference is a statement the collection supports (so no wrong answer may make
    # one); those joining two documents make the cross-document items.
    cross = []
    for inference in _cross_inferences(sentences, names):
        collection.statements.append(inference.text)
        first, second = inference.premises
        if first.document_id != second.document_id:
            cross.append(inference)
    # Voice rewrites of the inferences: known statements, and the frames of inheritance items.
    from service.augment.structure import rewrites

    cross_frames: list[_Frame] = []
    quantified: list[tuple[Any, str]] = []
    for inference in cross:
        first, second = inference.premises
        sources = (first.unit_id, second.unit_id)
        rule = f"cross:{inference.rule}"
        made, _ = rewrites(inference.text, "", names)
        collection.statements.extend(r.text for r in made if r.kind in _VOICE_KINDS)
        if inference.rule == "syllogism":
            quantified.append((inference, rule))
        elif inference.rule == "chain":
            subject = next(
                (p.subject for p in (first, second) if _subject_at(inference.text, p.subject) == 0),
                None,
            )
            if subject:
                cross_frames.append(
                    _Frame(inference.text, subject, "cross-document", rule, sources)
                )
        elif inference.rule == "inheritance" and " not " not in f" {inference.text} ":
            # never the member: every member of the class shares what is inherited
            for r in made:
                if r.kind in {"active", "passive"} and _key(r.subject) != _key(first.subject):
                    cross_frames.append(_Frame(r.text, r.subject, "cross-document", rule, sources))
    frames.extend(cross_frames)

    report(len(sentences) + 1, total, "choosing answers")
    docs = parse(collection.statements)
    collection.lemma_texts = [" ".join(t.lemma_.lower() for t in d) for d in docs]
    collection.lowered = [t.lower() for t in collection.statements]
    collection.known = {_normalize(t) for t in collection.statements}
    _learn_phrases(collection, docs)

    frame_docs = parse(f.text for f in frames)
    candidates: dict[str, list[GeneratedItem]] = {c: [] for c in CATEGORIES}
    seen_questions: set[str] = set()
    dropped: dict[str, int] = {}
    rng = random.Random(seed)
    for frame, doc in zip(frames, frame_docs, strict=True):
        made = _item(frame, doc, collection, choices, rng)
        if isinstance(made, str):
            dropped[made] = dropped.get(made, 0) + 1
            continue
        if made.item.question in seen_questions:
            dropped["same_question"] = dropped.get("same_question", 0) + 1
            continue
        seen_questions.add(made.item.question)
        candidates[frame.category].append(made)
    for inference, rule in quantified:
        made = _quantifier_item(inference, rule, collection)
        if isinstance(made, str):
            dropped[made] = dropped.get(made, 0) + 1
        else:
            candidates["cross-document"].append(made)

    chosen = _select(candidates, categories, max_items, rng)
    held = _hold_out(chosen, sentences, hold_out, rng)
    held_keys = {s.key for s in held}
    items = []
    for g in chosen:
        if held_keys & set(g.sources):
            item = g.item.model_copy(update={"category": f"{g.base_category}/{HELD_OUT}"})
            g = replace(g, item=item, held_out=True)
        items.append(g)
    stats["candidates"] = {c: len(v) for c, v in candidates.items()}
    stats["items"] = {c: sum(1 for g in items if g.base_category == c) for c in CATEGORIES}
    stats["held_out_items"] = sum(1 for g in items if g.held_out)
    stats["held_out_sentences"] = len(held)
    stats["dropped"] = dict(sorted(dropped.items()))
    report(total, total, "done")
    return Generation(items=items, held_out=held, stats=stats)


def _learn_phrases(collection: _Collection, docs: Sequence) -> None:  # type: ignore[type-arg]
    """Persons, names, groups and descriptions of the collection; which verbs each goes with;
    the classes its "all/every" statements speak of."""
    alone: set[str] = set()
    for doc in docs:
        for run in _propn_runs(doc, collection):
            key = " ".join(t.text for t in run).lower()
            if run[0].i > 0:
                collection.inside.add(key)
            if run[-1].dep_ == "compound" and run[-1].head.pos_ == "NOUN":
                collection.modifiers.add(key)
            elif run[0].i > 0:  # a heading "People" is no use of the name on its own
                alone.add(key)
            if run[-1].dep_ in _PARTICIPANT_DEPS or (
                run[-1].dep_ == "pobj" and run[-1].head.dep_ == "agent"
            ):
                collection.participants.add(key)
    collection.only_modifier = collection.modifiers - alone
    # A person: a person-shaped name the tagger calls a person somewhere, or one written inside
    # a sentence without "the" (the tagger calls "Helena Marques" an organization; a glued
    # heading, "Talentbridge Contractors are ...", only ever opens a sentence).
    labelled = {_key(e.text) for doc in docs for e in doc.ents if e.label_ == "PERSON"}
    for doc in docs:
        for run in _propn_runs(doc, collection):
            key = _key(" ".join(t.text for t in run))
            after_the = run[0].i > 0 and doc[run[0].i - 1].lower_ == "the"
            if not _person_shaped(run, collection) or after_the:
                continue
            if key in labelled or run[0].i > 0:
                collection.persons.add(key)
    for doc in docs:
        root = next((t for t in doc if t.dep_ == "ROOT"), None)
        spans = [list(c) for c in doc.noun_chunks] + _propn_runs(doc, collection)
        for tokens in spans:
            phrase = _classify(tokens, collection)
            if phrase is None:
                continue
            seen = collection.phrases.get(phrase.key)
            if seen is None or (seen.kind == phrase.kind and phrase.text.startswith("the ")):
                collection.phrases[phrase.key] = phrase
            if root is not None:
                collection.verbs.setdefault(root.lemma_.lower(), set()).add(phrase.key)
        if root is None:
            continue
        subj = next((c for c in root.children if c.dep_ in {"nsubj", "nsubjpass"}), None)
        if subj is None:
            continue
        subject = sorted(subj.subtree, key=lambda t: t.i)
        first = subject[0].lower_
        if first in {"all", "every", "each", "any", "no"} and len(subject) > 1:
            words = [t.lemma_.lower() for t in subject[1:] if t.dep_ not in {"det", "predet"}]
            collection.classes.append((" ".join(words), " ".join(t.text for t in doc).lower()))
        attr = next((c for c in root.children if c.dep_ == "attr"), None)
        named = all(collection.proper(t) for t in subject)
        if root.lemma_ == "be" and attr is not None and named and attr.lemma_ not in _NOT_A_CLASS:
            # "Tidemark is the dashboard ...", "Harbor is an internal tool ...": its class
            collection.types.setdefault(_key(" ".join(t.text for t in subject)), attr.lemma_)
    for description, name in collection.descriptions:
        side = "person" if _key(name) in collection.persons else "thing"
        phrase = _Phrase(description[:1].lower() + description[1:], f"description:{side}")
        collection.phrases.setdefault(phrase.key, phrase)
    for key, phrase in collection.phrases.items():
        if phrase.kind.startswith("group:") and phrase.kind[6:] in _GROUP_HEADS:
            name = key.rsplit(" ", 1)[0]
            collection.types.setdefault(name, "team")


def _propn_runs(doc, collection: _Collection) -> list[list]:  # type: ignore[no-untyped-def,type-arg]
    """Runs of adjacent proper nouns ("Priya Nandakumar", "IT Helpdesk")."""
    runs: list[list] = []  # type: ignore[type-arg]
    for t in doc:
        if collection.proper(t):
            if runs and runs[-1][-1].i == t.i - 1:
                runs[-1].append(t)
            else:
                runs.append([t])
    return runs


def _span_tokens(doc, start: int, end: int) -> list:  # type: ignore[no-untyped-def,type-arg]
    return [t for t in doc if t.idx >= start and t.idx + len(t.text) <= end]


def _answer_phrase(frame: _Frame, doc, start: int, collection: _Collection) -> _Phrase | str:  # type: ignore[no-untyped-def]
    end = start + len(frame.subject)
    tokens = _span_tokens(doc, start, end)
    if not tokens or "".join(t.text_with_ws for t in tokens).strip() != frame.text[start:end]:
        return "answer_not_a_phrase"
    phrase = _classify(tokens, collection)
    described = tokens[0].lower_ == "the" and len(tokens) <= _MAX_DESCRIPTION_WORDS
    if phrase is None and frame.rule.endswith(":identity") and frame.other and described:
        # "Tidemark is the dashboard ..." asked as "What is Tidemark?": the description
        side = "person" if _key(frame.other) in collection.persons else "thing"
        return _Phrase(_mid_sentence(tokens), f"description:{side}")
    return "answer_not_a_name" if phrase is None else phrase


def _wh(phrase: _Phrase) -> str:
    if phrase.kind == "person" or phrase.kind == "description:person":
        return "who"
    if phrase.kind.startswith("group:"):
        head = phrase.kind[6:]
        return "which team" if head in _GROUP_HEADS else f"which {head}"
    return "what"


def _specific(doc, start: int, end: int, collection: _Collection) -> bool:  # type: ignore[no-untyped-def]
    """Whether what the question says besides its answer names something the reader can find
    without the document at hand: a proper name, or a phrase of two words or more ("the
    payroll system"); never a pronoun, a "this" or a bare "the request" that points into the
    text (a possessive "its" after a name of the question may stay: it points to that name)."""
    outside = [t for t in doc if not (start <= t.idx < end)]
    for t in outside:
        if t.dep_ == "poss" and t.pos_ == "PRON":
            pointing = not any(collection.proper(x) for x in outside if x.i < t.i)
        else:
            pointing = (t.pos_ == "PRON" and t.lower_ not in {"that", "which", "who", "whom"}) or (
                t.lower_ in _DEMONSTRATIVES and t.dep_ == "det"
            )
        if pointing:
            return False
    for chunk in doc.noun_chunks:
        root = chunk.root
        if chunk.start_char >= start and chunk.end_char <= end or root.pos_ != "NOUN":
            continue
        if [t.lower_ for t in chunk] == ["the", root.lower_] and not any(
            c.dep_ in {"prep", "relcl", "acl", "amod", "compound"} for c in root.children
        ):
            return False  # "the request", "the cache": which one, outside its document?
    if any(collection.proper(t) for t in outside):
        return True
    for chunk in doc.noun_chunks:
        if chunk.start_char >= start and chunk.end_char <= end:
            continue
        words = [t for t in chunk.root.subtree if t.dep_ not in {"det", "predet", "punct"}]
        if len(words) >= 2:
            return True  # "the payroll system", "the tool for expenses"
    return False


def _givens(doc, start: int, end: int, collection: _Collection) -> list[str]:  # type: ignore[no-untyped-def]
    """Keys of the named things the question speaks of besides its answer."""
    out = []
    for run in _propn_runs(doc, collection):
        if start <= run[0].idx < end:
            continue
        out.append(" ".join(t.text for t in run).lower())
    for chunk in doc.noun_chunks:
        if chunk.start_char >= start and chunk.end_char <= end:
            continue
        words = [t for t in chunk if t.dep_ not in {"det", "predet"}]
        if len(words) >= 2 and not any(collection.proper(t) for t in words):
            out.append(" ".join(t.text for t in words).lower())
    return list(dict.fromkeys(out))


def _item(
    frame: _Frame, doc, collection: _Collection, choices: int, rng: random.Random
) -> GeneratedItem | str:  # type: ignore[no-untyped-def]
    """The item asking for `frame`'s subject, or why there is none."""
    start = _subject_at(frame.text, frame.subject)
    if start is None:
        return "subject_not_found"
    end = start + len(frame.subject)
    answer = _answer_phrase(frame, doc, start, collection)
    if isinstance(answer, str):
        return answer
    if not _specific(doc, start, end, collection):
        return "question_not_specific"
    if any(t.dep_ == "neg" or t.lower_ in _NEGATIONS for t in doc):
        return "negated"  # "Who does not approve X?": most of the collection does not
    if any(t.lower_ in _PERMISSIONS and t.tag_ == "MD" for t in doc):
        return "permission"  # "Who may book X?": who else may is rarely written down
    before, after = frame.text[:start], frame.text[end:]
    after = after.rstrip().rstrip(".!")
    wh = _wh(answer)
    question = (before + (wh if start else _capital(wh)) + after).strip() + "?"
    if answer.key in _key(question):
        return "answer_in_question"

    def statement(text: str) -> str:
        head = text if start else _capital(text)
        return (before + head + frame.text[end:]).strip()

    if _normalize(f"{question} {answer.text}") in collection.document_sentences:
        return "verbatim"
    if frame.category != "reversed" and _normalize(statement(answer.text)) in (
        collection.document_sentences
    ):
        return "verbatim"
    givens = _givens(doc, start, end, collection)
    root = next((t for t in doc if t.dep_ == "ROOT"), None)
    verb = root.lemma_.lower() if root is not None else ""
    wrong = _distractors(answer, statement, givens, verb, question, collection, choices, rng)
    if not wrong:
        return "no_wrong_answer"
    options = [answer.text, *wrong]
    rng.shuffle(options)
    texts = [_choice(o) for o in options]
    fields = {"question": question, "answer": _choice(answer.text), "choices": texts}
    item = EvalItem(id=generated_id(fields), category=frame.category, **fields)
    return GeneratedItem(
        item=item,
        statements=tuple(statement(o) for o in options),
        sources=frame.sources,
        rule=frame.rule,
    )


def _distractors(
    answer: _Phrase,
    statement: Callable[[str], str],
    givens: Sequence[str],
    verb: str,
    question: str,
    collection: _Collection,
    choices: int,
    rng: random.Random,
) -> list[str]:
    """Up to `choices - 1` wrong answers of the answer's kind (see the module docstring),
    those that go with the same verb elsewhere first (hard ones, as in the paper)."""
    answer_words = set(answer.key.split())
    question_key = _key(question)
    pool = []
    for key, phrase in collection.phrases.items():
        if phrase.kind != answer.kind or _contains(key, answer.key) or _contains(answer.key, key):
            continue  # the same thing, or one named in the other ("Finance", "the Finance team")
        if collection.types.get(key) == "team" and not phrase.text.startswith("the "):
            continue  # "Finance" for "the Finance team": one way of naming each team
        if answer.kind in {"person", "name"} and answer_words & set(key.split()):
            continue  # "Priya" for "Priya Nandakumar": perhaps the same one
        if key in question_key or _normalize(statement(phrase.text)) in collection.known:
            continue
        if _written_together(key, givens, collection) or _bridged(key, givens, collection):
            continue
        pool.append(phrase)
    answer_type = collection.types.get(answer.key)
    hard = collection.verbs.get(verb, set())

    def tier(p: _Phrase) -> int:
        # the same verb elsewhere, then a name that takes part in something (not one only
        # mentioned, "available for Android"), then one of the answer's class (or any class)
        kind = collection.types.get(p.key)
        same = kind is not None and (answer_type is None or kind == answer_type)
        mentioned = p.kind == "name" and p.key not in collection.participants
        return (0 if p.key in hard else 4) + (2 if mentioned else 0) + (0 if same else 1)

    pool.sort(key=lambda p: p.key)
    rng.shuffle(pool)
    pool.sort(key=tier)
    return [p.text for p in pool[: choices - 1]]


def _contains(text: str, part: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(part)}(?![\w-])", text) is not None


def _written_together(key: str, givens: Sequence[str], collection: _Collection) -> bool:
    """Whether a statement of the collection names `key` together with something the question
    names: it may say how the two relate, so the wrong answer may not be wrong."""
    return any(any(g in collection.lowered[i] for g in givens) for i in collection.mentions_of(key))


def _bridged(key: str, givens: Sequence[str], collection: _Collection) -> bool:
    """Whether `key` is written with a class that an "all/every" statement relates to what the
    question names ("Sofia Almeida, the office manager" + "Every office manager reports to Rui
    Costa": Sofia Almeida may be a right answer to "Who reports to Rui Costa?")."""
    mentions = [collection.lemma_texts[i] for i in collection.mentions_of(key)]
    for class_words, class_text in collection.classes:
        if not any(g in class_text for g in givens):
            continue
        if any(class_words and class_words in lemmas for lemmas in mentions):
            return True
    return False


def _quantifier_item(inference, rule: str, collection: _Collection) -> GeneratedItem | str:  # type: ignore[no-untyped-def]
    """ "No contractors may access the payroll system." against "All ..." and "Some ...": the
    quantifiers the conclusion rules out (never "some" against "all", which "all" implies)."""
    words = inference.text.split(" ", 1)
    if len(words) != 2 or words[0].lower() not in _QUANTIFIERS:
        return "quantifier_not_read"
    quantifier, rest = words[0].lower(), words[1]
    wrong = {"all": ["no"], "no": ["all", "some"], "some": ["no"]}[quantifier]
    options = [inference.text, *(f"{_capital(q)} {rest}" for q in wrong)]
    if any(_normalize(o) in collection.known for o in options[1:]):
        return "wrong_quantifier_is_stated"
    if _normalize(inference.text) in collection.document_sentences:
        return "verbatim"
    subject = inference.premises[0].subject
    question = f"Which is true of {subject}?"
    rng = random.Random(inference.text)
    rng.shuffle(options)
    fields = {"question": question, "answer": inference.text, "choices": options}
    item = EvalItem(id=generated_id(fields), category="cross-document", **fields)
    first, second = inference.premises
    return GeneratedItem(
        item=item,
        statements=tuple(options),
        sources=(first.unit_id, second.unit_id),
        rule=rule,
    )


def _select(
    candidates: dict[str, list[GeneratedItem]],
    categories: Iterable[str],
    max_items: int,
    rng: random.Random,
) -> list[GeneratedItem]:
    """Up to `max_items`, taken in turn from each category (seeded order within one)."""
    queues = []
    for category in CATEGORIES:
        if category not in categories:
            continue
        queue = sorted(candidates[category], key=lambda g: g.item.id)
        rng.shuffle(queue)
        queues.append(queue)
    out: list[GeneratedItem] = []
    while len(out) < max_items and any(queues):
        for queue in queues:
            if queue and len(out) < max_items:
                out.append(queue.pop(0))
    return out


def _hold_out(
    items: Sequence[GeneratedItem],
    sentences: Sequence[SourceSentence],
    share: float,
    rng: random.Random,
) -> list[SourceSentence]:
    """A `share` of the sentences the items rest on (at least one when `share` > 0)."""
    if share <= 0 or not items:
        return []
    keys = sorted({k for g in items for k in g.sources})
    count = max(1, round(share * len(keys)))
    held = set(rng.sample(keys, min(count, len(keys))))
    return [s for s in sentences if s.key in held]
