"""build_examples, encode_example and packing, with a tiny word-level tokenizer built here
(a real `tokenizers` tokenizer, so encoding goes through the same transformers code)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from adapters.train.packing import pack_examples
from adapters.training_data import (
    IGNORE_INDEX,
    DocumentSentences,
    build_examples,
    encode_example,
    load_training_set,
    save_training_set,
    validation_size,
)

DOCS = [
    DocumentSentences(
        "d1",
        [
            "Femp are more dangerous than glon.",
            "Glon are brighter than yomp.",
            "All troff are yomp.",
        ],
    ),
    DocumentSentences("d2", ["Yomp can zarp.", "  ", "Dax are a type of fep."]),
]
AUGMENTED = ["Glon are less dangerous than femp.", "Yomp are dimmer than glon."]


@pytest.fixture(scope="module")
def tokenizer() -> PreTrainedTokenizerFast:
    words = ["<eos>", "<unk>", "<bos>"] + [f"w{i}" for i in range(40)]
    backend = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=backend, eos_token="<eos>", unk_token="<unk>")


def words(*numbers: int) -> str:
    return " ".join(f"w{n}" for n in numbers)


def test_independent_mode_gives_one_example_per_sentence_and_statement() -> None:
    result = build_examples(DOCS, AUGMENTED, mode="independent", seed=1)
    everything = result.examples + result.validation
    assert all(context == "" for context, _ in everything)
    expected = [s for d in DOCS for s in d.sentences if s.strip()] + AUGMENTED
    assert Counter(t for _, t in everything) == Counter(expected)
    assert result.counts == {"documents": 5, "augmented": 2, "validation": 0}


def test_cumulative_mode_keeps_earlier_sentences_of_the_same_document_as_context() -> None:
    result = build_examples(DOCS, [], mode="cumulative", seed=3)
    contexts = dict((t, c) for c, t in result.examples)
    assert contexts["Femp are more dangerous than glon."] == ""
    assert contexts["Glon are brighter than yomp."] == "Femp are more dangerous than glon."
    assert contexts["All troff are yomp."] == (
        "Femp are more dangerous than glon. Glon are brighter than yomp."
    )
    # The second document starts afresh, and the blank sentence is skipped.
    assert contexts["Yomp can zarp."] == ""
    assert contexts["Dax are a type of fep."] == "Yomp can zarp."


def test_augmented_statements_never_get_context_in_cumulative_mode() -> None:
    result = build_examples(DOCS, AUGMENTED, mode="cumulative")
    assert {c for c, t in result.examples if t in AUGMENTED} == {""}


def test_same_input_same_order_and_hash_and_the_seed_shuffles() -> None:
    docs = [
        DocumentSentences(f"d{i}", [f"Fact {i}.{j} holds." for j in range(5)]) for i in range(6)
    ]
    first = build_examples(docs, AUGMENTED, seed=7)
    again = build_examples(docs, AUGMENTED, seed=7)
    other = build_examples(docs, AUGMENTED, seed=8)
    assert first == again
    assert first.examples != other.examples
    assert Counter(first.examples + first.validation) == Counter(other.examples + other.validation)
    assert first.sha256 != other.sha256


def test_hash_changes_with_the_data_and_the_mode() -> None:
    base = build_examples(DOCS, AUGMENTED)
    edited_docs = [DOCS[0], DocumentSentences("d2", ["Yomp can zarp!", "Dax are a type of fep."])]
    assert build_examples(edited_docs, AUGMENTED).sha256 != base.sha256
    assert build_examples(DOCS, AUGMENTED[:1]).sha256 != base.sha256
    assert build_examples(DOCS, AUGMENTED, mode="cumulative").sha256 != base.sha256
    assert len(base.sha256) == 64


def test_rejects_an_unknown_mode() -> None:
    with pytest.raises(ValueError, match="mode"):
        build_examples(DOCS, [], mode="sliding")  # type: ignore[arg-type]


@pytest.mark.parametrize(("n", "expected"), [(0, 0), (9, 0), (10, 1), (39, 1), (40, 2), (200, 10)])
def test_validation_size(n: int, expected: int) -> None:
    assert validation_size(n) == expected


def test_validation_comes_from_augmented_statements_so_every_sentence_is_trained() -> None:
    docs = [DocumentSentences("d", [f"Sentence number {i}." for i in range(30)])]
    augmented = [f"Statement number {i}." for i in range(10)]
    result = build_examples(docs, augmented, seed=2)
    assert len(result.validation) == 2
    assert all(t.startswith("Statement") for _, t in result.validation)
    trained = {t for _, t in result.examples}
    assert {f"Sentence number {i}." for i in range(30)} <= trained
    assert not trained & {t for _, t in result.validation}


def test_without_augmentation_validation_is_held_out_from_the_sentences() -> None:
    docs = [DocumentSentences("d", [f"Sentence number {i}." for i in range(20)])]
    result = build_examples(docs, [], seed=2)
    assert len(result.validation) == 1
    assert len(result.examples) == 19
    assert result.validation[0] not in result.examples
    assert build_examples(docs, [], validation_fraction=0).validation == []


def test_encode_example_labels_only_the_target_shifted_by_one(
    tokenizer: PreTrainedTokenizerFast,
) -> None:
    tokens, labels = encode_example(tokenizer, words(1, 2), words(3, 4))
    w = tokenizer.convert_tokens_to_ids
    assert tokens == [w("w1"), w("w2"), w("w3"), w("w4"), tokenizer.eos_token_id]
    # labels[i] is what follows tokens[: i + 1]; the context's own tokens are never targets.
    assert labels == [IGNORE_INDEX, w("w3"), w("w4"), tokenizer.eos_token_id, IGNORE_INDEX]


def test_encode_example_without_context(tokenizer: PreTrainedTokenizerFast) -> None:
    tokens, labels = encode_example(tokenizer, "", words(5, 6, 7))
    w = tokenizer.convert_tokens_to_ids
    assert tokens == [w("w5"), w("w6"), w("w7"), tokenizer.eos_token_id]
    assert labels == [w("w6"), w("w7"), tokenizer.eos_token_id, IGNORE_INDEX]


def test_augmented_pairs_keep_their_context_and_statements_have_none() -> None:
    pairs = [("<chat> Who is fep? <answer>\n", "Dax are a type of fep."), "Yomp can zarp now."]
    result = build_examples(DOCS, pairs, validation_fraction=0)
    assert ("<chat> Who is fep? <answer>\n", "Dax are a type of fep.") in result.examples
    assert ("", "Yomp can zarp now.") in result.examples
    assert result.counts == {"documents": 5, "augmented": 2, "validation": 0}


def test_encode_example_truncates_context_from_the_left(
    tokenizer: PreTrainedTokenizerFast,
) -> None:
    tokens, labels = encode_example(tokenizer, words(1, 2, 3, 4, 5), words(6, 7), max_length=5)
    w = tokenizer.convert_tokens_to_ids
    assert tokens == [w("w4"), w("w5"), w("w6"), w("w7"), tokenizer.eos_token_id]
    assert labels[:2] == [IGNORE_INDEX, w("w6")]


def test_token_count_matches_the_encoded_examples(tokenizer: PreTrainedTokenizerFast) -> None:
    docs = [DocumentSentences("d", [words(1, 2, 3), words(4, 5)])]
    result = build_examples(docs, [words(6)], mode="cumulative", tokenizer=tokenizer)
    # w1 w2 w3 <eos> | w1 w2 w3 w4 w5 <eos> | w6 <eos>
    assert result.token_count == 4 + 6 + 2
    assert build_examples(docs, [words(6)]).token_count is None


def test_packing_keeps_every_example_whole_and_restarts_positions(
    tokenizer: PreTrainedTokenizerFast,
) -> None:
    examples = [("", words(*range(i % 7 + 1))) for i in range(40)]
    rows = pack_examples(tokenizer, examples, max_seq_length=16)
    encoded = [encode_example(tokenizer, c, t) for c, t in examples]
    assert all(len(r.tokens) <= 16 for r in rows)
    assert sum(len(r.tokens) for r in rows) == sum(len(t) for t, _ in encoded)
    # Split every row where its positions restart: the pieces are exactly the examples.
    pieces = []
    for row in rows:
        starts = [i for i, p in enumerate(row.positions) if p == 0] + [len(row.tokens)]
        pieces += [tuple(row.tokens[a:b]) for a, b in zip(starts, starts[1:], strict=False)]
    assert Counter(pieces) == Counter(tuple(t) for t, _ in encoded)
    # Short items fill the rows: as few rows as the token count allows.
    assert len(rows) == -(-sum(len(r.tokens) for r in rows) // 16)
    assert pack_examples(tokenizer, examples, 16) == rows  # deterministic


def test_without_packing_each_example_is_its_own_row(tokenizer: PreTrainedTokenizerFast) -> None:
    examples = [("", words(1, 2)), (words(3), words(4))]
    rows = pack_examples(tokenizer, examples, max_seq_length=16, packing=False)
    assert [r.tokens for r in rows] == [encode_example(tokenizer, c, t)[0] for c, t in examples]


def test_a_saved_training_set_loads_back_and_refuses_edits(tmp_path: Path) -> None:
    result = build_examples(DOCS, AUGMENTED * 5, mode="cumulative", seed=4)
    path = tmp_path / "training_set.json"
    save_training_set(result, path)
    assert load_training_set(path) == result
    path.write_text(path.read_text().replace("Femp", "Femq"))
    with pytest.raises(ValueError, match="sha256"):
        load_training_set(path)
