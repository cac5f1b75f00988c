"""The phrases a collection names (persons, names, named groups, descriptions) and what the
whole collection says about them, for questions that name something and wrong answers that stay
wrong."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

DEMONSTRATIVES = frozenset({"this", "these", "that", "those"})
_MAX_NAME_WORDS = 6
GROUP_HEADS = frozenset({"team", "department", "committee", "unit", "squad", "group"})
_PARTICIPANT_DEPS = frozenset({"nsubj", "nsubjpass", "dobj", "attr"})
_NOT_A_CLASS = frozenset({"part", "member", "type", "kind", "one", "example"})


@dataclass(frozen=True)
class Phrase:
    text: str  # as written inside a sentence ("the Platform team")
    kind: str  # person | name | group:<head> | description:<person|thing>

    @property
    def key(self) -> str:
        return phrase_key(self.text)


def phrase_key(text: str) -> str:
    words = text.lower().replace("\u2019", "'").split()
    while words and words[0] in {"the", "a", "an"}:
        words = words[1:]
    return " ".join(words).strip(" .,")


def capitalized(text: str) -> str:
    return text[:1].upper() + text[1:]


def as_choice(text: str) -> str:
    return capitalized(text.strip().rstrip(".")) + "."


def mid_sentence(tokens: Sequence) -> str:  # type: ignore[type-arg]
    """A phrase's text as it reads inside a sentence: a determiner that opened the sentence
    lower-cased ("The Platform team" -> "the Platform team")."""
    text = "".join(t.text_with_ws for t in tokens).strip()
    first = tokens[0]
    if first.i == 0 and first.dep_ in {"det", "predet"}:
        text = text[:1].lower() + text[1:]
    return text


@dataclass
class Collection:
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
    phrases: dict[str, Phrase] = field(default_factory=dict)
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


def normalized(text: str) -> str:
    text = " ".join(text.replace("\u2019", "'").lower().split())
    return re.sub(r"[\s.!?;:,]+$", "", text)


def _person_shaped(tokens: Sequence, collection: Collection) -> bool:  # type: ignore[type-arg]
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


def classify(tokens: Sequence, collection: Collection) -> Phrase | None:  # type: ignore[type-arg]
    """The phrase's kind, or None when it is not a name, a person or a named group."""
    if not tokens:
        return None
    if any(t.is_punct or t.dep_ in {"cc", "conj", "poss", "case"} for t in tokens):
        return None
    if any(t.pos_ == "PRON" or t.lower_ in DEMONSTRATIVES for t in tokens):
        return None
    body = list(tokens)
    det = body[0].lower_ if body[0].dep_ in {"det", "predet"} else ""
    if det:
        body = body[1:]
    if not body or len(body) > _MAX_NAME_WORDS or det not in {"", "the"}:
        return None
    text = mid_sentence(tokens)
    head = body[-1]
    if all(collection.proper(t) for t in body):
        key = phrase_key(text)
        if not det and key in collection.persons:
            return Phrase(text, "person")
        if collection.types.get(key) == "team":
            return Phrase(text, "group:team")  # "Finance approves ...": the Finance team
        if _name_like(body, collection):
            return Phrase(text, "name")
        return None
    named = det == "the" and any(collection.proper(t) for t in body[:-1])
    if named and head.pos_ == "NOUN" and all(t.pos_ in {"PROPN", "NOUN", "ADJ"} for t in body):
        # "the Platform team", "the Rotterdam data centre": a named thing of a kind
        kind = [head.lemma_.lower()]
        for t in reversed(body[:-1]):
            if t.pos_ != "NOUN" or collection.proper(t):
                break
            kind.insert(0, t.lower_)  # "data centre", not "centre"
        return Phrase(text, f"group:{' '.join(kind)}")
    return None


def _name_like(tokens: Sequence, collection: Collection) -> bool:  # type: ignore[type-arg]
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


def learn_phrases(collection: Collection, docs: Sequence) -> None:  # type: ignore[type-arg]
    """Persons, names, groups and descriptions of the collection; which verbs each goes with;
    the classes its "all/every" statements speak of."""
    alone: set[str] = set()
    for doc in docs:
        for run in propn_runs(doc, collection):
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
    labelled = {phrase_key(e.text) for doc in docs for e in doc.ents if e.label_ == "PERSON"}
    for doc in docs:
        for run in propn_runs(doc, collection):
            key = phrase_key(" ".join(t.text for t in run))
            after_the = run[0].i > 0 and doc[run[0].i - 1].lower_ == "the"
            if not _person_shaped(run, collection) or after_the:
                continue
            if key in labelled or run[0].i > 0:
                collection.persons.add(key)
    for doc in docs:
        root = next((t for t in doc if t.dep_ == "ROOT"), None)
        spans = [list(c) for c in doc.noun_chunks] + propn_runs(doc, collection)
        for tokens in spans:
            phrase = classify(tokens, collection)
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
            collection.types.setdefault(phrase_key(" ".join(t.text for t in subject)), attr.lemma_)
    for description, name in collection.descriptions:
        side = "person" if phrase_key(name) in collection.persons else "thing"
        phrase = Phrase(description[:1].lower() + description[1:], f"description:{side}")
        collection.phrases.setdefault(phrase.key, phrase)
    for key, phrase in collection.phrases.items():
        if phrase.kind.startswith("group:") and phrase.kind[6:] in GROUP_HEADS:
            name = key.rsplit(" ", 1)[0]
            collection.types.setdefault(name, "team")


def propn_runs(doc, collection: Collection) -> list[list]:  # type: ignore[no-untyped-def,type-arg]
    """Runs of adjacent proper nouns ("Priya Nandakumar", "IT Helpdesk")."""
    runs: list[list] = []  # type: ignore[type-arg]
    for t in doc:
        if collection.proper(t):
            if runs and runs[-1][-1].i == t.i - 1:
                runs[-1].append(t)
            else:
                runs.append([t])
    return runs


def span_tokens(doc, start: int, end: int) -> list:  # type: ignore[no-untyped-def,type-arg]
    return [t for t in doc if t.idx >= start and t.idx + len(t.text) <= end]


def learn_statements(collection: Collection) -> None:
    """Index what the collection says (lemmas, lower case, normalized) and learn its phrases."""
    from service.augment.structure import parse

    docs = parse(collection.statements)
    collection.lemma_texts = [" ".join(t.lemma_.lower() for t in d) for d in docs]
    collection.lowered = [t.lower() for t in collection.statements]
    collection.known = {normalized(t) for t in collection.statements}
    learn_phrases(collection, docs)
