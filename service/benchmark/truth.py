"""Teacher quality against the truth: how many augmented statements are true, how many contradict
the generator's world, and how many of the inferences the test items need were produced.

The matcher, in four rules:
1. Normalize: lower case, letters only, drop "a"/"an"/"the", "is"->"are", "has"->"have",
   "does"->"do", "n't"/"cannot" -> "not", a nonsense word's plural or third person -> the word
   (``statements.normal_tokens``). Cut the text into sentences at . ! ? ; : and line breaks.
2. Recognise: inside each sentence, find the statement forms the generators know (their
   templates, e.g. "<ent> are brighter than <ent>", "compared to <ent>, <ent> are dimmer",
   "every <cat> can <act>", "<cat> are <pp> by <cat>"), longest first, never overlapping; any
   other words around them (a lead-in such as "Did you know that", "therefore") are ignored.
   A sentence with a negation word ("not", "never", "false", ...) outside its recognised forms
   counts as saying nothing ("it is not true that ..." is not read as an assertion).
3. Decide each recognised statement with the generator's world: true, false (a contradiction:
   e.g. names swapped without flipping the comparative, the wrong quantifier, "abmes are a type
   of gruds" for "gruds are a type of abmes", a property of another category), or undecided
   (e.g. a comparison between entities the world never compares).
4. Label the whole statement: "contradiction" if any part is false; else "true" if any part is
   true; else "unknown" (garbage, undecided, or nothing recognised).

Per strategy: precision = true / kept, contradiction rate = contradictions / kept, and recall =
the share of the test items' ``needed_inferences`` that some true statement of that strategy
states *in words of its own*: a recognised true part counts for a needed inference when it
has the same key (same relation, same subject first) and its normalized words do not occur
inside any training sentence (copying the training sentence back is not a rephrasing).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from service.benchmark.datasets import BenchmarkDataset, Knowledge, knowledge
from service.benchmark.datasets.statements import (
    NEGATIONS,
    Matcher,
    normal_form,
    sentences,
)

Label = Literal["true", "contradiction", "unknown"]
ALL = "all"
REVERSAL = "reversal"


@dataclass(frozen=True)
class AugmentedStatement:
    """One kept augmentation output; ``source_doc_id`` (optional) attributes it to a dataset."""

    text: str
    strategy: str
    source_doc_id: str | None = None


@dataclass
class Verdict:
    """What the matcher made of one statement."""

    text: str
    strategy: str
    dataset: str | None  # the dataset whose words it uses (None: no known word)
    label: Label
    true_keys: list[str] = field(default_factory=list)
    false_keys: list[str] = field(default_factory=list)
    novel_keys: list[str] = field(default_factory=list)  # true, in words of its own


@dataclass
class StrategyQuality:
    """One strategy's numbers over one scope ("all" or a dataset name). Rates are None when
    there is nothing to divide by."""

    strategy: str
    scope: str
    kept: int
    true: int
    contradiction: int
    unknown: int
    novel_true: int
    precision: float | None
    contradiction_rate: float | None
    recall: dict[str, float | None]  # by "<dataset>/<split>", plus "all" and "reversal"
    needed: dict[str, int]  # how many needed inferences each recall is over


@dataclass
class TruthReport:
    qualities: list[StrategyQuality]
    verdicts: list[Verdict]

    def get(self, strategy: str, scope: str = ALL) -> StrategyQuality:
        for q in self.qualities:
            if q.strategy == strategy and q.scope == scope:
                return q
        raise KeyError(f"no numbers for strategy {strategy!r} in scope {scope!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class TruthJudge:
    """The truth of statements about a suite of datasets (their words must be disjoint, as
    ``generate_suite`` makes them)."""

    def __init__(self, datasets: BenchmarkDataset | Sequence[BenchmarkDataset]) -> None:
        self.datasets = [datasets] if isinstance(datasets, BenchmarkDataset) else list(datasets)
        self._knowledge: list[Knowledge] = [knowledge(d) for d in self.datasets]
        self.lexicon: dict[str, tuple[str, str]] = {}
        self._owner: dict[str, int] = {}  # base word -> dataset index
        templates = []
        for index, know in enumerate(self._knowledge):
            for surface, entry in know.lexicon.items():
                if self._owner.setdefault(entry[1], index) != index:
                    raise ValueError(f"word {entry[1]!r} belongs to two datasets; use one suite")
                self.lexicon[surface] = entry
            templates.extend(t for t in know.templates if t not in templates)
        self.matcher = Matcher(self.lexicon, templates)
        self._doc_dataset = {doc.id: i for i, d in enumerate(self.datasets) for doc in d.documents}
        # Every run of words inside a training sentence, normalized: what a copy would repeat.
        self._training_spans: set[tuple[str, ...]] = set()
        for d in self.datasets:
            for doc in d.documents:
                for sentence in sentences(doc.text):
                    tokens = normal_form(sentence, self.lexicon)
                    for i in range(len(tokens)):
                        for j in range(i + 1, len(tokens) + 1):
                            self._training_spans.add(tokens[i:j])

    def parts(self, text: str) -> list[tuple[bool | None, str, bool]]:
        """(truth, key, novel) for each statement recognised in ``text`` (rules 1-3)."""
        out = []
        for sentence in sentences(text):
            matches, outside = self.matcher.find(sentence)
            if any(t in NEGATIONS for t in outside):
                continue
            for m in matches:
                index = self._owner[m.values[0][1]]
                truth, key = self._knowledge[index].judge(m)
                out.append((truth, key, m.form not in self._training_spans))
        return out

    def classify(self, text: str, strategy: str = "", source_doc_id: str | None = None) -> Verdict:
        """The verdict on one statement (rule 4)."""
        parts = self.parts(text)
        true_keys = [k for t, k, _ in parts if t is True]
        false_keys = [k for t, k, _ in parts if t is False]
        label: Label = "contradiction" if false_keys else "true" if true_keys else "unknown"
        return Verdict(
            text=text,
            strategy=strategy,
            dataset=self._dataset_of(text, source_doc_id),
            label=label,
            true_keys=true_keys,
            false_keys=false_keys,
            novel_keys=[k for t, k, novel in parts if t is True and novel],
        )

    def _dataset_of(self, text: str, source_doc_id: str | None) -> str | None:
        if source_doc_id is not None and source_doc_id in self._doc_dataset:
            return self.datasets[self._doc_dataset[source_doc_id]].name
        votes: dict[int, int] = {}
        for token in normal_form(text, self.lexicon):
            if token in self._owner:
                votes[self._owner[token]] = votes.get(self._owner[token], 0) + 1
        if not votes:
            return None
        return self.datasets[max(votes, key=lambda i: (votes[i], -i))].name

    def needed_keys(self) -> dict[str, list[tuple[str, str]]]:
        """Per dataset name, (category, key) of every needed inference of every test item."""
        out: dict[str, list[tuple[str, str]]] = {}
        for d in self.datasets:
            pairs = out.setdefault(d.name, [])
            for item in d.test_items:
                for statement in item.needed_inferences:
                    keys = [k for t, k, _ in self.parts(statement) if t is True]
                    if len(keys) != 1:
                        raise ValueError(
                            f"needed inference {statement!r} of {item.id} is not one "
                            f"true statement to the matcher (found {keys})"
                        )
                    pairs.append((item.category, keys[0]))
        return out

    def score(self, statements: Iterable[AugmentedStatement | tuple[str, str]]) -> TruthReport:
        """Verdicts on every statement, and per strategy (in first-seen order) its numbers over
        all datasets and over each dataset alone."""
        verdicts: list[Verdict] = []
        for s in statements:
            if not isinstance(s, AugmentedStatement):
                s = AugmentedStatement(text=s[0], strategy=s[1])
            verdicts.append(self.classify(s.text, s.strategy, s.source_doc_id))
        needed = self.needed_keys()
        strategies = list(dict.fromkeys(v.strategy for v in verdicts))
        qualities = []
        for strategy in strategies:
            mine = [v for v in verdicts if v.strategy == strategy]
            produced = {k for v in mine for k in v.novel_keys}
            all_needed = [pair for pairs in needed.values() for pair in pairs]
            qualities.append(_quality(strategy, ALL, mine, produced, all_needed))
            for d in self.datasets:
                scoped = [v for v in mine if v.dataset == d.name]
                qualities.append(_quality(strategy, d.name, scoped, produced, needed[d.name]))
        return TruthReport(qualities=qualities, verdicts=verdicts)


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _quality(
    strategy: str,
    scope: str,
    verdicts: list[Verdict],
    produced: set[str],
    needed: list[tuple[str, str]],
) -> StrategyQuality:
    kept = len(verdicts)
    counts = {
        label: sum(1 for v in verdicts if v.label == label)
        for label in ("true", "contradiction", "unknown")
    }
    groups: dict[str, list[str]] = {ALL: [k for _, k in needed]}
    groups[REVERSAL] = [k for c, k in needed if c.endswith("/" + REVERSAL)]
    for category, key in needed:
        groups.setdefault(category, []).append(key)
    return StrategyQuality(
        strategy=strategy,
        scope=scope,
        kept=kept,
        true=counts["true"],
        contradiction=counts["contradiction"],
        unknown=counts["unknown"],
        novel_true=sum(1 for v in verdicts if v.label == "true" and v.novel_keys),
        precision=_ratio(counts["true"], kept),
        contradiction_rate=_ratio(counts["contradiction"], kept),
        recall={
            name: _ratio(sum(1 for k in keys if k in produced), len(keys))
            for name, keys in groups.items()
        },
        needed={name: len(keys) for name, keys in groups.items()},
    )


def score_augmentations(
    datasets: BenchmarkDataset | Sequence[BenchmarkDataset],
    statements: Iterable[AugmentedStatement | tuple[str, str]],
) -> TruthReport:
    """Shorthand for ``TruthJudge(datasets).score(statements)``."""
    return TruthJudge(datasets).score(statements)
