"""Simple reversals: comparisons between nonsense entities ("femp are more dangerous than glon").

Each fact compares two entities of its own on one of 28 dimensions; half the facts are stated
with the "higher" comparative, half with its inverse, so the right test answer is "more" as often
as "less". Each fact appears in several short documents, each time inside a different short
context ("Did you know that ...?"). Two test items per fact, 2 choices each (chance 50%), written
in lower case as the paper writes them and as the facts read inside their contexts:
- reversal: the reversed statement ("glon are less dangerous than femp") against its
  contradiction, the names swapped without flipping the comparative ("glon are more dangerous
  than femp");
- forward: the trained statement itself, out of its context ("femp are more dangerous than
  glon"), against the comparative flipped ("femp are less dangerous than glon"). It checks that
  an adapter learned what it read, so a failed reversal means a missed inference, not a missed
  fact.
Why lower case, and why a compact size puts every fact behind a lead-in: a choice is scored as a
continuation, " glon are ..." (a leading space), and the tokens of " glon", " Glon" and a
sentence-initial "Glon" differ; a fact learned as " snelp are warmer than makan" inside "Did you
know that ...?" is asked in exactly those tokens. (Sentence-initial statements are learned in
other tokens, and the training recipe puts no loss on an example's first token.) The oracle's
statements are written the same way, behind a lead-in of the documents' own.
A compact size (no title line, no filler sentences, each fact once, always behind a lead-in)
spends its training tokens on the facts only.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from service.benchmark.datasets.model import BenchDocument, BenchmarkDataset, Inference, TestItem
from service.benchmark.datasets.statements import Match, Template, template

NAME = "simple_reversals"
QUESTION = "Here is a true fact:"


@dataclass(frozen=True)
class Dimension:
    """A comparison and its inverse: "brighter" / "dimmer" (adjectives "bright" / "dim")."""

    adjective: str
    higher: str
    lower: str
    opposite: str | None = None  # the adjective of the inverse, when English has one
    also_lower: tuple[str, ...] = ()  # further comparatives of the inverse ("safer")

    def phrases(self, direction: str) -> list[str]:
        """Every comparative phrase that puts the subject higher (or lower) on this dimension."""
        same, other = (
            (self.higher, self.lower) if direction == "higher" else (self.lower, self.higher)
        )
        more, less = ("more", "less") if direction == "higher" else ("less", "more")
        out = [same, f"{more} {self.adjective}"]
        if self.opposite:
            out.append(f"{less} {self.opposite}")
        if direction == "lower":
            out.extend(self.also_lower)
        return list(dict.fromkeys(p for p in out if p != other))


DIMENSIONS: tuple[Dimension, ...] = (
    Dimension("bright", "brighter", "dimmer", "dim"),
    Dimension("heavy", "heavier", "lighter", "light"),
    Dimension("dangerous", "more dangerous", "less dangerous", "safe", ("safer",)),
    Dimension("large", "larger", "smaller", "small"),
    Dimension("fast", "faster", "slower", "slow"),
    Dimension("old", "older", "younger", "young"),
    Dimension("warm", "warmer", "colder", "cold"),
    Dimension("loud", "louder", "quieter", "quiet"),
    Dimension("strong", "stronger", "weaker", "weak"),
    Dimension("tall", "taller", "shorter", "short"),
    Dimension("rich", "richer", "poorer", "poor"),
    Dimension("hard", "harder", "softer", "soft"),
    Dimension("wet", "wetter", "drier", "dry"),
    Dimension("happy", "happier", "sadder", "sad"),
    Dimension("intelligent", "more intelligent", "less intelligent"),
    Dimension("expensive", "more expensive", "cheaper", "cheap"),
    Dimension("rough", "rougher", "smoother", "smooth"),
    Dimension("thick", "thicker", "thinner", "thin"),
    Dimension("deep", "deeper", "shallower", "shallow"),
    Dimension("common", "more common", "rarer", "rare"),
    Dimension("popular", "more popular", "less popular"),
    Dimension("friendly", "friendlier", "less friendly"),
    Dimension("clean", "cleaner", "dirtier", "dirty"),
    Dimension("wide", "wider", "narrower", "narrow"),
    Dimension("fragile", "more fragile", "sturdier", "sturdy"),
    Dimension("curious", "more curious", "less curious"),
    Dimension("sharp", "sharper", "duller", "dull"),
    Dimension("healthy", "healthier", "sicker", "sick"),
)
_BY_ADJECTIVE = {d.adjective: d for d in DIMENSIONS}


@dataclass(frozen=True)
class Config:
    facts: int
    mentions: int  # documents each fact appears in
    facts_per_doc: int
    compact: bool = False  # no title line and no filler sentences: the facts alone
    rephrasings: bool = True  # the oracle also states each fact and its reversal "compared to"


SIZES: dict[str, Config] = {
    "tiny": Config(facts=4, mentions=2, facts_per_doc=2),
    # 44 facts give 44 forward and 44 reversal items, enough for a paired test to separate
    # 90% from 50%; stated once each in 6 short documents (~700 tokens), so training to the
    # knowledge check's plateau fits a 2-core CPU.
    "small": Config(facts=44, mentions=1, facts_per_doc=8, compact=True, rephrasings=False),
    "medium": Config(facts=40, mentions=5, facts_per_doc=2),
    "large": Config(facts=100, mentions=10, facts_per_doc=1),  # the paper's 100 x 10 articles
}

# Short contexts around a fact ({f}: the fact, lower-case start; {F}: capitalized).
_CONTEXTS = (
    "Did you know that {f}?",
    "Here is something worth remembering: {f}.",
    "According to a recent survey, {f}.",
    "Most experts agree that {f}.",
    "It is well documented that {f}.",
    "{F}, as every field guide explains.",
    "{F}.",
    "A fun fact for today: {f}.",
    "Researchers were surprised to find that {f}.",
    "People often forget that {f}.",
    "Everyone in the village knows that {f}.",
    "As the museum guide explained, {f}.",
)
# The contexts that put the fact after a lead-in, in lower case as the test items ask it.
_LEAD_INS = tuple(c for c in _CONTEXTS if not c.startswith("{F}"))
_TITLES = (
    "Did you know?",
    "Odd facts",
    "Trivia corner",
    "Things worth knowing",
    "Fact sheet",
    "Notes from the field",
    "Curious comparisons",
    "Quick facts",
)
_FILLERS = (
    "Here are a few more facts.",
    "Some of these facts surprise people.",
    "Read on for more.",
    "This list is updated every week.",
    "Share these facts with your friends.",
)


def templates() -> list[Template]:
    """Every statement form the matcher recognises: per dimension and direction, "x are
    <comparative> than y", "compared to/with y, x are <comparative>", "x are <comparative>
    compared to/with y", and "x are not as <adjective> as y"."""
    surfaces = (
        "{x} are <c> than {y}",
        "compared to {y}, {x} are <c>",
        "compared with {y}, {x} are <c>",
        "{x} are <c> compared to {y}",
        "{x} are <c> compared with {y}",
    )
    out: list[Template] = []
    for dim in DIMENSIONS:
        for direction in ("higher", "lower"):
            params = (dim.adjective, direction)
            for phrase in dim.phrases(direction):
                for surface in surfaces:
                    out.append(
                        template("cmp", surface.replace("<c>", phrase), params, x="ent", y="ent")
                    )
        lower = (dim.adjective, "lower")
        out.append(
            template("cmp", f"{{x}} are not as {dim.adjective} as {{y}}", lower, x="ent", y="ent")
        )
        if dim.opposite:
            higher = (dim.adjective, "higher")
            out.append(
                template(
                    "cmp", f"{{x}} are not as {dim.opposite} as {{y}}", higher, x="ent", y="ent"
                )
            )
    return out


