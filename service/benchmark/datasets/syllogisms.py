"""Syllogisms over nonsense terms, after the paper's "The relationships between glon, troff and
yomp are: All glon are yomp. All troff are glon." -> test "The relationships between yomp and
troff are:" with the answer "All troff are yomp."

Each example has three fresh terms and one of nine valid moods; a third of the conclusions are
"all", a third "no", a third "some". Statements are decided by a model checker (every way the
three terms can overlap, each term non-empty: the traditional reading), not by a table, so the
truth matcher and the choices agree by construction.

A document states each example as the paper does, with one change: the second premise comes
after a lead-in, "The relationships between glon, troff and yomp are: All glon are yomp. Also:
All troff are glon." The service trains on one sentence at a time, and a standalone "All troff
are glon." would be learned without its first word (the recipe puts no loss on an example's
first token) and in other tokens than the test's continuation " All troff are glon." (a leading
space); after "Also:" it reads exactly as a test asks it, and the rule-made strategies still read
it (a semicolon-joined pair they do not). The oracle's conclusion comes under a header of its own
two terms, "The relationships between troff and yomp are: All troff are yomp.", for the same
reason.

Choices: the six statements {all, some, no} x both directions of the two end terms, less those
that the premises entail besides the answer (the converse of a "no" or "some" conclusion is
equally true; "all S are P" entails "some S are P"), so exactly one choice is right: 4 choices
for an "all" conclusion, 5 otherwise.

Two splits: syllogism (the conclusion, above) and forward (one of the example's two premises,
asked the same way, "The relationships between glon and yomp are:" -> "All glon are yomp.",
against the other statements over those two terms that the premises do not entail),
which checks that an adapter learned the premises it read. Several examples may share a document
(one line each), so a compact size has few files.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from service.benchmark.datasets.model import BenchDocument, BenchmarkDataset, Inference, TestItem
from service.benchmark.datasets.statements import Match, Template, template

NAME = "syllogisms"
QUANTIFIERS = ("all", "some", "no")

# (name, premises, conclusion) over the roles S (subject), M (middle), P (predicate).
Statement = tuple[str, str, str]
MOODS: dict[str, tuple[tuple[Statement, Statement], Statement]] = {
    "barbara": ((("all", "M", "P"), ("all", "S", "M")), ("all", "S", "P")),
    "celarent": ((("no", "M", "P"), ("all", "S", "M")), ("no", "S", "P")),
    "cesare": ((("no", "P", "M"), ("all", "S", "M")), ("no", "S", "P")),
    "camestres": ((("all", "P", "M"), ("no", "S", "M")), ("no", "S", "P")),
    "calemes": ((("all", "P", "M"), ("no", "M", "S")), ("no", "S", "P")),
    "darii": ((("all", "M", "P"), ("some", "S", "M")), ("some", "S", "P")),
    "datisi": ((("all", "M", "P"), ("some", "M", "S")), ("some", "S", "P")),
    "disamis": ((("some", "M", "P"), ("all", "M", "S")), ("some", "S", "P")),
    "dimaris": ((("some", "P", "M"), ("all", "M", "S")), ("some", "S", "P")),
}


@dataclass(frozen=True)
class Config:
    examples: int
    examples_per_doc: int = 1


SIZES: dict[str, Config] = {
    "tiny": Config(examples=3),
    # 42 examples: 42 syllogism and 42 forward items, in 7 documents (~1,200 tokens).
    "small": Config(examples=42, examples_per_doc=6),
    "medium": Config(examples=30),
    "large": Config(examples=69),  # the paper's 69 training examples
}

_RENDER = {"all": "All {x} are {y}", "some": "Some {x} are {y}", "no": "No {x} are {y}"}


def templates() -> list[Template]:
    """Recognised forms: "all x are y", "every x is a y", "each x is a y", bare "x are y" (all);
    "no x are y", "none of x are y", "x are never y" (no); "some x are y" (some)."""
    forms = {
        "all": ("all {x} are {y}", "every {x} is a {y}", "each {x} is a {y}", "{x} are {y}"),
        "no": ("no {x} are {y}", "none of the {x} are {y}", "{x} are never {y}"),
        "some": ("some {x} are {y}",),
    }
    return [template("syl", s, (q,), x="term", y="term") for q, ss in forms.items() for s in ss]


def render(statement: Statement) -> str:
    q, x, y = statement
    return _RENDER[q].format(x=x, y=y) + "."


# -- the model checker ---------------------------------------------------------------------------


def _regions(terms: tuple[str, ...]) -> list[frozenset[str]]:
    """The Venn regions inside at least one term."""
    return [
        frozenset(c) for n in range(1, len(terms) + 1) for c in itertools.combinations(terms, n)
    ]


def _holds(statement: Statement, model: frozenset[frozenset[str]]) -> bool:
    q, x, y = statement
    if q == "all":
        return all(y in region for region in model if x in region)
    both = any(x in region and y in region for region in model)
    return both if q == "some" else not both


def models(terms: tuple[str, ...], premises: list[Statement]) -> list[frozenset[frozenset[str]]]:
    """Every choice of non-empty regions where all terms are non-empty and the premises hold."""
    regions = _regions(terms)
    out = []
    for mask in range(1 << len(regions)):
        model = frozenset(r for i, r in enumerate(regions) if mask >> i & 1)
        if all(any(t in r for r in model) for t in terms) and all(
            _holds(p, model) for p in premises
        ):
            out.append(model)
    return out


def decide(statement: Statement, valid: list[frozenset[frozenset[str]]]) -> bool | None:
    """True if entailed, False if its negation is entailed, None if the premises leave it open."""
    results = {_holds(statement, m) for m in valid}
    return results.pop() if len(results) == 1 else None


def key(statement: Statement) -> str:
    """One key per meaning: "no" and "some" statements read the same in both directions."""
    q, x, y = statement
    if q != "all":
        x, y = sorted((x, y))
    return f"syl:{q}:{x}:{y}"


class Knowledge:
    """Statements are decided within one example; terms of different examples are unrelated."""

    def __init__(self, world: dict[str, Any]) -> None:
        self.example_of: dict[str, int] = {}
        self.valid: list[list[frozenset[frozenset[str]]]] = []
        self.lexicon: dict[str, tuple[str, str]] = {}
        for index, example in enumerate(world["examples"]):
            terms = tuple(example["terms"].values())
            for term in terms:
                self.example_of[term] = index
                self.lexicon[term] = ("term", term)
                self.lexicon[term + "s"] = ("term", term)
            self.valid.append(models(terms, [tuple(p) for p in example["premises"]]))
        self.templates = templates()

    def judge(self, match: Match) -> tuple[bool | None, str]:
        statement = (match.template.params[0], match.value("x"), match.value("y"))
        index = self.example_of[statement[1]]
        if statement[1] == statement[2] or self.example_of[statement[2]] != index:
            return None, key(statement)
        return decide(statement, self.valid[index]), key(statement)


def _headed(rng: random.Random, statement: Statement) -> str:
    """The header naming a statement's two terms, in random order."""
    ends = [statement[1], statement[2]]
    rng.shuffle(ends)
    return f"The relationships between {ends[0]} and {ends[1]} are:"


