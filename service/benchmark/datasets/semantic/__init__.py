"""Semantic structure: a hierarchy of nonsense categories with inherited properties and relations.

The world: a forest of categories ("gruds are a type of abmes"); each category owns 1-3
properties (an adjective "zalty", an ability "can blick", a part "have plonks"), which all its
descendants inherit; some relations between unrelated categories ("gruds flob yomps"), which the
subject's descendants inherit too. Every noun, adjective and verb is a nonsense word. The world is
closed: a property is true of a category exactly when the category or one of its ancestors owns
it, so every distractor below is false of the category it is asked about while true of another.

Training documents are short articles (plain, question-and-answer, or field notes) about one
category: its parent, its own properties and relations, and the held-out children that belong to
it. They never state an inherited property, an "include" statement or a passive relation.

Test splits (question "Here is a true fact:", 4 statements as choices where the world has enough
distractors):
- rephrasing: a trained fact in wording no training document uses ("every grud can blick" for
  "gruds can blick"); distractors: properties of other categories, same wording;
- reversal: "abmes include gruds" from "gruds are a type of abmes", "yomps are flobbed by gruds"
  from "gruds flob yomps"; distractors: the names swapped, and other categories in the same place;
- syllogism: a property inherited from an ancestor ("gruds are rony" from "gruds are a type of
  abmes" and "abmes are rony"); distractors: properties of nearby categories;
- holdout: the same for a held-out category, whose only mention in training is its parent link.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

from service.benchmark.datasets.model import BenchmarkDataset
from service.benchmark.datasets.semantic.builder import Builder
from service.benchmark.datasets.semantic.world import (
    FORMS,
    NAME,
    QUESTION,
    SIZES,
    TEMPLATES,
    Knowledge,
    build_world,
    render,
    templates,
)
from service.benchmark.datasets.statements import Matcher

__all__ = ["FORMS", "NAME", "QUESTION", "SIZES", "TEMPLATES", "generate", "matcher", "templates"]


def generate(size: str, seed: int, words: Iterator[str]) -> BenchmarkDataset:
    """The dataset for ``size`` and ``seed``, every word drawn from ``words``."""
    config = SIZES[size]
    rng = random.Random(f"{NAME}:{size}:{seed}")
    world = build_world(config, rng, words)
    builder = Builder(config, rng, world)
    builder.write_documents()
    items = builder.test_items()
    inferences = builder.inferences()
    contradictions = [
        render(TEMPLATES["isa"][0], {"x": f.values["y"], "y": f.values["x"]})
        for f in builder.facts
        if f.group == "isa"
    ]
    return BenchmarkDataset(
        name=NAME,
        size=size,
        seed=seed,
        documents=builder.documents,
        test_items=items,
        true_inferences=inferences,
        contradictions=contradictions,
        world=world,
    )


def matcher(world: dict[str, Any]) -> tuple[Matcher, Knowledge]:
    """A matcher over this world's words, with the knowledge that judges its matches."""
    know = Knowledge(world)
    return Matcher(know.lexicon, know.templates), know
