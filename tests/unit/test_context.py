"""The ICL context policy: everything in document order when it fits, the most relevant passages
(BM25) within the budget when it does not."""

from __future__ import annotations

from service.serving.icl_context import (
    PassageRef,
    build_icl_context,
    icl_system_prompt,
    render_passages,
    retrieve,
)


def count_words(text: str) -> int:
    """A stand-in token counter: whitespace-separated words."""
    return len(text.split())


def passage(doc: str, index: int, text: str) -> PassageRef:
    return PassageRef(doc, f"Title of {doc}", index, text, count_words(text))


FILLER = [
    "The cafeteria opens at eight and closes after lunch on weekdays.",
    "Parking permits are renewed every January at the front desk.",
    "The quarterly all-hands meeting takes place in the large auditorium.",
    "New laptops are ordered through the internal hardware portal.",
    "Visitors must sign in and wear a badge while in the building.",
    "The library lends books for three weeks and renews them once.",
]


def collection() -> list[PassageRef]:
    """Three documents; the facts about the Zorblat reactor are spread over two of them."""
    return [
        passage("hr", 0, FILLER[0]),
        passage("hr", 1, FILLER[1]),
        passage("ops", 0, FILLER[2]),
        passage("ops", 1, "The Zorblat reactor must be cooled with heavy water every night."),
        passage("ops", 2, FILLER[3]),
        passage("it", 0, FILLER[4]),
        passage("it", 1, "Only certified engineers may restart the Zorblat reactor after a trip."),
        passage("it", 2, FILLER[5]),
    ]


def test_everything_fits_in_document_order_and_same_text_for_every_query() -> None:
    passages = collection()
    budget = 10_000
    a = build_icl_context(
        passages, "Zorblat reactor", budget_tokens=budget, count_tokens=count_words
    )
    b = build_icl_context(
        passages, "parking permits", budget_tokens=budget, count_tokens=count_words
    )

    assert not a.truncated
    assert a.passages_used == a.total_passages == len(passages)
    assert list(a.used_passages) == passages
    # The context does not depend on the query, so vLLM's prefix cache can serve it.
    assert a.text == b.text
    assert a.prompt_tokens == count_words(a.text) <= budget
    # Documents appear with their titles, in order, passages in index order.
    assert a.text.index("Title of hr") < a.text.index("Title of ops") < a.text.index("Title of it")
    assert a.text.index(FILLER[2]) < a.text.index("heavy water") < a.text.index(FILLER[3])


def test_passages_given_out_of_index_order_are_rendered_in_document_order() -> None:
    passages = collection()
    shuffled = [passages[1], passages[0], passages[4], passages[2], passages[3], *passages[5:]]
    result = build_icl_context(shuffled, "", budget_tokens=10_000, count_tokens=count_words)
    assert list(result.used_passages) == passages
    assert result.text == render_passages(passages)


def test_over_budget_keeps_most_relevant_passages_within_budget_in_document_order() -> None:
    passages = collection()
    full = build_icl_context(passages, "", budget_tokens=10_000, count_tokens=count_words)
    budget = 40  # room for about three passages of the eight
    assert full.prompt_tokens > budget

    result = build_icl_context(
        passages,
        "Who may restart the Zorblat reactor, and how is it cooled?",
        budget_tokens=budget,
        count_tokens=count_words,
    )

    assert result.truncated
    assert result.total_passages == len(passages)
    assert 2 <= result.passages_used < len(passages)
    assert result.prompt_tokens == count_words(result.text) <= budget
    texts = [p.text for p in result.used_passages]
    assert any("heavy water" in t for t in texts)
    assert any("certified engineers" in t for t in texts)
    # Rendered in document order, not relevance order.
    assert list(result.used_passages) == [p for p in passages if p in result.used_passages]
    assert result.text.index("heavy water") < result.text.index("certified engineers")


def test_a_passage_too_large_for_the_rest_of_the_budget_is_skipped_for_smaller_ones() -> None:
    big = passage("manual", 0, "Zorblat " + "reactor maintenance details " * 30)
    small = [passage("notes", i, f"Zorblat note {i}: check the valves.") for i in range(3)]
    result = build_icl_context(
        [big, *small], "Zorblat valves", budget_tokens=25, count_tokens=count_words
    )
    assert result.truncated
    assert big not in result.used_passages
    assert result.passages_used >= 2
    assert result.prompt_tokens <= 25


def test_truncated_context_respects_the_exact_count_when_token_counts_are_stale() -> None:
    # token_count says 1 for each passage; the exact count must still hold the budget.
    passages = [PassageRef("d", "D", i, f"alpha beta gamma delta {i}", 1) for i in range(20)]
    result = build_icl_context(passages, "alpha", budget_tokens=30, count_tokens=count_words)
    assert result.truncated
    assert 0 < result.passages_used < 20
    assert count_words(result.text) == result.prompt_tokens <= 30


def test_no_passages_and_zero_budget() -> None:
    empty = build_icl_context([], "q", budget_tokens=100, count_tokens=count_words)
    assert (empty.text, empty.truncated, empty.total_passages) == ("", False, 0)
    none_fit = build_icl_context(collection(), "q", budget_tokens=0, count_tokens=count_words)
    assert none_fit.truncated
    assert none_fit.passages_used == 0


def test_retrieve_ranks_by_bm25_best_first() -> None:
    passages = collection()
    top = retrieve(passages, "Zorblat reactor restart engineers", k=2)
    assert [p.text for p in top][0].startswith("Only certified engineers")
    assert "heavy water" in top[1].text
    assert retrieve(passages, "anything", k=0) == []
    # A query with no known word keeps document order (deterministic ties).
    assert retrieve(passages, "xyzzy", k=3) == passages[:3]


def test_icl_prompt_puts_documents_in_a_fixed_prefix() -> None:
    result = build_icl_context(collection(), "q", budget_tokens=10_000, count_tokens=count_words)
    prompt = icl_system_prompt(result)
    assert result.text in prompt
    assert prompt == icl_system_prompt(result.text)
    # Everything before the documents is the same whatever the context.
    head = icl_system_prompt("").split("<documents>")[0]
    assert prompt.startswith(head)
