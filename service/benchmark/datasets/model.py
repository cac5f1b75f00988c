"""The common data model of the benchmark datasets: plain dataclasses that round-trip to JSON."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

InferenceKind = Literal["rephrasing", "reversal", "syllogism"]


@dataclass
class BenchDocument:
    """One training document: ``text`` is the whole file content (its first line is the title
    for article-like formats)."""

    id: str
    title: str
    text: str


@dataclass
class TestItem:
    """A multiple-choice item scored by log-likelihood.

    ``question`` is the prompt prefix (never empty: the eval-set format refuses it), each choice a
    full statement that continues it, ``answer`` one of the choices. ``category`` is
    "<dataset>/<split>". ``needed_inferences`` are the statements a model must have inferred
    (not read) to answer; ``premises`` the training statements they follow from, each of which
    appears in some training document.
    """

    __test__ = False  # not a pytest test class, despite its name

    id: str
    split: str
    category: str
    question: str
    choices: list[str]
    answer: str
    needed_inferences: list[str]
    premises: list[str]

    def evalset_record(self) -> dict[str, Any]:
        """The item as one line of the service's eval-set JSONL."""
        return {
            "id": self.id,
            "question": self.question,
            "answer": self.answer,
            "choices": list(self.choices),
            "category": self.category,
        }


@dataclass
class Inference:
    """A statement that follows from the training documents (the oracle's augmentation data)."""

    statement: str
    kind: InferenceKind
    source_doc_ids: list[str]


@dataclass
class BenchmarkDataset:
    """One generated dataset. ``world`` is the generator's structured knowledge (entities, facts,
    hierarchy), from which the truth matcher decides what is true or false; its layout belongs to
    the generator named by ``name``. ``contradictions`` are examples of statements the generator
    knows to be false (the teacher's typical mistakes: names swapped, relation not flipped)."""

    name: str
    size: str
    seed: int
    documents: list[BenchDocument]
    test_items: list[TestItem]
    true_inferences: list[Inference]
    contradictions: list[str] = field(default_factory=list)
    world: dict[str, Any] = field(default_factory=dict)

    def to_evalset_jsonl(self) -> str:
        """The test items as the service's eval-set JSONL, one item per line."""
        return "".join(
            json.dumps(item.evalset_record(), ensure_ascii=False) + "\n" for item in self.test_items
        )

    def documents_as_files(self) -> list[tuple[str, str]]:
        """(filename, text) pairs, one plain-text file per document, for upload."""
        return [(f"{doc.id}.txt", doc.text) for doc in self.documents]

    def splits(self) -> dict[str, int]:
        """Number of test items per split, in first-seen order."""
        counts: dict[str, int] = {}
        for item in self.test_items:
            counts[item.split] = counts.get(item.split, 0) + 1
        return counts

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self, indent: int | None = None) -> str:
        """Deterministic JSON (sorted keys): equal datasets give equal strings."""
        return json.dumps(self.to_dict(), ensure_ascii=False, sort_keys=True, indent=indent)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BenchmarkDataset:
        return cls(
            name=data["name"],
            size=data["size"],
            seed=data["seed"],
            documents=[BenchDocument(**d) for d in data["documents"]],
            test_items=[TestItem(**t) for t in data["test_items"]],
            true_inferences=[Inference(**i) for i in data["true_inferences"]],
            contradictions=list(data.get("contradictions", [])),
            world=dict(data.get("world", {})),
        )

    @classmethod
    def from_json(cls, text: str) -> BenchmarkDataset:
        return cls.from_dict(json.loads(text))
