"""The truth matcher on hand-made statements, and the per-strategy precision and recall."""

from __future__ import annotations

import json
from typing import Any

import pytest

from service.benchmark.datasets import BenchmarkDataset, generate_suite
from service.benchmark.datasets.semantic import FORMS, TEMPLATES
from service.benchmark.datasets.simple_reversals import DIMENSIONS
from service.benchmark.truth import AugmentedStatement, TruthJudge, score_augmentations

SUITE = generate_suite("tiny", seed=0)
JUDGE = TruthJudge(SUITE)
REVERSALS, SYLLOGISMS, SEMANTIC = SUITE


def label(text: str) -> str:
    return JUDGE.classify(text).label


def comparison() -> tuple[str, str, Any]:
    """(higher entity, lower entity, dimension) of the first simple-reversal fact."""
    fact = REVERSALS.world["facts"][0]
    dim = next(d for d in DIMENSIONS if d.adjective == fact["dimension"])
    return fact["higher"], fact["lower"], dim


def test_comparisons_reversed_swapped_and_garbage() -> None:
    hi, lo, dim = comparison()
    assert label(f"{lo} are {dim.lower} than {hi}.") == "true"  # the correct reversal
    assert label(f"{hi} are {dim.higher} than {lo}.") == "true"
    assert label(f"{lo} are {dim.higher} than {hi}.") == "contradiction"  # names swapped only
    assert label(f"{hi} are {dim.lower} than {lo}.") == "contradiction"
    assert label("Xq zzv lorem, the cat sat on 42 mats!!") == "unknown"
    assert label("") == "unknown"


def test_comparison_wordings_case_plural_and_lead_ins() -> None:
    hi, lo, dim = comparison()
    assert label(f"Did you know that {lo.upper()}S are less {dim.adjective} than {hi}s?") == "true"
    assert label(f"Compared to {hi}, {lo} are {dim.lower}.") == "true"
    assert label(f"A {lo} is not as {dim.adjective} as a {hi}.") == "true"
    assert label(f"{lo} are {dim.lower} compared with {hi}") == "true"
    assert (
        label(f"I learned that {hi} are {dim.higher} than {lo}, so {lo} are {dim.lower} than {hi}.")
        == "true"
    )


def test_negated_undecided_and_mixed_statements() -> None:
    hi, lo, dim = comparison()
    other = next(d for d in DIMENSIONS if d is not dim)
    stranger = REVERSALS.world["facts"][1]["higher"]
    assert label(f"It is not true that {lo} are {dim.lower} than {hi}.") == "unknown"
    assert label(f"{hi} are {other.higher} than {lo}.") == "unknown"  # never compared on it
    assert label(f"{hi} are {dim.higher} than {stranger}.") == "unknown"  # never compared
    both = f"{hi} are {dim.higher} than {lo}. {lo} are {dim.higher} than {hi}."
    assert label(both) == "contradiction"


def test_syllogism_statements() -> None:
    example = SYLLOGISMS.world["examples"][0]
    q, s, p = example["conclusion"]
    opposite = {"all": "No", "no": "Some", "some": "No"}[q]
    assert label(f"{q.capitalize()} {s} are {p}.") == "true"
    assert label(f"{opposite} {s} are {p}.") == "contradiction"
    assert label(f"Therefore, {opposite.lower()} {p} are {s}.") == "contradiction"
    premise_q, a, b = example["premises"][0]
    assert label(f"{premise_q.capitalize()} {a} are {b}.") == "true"
    outsider = SYLLOGISMS.world["examples"][1]["terms"]["P"]
    assert label(f"All {s} are {outsider}.") == "unknown"  # terms of two unrelated examples


def semantic_case() -> dict[str, str]:
    """A trained child category, its parent, a property the parent owns, a property owned
    outside the child's lineage, and a relation."""
    cats = {c["name"]: c for c in SEMANTIC.world["categories"]}
    props = SEMANTIC.world["properties"]

    def lineage(c: str) -> set[str]:
        out = set()
        while c is not None:
            out.add(c)
            c = cats[c]["parent"]
        return out

    child = next(c for c in cats.values() if c["parent"] and not c["holdout"])["name"]
    parent = cats[child]["parent"]
    owned = next(p for p in props if p["owner"] == parent)
    foreign = next(
        p for p in props if p["kind"] == owned["kind"] and p["owner"] not in lineage(child)
    )
    rel = SEMANTIC.world["relations"][0]
    return {
        "child": child,
        "parent": parent,
        "kind": owned["kind"],
        "owned": owned["word"],
        "foreign": foreign["word"],
        "subject": rel["subject"],
        "verb": rel["verb"],
        "object": rel["object"],
    }


def render(group: str, index: int = 0, **values: str) -> str:
    return TEMPLATES[group][index].render(values, FORMS)


