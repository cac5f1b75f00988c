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
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from service.benchmark.datasets.model import BenchDocument, BenchmarkDataset, Inference, TestItem
from service.benchmark.datasets.statements import (
    Match,
    Matcher,
    Template,
    normal_tokens,
    plural,
    sentences,
    template,
)
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

    def descendants(self, category: str) -> set[str]:
        out: set[str] = set()
        todo = list(self.children[category])
        while todo:
            c = todo.pop()
            out.add(c)
            todo.extend(self.children[c])
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


def _render(tmpl: Template, values: dict[str, str]) -> str:
    return tmpl.render(values, FORMS)


@dataclass
class _Fact:
    """A trained fact: its group, slot values, and the training sentences that state it."""

    group: str
    values: dict[str, str]
    about: str  # the category whose documents state it
    stated: list[str] = field(default_factory=list)  # rendered statements used in documents
    templates: set[int] = field(default_factory=set)  # indexes into TEMPLATES[group]
    docs: list[str] = field(default_factory=list)


def _verb(words: Iterator[str]) -> str:
    """The next word that inflects cleanly as a verb (no final a, i, o, u: "pakaed")."""
    return next(w for w in words if w[-1] not in "aiou")


def _build_world(config: Config, rng: random.Random, words: Iterator[str]) -> dict[str, Any]:
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
            {"word": _verb(words) if k == "act" else next(words), "kind": k, "owner": n}
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
        relations.append({"verb": _verb(words), "subject": x, "object": y})
    return {"categories": categories, "properties": properties, "relations": relations}


_FILLERS = (
    "{X} have been described by many travellers.",
    "Little is written about the history of {x}.",
    "This article gives a short overview of {x}.",
    "Observers have long been curious about {x}.",
    "More is being learned about {x} every year.",
    "Local guides like to talk about {x}.",
)
_QUESTIONS = {
    "isa": "What are {x}?",
    "sub": "What kinds of {x} are there?",
    "adj": "What are {x} like?",
    "act": "What can {x} do?",
    "part": "What do {x} have?",
    "rel": "What else is known about {x}?",
}


def _write_document(
    category: str, facts: list[_Fact], style: str, rng: random.Random
) -> tuple[str, str, list[str]]:
    """(title, text, one statement per fact) for one document about ``category``."""
    lines: list[str] = []
    statements: list[str] = []
    for fact in facts:
        choices = range(len(TEMPLATES[fact.group]))
        index = rng.choice(list(choices))
        fact.templates.add(index)
        statements.append(_render(TEMPLATES[fact.group][index], fact.values))
    x = plural(category)
    fillers = [f.format(x=x, X=x[:1].upper() + x[1:]) for f in rng.sample(_FILLERS, len(_FILLERS))]
    needed = max(0, 4 - len(facts) * (2 if style == "qa" else 1))
    if style == "article":
        body = statements[:]
        for filler in fillers[: max(needed, rng.randint(0, 1))]:
            body.insert(rng.randrange(len(body) + 1), filler)
        title = x[:1].upper() + x[1:]
        text = title + "\n\n" + " ".join(body) + "\n"
    elif style == "qa":
        title = f"Questions and answers about {x}"
        lines.extend(fillers[:needed])
        for fact, statement in zip(facts, statements, strict=True):
            kind = "sub" if fact.group == "isa" and fact.values["x"] != category else fact.group
            lines.append("Q: " + _QUESTIONS[kind].format(x=x))
            lines.append("A: " + statement)
        text = title + "\n\n" + "\n".join(lines) + "\n"
    else:
        title = f"Field notes: {x}"
        body = statements[:]
        for filler in fillers[:needed]:
            body.insert(rng.randrange(len(body) + 1), filler)
        text = title + "\n\n" + "\n".join("- " + s for s in body) + "\n"
    return title, text, statements


