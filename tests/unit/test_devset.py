"""The hand-written devset: gold loads and validates, normalization, and the scorer's figures."""

from __future__ import annotations

import json
from importlib import resources

import pytest

from service.benchmark.devset import (
    GOLD_PATH,
    check_coverage,
    load_devset,
    normalize,
)
from service.benchmark.devset.score import (
    JUDGMENTS_PATH,
    VERDICTS,
    load_judgments,
    render_markdown,
    score,
)


@pytest.fixture(scope="module")
def devset():
    return load_devset()


def test_gold_loads_with_the_required_sizes(devset) -> None:
    assert devset.company == "Calloway Logistics"
    assert len(devset.documents) >= 14
    assert len(devset.sentences) >= 230
    assert len(devset.reversal_entries()) >= 120
    sentences_with_reversal = [
        s for _, s in devset.sentences if any(e.kind == "reversal" for e in s.true)
    ]
    assert len(sentences_with_reversal) >= 120
    assert len(devset.cross) >= 30
    assert {d.split for d in devset.documents} == {"dev", "heldout"}
    assert {c.split for c in devset.cross} == {"dev", "heldout"}
    assert sum(d.split == "heldout" for d in devset.documents) == 4
    assert {d.format for d in devset.documents} == {"md", "txt"}


def test_every_document_is_fully_covered_by_its_gold_sentences(devset) -> None:
    problems = [p for d in devset.documents for p in check_coverage(d)]
    assert problems == []


def test_every_relational_sentence_has_a_true_entry(devset) -> None:
    # a sentence with false entries is one a reader can get wrong, so it states something
    lacking = [s.text for _, s in devset.sentences if s.false and not s.true]
    assert lacking == []


def test_splits_filter_documents_and_cross_facts(devset) -> None:
    dev, heldout = load_devset("dev"), load_devset("heldout")
    assert len(dev.documents) + len(heldout.documents) == len(devset.documents)
    assert len(dev.cross) + len(heldout.cross) == len(devset.cross)
    assert {d.split for d in heldout.documents} == {"heldout"}
    dev_ids = set(dev.document_ids)
    for fact in dev.cross:
        assert {doc for doc, _ in fact.sources} <= dev_ids
    with pytest.raises(ValueError, match="unknown split"):
        load_devset("test")


def test_documents_ship_as_package_data() -> None:
    root = resources.files("service.benchmark.devset")
    gold = json.loads(root.joinpath("gold.json").read_text(encoding="utf-8"))
    for doc in gold["documents"]:
        assert root.joinpath(doc["file"]).read_text(encoding="utf-8").strip()
    pyproject = (GOLD_PATH.parents[3] / "pyproject.toml").read_text()
    assert (
        '"service.benchmark.devset" = ["gold.json", "judgments.json", '
        '"documents/*.md", "documents/*.txt"]' in pyproject
    )


def _write_gold(tmp_path, mutate):
    gold = json.loads(GOLD_PATH.read_text(encoding="utf-8"))
    mutate(gold)
    (tmp_path / "documents").symlink_to(GOLD_PATH.parent / "documents")
    path = tmp_path / "gold.json"
    path.write_text(json.dumps(gold), encoding="utf-8")
    return path


def test_validation_names_a_sentence_missing_from_its_document(tmp_path) -> None:
    def mutate(gold):
        gold["documents"][0]["sentences"][1]["text"] = "This sentence is in no document."

    with pytest.raises(ValueError, match="This sentence is in no document"):
        load_devset(gold_path=_write_gold(tmp_path, mutate))


def test_validation_rejects_a_bad_cross_source_and_a_true_false_conflict(tmp_path) -> None:
    def bad_source(gold):
        gold["cross_document"][0]["sources"][0][1] = "Nobody wrote this."

    with pytest.raises(ValueError, match="Nobody wrote this"):
        load_devset(gold_path=_write_gold(tmp_path, bad_source))

    def conflict(gold):
        s = next(s for s in gold["documents"][0]["sentences"] if s["true"])
        s["false"].append({"kind": "roles_swapped", "texts": [s["true"][0]["texts"][0]]})

    other = tmp_path / "other"
    other.mkdir()
    with pytest.raises(ValueError, match="is true in .* and false in"):
        load_devset(gold_path=_write_gold(other, conflict))


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            "The Platform team is led by Priya Nandakumar.",
            "the platform team is led by priya nandakumar",
        ),
        ("  Ledger  isn\u2019t an internal tool ! ", "ledger is not an internal tool"),
        (
            "Contractors don't and can't; it's \u201cfine\u201d.",
            'contractors do not and cannot; it is "fine"',
        ),
        ("All plans include 99.5% uptime.", "all plans include 99.5 percent uptime"),
        ("Who leads it? Priya Nandakumar.", "who leads it? priya nandakumar"),
        ("SEV1\u2013SEV2 incidents\u2026", "sev1-sev2 incidents"),
        ("Tom\u00e1s Ferreira's team won't.", "tom\u00e1s ferreira's team will not"),
    ],
)
def test_normalize(raw: str, expected: str) -> None:
    assert normalize(raw) == expected


