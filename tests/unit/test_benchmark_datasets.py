"""The benchmark generators: deterministic, well-formed, and every test item answerable from the
training documents plus the one inference its split names, without its answer in training."""

from __future__ import annotations

import itertools
import json
import re
from functools import cache
from pathlib import Path

import pytest

from service.benchmark.datasets import (
    DATASET_NAMES,
    BenchmarkDataset,
    generate,
    generate_suite,
    write_dataset,
)
from service.benchmark.datasets.simple_reversals import DIMENSIONS
from service.benchmark.datasets.statements import normal_tokens, sentences
from service.benchmark.datasets.words import nonsense_words, stoplist
from service.benchmark.truth import TruthJudge
from service.evaluate.evalset import parse_evalset_jsonl

SIZES_UNDER_TEST = ("tiny", "small")


@cache
def suite(size: str, seed: int = 0) -> tuple[BenchmarkDataset, ...]:
    return tuple(generate_suite(size, seed))


@cache
def judge(size: str) -> TruthJudge:
    return TruthJudge(list(suite(size)))


def dataset(size: str, name: str) -> BenchmarkDataset:
    return next(d for d in suite(size) if d.name == name)


def all_datasets() -> list[tuple[str, str]]:
    return [(size, name) for size in SIZES_UNDER_TEST for name in DATASET_NAMES]


def training_token_runs(ds: BenchmarkDataset) -> set[tuple[str, ...]]:
    """Every run of normalized tokens inside one training sentence."""
    runs: set[tuple[str, ...]] = set()
    for doc in ds.documents:
        for sentence in sentences(doc.text):
            tokens = tuple(normal_tokens(sentence))
            for i in range(len(tokens)):
                for j in range(i + 1, len(tokens) + 1):
                    runs.add(tokens[i:j])
    return runs


def in_training(ds: BenchmarkDataset, statement: str) -> bool:
    return tuple(normal_tokens(statement)) in training_token_runs(ds)


# -- determinism and shape --------------------------------------------------------------------


@pytest.mark.parametrize(("size", "name"), all_datasets())
def test_same_seed_gives_the_same_json_and_another_seed_differs(size: str, name: str) -> None:
    first = generate(name, size, seed=3).to_json()
    assert generate(name, size, seed=3).to_json() == first
    assert generate(name, size, seed=4).to_json() != first
    assert BenchmarkDataset.from_json(first).to_json() == first


def test_words_are_nonsense_and_disjoint_between_datasets() -> None:
    streams = [list(itertools.islice(nonsense_words(7, i, 3), 300)) for i in range(3)]
    again = list(itertools.islice(nonsense_words(7, 1, 3), 300))
    assert again == streams[1]
    words = [w for s in streams for w in s]
    assert len(set(words)) == len(words)
    stop = stoplist()
    for w in words:
        assert re.fullmatch(r"[a-z]{4,5}", w), w
        assert w[-1] not in "sxyzh" and w not in stop, w
    # No two words are one substitution apart (a 135M model would confuse them).
    by_shape: dict[tuple[int, int, str], list[str]] = {}
    for w in words:
        for i in range(len(w)):
            by_shape.setdefault((len(w), i, w[:i] + w[i + 1 :]), []).append(w)
    assert all(len(group) == 1 for group in by_shape.values())


@pytest.mark.parametrize("size", SIZES_UNDER_TEST)
def test_datasets_of_a_suite_share_no_word(size: str) -> None:
    lexicons = [set(judge(size)._knowledge[i].lexicon) for i in range(len(DATASET_NAMES))]
    for a, b in itertools.combinations(lexicons, 2):
        assert not a & b