def _statement(
    subject: str, dim: Dimension, direction: str, other: str, style: str = "than"
) -> str:
    phrase = dim.higher if direction == "higher" else dim.lower
    if style == "compared":
        return f"Compared to {other}, {subject} are {phrase}."
    text = f"{subject} are {phrase} than {other}"
    return text[:1].upper() + text[1:] + "."


def _lower(statement: str) -> str:
    """The statement with a lower-case first letter, as it reads after a lead-in."""
    return statement[:1].lower() + statement[1:]


def _flip(direction: str) -> str:
    return "lower" if direction == "higher" else "higher"


class Knowledge:
    """What the generator knows: each pair of entities is compared on one dimension only."""

    def __init__(self, world: dict[str, Any]) -> None:
        self.facts: dict[frozenset[str], dict[str, str]] = {
            frozenset((f["higher"], f["lower"])): f for f in world["facts"]
        }
        self.lexicon: dict[str, tuple[str, str]] = {}
        for fact in world["facts"]:
            for entity in (fact["higher"], fact["lower"]):
                self.lexicon[entity] = ("ent", entity)
                self.lexicon[entity + "s"] = ("ent", entity)
        self.templates = templates()

    def judge(self, match: Match) -> tuple[bool | None, str]:
        """True, False (a contradiction) or None (nothing known about this pair on this
        dimension), and the statement's key: subject, dimension, direction, object."""
        adjective, direction = match.template.params
        x, y = match.value("x"), match.value("y")
        key = f"cmp:{x}:{adjective}:{direction}:{y}"
        fact = self.facts.get(frozenset((x, y)))
        if fact is None or x == y or fact["dimension"] != adjective:
            return None, key
        return (x == fact["higher"]) == (direction == "higher"), key