def _ex(text: str, strategy: str = "local", document: str = "teams") -> dict:
    return {"text": text, "strategy": strategy, "document": document}


def test_score_outcomes_and_figures() -> None:
    dev = load_devset("dev")
    examples = [
        _ex("The Platform team is led by Priya Nandakumar."),  # true reversal
        _ex("the platform team is led by priya nandakumar"),  # same entry again: counted once
        _ex("The Platform team leads Priya Nandakumar."),  # roles swapped: false
        _ex("Priya Nandakumar enjoys sailing."),  # unmatched
        _ex("Ledger stores invoices for seven years.", document="teams"),  # true of another doc
        _ex("Tidemark is maintained by the Platform team.", "global", "tools"),  # cross true
        _ex("Tidemark maintains the Platform team.", "global", "teams"),  # cross false
        _ex("No contractor may access the payroll system.", "global", "handbook"),  # cross true
    ]
    result = score(examples, dev)
    outcomes = [e.outcome for e in result.examples]
    assert outcomes == ["true", "true", "false", "unmatched", "true", "true", "false", "true"]
    assert [e.where for e in result.examples] == [
        "document",
        "document",
        "document",
        None,
        "other_document",
        "cross",
        "cross",
        "cross",
    ]
    assert result.examples[0].source_sentence == "Priya Nandakumar leads the Platform team."

    local = result.strategies["local"]
    assert (local.kept, local.true, local.false, local.unmatched) == (5, 3, 1, 1)
    assert local.precision == pytest.approx(3 / 5)
    assert local.contradiction_rate == pytest.approx(1 / 5)
    low, high = local.precision_ci
    assert low < 0.6 < high
    assert local.reversal_matched == 1
    assert local.reversal_total == len(dev.reversal_entries())
    assert local.reversal_recall == pytest.approx(1 / len(dev.reversal_entries()))
    assert local.cross_kept == 0 and local.cross_precision is None

    glob = result.strategies["global"]
    assert (glob.kept, glob.true, glob.false, glob.unmatched) == (3, 2, 1, 0)
    assert (glob.cross_kept, glob.cross_true, glob.cross_false) == (3, 2, 1)
    assert glob.cross_precision == pytest.approx(2 / 3)
    assert glob.cross_matched == 2
    assert glob.cross_total == len(dev.cross)
    assert glob.cross_recall == pytest.approx(2 / len(dev.cross))

    overall = result.strategies["(all)"]
    assert (overall.kept, overall.true, overall.false, overall.unmatched) == (8, 5, 2, 1)


def test_score_restricted_to_documents() -> None:
    dev = load_devset("dev")
    result = score(
        [_ex("Tidemark is maintained by the Platform team.", "global", "tools")],
        dev,
        documents=["tools", "teams"],
    )
    s = result.strategies["global"]
    tools_teams = {"tools", "teams"}
    assert s.cross_total == sum({doc for doc, _ in c.sources} <= tools_teams for c in dev.cross)
    assert s.reversal_total == sum(
        1
        for d in dev.documents
        if d.id in tools_teams
        for st in d.sentences
        for e in st.true
        if e.kind == "reversal"
    )
    with pytest.raises(ValueError, match="not in the devset"):
        score([], dev, documents=["nope"])
    with pytest.raises(ValueError, match="needs a string 'document'"):
        score([{"text": "x", "strategy": "local"}], dev)


def test_render_markdown_lists_true_false_and_unmatched() -> None:
    result = score(
        [
            _ex("The Platform team is led by Priya Nandakumar."),
            _ex("The Platform team leads Priya Nandakumar."),
            _ex("Priya | Nandakumar enjoys sailing.", document="tools"),
        ],
        load_devset("dev"),
    )
    md = render_markdown(result)
    assert "| local | 3 | 1 | 1 | 0 | 0 | 0 | 1 | 33.3% |" in md
    assert "gold precision (lower bound)" in md and "read precision" in md
    assert "## True examples (1)" in md
    assert "## False examples: contradictions (1)" in md
    assert "## Unmatched examples (1)" in md
    assert "Priya Nandakumar leads the Platform team." in md  # the source sentence
    assert "Priya \\| Nandakumar" in md


# --------------------------------------------------------------------------- judged tier


