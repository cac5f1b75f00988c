"""Controlled generalization datasets after Lampinen et al. (2025): simple reversals,
syllogisms and a semantic hierarchy, all in nonsense words, deterministic for a seed.

    from service.benchmark.datasets import generate, generate_suite
    suite = generate_suite("small", seed=0)          # one dataset per name, disjoint words
    for ds in suite:
        ds.documents_as_files()                      # [(filename, text)] to upload
        ds.to_evalset_jsonl()                        # the eval set, category "<name>/<split>"
        ds.true_inferences                           # the oracle's augmentation statements

Sizes: "tiny" (tests), "small" (a 2-core CPU end to end), "medium" and "large" (GPU hosts).
"""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

from service.benchmark.datasets import semantic, simple_reversals, syllogisms
from service.benchmark.datasets.model import (
    BenchDocument,
    BenchmarkDataset,
    Inference,
    InferenceKind,
    TestItem,
)
from service.benchmark.datasets.statements import Knowledge
from service.benchmark.datasets.words import nonsense_words

__all__ = [
    "DATASET_NAMES",
    "SIZES",
    "BenchDocument",
    "BenchmarkDataset",
    "Inference",
    "InferenceKind",
    "Knowledge",
    "TestItem",
    "generate",
    "generate_suite",
    "knowledge",
    "write_dataset",
]

_MODULES: dict[str, ModuleType] = {
    simple_reversals.NAME: simple_reversals,
    syllogisms.NAME: syllogisms,
    semantic.NAME: semantic,
}
DATASET_NAMES: tuple[str, ...] = tuple(_MODULES)
SIZES: tuple[str, ...] = ("tiny", "small", "medium", "large")


def _module(name: str) -> ModuleType:
    try:
        return _MODULES[name]
    except KeyError:
        raise ValueError(f"unknown dataset {name!r}; known: {', '.join(DATASET_NAMES)}") from None


def generate(name: str, size: str = "small", seed: int = 0) -> BenchmarkDataset:
    """The dataset ``name`` at ``size`` for ``seed``: the same JSON for the same arguments; its
    nonsense words never occur in another dataset of the same seed."""
    if size not in SIZES:
        raise ValueError(f"unknown size {size!r}; known: {', '.join(SIZES)}")
    module = _module(name)
    words = nonsense_words(seed, DATASET_NAMES.index(name), len(DATASET_NAMES))
    return module.generate(size, seed, words)


def generate_suite(
    size: str = "small", seed: int = 0, names: tuple[str, ...] | list[str] = DATASET_NAMES
) -> list[BenchmarkDataset]:
    """The datasets ``names`` (default: all) at ``size`` for ``seed``, in that order."""
    return [generate(name, size, seed) for name in names]


def knowledge(dataset: BenchmarkDataset) -> Knowledge:
    """The generator's knowledge of ``dataset``'s world (lexicon, templates, judge)."""
    return _module(dataset.name).Knowledge(dataset.world)


def write_dataset(dataset: BenchmarkDataset, folder: Path) -> Path:
    """Write ``dataset`` for people to read and tools to load, under ``folder/<name>/``:
    ``documents/<id>.txt``, ``evalset.jsonl``, ``true_inferences.jsonl`` and ``dataset.json``
    (everything, ``BenchmarkDataset.from_json`` reads it back). Returns that folder."""
    out = Path(folder) / dataset.name
    (out / "documents").mkdir(parents=True, exist_ok=True)
    for filename, text in dataset.documents_as_files():
        (out / "documents" / filename).write_text(text, encoding="utf-8")
    (out / "evalset.jsonl").write_text(dataset.to_evalset_jsonl(), encoding="utf-8")
    (out / "true_inferences.jsonl").write_text(
        "".join(
            json.dumps(
                {"statement": i.statement, "kind": i.kind, "source_doc_ids": i.source_doc_ids}
            )
            + "\n"
            for i in dataset.true_inferences
        ),
        encoding="utf-8",
    )
    (out / "dataset.json").write_text(dataset.to_json(indent=1), encoding="utf-8")
    return out