@pytest.mark.parametrize(("size", "name"), all_datasets())
def test_items_are_well_formed_and_the_evalset_parses(size: str, name: str) -> None:
    ds = dataset(size, name)
    assert ds.documents and ds.test_items and ds.true_inferences
    assert len({i.id for i in ds.test_items}) == len(ds.test_items)
    for item in ds.test_items:
        assert item.question.strip()
        assert item.answer in item.choices
        assert len(item.choices) >= 2
        assert len(set(item.choices)) == len(item.choices)
        # Distinct after normalization too, so no two choices say the same thing in other case.
        assert len({tuple(normal_tokens(c)) for c in item.choices}) == len(item.choices)
        assert item.category == f"{name}/{item.split}"
        assert item.premises
        if item.split == "forward":  # the trained statement itself: nothing to infer
            assert item.needed_inferences == [] and item.answer in item.premises
        else:
            assert item.needed_inferences
    parsed = parse_evalset_jsonl(ds.to_evalset_jsonl().encode())
    assert [p.id for p in parsed] == [i.id for i in ds.test_items]
    assert {p.category for p in parsed} == {f"{name}/{s}" for s in ds.splits()}
    line = json.loads(ds.to_evalset_jsonl().splitlines()[0])
    assert set(line) == {"id", "question", "answer", "choices", "category"}
    files = ds.documents_as_files()
    assert len({f for f, _ in files}) == len(files) == len(ds.documents)
    assert all(f.endswith(".txt") and text.strip() for f, text in files)


def test_expected_splits_and_small_budget() -> None:
    small = suite("small")
    assert [d.name for d in small] == list(DATASET_NAMES)
    assert dataset("small", "semantic").splits().keys() == {
        "rephrasing",
        "reversal",
        "syllogism",
        "holdout",
    }
    # The bench's small size (simple reversals and syllogisms) separates its columns with a
    # paired test: at least 40 items in each of the forward, reversal and syllogism splits...
    reversals, syllogisms = dataset("small", "simple_reversals"), dataset("small", "syllogisms")
    assert reversals.splits().keys() == {"forward", "reversal"}
    assert syllogisms.splits().keys() == {"forward", "syllogism"}
    assert min(reversals.splits().values()) >= 40 and min(syllogisms.splits().values()) >= 40
    # ... from few, short documents, so training to the plateau fits a 2-core CPU's 30 minutes.
    documents = reversals.documents + syllogisms.documents
    words = sum(len(d.text.split()) for d in documents)
    assert len(documents) <= 15 and words <= 1400, (len(documents), words)
    assert sum(len(d.documents) for d in suite("tiny")) < sum(len(d.documents) for d in small)


# -- nothing answered verbatim, everything answerable ---------------------------------------------


@pytest.mark.parametrize(("size", "name"), all_datasets())
def test_no_choice_appears_verbatim_in_training(size: str, name: str) -> None:
    ds = dataset(size, name)
    runs = training_token_runs(ds)
    for item in ds.test_items:
        for choice in item.choices:
            # A forward item asks for a trained statement; only its answer is in training.
            verbatim = item.split == "forward" and choice == item.answer
            assert (tuple(normal_tokens(choice)) in runs) == verbatim, (item.id, choice)


@pytest.mark.parametrize(("size", "name"), all_datasets())
def test_premises_appear_in_training(size: str, name: str) -> None:
    ds = dataset(size, name)
    for item in ds.test_items:
        for premise in item.premises:
            assert in_training(ds, premise), (item.id, premise)


@pytest.mark.parametrize(("size", "name"), all_datasets())
def test_answers_are_true_and_distractors_are_not(size: str, name: str) -> None:
    j = judge(size)
    ds = dataset(size, name)
    for item in ds.test_items:
        assert j.classify(item.answer).label == "true", item.answer
        for choice in item.choices:
            if choice != item.answer:
                label = j.classify(choice).label
                # Only a syllogism can leave a wrong choice undecided ("all P are S").
                allowed = (
                    {"contradiction", "unknown"} if name == "syllogisms" else {"contradiction"}
                )
                assert label in allowed, (item.id, choice, label)