def _write_judgments(tmp_path, judgments, version=1):
    path = tmp_path / "judgments.json"
    path.write_text(
        json.dumps({"version": version, "judge": "test", "judgments": judgments}),
        encoding="utf-8",
    )
    return path


def _j(text: str, verdict: str, note: str = "why", document: str = "teams") -> dict:
    return {"text": text, "document": document, "verdict": verdict, "note": note}


def test_judged_tier_outcomes_and_figures(tmp_path) -> None:
    judgments = load_judgments(
        _write_judgments(
            tmp_path,
            [
                _j("Priya Nandakumar heads the Platform team.", "true", "a fair rephrasing"),
                _j("Priya Nandakumar founded the Platform team.", "false", "not in the text"),
                _j("Priya Nandakumar Platform team leads.", "ungrammatical", "word order"),
                # the gold wins over a judgment: this one is gold-true
                _j("The Platform team is led by Priya Nandakumar.", "false"),
            ],
        )
    )
    examples = [
        _ex("The Platform team is led by Priya Nandakumar."),  # gold true
        _ex("The Platform team leads Priya Nandakumar."),  # gold false
        _ex("priya nandakumar heads the platform team"),  # judged true (normalized match)
        _ex("Priya Nandakumar founded the Platform team."),  # judged false
        _ex("Priya Nandakumar Platform team leads."),  # judged ungrammatical
        _ex("Priya Nandakumar enjoys sailing."),  # still unmatched
    ]
    result = score(examples, load_devset("dev"), judgments=judgments)
    assert [e.outcome for e in result.examples] == [
        "true",
        "false",
        "judged_true",
        "judged_false",
        "judged_ungrammatical",
        "unmatched",
    ]
    assert result.examples[0].judgment is None
    assert result.examples[2].judgment.note == "a fair rephrasing"
    assert result.examples[5].judgment is None and result.examples[5].where is None

    s = result.strategies["local"]
    assert (s.kept, s.true, s.false, s.unmatched) == (6, 1, 1, 1)
    assert (s.judged_true, s.judged_false, s.judged_ungrammatical) == (1, 1, 1)
    assert len(s.judged_examples) == 3 and len(s.unmatched_examples) == 1
    assert s.precision == pytest.approx(1 / 6)  # gold-only lower bound unchanged
    assert s.read_precision == pytest.approx(2 / 6)
    low, high = s.read_precision_ci
    assert low < 2 / 6 < high
    assert s.read_precision_ci != s.precision_ci
    assert s.contradiction_rate == pytest.approx(1 / 6)
    assert s.read_contradiction_rate == pytest.approx(2 / 6)

    # without judgments the same statements are unmatched and count as not true
    plain = score(examples, load_devset("dev"), judgments={}).strategies["local"]
    assert (plain.unmatched, plain.judged_true) == (4, 0)
    assert plain.read_precision == plain.precision == pytest.approx(1 / 6)

    md = render_markdown(result)
    assert "| local | 6 | 1 | 1 | 1 | 1 | 1 | 1 | 16.7% |" in md
    assert "## Judged examples: outside the gold, read by a person (3)" in md
    assert "| judged false | not in the text |" not in md
    assert "| false | not in the text |" in md
    assert "| ungrammatical | word order |" in md
    assert "## Unmatched examples (1)" in md


def test_load_judgments_validates(tmp_path) -> None:
    with pytest.raises(ValueError, match="unknown verdict 'maybe'"):
        load_judgments(_write_judgments(tmp_path, [_j("A statement.", "maybe")]))
    with pytest.raises(ValueError, match="judged 'true' and 'false'"):
        load_judgments(
            _write_judgments(tmp_path, [_j("A statement.", "true"), _j("a statement", "false")])
        )
    with pytest.raises(ValueError, match="non-empty string 'document'"):
        load_judgments(_write_judgments(tmp_path, [{"text": "A statement.", "verdict": "true"}]))
    with pytest.raises(ValueError, match="unsupported version"):
        load_judgments(_write_judgments(tmp_path, [], version=2))
    with pytest.raises(ValueError, match="cannot be read"):
        load_judgments(tmp_path / "missing.json")


def test_judgments_file_loads_and_every_document_exists(devset) -> None:
    raw = json.loads(JUDGMENTS_PATH.read_text(encoding="utf-8"))
    judgments = load_judgments()
    assert judgments and len(judgments) == len(raw["judgments"])
    ids = set(devset.document_ids)
    gold_texts = {n for e in devset.entries() for n in e.normalized}
    gold_texts |= {n for c in devset.cross for e in (c.true, c.false) if e for n in e.normalized}
    for n, j in judgments.items():
        assert j.document in ids, j
        assert j.verdict in VERDICTS
        assert j.note.strip(), j
        assert n not in gold_texts, f"judged statement is already in the gold: {j.text!r}"
