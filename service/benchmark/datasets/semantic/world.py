"""The semantic dataset's world: the statement forms it is written in, the sizes, the
category forest with its properties and relations (`build_world`), and `Knowledge`, which
decides any statement about it."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from service.benchmark.datasets.statements import Match, Template, plural, template
from service.benchmark.datasets.words import participle

NAME = "semantic"
QUESTION = "Here is a true fact:"
FORMS: dict[str, Callable[[str], str]] = {"pl": plural, "s": lambda w: w + "s", "pp": participle}
PROPERTY_KINDS = ("adj", "act", "part")

# Statement forms by group; a group's first form is its canonical one.
_SURFACES: dict[str, tuple[str, ...]] = {
    "isa": (
        "{x.pl} are a type of {y.pl}",
        "{x.pl} are a kind of {y.pl}",
        "every {x} is a {y}",
        "all {x.pl} are {y.pl}",
        "{x.pl} are {y.pl}",
        "{x.pl} belong to the {y.pl}",
        "{x.pl} are classified as {y.pl}",
        "each {x} is a kind of {y}",
    ),
    "incl": (
        "{x.pl} include {y.pl}",
        "one type of {x} is the {y}",
        "one kind of {x} is the {y}",
        "examples of {x.pl} include {y.pl}",
        "there are many kinds of {x.pl}, including {y.pl}",
    ),
    "adj": (
        "{x.pl} are {p}",
        "all {x.pl} are {p}",
        "every {x} is {p}",
        "{x.pl} are always {p}",
        "{x.pl} are known to be {p}",
        "a typical {x} is {p}",
    ),
    "act": (
        "{x.pl} can {p}",
        "all {x.pl} can {p}",
        "every {x} can {p}",
        "{x.pl} are able to {p}",
        "{x.pl} know how to {p}",
    ),
    "part": (
        "{x.pl} have {p.pl}",
        "all {x.pl} have {p.pl}",
        "every {x} has {p.pl}",
        "each {x} has a {p}",
        "{x.pl} come with {p.pl}",
    ),
    "rel": (
        "{x.pl} {r} {y.pl}",
        "all {x.pl} {r} {y.pl}",
        "every {x} {r.s} {y.pl}",
        "{x.pl} are known to {r} {y.pl}",
    ),
    "pass": ("{y.pl} are {r.pp} by {x.pl}", "{y.pl} get {r.pp} by {x.pl}"),
}
_SLOTS = {
    "isa": {"x": "cat", "y": "cat"},
    "incl": {"x": "cat", "y": "cat"},
    "adj": {"x": "cat", "p": "adj"},
    "act": {"x": "cat", "p": "act"},
    "part": {"x": "cat", "p": "part"},
    "rel": {"x": "cat", "r": "rel", "y": "cat"},
    "pass": {"x": "cat", "r": "rel", "y": "cat"},
}
TEMPLATES: dict[str, tuple[Template, ...]] = {
    group: tuple(template(group, s, **_SLOTS[group]) for s in surfaces)
    for group, surfaces in _SURFACES.items()
}


def templates() -> list[Template]:
    """Every recognised form (see ``_SURFACES``)."""
    return [t for group in TEMPLATES.values() for t in group]


@dataclass(frozen=True)
class Config:
    categories: int
    roots: int
    max_depth: int
    holdouts: int
    docs_per_category: int
    relations: int
    items_per_split: int


SIZES: dict[str, Config] = {
    "tiny": Config(
        categories=8,
        roots=2,
        max_depth=2,
        holdouts=1,
        docs_per_category=1,
        relations=2,
        items_per_split=2,
    ),
    "small": Config(
        categories=14,
        roots=2,
        max_depth=3,
        holdouts=2,
        docs_per_category=1,
        relations=4,
        items_per_split=4,
    ),
    "medium": Config(
        categories=40,
        roots=3,
        max_depth=3,
        holdouts=4,
        docs_per_category=2,
        relations=12,
        items_per_split=15,
    ),
    "large": Config(
        categories=110,
        roots=4,
        max_depth=4,
        holdouts=10,
        docs_per_category=4,
        relations=35,
        items_per_split=40,
    ),
}


class Knowledge:
    """The closed world of one dataset, and the judge of any statement about it."""

    def __init__(self, world: dict[str, Any]) -> None:
        self.parent: dict[str, str | None] = {c["name"]: c["parent"] for c in world["categories"]}
        self.holdout = {c["name"] for c in world["categories"] if c["holdout"]}
        self.owner = {p["word"]: p["owner"] for p in world["properties"]}
        self.kind_of = {p["word"]: p["kind"] for p in world["properties"]}
        self.relation = {r["verb"]: (r["subject"], r["object"]) for r in world["relations"]}
        self.children: dict[str, list[str]] = {c: [] for c in self.parent}
        for c, p in self.parent.items():
            if p is not None:
                self.children[p].append(c)
        self.lexicon: dict[str, tuple[str, str]] = {}
        for c in self.parent:
            self.lexicon[c] = self.lexicon[plural(c)] = ("cat", c)
        for word, kind in self.kind_of.items():
            self.lexicon[word] = (kind, word)
            if kind != "adj":
                self.lexicon[word + "s"] = (kind, word)
        for verb in self.relation:
            self.lexicon[verb] = self.lexicon[verb + "s"] = ("rel", verb)
            self.lexicon[participle(verb)] = ("pp", verb)
        self.templates = templates()

    def ancestors(self, category: str) -> list[str]:
        """Parent first, root last."""
        out = []
        parent = self.parent[category]
        while parent is not None:
            out.append(parent)
            parent = self.parent[parent]
        return out

    def related(self, a: str, b: str) -> bool:
        """Same category, or one is an ancestor of the other."""
        return a == b or a in self.ancestors(b) or b in self.ancestors(a)

    def has_property(self, category: str, word: str) -> bool:
        return self.owner[word] == category or self.owner[word] in self.ancestors(category)

    def relation_holds(self, x: str, verb: str, y: str) -> bool | None:
        subject, obj = self.relation[verb]
        if y == obj:
            return x == subject or subject in self.ancestors(x)
        return None if self.related(y, obj) else False

    def decide(self, group: str, values: dict[str, str]) -> tuple[bool | None, str]:
        """Truth and key of a statement of ``group`` with slot ``values``."""
        x = values["x"]
        if group == "isa":
            y = values["y"]
            return (None if x == y else y in self.ancestors(x)), f"isa:{x}:{y}"
        if group == "incl":
            y = values["y"]
            return (None if x == y else x in self.ancestors(y)), f"incl:{x}:{y}"
        if group in PROPERTY_KINDS:
            return self.has_property(x, values["p"]), f"prop:{x}:{values['p']}"
        r, y = values["r"], values["y"]
        truth = None if x == y else self.relation_holds(x, r, y)
        return truth, (f"rel:{x}:{r}:{y}" if group == "rel" else f"pass:{y}:{r}:{x}")

    def judge(self, match: Match) -> tuple[bool | None, str]:
        return self.decide(match.template.kind, dict(match.values))


def render(tmpl: Template, values: dict[str, str]) -> str:
    return tmpl.render(values, FORMS)


def verb(words: Iterator[str]) -> str:
    """The next word that inflects cleanly as a verb (no final a, i, o, u: "pakaed")."""
    return next(w for w in words if w[-1] not in "aiou")


def build_world(config: Config, rng: random.Random, words: Iterator[str]) -> dict[str, Any]:
    names = [next(words) for _ in range(config.categories)]
    parent: dict[str, str | None] = {n: None for n in names[: config.roots]}
    depth = {n: 0 for n in names[: config.roots]}
    children: dict[str, int] = {n: 0 for n in names}
    for name in names[config.roots :]:
        candidates = [c for c in parent if depth[c] < config.max_depth]
        weights = [(1 + depth[c]) / (1 + children[c]) ** 2 for c in candidates]
        chosen = rng.choices(candidates, weights)[0]
        parent[name], depth[name] = chosen, depth[chosen] + 1
        children[chosen] += 1
    leaves = [c for c in names if children[c] == 0 and depth[c] >= 1]
    # Deep leaves first: a held-out category should inherit from more than one ancestor.
    rng.shuffle(leaves)
    leaves.sort(key=lambda c: -depth[c])
    holdouts = set(leaves[: config.holdouts])
    categories = [
        {"name": n, "parent": parent[n], "depth": depth[n], "holdout": n in holdouts} for n in names
    ]
    properties = []
    for n in names:
        kinds = rng.sample(PROPERTY_KINDS, rng.randint(1, 3))
        properties.extend(
            {"word": verb(words) if k == "act" else next(words), "kind": k, "owner": n}
            for k in kinds
        )
    trained = [n for n in names if n not in holdouts]

    def lineage(c: str) -> set[str]:
        out = {c}
        p = parent[c]
        while p is not None:
            out.add(p)
            p = parent[p]
        return out

    relations: list[dict[str, str]] = []
    pairs: set[tuple[str, str]] = set()
    for _ in range(config.relations * 20):
        if len(relations) == config.relations:
            break
        x, y = rng.sample(trained, 2)
        if (x, y) in pairs or x in lineage(y) or y in lineage(x):
            continue
        pairs.add((x, y))
        relations.append({"verb": verb(words), "subject": x, "object": y})
    return {"categories": categories, "properties": properties, "relations": relations}
