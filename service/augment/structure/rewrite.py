"""A statement composed from a sentence, and the small pieces every rewrite composes with."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from service.augment.structure.clause import Clause
from service.augment.structure.phrases import _capital


@dataclass(frozen=True)
class Rewrite:
    """One statement composed from a sentence, with how it was made."""

    text: str
    # passive | active | identity | membership | inclusion | relative | resolved | manager | split
    kind: str
    subject: str  # the composed statement's subject and object phrases, where it has them
    object: str


def _front(clause: Clause) -> str:
    return clause.front + "," if clause.front else ""


def _be(plural: bool, tense: str) -> str:
    if tense == "past":
        return "were" if plural else "was"
    return "are" if plural else "is"


def _moved(text: str, tokens: Sequence, framed: bool) -> str:  # type: ignore[type-arg]
    """A phrase moved to the front of its clause: capitalized at the sentence start, and a
    comma-led clause inside it closed with a comma before the verb."""
    if any(t.text == "," for t in tokens):
        text += ","
    return text if framed else _capital(text)