_COMPARATIVE = re.compile(r"^(\w+) are (.+) than (\w+)\.$")


@pytest.mark.parametrize("size", SIZES_UNDER_TEST)
def test_simple_reversal_items_reverse_a_trained_fact(size: str) -> None:
    ds = dataset(size, "simple_reversals")
    inverse = {d.higher: d.lower for d in DIMENSIONS} | {d.lower: d.higher for d in DIMENSIONS}
    mentions = {"tiny": 2, "small": 1}[size]
    forward = {i.premises[0]: i for i in ds.test_items if i.split == "forward"}
    reversals = [i for i in ds.test_items if i.split == "reversal"]
    assert len(forward) == len(reversals) == len(ds.world["facts"])
    for item in reversals:
        (premise,) = item.premises
        # Its fact's forward item: the trained statement against the comparative flipped.
        a, relation, b = _COMPARATIVE.match(premise).groups()  # type: ignore[union-attr]
        (flipped,) = [c for c in forward[premise].choices if c != premise]
        assert _COMPARATIVE.match(flipped).groups() == (a, inverse[relation], b)  # type: ignore[union-attr]
        y, reversed_relation, x = _COMPARATIVE.match(item.answer).groups()  # type: ignore[union-attr]
        assert (x.lower(), y.lower()) == (a.lower(), b.lower())
        assert reversed_relation == inverse[relation]
        (wrong,) = [c for c in item.choices if c != item.answer]
        assert _COMPARATIVE.match(wrong).groups() == (y, relation, x)  # type: ignore[union-attr]
        holding = [d for d in ds.documents if premise[:-1].lower() in d.text.lower()]
        assert len(holding) == mentions
    answers = [_COMPARATIVE.match(i.answer).group(2) for i in reversals]  # type: ignore[union-attr]
    higher = sum(1 for a in answers if a in {d.higher for d in DIMENSIONS})
    assert abs(2 * higher - len(answers)) <= 1  # "more" is the answer half of the time


_QUANTIFIED = re.compile(r"^(All|Some|No) (\w+) are (\w+)\.$")


def _entailed(statement: tuple[str, str, str], premises: list[tuple[str, str, str]]) -> bool:
    """Independent check by brute force over which of the 8 Venn regions of three terms are
    inhabited (each term inhabited: the traditional reading)."""
    terms = sorted({t for _, a, b in [*premises, statement] for t in (a, b)})
    regions = [
        frozenset(c) for n in range(len(terms) + 1) for c in itertools.combinations(terms, n)
    ]

    def holds(s: tuple[str, str, str], inhabited: list[frozenset[str]]) -> bool:
        q, a, b = s
        with_a = [r for r in inhabited if a in r]
        if q == "All":
            return all(b in r for r in with_a)
        overlap = any(b in r for r in with_a)
        return overlap if q == "Some" else not overlap

    for mask in range(1 << len(regions)):
        inhabited = [r for i, r in enumerate(regions) if mask >> i & 1]
        if not all(any(t in r for r in inhabited) for t in terms):
            continue
        if all(holds(p, inhabited) for p in premises) and not holds(statement, inhabited):
            return False
    return True


@pytest.mark.parametrize("size", SIZES_UNDER_TEST)
def test_syllogism_items_follow_from_premises_in_one_document(size: str) -> None:
    ds = dataset(size, "syllogisms")
    conclusions = set()
    # A forward item's premises are its answer alone: entailed by it, the other choices not.
    assert {i.split for i in ds.test_items} == {"forward", "syllogism"}
    for item in ds.test_items:
        premises = [_QUANTIFIED.match(p).groups() for p in item.premises]  # type: ignore[union-attr]
        assert any(all(p in d.text for p in item.premises) for d in ds.documents)
        ends = re.fullmatch(r"The relationships between (\w+) and (\w+) are:", item.question)
        assert ends is not None
        for choice in item.choices:
            statement = _QUANTIFIED.match(choice).groups()  # type: ignore[union-attr]
            assert {statement[1], statement[2]} == set(ends.groups())
            assert _entailed(statement, premises) == (choice == item.answer), choice
        conclusions.add(item.answer.split()[0])
    assert conclusions == {"All", "Some", "No"}


