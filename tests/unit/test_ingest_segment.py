"""Normalization and segmentation into passages and sentences."""

from __future__ import annotations

import dataclasses

import pytest

from service.collections.ingest import Passage, normalize_text, segment, split_sentences
from service.collections.ingest.extract import reflow_pdf_lines


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        ("a\r\nb\rc", "a b c"),
        ("one\n\n\n\n two \n\n\nthree", "one\n\ntwo\n\nthree"),
        ("para one\n \t \npara two", "para one\n\npara two"),
        ("tabs\tand   spaces\u00a0here", "tabs and spaces here"),
        ("ﬁnancial ﬂows", "financial flows"),  # ligatures from PDFs
        ("ＡＢＣ １２３", "ABC 123"),  # full-width forms
        ("soft\u00adhyphen zero\u200bwidth", "softhyphen zerowidth"),
        ("bell\x07 null\x00 kept", "bell null kept"),
        ("the infor-\nmation flow", "the information flow"),
        ("Anglo-\nSaxon", "Anglo-Saxon"),
        ("wrapped line\nof one paragraph", "wrapped line of one paragraph"),
        ("List:\n- eggs\n- milk\n2. bread", "List:\n- eggs\n- milk\n2. bread"),
        ("page one\fpage two", "page one\n\npage two"),
        ("  \n\n ", ""),
    ],
)
def test_normalize_text(raw: str, normal: str) -> None:
    assert normalize_text(raw) == normal
    assert normalize_text(normal) == normal  # idempotent


def test_reflow_restores_pdf_paragraph_breaks() -> None:
    full = "Words " * 12
    text = f"Heading\n{full}the\nend of it.\n{full}next\nshort end.\nAnd more."
    paragraphs = normalize_text(reflow_pdf_lines(text)).split("\n\n")
    assert paragraphs == [
        "Heading",
        f"{full}the end of it.",
        f"{full}next short end.",
        "And more.",
    ]


def test_sentences_follow_english_rules() -> None:
    text = "Dr. Smith paid $3.50 at 5 p.m. yesterday. Was it worth it? Yes! See e.g. the U.S. memo."
    assert split_sentences(text) == [
        "Dr. Smith paid $3.50 at 5 p.m. yesterday.",
        "Was it worth it?",
        "Yes!",
        "See e.g. the U.S. memo.",
    ]


def sentence(i: int, words: int = 10) -> str:
    return " ".join([f"w{i}"] * (words - 1)) + " end."


def test_short_paragraphs_merge_and_long_ones_split_at_sentences() -> None:
    heading = "Introduction"
    long_paragraph = " ".join(sentence(i) for i in range(40))  # 400 words
    short = [sentence(100 + i, 5) for i in range(3)]
    text = "\n\n".join([heading, long_paragraph, *short])

    passages = segment(text, target_words=150, min_words=30)

    assert all(isinstance(p, Passage) for p in passages)
    assert [p.index for p in passages] == list(range(len(passages)))
    # The heading joins the first part; 400 words become near-equal parts under 150 + 30.
    assert passages[0].sentences[0] == heading
    assert passages[0].text.startswith(heading + "\n\n")
    sizes = [len(p.text.split()) for p in passages]
    assert max(sizes) <= 180 and len(passages) == 3
    # The three short paragraphs merged into the last part rather than standing alone.
    assert passages[-1].sentences[-3:] == tuple(short)
    # Nothing lost, nothing duplicated, no sentence cut.
    all_sentences = [s for p in passages for s in p.sentences]
    assert all_sentences == [heading] + [sentence(i) for i in range(40)] + short
    for p in passages:
        for s in p.sentences:
            assert s in p.text


def test_list_items_stay_on_their_own_lines() -> None:
    passages = segment("Shopping list:\n- eggs\n- milk and bread")
    assert len(passages) == 1
    assert passages[0].text == "Shopping list:\n- eggs\n- milk and bread"
    assert passages[0].sentences == ("Shopping list:", "- eggs", "- milk and bread")


def test_a_long_sentence_stays_whole_but_a_run_without_punctuation_is_cut() -> None:
    long_sentence = " ".join(["word"] * 250) + "."  # over target, under twice the target
    assert [p.sentences for p in segment(long_sentence)] == [(long_sentence,)]

    table_dump = " ".join(f"cell{i}" for i in range(700))
    passages = segment(table_dump, target_words=150)
    assert [len(p.text.split()) for p in passages] == [140] * 5
    assert " ".join(p.text for p in passages) == table_dump


def test_passages_are_frozen() -> None:
    passage = segment("One sentence.")[0]
    assert passage == Passage(index=0, text="One sentence.", sentences=("One sentence.",))
    with pytest.raises(dataclasses.FrozenInstanceError):
        passage.text = "changed"  # type: ignore[misc]


def test_empty_text_has_no_passages() -> None:
    assert segment("") == []


def test_a_heading_line_above_its_text_is_its_own_sentence() -> None:
    # Plain text and PDFs put a section title on the line above its paragraph; read as part of
    # the first sentence it would make "Quarry Software Quarry Software licenses Ledger ...".
    text = (
        "Quarry Software\nQuarry Software licenses Ledger to Calloway.\n\n"
        "Every employee must complete the\nSecurity training within 30 days."
    )
    sentences = [s for p in segment(text) for s in p.sentences]
    assert sentences == [
        "Quarry Software",
        "Quarry Software licenses Ledger to Calloway.",
        # a wrapped line that ends in "the" continues: no heading
        "Every employee must complete the Security training within 30 days.",
    ]