def test_semantic_statements() -> None:
    c = semantic_case()
    child, parent = c["child"], c["parent"]
    assert label(render("isa", x=child, y=parent)) == "true"
    assert label(render("isa", x=parent, y=child)) == "contradiction"
    assert label(render("incl", x=parent, y=child)) == "true"  # the reversal
    assert label(render("incl", 1, x=parent, y=child)) == "true"
    assert label(render("incl", x=child, y=parent)) == "contradiction"  # names swapped
    assert label(render(c["kind"], 2, x=child, p=c["owned"])) == "true"  # inherited
    assert label(render(c["kind"], 2, x=child, p=c["foreign"])) == "contradiction"
    rel = {"x": c["subject"], "r": c["verb"], "y": c["object"]}
    assert label(render("rel", **rel)) == "true"
    assert label(render("pass", **rel)) == "true"
    assert label(render("pass", x=c["object"], r=c["verb"], y=c["subject"])) == "contradiction"
    assert label(f"{child}s are wonderful and {parent}s are old.") == "unknown"


def test_precision_contradiction_rate_and_recall_per_strategy() -> None:
    hi, lo, dim = comparison()
    if REVERSALS.world["facts"][0]["stated"] == "higher":  # training: "hi are brighter than lo"
        forward, reversal, swapped = (
            f"{hi} are {dim.higher} than {lo}.",
            f"{lo} are {dim.lower} than {hi}.",
            f"{lo} are {dim.higher} than {hi}.",
        )
        rephrased = f"Compared to {hi}, {lo} are {dim.lower}."
    else:  # training: "lo are dimmer than hi"
        forward, reversal, swapped = (
            f"{lo} are {dim.lower} than {hi}.",
            f"{hi} are {dim.higher} than {lo}.",
            f"{hi} are {dim.lower} than {lo}.",
        )
        rephrased = f"Compared to {lo}, {hi} are {dim.higher}."
    assert any(forward[:-1] in d.text.lower() for d in REVERSALS.documents)
    statements = [
        (reversal, "local"),
        (swapped, "local"),
        ("Nothing to see here.", "local"),
        (rephrased, "local"),  # the same inference again, other words
        (forward, "global"),  # a copy of the training fact
    ]
    report = JUDGE.score(statements)
    local = report.get("local")
    assert (local.kept, local.true, local.contradiction, local.unknown) == (4, 2, 1, 1)
    assert local.precision == 0.5 and local.contradiction_rate == 0.25
    n = sum(1 for i in REVERSALS.test_items if i.split == "reversal")  # forward needs nothing
    assert local.needed["simple_reversals/reversal"] == n
    assert local.recall["simple_reversals/reversal"] == pytest.approx(1 / n)
    assert local.recall["syllogisms/syllogism"] == 0.0
    reversal_items = sum(1 for d in SUITE for i in d.test_items if i.split == "reversal")
    assert local.recall["reversal"] == pytest.approx(1 / reversal_items)
    scoped = report.get("local", "simple_reversals")
    assert scoped.kept == 3 and scoped.precision == pytest.approx(2 / 3)
    assert report.get("local", "semantic").precision is None  # nothing kept there
    copy = report.get("global")
    assert copy.precision == 1.0 and copy.novel_true == 0 and copy.recall["all"] == 0.0
    with pytest.raises(KeyError):
        report.get("both")
    json.dumps(report.to_dict())


def test_copied_training_sentences_do_not_count_as_rephrasings() -> None:
    item = next(i for i in SEMANTIC.test_items if i.split == "rephrasing")
    copies = [AugmentedStatement(p, "copy") for p in item.premises]
    fresh = [AugmentedStatement(item.answer, "fresh")]
    report = score_augmentations(SUITE, copies + fresh)
    assert report.get("copy").precision == 1.0
    assert report.get("copy").recall["semantic/rephrasing"] == 0.0
    assert report.get("fresh").recall["semantic/rephrasing"] > 0.0


@pytest.mark.parametrize("dataset", SUITE, ids=lambda d: d.name)
def test_the_oracle_is_all_true_and_recalls_every_needed_inference(
    dataset: BenchmarkDataset,
) -> None:
    statements = [
        AugmentedStatement(i.statement, "oracle", (i.source_doc_ids or [None])[0])
        for i in dataset.true_inferences
    ]
    quality = JUDGE.score(statements).get("oracle", dataset.name)
    assert quality.kept == len(statements) and quality.precision == 1.0
    assert all(r == 1.0 for name, r in quality.recall.items() if quality.needed[name]), quality


def test_contradiction_examples_are_contradictions() -> None:
    for dataset in SUITE:
        assert dataset.contradictions
        assert {label(c) for c in dataset.contradictions} == {"contradiction"}


def test_source_document_decides_the_scope() -> None:
    hi, lo, dim = comparison()
    doc = SEMANTIC.documents[0].id
    report = JUDGE.score([AugmentedStatement(f"{hi} are {dim.higher} than {lo}.", "s", doc)])
    assert report.verdicts[0].dataset == "semantic"
    assert report.get("s", "semantic").kept == 1


def test_datasets_that_share_words_are_refused() -> None:
    with pytest.raises(ValueError, match="two datasets"):
        TruthJudge([REVERSALS, REVERSALS])