class _Builder:
    """Generation state: the world, its knowledge, the facts stated in training."""

    def __init__(self, config: Config, rng: random.Random, world: dict[str, Any]) -> None:
        self.config, self.rng, self.world = config, rng, world
        self.know = Knowledge(world)
        self.trained = [c["name"] for c in world["categories"] if not c["holdout"]]
        self.facts: list[_Fact] = []
        self.documents: list[BenchDocument] = []
        self.fact_index: dict[tuple[str, tuple[tuple[str, str], ...]], _Fact] = {}

    def fact(self, group: str, about: str, **values: str) -> _Fact:
        f = _Fact(group, values, about)
        self.facts.append(f)
        self.fact_index[(group, tuple(sorted(values.items())))] = f
        return f

    def find(self, group: str, **values: str) -> _Fact:
        return self.fact_index[(group, tuple(sorted(values.items())))]

    def write_documents(self) -> None:
        know, rng = self.know, self.rng
        by_category: dict[str, list[_Fact]] = {c: [] for c in self.trained}
        for c in self.trained:
            parent = know.parent[c]
            if parent is not None:
                by_category[c].append(self.fact("isa", c, x=c, y=parent))
            for child in know.children[c]:
                if child in know.holdout:
                    by_category[c].append(self.fact("isa", c, x=child, y=c))
        for p in self.world["properties"]:
            if p["owner"] not in know.holdout:
                by_category[p["owner"]].append(
                    self.fact(p["kind"], p["owner"], x=p["owner"], p=p["word"])
                )
        for r in self.world["relations"]:
            by_category[r["subject"]].append(
                self.fact("rel", r["subject"], x=r["subject"], r=r["verb"], y=r["object"])
            )
        number = 0
        order = self.trained[:]
        rng.shuffle(order)
        for c in order:
            facts = by_category[c]
            k = self.config.docs_per_category
            # Every fact in at least one document; each further document has it with odds 1/2.
            shuffled = facts[:]
            rng.shuffle(shuffled)
            per_doc: list[list[_Fact]] = [[] for _ in range(k)]
            for i, f in enumerate(shuffled):
                per_doc[i % k].append(f)
                for j in range(k):
                    if j != i % k and rng.random() < 0.5:
                        per_doc[j].append(f)
            for doc_facts in per_doc:
                if not doc_facts:
                    continue
                # Question-and-answer pairs take two sentences per fact: only for short documents.
                styles = ["article", "notes"] + (["qa"] if len(doc_facts) <= 4 else [])
                doc_facts.sort(key=lambda f: f.group != "isa" or f.values["x"] != c)
                doc_id = f"{NAME}-{number:04d}"
                number += 1
                style = rng.choice(styles)
                title, text, statements = _write_document(c, doc_facts, style, rng)
                for f, s in zip(doc_facts, statements, strict=True):
                    f.stated.append(s)
                    f.docs.append(doc_id)
                self.documents.append(BenchDocument(id=doc_id, title=title, text=text))
        self.training_spans: set[tuple[str, ...]] = set()
        for d in self.documents:
            for s in sentences(d.text):
                tokens = tuple(normal_tokens(s))
                for i in range(len(tokens)):
                    for j in range(i + 1, len(tokens) + 1):
                        self.training_spans.add(tokens[i:j])

    def in_training(self, statement: str) -> bool:
        """Whether ``statement``'s normalized tokens occur inside some training sentence."""
        return tuple(normal_tokens(statement)) in self.training_spans

    def unused_templates(self, fact: _Fact) -> list[Template]:
        """Forms of ``fact`` that no training sentence contains, in random order."""
        out = []
        for i, t in enumerate(TEMPLATES[fact.group]):
            if i not in fact.templates and not self.in_training(_render(t, fact.values)):
                out.append(t)
        self.rng.shuffle(out)
        return out

    def distance(self, a: str, b: str) -> int:
        """Steps between two categories through their closest common ancestor (99: none)."""
        up_a = [a, *self.know.ancestors(a)]
        up_b = [b, *self.know.ancestors(b)]
        common = [c for c in up_a if c in up_b]
        return up_a.index(common[0]) + up_b.index(common[0]) if common else 99

    def distractors(
        self,
        tmpl: Template,
        values: dict[str, str],
        slot: str,
        near: str,
        count: int,
        extra: list[dict[str, str]] | None = None,
    ) -> list[str]:
        """Up to ``count`` false statements: ``tmpl`` with ``slot`` changed to a trained word
        (closest to ``near`` in the hierarchy first), after any ``extra`` value sets."""
        know = self.know
        slot_type = dict(tmpl.slot_types)[slot]
        if slot_type == "cat":
            # "Irdes zarn flords" when only their subtype dubols do reads as half true: skip
            # the subject's ancestors as distractor subjects of a relation.
            skip = set(know.ancestors(values[slot])) if tmpl.kind in ("rel", "pass") else set()
            pool = [(c, self.distance(near, c)) for c in self.trained if c not in skip]
        else:
            pool = [
                (w, self.distance(near, o))
                for w, o in know.owner.items()
                if know.kind_of[w] == slot_type and o not in know.holdout
            ]
        self.rng.shuffle(pool)
        pool.sort(key=lambda p: p[1])
        out: list[str] = []
        candidates = [*(extra or []), *({**values, slot: w} for w, _ in pool)]
        for cand in candidates:
            if len(out) == count:
                break
            truth, _ = know.decide(tmpl.kind, cand)
            text = _render(tmpl, cand)
            if truth is False and text not in out and not self.in_training(text):
                out.append(text)
        return out

    def item(
        self, split: str, number: int, answer: str, wrong: list[str], premises: list[str]
    ) -> TestItem:
        choices = [answer, *wrong]
        self.rng.shuffle(choices)
        return TestItem(
            id=f"{NAME}-{split}-{number:03d}",
            split=split,
            category=f"{NAME}/{split}",
            question=QUESTION,
            choices=choices,
            answer=answer,
            needed_inferences=[answer],
            premises=premises,
        )

    def chain(self, category: str, owner: str) -> list[str]:
        """Training statements linking ``category`` up to its ancestor ``owner``."""
        out = []
        c = category
        while c != owner:
            p = self.know.parent[c]
            assert p is not None
            out.append(self.find("isa", x=c, y=p).stated[0])
            c = p
        return out

    def pick(self, candidates: list[Any]) -> list[Any]:
        self.rng.shuffle(candidates)
        return candidates[: self.config.items_per_split]

    def test_items(self) -> list[TestItem]:
        know = self.know
        items: list[TestItem] = []
        # Rephrasing: trained facts in an unused wording.
        candidates = [
            f
            for f in self.facts
            if f.about == f.values["x"] and not (f.group == "isa" and f.values["x"] in know.holdout)
        ]
        made = 0
        for f in self.pick(candidates):
            forms = self.unused_templates(f)
            if not forms:
                continue
            tmpl = forms[0]
            slot = "p" if f.group in PROPERTY_KINDS else "y"
            wrong = self.distractors(tmpl, f.values, slot, f.values["x"], 3)
            if not wrong:
                continue
            items.append(
                self.item("rephrasing", made, _render(tmpl, f.values), wrong, [f.stated[0]])
            )
            made += 1
        # Reversal: parent links and relations, read backwards.
        candidates = [
            f
            for f in self.facts
            if (f.group == "isa" and f.values["x"] not in know.holdout) or f.group == "rel"
        ]
        for n, f in enumerate(self.pick(candidates)):
            if f.group == "isa":
                child, parent = f.values["x"], f.values["y"]
                tmpl = self.rng.choice(TEMPLATES["incl"])
                values = {"x": parent, "y": child}
                swapped = {"x": child, "y": parent}
                wrong = self.distractors(tmpl, values, "y", child, 3, [swapped])
            else:
                tmpl = self.rng.choice(TEMPLATES["pass"])
                values = dict(f.values)
                swapped = {"x": values["y"], "r": values["r"], "y": values["x"]}
                wrong = self.distractors(tmpl, values, "x", values["x"], 3, [swapped])
            items.append(self.item("reversal", n, _render(tmpl, values), wrong, [f.stated[0]]))
        # Syllogism and holdout: inherited properties and relations.
        for split, subjects in (
            ("syllogism", [c for c in self.trained]),
            ("holdout", sorted(know.holdout)),
        ):
            inherited: list[tuple[str, _Fact]] = []
            for c in subjects:
                for f in self.facts:
                    owner = f.values["x"]
                    if f.group in (*PROPERTY_KINDS, "rel") and owner in know.ancestors(c):
                        inherited.append((c, f))
            if split == "holdout":
                # Round-robin over the held-out categories, so each gets its share of items.
                self.rng.shuffle(inherited)
                seen: dict[str, int] = {}
                ranked = []
                for c, f in inherited:
                    seen[c] = seen.get(c, 0) + 1
                    ranked.append((seen[c], c, f))
                ranked.sort(key=lambda r: r[0])
                chosen = [(c, f) for _, c, f in ranked[: self.config.items_per_split]]
            else:
                chosen = self.pick(inherited)
            for n, (c, f) in enumerate(chosen):
                values = {**f.values, "x": c}
                forms = [t for t in TEMPLATES[f.group] if not self.in_training(_render(t, values))]
                tmpl = self.rng.choice(forms)
                slot = "y" if f.group == "rel" else "p"
                wrong = self.distractors(tmpl, values, slot, c, 3)
                premises = [*self.chain(c, f.values["x"]), f.stated[0]]
                items.append(self.item(split, n, _render(tmpl, values), wrong, premises))
        return items

    def inferences(self) -> list[Inference]:
        know = self.know
        out: list[Inference] = []
        for f in self.facts:
            if f.group == "isa":
                values = {"x": f.values["y"], "y": f.values["x"]}
                out.append(Inference(_render(TEMPLATES["incl"][0], values), "reversal", f.docs))
            elif f.group == "rel":
                out.append(Inference(_render(TEMPLATES["pass"][0], f.values), "reversal", f.docs))
            if f.group == "isa" and f.values["x"] in know.holdout:
                continue
            for tmpl in self.unused_templates(f)[:2]:
                out.append(Inference(_render(tmpl, f.values), "rephrasing", f.docs))
        for c in know.parent:
            ancestors = know.ancestors(c)
            for a in ancestors[1:]:
                out.append(
                    Inference(_render(TEMPLATES["isa"][0], {"x": c, "y": a}), "syllogism", [])
                )
            for f in self.facts:
                if f.group in (*PROPERTY_KINDS, "rel") and f.values["x"] in ancestors:
                    values = {**f.values, "x": c}
                    out.append(
                        Inference(_render(TEMPLATES[f.group][0], values), "syllogism", f.docs)
                    )
        return out


def generate(size: str, seed: int, words: Iterator[str]) -> BenchmarkDataset:
    """The dataset for ``size`` and ``seed``, every word drawn from ``words``."""
    config = SIZES[size]
    rng = random.Random(f"{NAME}:{size}:{seed}")
    world = _build_world(config, rng, words)
    builder = _Builder(config, rng, world)
    builder.write_documents()
    items = builder.test_items()
    inferences = builder.inferences()
    contradictions = [
        _render(TEMPLATES["isa"][0], {"x": f.values["y"], "y": f.values["x"]})
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