def _item(
    rng: random.Random,
    split: str,
    statement: Statement,
    premises: list[Statement],
    valid: list[frozenset[frozenset[str]]],
    item_id: str,
) -> TestItem:
    """The item asking for ``statement`` under a header naming its two terms in random order,
    against the other statements over them that the premises (models ``valid``) do not
    entail."""
    question = _headed(rng, statement)
    ends = [statement[1], statement[2]]
    candidates = [(q, a, b) for q in QUANTIFIERS for a, b in (ends, ends[::-1])]
    choices = [render(c) for c in candidates if c == statement or decide(c, valid) is not True]
    rng.shuffle(choices)
    answer = render(statement)
    syllogism = split == "syllogism"
    return TestItem(
        id=item_id,
        split=split,
        category=f"{NAME}/{split}",
        question=question,
        choices=choices,
        answer=answer,
        needed_inferences=[answer] if syllogism else [],
        premises=[render(p) for p in premises] if syllogism else [answer],
    )


def generate(size: str, seed: int, words: Iterator[str]) -> BenchmarkDataset:
    """The dataset for ``size`` and ``seed``, its terms drawn from ``words``."""
    config = SIZES[size]
    rng = random.Random(f"{NAME}:{size}:{seed}")
    by_conclusion = {q: sorted(n for n, m in MOODS.items() if m[1][0] == q) for q in QUANTIFIERS}
    documents: list[BenchDocument] = []
    items: list[TestItem] = []
    forward_items: list[TestItem] = []
    inferences: list[Inference] = []
    contradictions: list[str] = []
    examples: list[dict[str, Any]] = []
    kinds = [("all", "no", "some")[i % 3] for i in range(config.examples)]
    rng.shuffle(kinds)
    for index, kind in enumerate(kinds):
        mood = rng.choice(by_conclusion[kind])
        roles = {"S": next(words), "M": next(words), "P": next(words)}
        (p1, p2), conclusion_roles = MOODS[mood]
        premises = [(q, roles[x], roles[y]) for q, x, y in (p1, p2)]
        rng.shuffle(premises)
        conclusion = (conclusion_roles[0], roles["S"], roles["P"])
        terms = list(roles.values())
        rng.shuffle(terms)
        number = index // config.examples_per_doc
        doc_id = f"{NAME}-{number:04d}"
        header = f"The relationships between {terms[0]}, {terms[1]} and {terms[2]} are:"
        text = f"{header} {render(premises[0])} Also: {render(premises[1])}"
        if index % config.examples_per_doc:
            documents[-1].text += text + "\n"
        else:
            documents.append(
                BenchDocument(id=doc_id, title=f"Relationships {number + 1}", text=text + "\n")
            )

        valid = models(tuple(roles.values()), premises)
        assert decide(conclusion, valid) is True, (mood, premises, conclusion)

        items.append(_item(rng, "syllogism", conclusion, premises, valid, f"{NAME}-{index:03d}"))
        premise = rng.choice(premises)
        forward_items.append(
            _item(rng, "forward", premise, premises, valid, f"{NAME}-forward-{index:03d}")
        )
        answer = items[-1].answer
        oracle = f"{_headed(rng, conclusion)} {answer}"
        inferences.append(Inference(oracle, "syllogism", [doc_id]))
        ends = [roles["S"], roles["P"]]
        candidates = [(q, a, b) for q in QUANTIFIERS for a, b in (ends, ends[::-1])]
        contradictions.extend(render(c) for c in candidates if decide(c, valid) is False)
        examples.append(
            {
                "terms": roles,
                "mood": mood,
                "premises": [list(p) for p in premises],
                "conclusion": list(conclusion),
            }
        )
    return BenchmarkDataset(
        name=NAME,
        size=size,
        seed=seed,
        documents=documents,
        test_items=forward_items + items,
        true_inferences=inferences,
        contradictions=contradictions,
        world={"examples": examples},
    )
