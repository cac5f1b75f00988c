"""The evaluation job's pure parts: the icl/rag contexts follow the query API's ICL policy, and an
adapter's one-time cost inputs are read from its augmentation and training records."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.db.session import make_engine, make_session_factory, migrate
from service.db.tables import Adapter, Augmentation, Collection, Workspace
from service.evaluate.contexts import TokenCounts, context_budget, icl_context, rag_context
from service.evaluate.evalset import EvalItem
from service.evaluate.job import adapter_cost_record
from service.serving.icl_context import CONTEXT_SLACK_TOKENS, PassageRef, icl_system_prompt


def words(text: str) -> int:
    return len(text.split())


COUNTS = TokenCounts(
    text=words,
    prompt=words,
    chat=lambda messages: sum(words(m["content"]) + 2 for m in messages),
    continuation=lambda _prompt, choice: words(choice),
)

PASSAGES = [
    PassageRef("d1", "hazards", 0, "Femp are more dangerous than glon.", 6),
    PassageRef("d1", "hazards", 1, "Glon are heavier than troff.", 5),
    PassageRef("d2", "people", 0, "Dax owns the zorvath mill.", 5),
    PassageRef("d2", "people", 1, "Morv is the parent of Quell.", 6),
]
ITEMS = [
    EvalItem(
        id="a", question="Who owns the zorvath mill?", answer="Dax", choices=("Dax", "Morv Quell")
    ),
    EvalItem(id="b", question="Which are heavier than troff?", answer="glon"),
]


def test_budget_leaves_room_for_the_prompt_and_the_longest_answer() -> None:
    mc, gen = ITEMS
    skeleton = icl_system_prompt("") + "\n\n" + mc.question
    assert context_budget(mc, COUNTS, budget_tokens=6000, max_model_len=100, max_tokens=64) == (
        100 - words(skeleton) - 2 - CONTEXT_SLACK_TOKENS
    )
    chat = words(icl_system_prompt("")) + 2 + words(gen.question) + 2
    assert context_budget(gen, COUNTS, budget_tokens=6000, max_model_len=200, max_tokens=64) == (
        200 - chat - 64 - CONTEXT_SLACK_TOKENS
    )
    # the configured budget caps it when the model has room to spare
    assert context_budget(gen, COUNTS, budget_tokens=50, max_model_len=8192, max_tokens=64) == 50


def test_documents_that_fit_are_one_shared_prefix_for_every_item() -> None:
    ctx = icl_context(ITEMS, PASSAGES, {"a": 1000, "b": 1000}, words)
    assert ctx.shared is not None and ctx.source() == ctx.shared
    for p in PASSAGES:
        assert p.text in ctx.shared
    assert "one shared prefix" in ctx.description


def test_documents_that_do_not_fit_are_cut_per_question_by_relevance() -> None:
    ctx = icl_context(ITEMS, PASSAGES, {"a": 12, "b": 12}, words)
    assert ctx.shared is None
    source = ctx.source()
    assert callable(source)
    assert "zorvath mill" in source(ITEMS[0]) and "troff" not in source(ITEMS[0])
    assert "heavier than troff" in source(ITEMS[1]) and "zorvath" not in source(ITEMS[1])
    assert "cut to the token budget for 2 of 2 items" in ctx.description


def test_rag_takes_each_questions_top_passages() -> None:
    ctx = rag_context(ITEMS, PASSAGES, {"a": 1000, "b": 1000}, words, top_k=1)
    source = ctx.source()
    assert callable(source)
    assert "Dax owns the zorvath mill." in source(ITEMS[0])
    assert source(ITEMS[0]).count("\n") == 1  # one heading, one passage
    assert "Glon are heavier than troff." in source(ITEMS[1])


@pytest.fixture
def session(tmp_path: Path):  # type: ignore[no-untyped-def]
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    migrate(engine)
    with make_session_factory(engine)() as s:
        s.add(Workspace(id="ws_1", name="w"))
        s.flush()  # no ORM relationship orders these inserts
        s.add(Collection(id="col_1", workspace_id="ws_1", name="c"))
        s.flush()
        yield s
    engine.dispose()


def _adapter(**kw: object) -> Adapter:
    values: dict[str, object] = dict(
        id="ad_1",
        workspace_id="ws_1",
        name="ft",
        served_name="ad_1-x",
        source="trained",
        status="ready",
        base_model="m",
        base_model_hash="h",
    )
    values.update(kw)
    return Adapter(**values)


def test_cost_record_of_an_augmented_adapter(session) -> None:  # type: ignore[no-untyped-def]
    session.add(
        Augmentation(
            id="aug_1",
            workspace_id="ws_1",
            collection_id="col_1",
            status="succeeded",
            stats={
                "prompt_tokens": 9000,
                "completion_tokens": 1200,
                "strategies": {
                    "global": {"cached_prompt_tokens": 5000},
                    "local": {"cached_prompt_tokens": 0},
                },
            },
        )
    )
    session.flush()
    adapter = _adapter(
        augmentation_id="aug_1",
        metrics={
            "tokens_trained": 40_000,
            "train_seconds": 100.0,
            "job_wall_s": 130.0,
            "world_size": 1,
        },
    )
    session.add(adapter)
    session.flush()
    assert adapter_cost_record(session, adapter) == {
        "teacher_prompt_tokens": 9000,
        "teacher_completion_tokens": 1200,
        "teacher_cached_prompt_tokens": 5000,
        "training_tokens": 40_000,
        "training_wall_s": 130.0,
        "training_hardware": "cpu",
    }


def test_cost_record_of_a_multi_gpu_plain_adapter_and_of_an_import(session) -> None:  # type: ignore[no-untyped-def]
    plain = _adapter(metrics={"tokens_trained": 10, "train_seconds": 60.0, "world_size": 4})
    assert adapter_cost_record(session, plain) == {
        "training_tokens": 10,
        "training_wall_s": 240.0,
        "training_hardware": "accelerator",
    }
    imported = _adapter(source="imported", metrics={})
    assert adapter_cost_record(session, imported) == {}
