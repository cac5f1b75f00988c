"""Eval set parsing: valid sets come back whole; invalid ones name every bad line."""

from __future__ import annotations

import json

import pytest

from service.evaluate.evalset import EvalItem, EvalSetError, generated_id, parse_evalset_jsonl


def jsonl(*rows: object) -> bytes:
    return "\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows).encode()


def errors_of(data: bytes) -> dict[int, str]:
    with pytest.raises(EvalSetError) as info:
        parse_evalset_jsonl(data)
    return {e.line: e.message for e in info.value.errors}


def test_valid_set_parses_in_order_with_types_and_defaults() -> None:
    data = (
        jsonl(
            {
                "question": "glon are less dangerous than",
                "answer": "femp",
                "choices": ["femp", "yomp"],
                "category": "reversal",
                "id": "r1",
            },
            "",
            {"question": "  What is XYZ for? ", "answer": "data analysis"},
            {"question": "2 + 2 =", "answer": 4, "choices": [3, 4, 5], "id": 7},
        )
        + b"\n\n"
    )
    items = parse_evalset_jsonl(data)
    assert [i.id for i in items[::2]] == ["r1", "7"]
    first, second, third = items
    assert first.is_multiple_choice and first.answer_index == 0
    assert first.category == "reversal"
    assert second.question == "What is XYZ for?"  # stripped
    assert not second.is_multiple_choice and second.answer_index is None
    assert second.id.startswith("item-")
    assert third.choices == ("3", "4", "5") and third.answer == "4" and third.answer_index == 1


def test_generated_ids_are_stable_and_content_based() -> None:
    data = jsonl({"question": "q1", "answer": "a"}, {"question": "q2", "answer": "a"})
    once, twice = parse_evalset_jsonl(data), parse_evalset_jsonl(data)
    assert [i.id for i in once] == [i.id for i in twice]
    assert once[0].id != once[1].id
    assert once[0].id == generated_id({"question": "q1", "answer": "a"})
    # the same item elsewhere in another file keeps its id
    moved = parse_evalset_jsonl(
        jsonl({"question": "x", "answer": "y"}, {"question": "q1", "answer": "a"})
    )
    assert moved[1].id == once[0].id


def test_crlf_and_byte_order_mark_are_accepted() -> None:
    data = (
        b"\xef\xbb\xbf"
        + b'{"question": "a", "answer": "b"}\r\n{"question": "c", "answer": "d"}\r\n'
    )
    assert [i.answer for i in parse_evalset_jsonl(data)] == ["b", "d"]


def test_every_bad_line_is_named_and_nothing_is_returned() -> None:
    data = jsonl(
        {"question": "fine", "answer": "yes", "id": "a"},  # 1 ok
        '{"question": "broken", "answer": ',  # 2 invalid JSON
        {"question": "no answer here"},  # 3 missing field
        {"question": "fine too", "answer": "x", "choices": ["x", "y"]},  # 4 ok
        {"question": "q", "answer": "maybe", "choices": ["yes", "no"]},  # 5 answer not a choice
        {"question": "again", "answer": "yes", "id": "a"},  # 6 duplicate id
        ["not", "an", "object"],  # 7 not an object
        {"question": "q", "answer": "a", "choice": ["a", "b"]},  # 8 unknown field (a typo)
        {"question": "q", "answer": "a", "choices": ["a"]},  # 9 one choice
        {"question": "q", "answer": "a", "choices": ["a", "a", "b"]},  # 10 repeated choice
        {"question": "", "answer": "a"},  # 11 empty question
        {"question": "q", "answer": "a", "choices": "a,b"},  # 12 choices not a list
        {"question": "fine", "answer": "yes", "id": "b"},  # 13 ok
    )
    errors = errors_of(data)
    assert sorted(errors) == [2, 3, 5, 6, 7, 8, 9, 10, 11, 12]
    assert errors[2].startswith("invalid JSON")
    assert "missing field 'answer'" in errors[3]
    assert "'maybe' is not one of the choices" in errors[5]
    assert "duplicate id 'a'" in errors[6] and "line 1" in errors[6]
    assert "JSON object" in errors[7] and "array" in errors[7]
    assert "unknown field 'choice'" in errors[8]
    assert "at least 2" in errors[9]
    assert "more than once" in errors[10]
    assert "'question' must not be empty" in errors[11]
    assert "'choices' must be a list" in errors[12]


def test_error_message_lists_lines() -> None:
    with pytest.raises(EvalSetError) as info:
        parse_evalset_jsonl(jsonl({"question": "q"}, "{", {"answer": "a"}))
    assert [e.line for e in info.value.errors] == [1, 2, 3]
    assert "line 1:" in str(info.value) and "line 3:" in str(info.value)


def test_duplicate_items_without_ids_are_reported() -> None:
    row = {"question": "same", "answer": "same"}
    errors = errors_of(jsonl(row, {"question": "other", "answer": "x"}, row))
    assert list(errors) == [3]
    assert "duplicate item" in errors[3] and "line 1" in errors[3]


@pytest.mark.parametrize("data", [b"", b"\n  \n\n"])
def test_empty_file_is_refused(data: bytes) -> None:
    errors = errors_of(data)
    assert errors == {0: "the file contains no items"}


def test_invalid_utf8_names_its_line() -> None:
    data = jsonl({"question": "a", "answer": "b"}) + b'\n{"question": "\xff", "answer": "b"}'
    errors = errors_of(data)
    assert list(errors) == [2] and "UTF-8" in errors[2]


def test_item_model_refuses_answer_outside_choices_directly() -> None:
    with pytest.raises(ValueError):
        EvalItem(id="x", question="q", answer="c", choices=("a", "b"))


def test_wrong_types_are_explained() -> None:
    errors = errors_of(
        jsonl(
            {"question": ["x"], "answer": True},
            {"question": "q", "answer": "a", "choices": ["a", {"b": 1}]},
            {"question": "q", "answer": "a", "id": "x" * 500},
        )
    )
    assert errors[1] == "'question' must be a string; 'answer' must be a string"
    assert errors[2] == "choice 2 must be a string"
    assert "'id' is too long" in errors[3]
