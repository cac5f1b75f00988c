"""Writing the semantic dataset: training documents about each trained category (articles,
questions and answers, field notes), then the test items of every split and the true
inferences, all from one seeded random generator (the order of its draws is the dataset)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from service.benchmark.datasets.model import BenchDocument, Inference, TestItem
from service.benchmark.datasets.semantic.world import (
    NAME,
    PROPERTY_KINDS,
    QUESTION,
    TEMPLATES,
    Config,
    Knowledge,
    render,
)
from service.benchmark.datasets.statements import Template, normal_tokens, plural, sentences


@dataclass
class _Fact:
    """A trained fact: its group, slot values, and the training sentences that state it."""

    group: str
    values: dict[str, str]
    about: str  # the category whose documents state it
    stated: list[str] = field(default_factory=list)  # rendered statements used in documents
    templates: set[int] = field(default_factory=set)  # indexes into TEMPLATES[group]
    docs: list[str] = field(default_factory=list)


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
        statements.append(render(TEMPLATES[fact.group][index], fact.values))
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


class Builder:
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
            if i not in fact.templates and not self.in_training(render(t, fact.values)):
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
            text = render(tmpl, cand)
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
                self.item("rephrasing", made, render(tmpl, f.values), wrong, [f.stated[0]])
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
            items.append(self.item("reversal", n, render(tmpl, values), wrong, [f.stated[0]]))
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
                forms = [t for t in TEMPLATES[f.group] if not self.in_training(render(t, values))]
                tmpl = self.rng.choice(forms)
                slot = "y" if f.group == "rel" else "p"
                wrong = self.distractors(tmpl, values, slot, c, 3)
                premises = [*self.chain(c, f.values["x"]), f.stated[0]]
                items.append(self.item(split, n, render(tmpl, values), wrong, premises))
        return items

    def inferences(self) -> list[Inference]:
        know = self.know
        out: list[Inference] = []
        for f in self.facts:
            if f.group == "isa":
                values = {"x": f.values["y"], "y": f.values["x"]}
                out.append(Inference(render(TEMPLATES["incl"][0], values), "reversal", f.docs))
            elif f.group == "rel":
                out.append(Inference(render(TEMPLATES["pass"][0], f.values), "reversal", f.docs))
            if f.group == "isa" and f.values["x"] in know.holdout:
                continue
            for tmpl in self.unused_templates(f)[:2]:
                out.append(Inference(render(tmpl, f.values), "rephrasing", f.docs))
        for c in know.parent:
            ancestors = know.ancestors(c)
            for a in ancestors[1:]:
                out.append(
                    Inference(render(TEMPLATES["isa"][0], {"x": c, "y": a}), "syllogism", [])
                )
            for f in self.facts:
                if f.group in (*PROPERTY_KINDS, "rel") and f.values["x"] in ancestors:
                    values = {**f.values, "x": c}
                    out.append(
                        Inference(render(TEMPLATES[f.group][0], values), "syllogism", f.docs)
                    )
        return out
