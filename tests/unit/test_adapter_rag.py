"""adapter+rag: an adapter with the rag mode's passages in its prompt. Its prompts are rag's to the
token; it is paired with icl, rag and the adapter alone; it is priced per query like rag plus its
adapter's one-time cost; the query API's `retrieval` option builds the same prompt as the
evaluation. No model runs here (tests/e2e/test_adapter_rag.py runs them on the real vLLM)."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path
from typing import Any

import pytest

from service.evaluate.contexts import rag_context
from service.evaluate.evalset import EvalItem
from service.evaluate.scoring import ItemResult, LatencyProbe, Mode, ModeKind, Scorer
from service.evaluate.stats import compute_stats
from service.report.build import build_report
from service.report.costs import AdapterCostInputs, Prices
from service.report.markdown import render_markdown
from service.report.plot import render_cost_curve_png
from service.serving.errors import CollectionNotFound, ModelNotFound, RequestRejected
from service.serving.icl_context import PassageRef, icl_system_prompt
from service.serving.protocol import (
    DEFAULT_RETRIEVAL_TOP_K,
    parse_chat_request,
    parse_completion_request,
)
from service.serving.serving import QueryService


def words(text: str) -> int:
    return len(text.split())


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


@pytest.fixture(scope="module")
def tokenizer(base_model_dir: Path) -> Any:
    from adapters.base_model import load_tokenizer

    return load_tokenizer(base_model_dir)


# -- prompts ------------------------------------------------------------------------------------


def test_adapter_rag_sends_rags_prompts_to_the_adapter(tokenizer: Any) -> None:
    ctx = rag_context(ITEMS, PASSAGES, {"a": 1000, "b": 1000}, words, top_k=1)
    rag = Mode.rag(ctx.source())
    both = Mode.adapter_rag("ad_1-x", ctx.source(), name="ft+rag")
    assert (both.name, both.kind, both.model) == ("ft+rag", "adapter+rag", "ad_1-x")
    assert not both.shared_context  # each question its own passages: nothing cacheable
    scorer = Scorer(client=None, tokenizer=tokenizer)  # type: ignore[arg-type]

    mc = ITEMS[0]
    text, ids, cacheable = scorer.mc_prompt(mc, both)
    assert (text, ids, cacheable) == scorer.mc_prompt(mc, rag)
    assert cacheable == 0
    assert text == icl_system_prompt("## people\nDax owns the zorvath mill.") + "\n\n" + mc.question
    alone_text, alone_ids, _ = scorer.mc_prompt(mc, Mode.adapter("ad_1-x"))
    assert alone_text == mc.question and len(ids) > len(alone_ids) + 20

    gen = ITEMS[1]
    messages = scorer.chat_messages(gen, both)
    assert messages == scorer.chat_messages(gen, rag)
    assert (
        messages[0]["role"] == "system" and "Glon are heavier than troff." in messages[0]["content"]
    )
    assert "zorvath" not in messages[0]["content"]
    assert messages[1:] == [{"role": "user", "content": gen.question}]
    assert scorer.chat_messages(gen, Mode.adapter("ad_1-x")) == messages[1:]


# -- statistics and costs -----------------------------------------------------------------------


def result(
    mode: str,
    kind: ModeKind,
    item: int,
    correct: bool,
    *,
    prompt: int,
    model: str | None = None,
    cacheable: int = 0,
) -> ItemResult:
    return ItemResult(
        item_id=f"i{item}",
        mode=mode,
        mode_kind=kind,
        model=model or ("base" if kind in ("base", "icl", "rag") else mode),
        kind="multiple_choice",
        correct=correct,
        scores={"mc_sum": correct, "mc_norm": correct},
        answer="a",
        choice_logprobs=[-1.0, -2.0],
        choice_logprobs_norm=[-1.0, -2.0],
        choice_tokens=[1, 1],
        pred_sum=0 if correct else 1,
        pred_norm=0 if correct else 1,
        answer_index=0,
        prompt_tokens=prompt,
        completion_tokens=4,
        cacheable_tokens=cacheable,
        latency_s=1.0,
    )


def results() -> list[ItemResult]:
    """icl right on 5 of 6, rag on 4, the adapter alone on 2, adapter+rag on all 6."""
    rs: list[ItemResult] = []
    for j in range(6):
        rs.append(result("icl", "icl", j, j != 5, prompt=4020, cacheable=4000))
        rs.append(result("rag", "rag", j, j < 4, prompt=300))
        rs.append(result("ft", "adapter", j, j in (0, 1), prompt=20))
        rs.append(result("ft+rag", "adapter+rag", j, True, prompt=300, model="ft"))
    return rs


FT = AdapterCostInputs(training_wall_s=600, training_hardware="cpu")  # $0.05/h: 1/120 dollar


def test_adapter_rag_is_paired_with_icl_rag_and_its_adapter_alone() -> None:
    other = [result("ft2", "adapter", j, False, prompt=20) for j in range(6)] + [
        result("ft2+rag", "adapter+rag", j, j == 0, prompt=300, model="ft2") for j in range(6)
    ]
    stats = compute_stats(results() + other)
    pairs = {(t.mode, t.reference): t for t in stats.paired if t.metric == "correct"}
    assert stats.best_mode == "ft+rag"  # 6 of 6
    assert set(pairs) == {
        ("ft", "icl"),
        ("ft", "rag"),
        ("ft2", "icl"),
        ("ft2", "rag"),
        ("ft+rag", "icl"),
        ("ft+rag", "rag"),
        ("ft+rag", "ft"),
        ("ft2+rag", "icl"),
        ("ft2+rag", "rag"),
        ("ft2+rag", "ft2"),  # its own adapter, found by model, not the first adapter
        # and every mode not yet paired with the most accurate one (either way), against it
        ("ft2", "ft+rag"),
        ("ft2+rag", "ft+rag"),
    }
    against = {
        ref: (t.only_mode, t.only_reference) for (m, ref), t in pairs.items() if m == "ft+rag"
    }
    assert against == {"icl": (1, 0), "rag": (2, 0), "ft": (4, 0)}
    assert pairs[("ft2+rag", "ft2")].only_mode == 1


def test_adapter_rag_is_priced_like_rag_plus_its_adapters_one_time_cost() -> None:
    report = build_report(results(), prices=Prices(), adapters={"ft": FT, "ft+rag": FT})
    per_query = report["per_query_cost"]
    rag_usd = (300 * 0.10 + 4 * 0.40) / 1e6
    for mode in ("rag", "ft+rag"):
        # no shared prefix: the cached figure is the uncached one (latency is not priced)
        assert per_query[mode]["uncached"]["usd"] == pytest.approx(rag_usd)
        assert per_query[mode]["cached"]["usd"] == pytest.approx(rag_usd)
    assert report["one_time_cost"]["ft+rag"] == report["one_time_cost"]["ft"]
    assert report["one_time_cost"]["ft+rag"]["total_usd"] == pytest.approx(1 / 120)

    entries = {(b["adapter"], b["reference"], b["prefix_cached"]): b for b in report["break_even"]}
    # each trained mode against icl and rag; the adapter also against its own adapter+rag
    assert set(entries) == {
        (mode, reference, cached)
        for mode, reference in (
            ("ft", "icl"),
            ("ft", "rag"),
            ("ft", "ft+rag"),
            ("ft+rag", "icl"),
            ("ft+rag", "rag"),
        )
        for cached in (False, True)
    }
    icl_uncached = (4020 * 0.10 + 4 * 0.40) / 1e6
    icl_cached = (20 * 0.10 + 4000 * 0.025 + 4 * 0.40) / 1e6
    for cached, icl_usd in ((False, icl_uncached), (True, icl_cached)):
        b = entries[("ft+rag", "icl", cached)]
        # 6 of 6 against icl's 5 of 6: one discordant item, too few to call it either way
        assert b["quality"]["verdict"] == "not_shown_within_margin"
        assert b["status"] == "breaks_even" and b["reference_kind"] == "icl"
        assert b["adapter_per_query_usd"] == pytest.approx(rag_usd)
        assert b["reference_per_query_usd"] == pytest.approx(icl_usd)
        assert b["n_queries"] == math.ceil((1 / 120) / (icl_usd - rag_usd))
        # against rag: the same prompts, plus the adapter's one-time cost: never cheaper
        b = entries[("ft+rag", "rag", cached)]
        assert (b["status"], b["n_queries"], b["saving_per_query_usd"]) == ("never", None, 0)
        # the adapter alone against the same adapter with passages: the one-time cost is the
        # same, and the adapter alone sends fewer tokens, so it costs less from the first query
        b = entries[("ft", "ft+rag", cached)]
        assert b["reference_one_time_usd"] == b["one_time_usd"] == pytest.approx(1 / 120)
        assert (b["status"], b["n_queries"]) == ("breaks_even", 0)
        assert b["quality"]["difference"] == pytest.approx(-4 / 6)  # ft 2/6, ft+rag 6/6
    # by hand: 0.008333 / (4.036e-4 - 3.16e-5) = 22.4; / (1.036e-4 - 3.16e-5) = 115.7
    assert (
        entries[("ft+rag", "icl", False)]["n_queries"],
        entries[("ft+rag", "icl", True)]["n_queries"],
    ) == (23, 116)
    # the adapter against rag: 0.008333 / (3.16e-5 - 3.6e-6) = 297.6
    assert entries[("ft", "rag", False)]["n_queries"] == 298
    # cost per correct answer: rag right on 4 of 6, ft+rag on all 6
    assert per_query["rag"]["uncached"]["usd_per_correct"] == pytest.approx(rag_usd * 6 / 4)
    assert per_query["ft+rag"]["uncached"]["usd_per_correct"] == pytest.approx(rag_usd)
    assert report["recommendation"]["recommended"]["uncached"] == "ft+rag"  # the most accurate

    lines = {line["label"]: line for line in report["cost_curve"]["lines"]}
    assert set(lines) == {
        "icl (without prefix caching)",
        "icl (with prefix caching)",
        "rag",
        "ft",
        "ft+rag",
    }
    assert lines["rag"]["one_time_usd"] == 0.0
    assert lines["rag"]["per_query_usd"] == pytest.approx(rag_usd)
    assert lines["ft+rag"]["one_time_usd"] == pytest.approx(1 / 120)
    assert lines["ft+rag"]["per_query_usd"] == pytest.approx(rag_usd)
    (note,) = [n for n in report["notes"] if n.startswith("ft+rag:")]
    assert "against rag's $3.16e-05" in note and "$0.00833 once" in note
    assert "never falls to rag's" in note  # the same prompts and answers: never cheaper

    md = render_markdown(report)
    for row in (
        "| ft+rag | adapter+rag | 100.0% ",  # accuracy
        # accuracy, cost per query and per correct answer (uncached, cached), beside rag's
        "| ft+rag | 100.0% | $3.16e-05 | $3.16e-05 | $3.16e-05 | $3.16e-05 |",
        "| rag | 66.7% | $3.16e-05 | $4.74e-05 | $3.16e-05 | $4.74e-05 |",
        "| ft+rag | $0 | $0.00833 | $0 | $0.00833 |",  # one-time cost
        "| ft+rag | icl | not significantly less accurate, but not shown to be within the 5 pp "
        "margin (100.0% vs 83.3%: +16.7 pp, 95% CI [-24.7, +56.4], p = 1) | without prefix "
        "caching | $0.00833 | $0 | $3.16e-05 |",
        "| ft+rag | rag | not significantly less accurate, but not shown to be within the 5 pp "
        "margin (100.0% vs 66.7%: +33.3 pp, 95% CI [-12.3, +70.0], p = 0.5) | without prefix "
        "caching | $0.00833 | $0 | $3.16e-05 | $3.16e-05 | $0 | $3.16e-05 | $4.74e-05 | never "
        "(adapter not cheaper per query) |",
        "| ft+rag | rag | correct | 6 | 4 | 2 | 0 | 0 |",  # paired: beats rag on 2 items
        "| ft+rag | ft | correct | 6 | 2 | 4 | 0 | 0 |",  # and the adapter alone on 4
        "- rag: $0 + $3.16e-05 per query",  # cumulative cost lines
        "- ft+rag: $0.00833 + $3.16e-05 per query",
    ):
        assert row in md, row
    assert render_cost_curve_png(report).startswith(b"\x89PNG")


def test_priced_latency_draws_adapter_rag_cold_and_warm() -> None:
    probe = LatencyProbe(
        mode="ft+rag", cold_s=[3.0], warm_s=[1.0], prompt_tokens=[300], completion_tokens=[4]
    )
    report = build_report(
        results(),
        prices=Prices(serving_hardware="cpu"),
        adapters={"ft": FT, "ft+rag": FT},
        latency={"ft+rag": probe},
    )
    costs = report["per_query_cost"]["ft+rag"]
    tokens = (300 * 0.10 + 4 * 0.40) / 1e6
    assert costs["uncached"]["usd"] == pytest.approx(tokens + 3.0 / 3600 * 0.05)
    assert costs["cached"]["usd"] == pytest.approx(tokens + 1.0 / 3600 * 0.05)
    labels = {line["label"] for line in report["cost_curve"]["lines"]}
    assert {"ft+rag (without prefix caching)", "ft+rag (with prefix caching)"} <= labels


def test_adapter_rag_without_cost_records_is_unknown_not_free() -> None:
    report = build_report(results(), prices=Prices(), adapters={"ft": FT})
    assert "ft+rag" not in report["one_time_cost"]
    statuses = {b["status"] for b in report["break_even"] if b["adapter"] == "ft+rag"}
    assert statuses == {"unknown"}
    # the adapter against its own adapter+rag: the reference's one-time cost is unknown too
    own = [b for b in report["break_even"] if (b["adapter"], b["reference"]) == ("ft", "ft+rag")]
    assert [(b["reference_one_time_usd"], b["status"]) for b in own] == [(None, "unknown")] * 2
    assert "ft+rag" not in {line["mode"] for line in report["cost_curve"]["lines"]}
    notes = [n for n in report["notes"] if n.startswith("ft+rag:")]
    assert any("no augmentation/training records" in n for n in notes)
    (note,) = [n for n in notes if "against rag's" in n]
    assert "an unknown amount" in note and "is unknown" in note


# -- the query API's retrieval option -----------------------------------------------------------


def test_retrieval_is_parsed_checked_and_never_forwarded() -> None:
    body = {"model": "ft", "messages": [{"role": "user", "content": "Hi"}]}
    req = parse_chat_request(body | {"retrieval": {"collection_id": "col_1"}})
    assert req.retrieval is not None and req.retrieval.top_k == DEFAULT_RETRIEVAL_TOP_K
    assert "retrieval" not in req.engine_fields()
    comp = parse_completion_request(
        {"model": "ft", "prompt": "x", "retrieval": {"collection_id": "c", "top_k": 5}}
    )
    assert comp.retrieval is not None and comp.retrieval.top_k == 5
    for bad, words_in_message in (
        ({"collection_id": "c", "top_k": 0}, "retrieval.top_k"),
        ({"collection_id": "c", "top_k": 51}, "retrieval.top_k"),
        ({"top_k": 2}, "retrieval.collection_id"),
        ({"collection_id": "c", "k": 2}, "Unknown parameter 'retrieval.k'"),
    ):
        with pytest.raises(RequestRejected) as err:
            parse_chat_request(body | {"retrieval": bad})
        assert words_in_message in err.value.message and err.value.param == "retrieval"


def query_service(tokenizer: Any) -> QueryService:
    collections = {("ws", "col"): PASSAGES, ("ws", "empty"): []}
    return QueryService(
        None,  # type: ignore[arg-type] - preparing a request never reaches vLLM
        tokenizer,
        resolve_adapter=lambda ws, name: "ad_1-x" if (ws, name) == ("ws", "ft") else None,
        load_collection_passages=lambda ws, cid: collections.get((ws, cid)),
        max_model_len=8192,
        icl_budget_tokens=6000,
    )


def test_retrieval_puts_the_evaluations_rag_context_in_the_adapters_prompt(
    tokenizer: Any,
) -> None:
    service = query_service(tokenizer)
    question = ITEMS[0].question
    body = {"model": "ft", "messages": [{"role": "user", "content": question}], "max_tokens": 8}

    async def prepare(b: dict[str, Any]) -> Any:
        req = parse_chat_request(b)
        target = await service._resolve("ws", req.model, req.retrieval)
        return service._prepare_chat(req, target)

    plain = asyncio.run(prepare(body))
    rag = asyncio.run(prepare(body | {"retrieval": {"collection_id": "col", "top_k": 1}}))
    assert rag.payload["model"] == plain.payload["model"] == "ad_1-x"
    expected = rag_context(ITEMS[:1], PASSAGES, {"a": 6000}, words, top_k=1).source()(ITEMS[0])
    assert rag.payload["messages"] == [
        {"role": "system", "content": icl_system_prompt(expected)},
        *plain.payload["messages"],
    ]
    assert rag.prompt_tokens > plain.prompt_tokens + 20
    assert "retrieval" not in rag.payload
    assert rag.info() == {
        "mode": "adapter+rag",
        "adapter": "ft",
        "collection_id": "col",
        "context_truncated": False,
        "passages_used": 1,
        "passages_total": 4,
        "context_tokens": rag.context.prompt_tokens,
        "top_k": 1,
    }
    assert rag.headers() == {
        "X-Docadapt-Mode": "adapter+rag",
        "X-Docadapt-Context-Truncated": "false",
        "X-Docadapt-Passages": "1/4",
    }
    base = asyncio.run(prepare(body | {"model": "base", "retrieval": {"collection_id": "col"}}))
    assert base.target.mode == "rag" and base.payload["model"] == "base"
    assert base.context.passages_used == DEFAULT_RETRIEVAL_TOP_K


def test_retrieval_on_completions_prefixes_the_one_prompt(tokenizer: Any) -> None:
    service = query_service(tokenizer)
    body = {"model": "ft", "prompt": "Dax owns the", "retrieval": {"collection_id": "col"}}

    async def prepare(b: dict[str, Any]) -> Any:
        req = parse_completion_request(b)
        return service._prepare_completion(req, await service._resolve("ws", "ft", req.retrieval))

    prepared = asyncio.run(prepare(body))
    prompt = prepared.payload["prompt"]
    assert prompt.startswith(icl_system_prompt(prepared.context)) and prompt.endswith(
        "\n\nDax owns the"
    )
    with pytest.raises(RequestRejected) as err:
        asyncio.run(prepare(body | {"prompt": ["one", "two"]}))
    assert err.value.param == "prompt" and "retrieval takes one text prompt" in err.value.message


def test_retrieval_errors_a_user_can_cause(tokenizer: Any) -> None:
    service = query_service(tokenizer)

    def resolve(ws: str, model: str, collection_id: str) -> None:
        req = parse_chat_request(
            {
                "model": model,
                "messages": [{"role": "user", "content": "Hi"}],
                "retrieval": {"collection_id": collection_id},
            }
        )
        asyncio.run(service._resolve(ws, req.model, req.retrieval))

    for ws, collection in (("ws", "nope"), ("other-ws", "col")):  # another workspace's: 404 too
        with pytest.raises(CollectionNotFound) as missing:
            resolve(ws, "base", collection)
        assert missing.value.status_code == 404 and missing.value.code == "collection_not_found"
        assert f"'{collection}' does not exist" in missing.value.message
    with pytest.raises(RequestRejected) as empty:
        resolve("ws", "ft", "empty")
    assert empty.value.param == "retrieval" and "no passages yet" in empty.value.message
    with pytest.raises(RequestRejected) as icl:
        resolve("ws", "icl:col", "col")
    assert icl.value.param == "retrieval"
    with pytest.raises(ModelNotFound):  # the model is checked first, as without retrieval
        resolve("ws", "unknown-adapter", "nope")
