"""Generation answers: normalized exact match and containment; modes' contexts."""

from __future__ import annotations

import pytest

from service.evaluate.evalset import EvalItem
from service.evaluate.scoring import Mode, contains_answer, exact_match, normalize_answer


def test_normalize_answer() -> None:
    assert normalize_answer("  The  Eiffel Tower! ") == "eiffel tower"
    assert normalize_answer("U.S.A.") == "usa"
    assert normalize_answer("Ｐａｒｉｓ") == "paris"  # full-width letters (NFKC)
    assert normalize_answer("«Berlin»") == "berlin"  # Unicode punctuation too


@pytest.mark.parametrize(
    ("prediction", "answer", "exact", "contains"),
    [
        ("Paris.", "Paris", True, True),
        ("the paris", "Paris", True, True),
        ("It is Paris, of course.", "Paris", False, True),
        ("Parisian food", "Paris", False, False),  # whole words only
        ("data analysis", "Data-analysis", False, False),  # hyphen joins: 'dataanalysis'
        ("An internal tool for data analysis.", "data analysis", False, True),
        ("", "Paris", False, False),
        ("The", "the", True, True),  # an answer that normalizes to nothing
    ],
)
def test_exact_and_contains(prediction: str, answer: str, exact: bool, contains: bool) -> None:
    assert exact_match(prediction, answer) is exact
    assert contains_answer(prediction, answer) is contains


def test_mode_contexts() -> None:
    item = EvalItem(id="a", question="q?", answer="x")
    assert Mode.base().context_for(item) is None and not Mode.base().shared_context
    icl = Mode.icl("all the documents")
    assert icl.context_for(item) == "all the documents" and icl.shared_context
    rag = Mode.rag(lambda it: f"passages for {it.id}")
    assert rag.context_for(item) == "passages for a" and not rag.shared_context
    ada = Mode.adapter("acme-ft-3", name="augmented")
    assert (ada.name, ada.kind, ada.model, ada.context) == (
        "augmented",
        "adapter",
        "acme-ft-3",
        None,
    )
    assert Mode.adapter("acme-ft-3").name == "acme-ft-3"