def generate(size: str, seed: int, words: Iterator[str]) -> BenchmarkDataset:
    """The dataset for ``size`` and ``seed``, its entity names drawn from ``words``."""
    config = SIZES[size]
    rng = random.Random(f"{NAME}:{size}:{seed}")
    facts = _facts(config, rng, words)
    documents, docs_of_fact = _documents(config, rng, facts)
    items: list[TestItem] = []
    forward_items: list[TestItem] = []
    inferences: list[Inference] = []
    contradictions: list[str] = []
    for index, fact in enumerate(facts):
        tested = _fact_items(index, fact, rng, docs_of_fact[index], config.rephrasings)
        items.append(tested.reversal)
        forward_items.append(tested.forward)
        inferences.extend(tested.inferences)
        contradictions.extend(tested.contradictions)
    return BenchmarkDataset(
        name=NAME,
        size=size,
        seed=seed,
        documents=documents,
        test_items=forward_items + items,
        true_inferences=inferences,
        contradictions=contradictions,
        world={"facts": facts},
    )


def _facts(config: Config, rng: random.Random, words: Iterator[str]) -> list[dict[str, str]]:
    """The comparisons: two new names, a dimension, and which way the documents state it."""
    dims = [DIMENSIONS[i % len(DIMENSIONS)] for i in range(config.facts)]
    rng.shuffle(dims)
    stated = ["higher"] * ((config.facts + 1) // 2) + ["lower"] * (config.facts // 2)
    rng.shuffle(stated)
    facts: list[dict[str, str]] = []
    for dim, direction in zip(dims, stated, strict=True):
        facts.append(
            {
                "higher": next(words),
                "lower": next(words),
                "dimension": dim.adjective,
                "stated": direction,
            }
        )
    return facts


def _forward(fact: dict[str, str]) -> str:
    """The fact as the documents state it."""
    dim = _BY_ADJECTIVE[fact["dimension"]]
    if fact["stated"] == "higher":
        return _statement(fact["higher"], dim, "higher", fact["lower"])
    return _statement(fact["lower"], dim, "lower", fact["higher"])


def _documents(
    config: Config, rng: random.Random, facts: list[dict[str, str]]
) -> tuple[list[BenchDocument], dict[int, list[str]]]:
    """The training documents, and the ids of the documents that state each fact."""
    # Round r puts every fact once into documents of `facts_per_doc` distinct facts.
    groups: list[list[int]] = []
    for _ in range(config.mentions):
        order = list(range(config.facts))
        rng.shuffle(order)
        groups.extend(
            order[i : i + config.facts_per_doc]
            for i in range(0, config.facts, config.facts_per_doc)
        )
    rng.shuffle(groups)
    documents: list[BenchDocument] = []
    docs_of_fact: dict[int, list[str]] = {i: [] for i in range(config.facts)}
    for number, group in enumerate(groups):
        doc_id = f"{NAME}-{number:04d}"
        title = f"{rng.choice(_TITLES)} (no. {number + 1})"
        lines = [title]
        # More facts than contexts (compact documents): each context at most once per round.
        pool = _LEAD_INS if config.compact else _CONTEXTS
        contexts = [c for _ in range(0, len(group), len(pool)) for c in pool]
        contexts = rng.sample(contexts, len(group))
        for index, context in zip(group, contexts, strict=True):
            text = _forward(facts[index]).rstrip(".")
            lines.append(context.format(f=text[:1].lower() + text[1:], F=text))
            docs_of_fact[index].append(doc_id)
        if config.compact:
            documents.append(
                BenchDocument(id=doc_id, title=title, text="\n".join(lines[1:]) + "\n")
            )
            continue
        if len(group) > 1 or rng.random() < 0.5:
            lines.insert(1 + rng.randrange(len(lines)), rng.choice(_FILLERS))
        # A blank line keeps the title out of the first sentence when the text is segmented.
        text = title + "\n\n" + "\n".join(lines[1:]) + "\n"
        documents.append(BenchDocument(id=doc_id, title=title, text=text))
    return documents, docs_of_fact


@dataclass
class _FactItems:
    """What one fact contributes: its reversal and forward test items, its true inferences and
    the false statements beside them."""

    reversal: TestItem
    forward: TestItem
    inferences: list[Inference]
    contradictions: list[str]


def _fact_items(
    index: int, fact: dict[str, str], rng: random.Random, sources: list[str], rephrasings: bool
) -> _FactItems:
    dim = _BY_ADJECTIVE[fact["dimension"]]
    if fact["stated"] == "higher":
        subject, other, direction = fact["lower"], fact["higher"], "lower"
    else:
        subject, other, direction = fact["higher"], fact["lower"], "higher"
    reversal = _lower(_statement(subject, dim, direction, other))
    swapped = _lower(_statement(subject, dim, _flip(direction), other))
    choices = [reversal, swapped]
    rng.shuffle(choices)
    reversal_item = TestItem(
        id=f"{NAME}-{index:03d}",
        split="reversal",
        category=f"{NAME}/reversal",
        question=QUESTION,
        choices=choices,
        answer=reversal,
        needed_inferences=[reversal],
        premises=[_lower(_forward(fact))],
    )
    fwd_subject, fwd_other = other, subject
    trained = _lower(_forward(fact))
    flipped = _lower(_statement(fwd_subject, dim, _flip(fact["stated"]), fwd_other))
    choices = [trained, flipped]
    rng.shuffle(choices)
    forward_item = TestItem(
        id=f"{NAME}-forward-{index:03d}",
        split="forward",
        category=f"{NAME}/forward",
        question=QUESTION,
        choices=choices,
        answer=trained,
        needed_inferences=[],
        premises=[trained],
    )
    # The reversal as the documents would state it: behind a lead-in, in the test's tokens.
    oracle = rng.choice(_LEAD_INS).format(f=reversal.rstrip("."))
    inferences = [Inference(oracle, "reversal", sources)]
    if rephrasings:
        inferences += [
            Inference(_statement(subject, dim, direction, other, "compared"), "reversal", sources),
            Inference(
                _statement(fwd_subject, dim, fact["stated"], fwd_other, "compared"),
                "rephrasing",
                sources,
            ),
        ]
    return _FactItems(reversal_item, forward_item, inferences, [swapped, flipped])
