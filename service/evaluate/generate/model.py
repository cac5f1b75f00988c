"""What the eval-set generator reads and writes: the collection's sentences, the items it makes
(with the statements behind their choices) and a generation's result."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from service.evaluate.evalset import EvalItem

CATEGORIES = ("forward", "reversed", "cross-document")
HELD_OUT = "held-out"
DEFAULT_CHOICES = 4


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
