"""The query benchmark's collections: made-up facts, about N tokens of documents per collection,
different from the first token on for each seed (so no collection's prefix is already cached)."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from service.serving.icl_context import PassageRef

_SYLLABLES = "ka lo mi ren tor vel zu pra gin dos fel mar quo sil tan bex nor ith wal"
_THINGS = ["pump", "turbine", "archive", "gateway", "furnace", "relay", "vault", "crane"]
_COLORS = ["red", "blue", "green", "amber", "violet", "grey", "white", "black"]
_CITIES = ["Oslo", "Lyon", "Porto", "Graz", "Turku", "Ghent", "Brno", "Cork"]


@dataclass(frozen=True)
class Fact:
    thing: str
    name: str
    color: str
    city: str
    year: int

    def sentence(self) -> str:
        return (
            f"The {self.thing} {self.name} is painted {self.color}, stands in {self.city} and "
            f"was commissioned in {self.year}."
        )

    def question(self) -> str:
        return f"What color is the {self.thing} {self.name}, and where does it stand?"


def synthetic_collection(
    seed: str, target_tokens: int, count_tokens: Callable[[str], int], *, per_passage: int = 3
) -> tuple[list[PassageRef], list[Fact]]:
    """Documents of made-up facts, about `target_tokens` tokens in all; different for each seed."""
    rng = random.Random(seed)
    syllables = _SYLLABLES.split()
    passages: list[PassageRef] = []
    facts: list[Fact] = []
    total = 0
    doc = 0
    while total < target_tokens:
        doc_id = f"{seed}-doc{doc}"
        title = f"Site register {seed} part {doc + 1}"
        for index in range(6):
            batch = []
            for _ in range(per_passage):
                name = "".join(rng.choice(syllables) for _ in range(3)).capitalize()
                fact = Fact(
                    rng.choice(_THINGS),
                    name,
                    rng.choice(_COLORS),
                    rng.choice(_CITIES),
                    rng.randint(1950, 2024),
                )
                facts.append(fact)
                batch.append(fact.sentence())
            text = " ".join(batch)
            tokens = count_tokens(text)
            passages.append(PassageRef(doc_id, title, index, text, tokens))
            total += tokens + 1
            if total >= target_tokens:
                break
        doc += 1
    return passages, facts