def _facts(size: str, statement: str) -> list[str]:
    """Keys of the true statements the matcher finds in ``statement``."""
    return [key for truth, key, _ in judge(size).parts(statement) if truth]


@pytest.mark.parametrize("size", SIZES_UNDER_TEST)
def test_semantic_items_need_exactly_their_split_inference(size: str) -> None:
    ds = dataset(size, "semantic")
    holdouts = {c["name"] for c in ds.world["categories"] if c["holdout"]}
    for item in ds.test_items:
        (answer,) = _facts(size, item.answer)
        premises = [_facts(size, p) for p in item.premises]
        assert all(len(p) == 1 for p in premises), item.premises
        keys = [p[0] for p in premises]
        if item.split == "rephrasing":
            assert keys == [answer]
            assert normal_tokens(item.premises[0]) != normal_tokens(item.answer)
        elif item.split == "reversal":
            (premise,) = keys
            kind, *rest = premise.split(":")
            if kind == "isa":
                assert answer == f"incl:{rest[1]}:{rest[0]}"
            else:
                assert kind == "rel" and answer == f"pass:{rest[2]}:{rest[1]}:{rest[0]}"
        else:
            # A chain of "is a" links from the subject up to the owner, then the owner's fact.
            *links, owned = keys
            subject = answer.split(":")[1]
            assert (subject in holdouts) == (item.split == "holdout")
            current = subject
            for link in links:
                kind, child, parent = link.split(":")
                assert kind == "isa" and child == current
                current = parent
            assert links and owned.split(":")[1] == current
            assert answer.replace(f":{subject}:", f":{current}:", 1) == owned


@pytest.mark.parametrize("size", SIZES_UNDER_TEST)
def test_held_out_categories_appear_only_in_their_parent_link(size: str) -> None:
    ds = dataset(size, "semantic")
    parent = {c["name"]: c["parent"] for c in ds.world["categories"]}
    holdouts = {c["name"] for c in ds.world["categories"] if c["holdout"]}
    seen: set[str] = set()
    for doc in ds.documents:
        for sentence in sentences(doc.text):
            tokens = set(normal_tokens(sentence))
            for h in holdouts & {judge(size).lexicon.get(t, ("", t))[1] for t in tokens}:
                assert _facts(size, sentence) == [f"isa:{h}:{parent[h]}"], sentence
                seen.add(h)
    assert seen == holdouts
    tested = {
        _facts(size, i.answer)[0].split(":")[1] for i in ds.test_items if i.split == "holdout"
    }
    assert tested <= holdouts and tested


@pytest.mark.parametrize("size", (*SIZES_UNDER_TEST, "medium"))
def test_semantic_documents_are_short_articles(size: str) -> None:
    ds = generate("semantic", size, seed=1)
    for doc in ds.documents:
        body = doc.text.split("\n", 1)[1]
        count = len(re.findall(r"[.?!](?:\s|$)", body))
        assert 4 <= count <= 10, doc.text


def test_write_dataset_round_trips(tmp_path: Path) -> None:
    ds = dataset("tiny", "syllogisms")
    folder = write_dataset(ds, tmp_path)
    assert (
        BenchmarkDataset.from_json((folder / "dataset.json").read_text()).to_json() == ds.to_json()
    )
    assert len(list((folder / "documents").glob("*.txt"))) == len(ds.documents)
    assert (folder / "evalset.jsonl").read_text() == ds.to_evalset_jsonl()
    lines = (folder / "true_inferences.jsonl").read_text().splitlines()
    assert [json.loads(line)["statement"] for line in lines] == [
        i.statement for i in ds.true_inferences
    ]
