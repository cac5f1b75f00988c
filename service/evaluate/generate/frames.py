"""Reading the collection: the statements an item may ask the subject of (frames), from each
sentence's own readings and from inferences that join two documents."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from service.evaluate.generate.model import SourceSentence
from service.evaluate.generate.phrases import Collection, normalized, phrase_key

VOICE_KINDS = frozenset({"passive", "active", "identity", "manager", "inclusion"})


@dataclass(frozen=True)
class Frame:
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


def readings(sentence: SourceSentence, names: frozenset[str]) -> list[tuple[str, list]]:  # type: ignore[type-arg]
    """(statement, its voice and identity rewrites) for each statement of a sentence: the
    sentence itself (its opening pronoun resolved), or each half of a two-verb sentence."""
    from service.augment.structure import rewrites

    made, _ = rewrites(sentence.text, sentence.previous, names)
    splits = [r for r in made if r.kind == "split"]
    if splits:
        out = []
        for part in splits:
            again, _ = rewrites(part.text, "", names)
            out.append((part.text, [r for r in again if r.kind in VOICE_KINDS]))
        return out
    resolved = next((r for r in made if r.kind == "resolved"), None)
    base = resolved.text if resolved is not None else clean_sentence(sentence.text)
    if base is None:
        return []
    return [(base, [r for r in made if r.kind in VOICE_KINDS])]


def cross_inferences(sentences: Sequence[SourceSentence], names: frozenset[str]) -> list:  # type: ignore[type-arg]
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


def subject_at(text: str, subject: str) -> int | None:
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


@dataclass
class Reading:
    """What reading the collection gives: what it says, the frames items may ask about and the
    syllogisms that make quantifier items."""

    collection: Collection
    frames: list[Frame]
    quantified: list[tuple[Any, str]]


def read_collection(
    sentences: Sequence[SourceSentence], report: Callable[[int, int, str], None], total: int
) -> Reading:
    """The frames of every sentence, then those of the inferences joining two documents."""
    from service.augment.structure import collection_names

    names = collection_names(s.text for s in sentences)
    collection = _words_of(sentences, names)
    frames = _sentence_frames(sentences, collection, report, total)
    report(len(sentences), total, "joining facts across documents")
    cross_frames, quantified = _cross_frames(sentences, collection)
    frames.extend(cross_frames)
    return Reading(collection, frames, quantified)


def _words_of(sentences: Sequence[SourceSentence], names: frozenset[str]) -> Collection:
    """A collection that knows its sentences as written and the words it writes in lower case."""
    collection = Collection(names=names)
    collection.document_sentences = {normalized(s.text) for s in sentences}
    for s in sentences:
        cleaned = clean_sentence(s.text)
        if cleaned:
            collection.document_sentences.add(normalized(cleaned))
    for s in sentences:
        for line in s.text.splitlines():
            for word in line.split()[1:]:
                word = word.strip("\"'()[],.;:!?")
                if word[:1].islower():
                    collection.lowercase_words.add(word.lower())
    return collection


def _sentence_frames(
    sentences: Sequence[SourceSentence],
    collection: Collection,
    report: Callable[[int, int, str], None],
    total: int,
) -> list[Frame]:
    """Each statement's voice and identity rewrites, asked forward and reversed (the
    statements and descriptions are added to `collection`)."""
    frames: list[Frame] = []
    for n, s in enumerate(sentences):
        if n % 25 == 0:
            report(n, total, "reading the sentences")
        for base, made in readings(s, collection.names):
            collection.statements.append(base)
            for r in made:
                collection.statements.append(r.text)
                if r.kind == "identity":
                    described = [p for p in (r.subject, r.object) if p.lower().startswith("the ")]
                    named = [p for p in (r.subject, r.object) if p not in described]
                    if len(described) == 1 and len(named) == 1:
                        collection.descriptions.append((described[0], named[0]))
                frames.append(
                    Frame(r.text, r.subject, "forward", f"forward:{r.kind}", (s.key,), r.object)
                )
                frames.append(
                    Frame(base, r.object, "reversed", f"reversed:{r.kind}", (s.key,), r.subject)
                )
    return frames


def _cross_frames(
    sentences: Sequence[SourceSentence], collection: Collection
) -> tuple[list[Frame], list[tuple[Any, str]]]:
    """The frames of chain and inheritance inferences across documents, and the syllogisms."""
    from service.augment.structure import rewrites

    names = collection.names
    # Every inference is a statement the collection supports (so no wrong answer may make
    # one); those joining two documents make the cross-document items.
    cross = []
    for inference in cross_inferences(sentences, names):
        collection.statements.append(inference.text)
        first, second = inference.premises
        if first.document_id != second.document_id:
            cross.append(inference)
    # Voice rewrites of the inferences: known statements, and the frames of inheritance items.
    frames: list[Frame] = []
    quantified: list[tuple[Any, str]] = []
    for inference in cross:
        first, second = inference.premises
        sources = (first.unit_id, second.unit_id)
        rule = f"cross:{inference.rule}"
        made, _ = rewrites(inference.text, "", names)
        collection.statements.extend(r.text for r in made if r.kind in VOICE_KINDS)
        if inference.rule == "syllogism":
            quantified.append((inference, rule))
        elif inference.rule == "chain":
            subject = next(
                (p.subject for p in (first, second) if subject_at(inference.text, p.subject) == 0),
                None,
            )
            if subject:
                frames.append(Frame(inference.text, subject, "cross-document", rule, sources))
        elif inference.rule == "inheritance" and " not " not in f" {inference.text} ":
            # never the member: every member of the class shares what is inherited
            for r in made:
                if r.kind in {"active", "passive"} and phrase_key(r.subject) != phrase_key(
                    first.subject
                ):
                    frames.append(Frame(r.text, r.subject, "cross-document", rule, sources))
    return frames, quantified
