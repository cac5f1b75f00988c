"""Scoring through the session's real vLLM server with the embedded model."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from adapters.base_model import load_tokenizer
from adapters.vllm.client import VLLMClient
from service.evaluate.evalset import EvalItem
from service.evaluate.scoring import Mode, Scorer

pytestmark = pytest.mark.e2e

PROMPT = "The capital of France is"
TRUE, FALSE = " Paris.", " a banana."


@pytest.fixture(scope="module")
def server(request: pytest.FixtureRequest) -> Iterator[tuple[str, str | None]]:
    """(url, api key) of the session's vLLM server."""
    srv = request.getfixturevalue("vllm_server")
    yield srv.url, srv.config.api_key


@pytest.fixture(scope="module")
def tokenizer(base_model_dir: Path) -> Any:
    return load_tokenizer(base_model_dir)


def run(
    server: tuple[str, str | None],
    tokenizer: Any,
    fn: Any,
    concurrency: int = 8,
    scoring_path: str = "auto",
) -> Any:
    """Run `fn(scorer)` on a fresh client and scorer (one event loop per call)."""

    async def go() -> Any:
        client = VLLMClient(server[0], api_key=server[1], timeout=300)
        scorer = Scorer(
            client,
            tokenizer,
            concurrency=concurrency,
            max_tokens=16,
            scoring_path=scoring_path,
        )
        try:
            return await fn(scorer)
        finally:
            await client.aclose()

    return asyncio.run(go())


def test_true_continuation_wins_and_sum_is_the_continuation_logprobs(
    server: tuple[str, str | None], tokenizer: Any, base_model_dir: Path
) -> None:
    async def score(s: Scorer) -> Any:
        choices = await s.choice_loglikelihoods("base", PROMPT, [TRUE, FALSE])
        # the same full text as one plain prompt, tokenized by vLLM itself
        echo = await s.client.prompt_logprobs("base", PROMPT + TRUE)
        return choices, echo

    (paris, banana), echo = run(server, tokenizer, score)
    assert paris.total > banana.total and paris.per_token > banana.per_token
    # the continuation is exactly the choice's tokens, and the score is their log-probabilities
    assert tokenizer.decode(paris.token_ids) == TRUE
    assert paris.total == pytest.approx(math.fsum(paris.logprobs))
    assert paris.per_token == pytest.approx(paris.total / len(paris.token_ids))
    prompt_ids = tokenizer(PROMPT)["input_ids"]
    assert echo.token_ids == prompt_ids + paris.token_ids  # no merge across the boundary here
    assert paris.total == pytest.approx(echo.sum_from(len(prompt_ids)), abs=1e-4)

    # independently: transformers in fp32 (the server runs --dtype float32)
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(
        base_model_dir, dtype=torch.float32, local_files_only=True
    )
    ids = torch.tensor([prompt_ids + paris.token_ids])
    with torch.no_grad():
        logits = model(ids).logits[0].log_softmax(-1)
    ref = [logits[i - 1, ids[0, i]].item() for i in range(len(prompt_ids), ids.shape[1])]
    assert paris.logprobs == pytest.approx(ref, abs=2e-3)


def test_concurrent_scoring_matches_one_at_a_time_and_records_usage(
    server: tuple[str, str | None], tokenizer: Any
) -> None:
    """Many prompt-logprob requests at once (vLLM batches them) give the same numbers as one at a
    time: a regression guard for the batching crash and leak in the runtime notes."""
    items = [
        EvalItem(id="fr", question=PROMPT, answer="Paris.", choices=("Paris.", "a banana.")),
        EvalItem(
            id="zorb",
            question="Zorb is the colour of",
            answer="green.",
            choices=("green.", "purple.", "the sea at night."),
            category="docs",
        ),
        EvalItem(
            id="de",
            question="The capital of Germany is",
            answer="Berlin.",
            choices=("Berlin.", "a spoon."),
        ),
        EvalItem(id="gen", question="What colour is zorb? Answer in one word.", answer="green"),
    ]
    context = "## Zorb\nZorb is a green fruit grown in Tallinn. Zorb tastes sour."
    modes = [Mode.base(), Mode.icl(context)]

    together = run(server, tokenizer, lambda s: s.score(items, modes), concurrency=16)
    alone = run(server, tokenizer, lambda s: s.score(items, modes), concurrency=1)

    assert [(r.mode, r.item_id) for r in together] == [(m.name, i.id) for m in modes for i in items]
    for a, b in zip(together, alone, strict=True):
        assert a.error is None and b.error is None
        if a.kind == "multiple_choice":
            assert a.choice_logprobs == pytest.approx(b.choice_logprobs, abs=1e-3)
            assert a.pred_sum == b.pred_sum and a.pred_norm == b.pred_norm
        else:
            assert a.prediction == b.prediction  # temperature 0
    by = {(r.mode, r.item_id): r for r in together}
    assert by[("base", "fr")].correct and by[("base", "de")].correct
    # usage: the shared context is a cacheable prefix of every icl prompt, and only there
    for item in items:
        base, icl = by[("base", item.id)], by[("icl", item.id)]
        assert base.cacheable_tokens == 0
        assert 0 < icl.cacheable_tokens < icl.prompt_tokens
        assert icl.prompt_tokens > base.prompt_tokens > 0
        assert icl.completion_tokens > 0 and icl.latency_s > 0
    mc = by[("icl", "zorb")]
    assert mc.scoring_tokens == sum(mc.prompt_tokens + n for n in mc.choice_tokens or [])
    assert mc.completion_tokens == (mc.choice_tokens or [])[0]
    gen = by[("icl", "gen")]
    assert gen.kind == "generation" and set(gen.scores) == {"exact", "contains"}
    assert gen.completion_tokens <= 16


def test_too_long_prompt_is_an_item_error_not_a_crash(
    server: tuple[str, str | None], tokenizer: Any
) -> None:
    huge = "word " * 9000  # over the server's 8192-token limit
    item = EvalItem(id="long", question="Is this long?", answer="yes", choices=("yes", "no"))
    result = run(server, tokenizer, lambda s: s.score_item(item, Mode.icl(huge)))
    assert result.error and "refused" in result.error
    assert not result.correct and result.scores == {"mc_sum": False, "mc_norm": False}


def test_latency_probe_cold_and_warm(server: tuple[str, str | None], tokenizer: Any) -> None:
    items = [
        EvalItem(id=f"q{i}", question=f"Name a colour, number {i}.", answer="red") for i in range(2)
    ]
    context = "\n".join(f"Fact {i}: the colour of item {i} is red." for i in range(30))
    probe = run(server, tokenizer, lambda s: s.probe_latency(items, Mode.icl(context), samples=1))
    assert len(probe.cold_s) == len(probe.warm_s) == 1
    assert min(probe.cold_s + probe.warm_s) > 0
    assert min(probe.prompt_tokens) > 300  # the context went in both times
    assert 0 < max(probe.completion_tokens) <= 16


def test_scoring_through_the_prefix_cache_equals_prompt_logprobs(
    server: tuple[str, str | None], tokenizer: Any
) -> None:
    """Behind a long context, choices are scored one forced token per request (reading vLLM's
    prefix cache); the log-likelihoods equal those of prompt log-probabilities, which recompute
    the whole prompt."""
    context = " ".join(
        f"Record {i}: the depot at Quarry Lane {i} stores {i * 3} crates of zorb."
        for i in range(26)
    )
    items = [
        EvalItem(
            id="depot",
            question="The depot at Quarry Lane 7 stores",
            answer="21 crates of zorb.",
            choices=("21 crates of zorb.", "a purple elephant.", "12 crates of zorb."),
        ),
        EvalItem(id="fr", question=PROMPT, answer="Paris.", choices=("Paris.", "a banana.")),
    ]
    modes = [Mode.icl(context)]
    cached = run(server, tokenizer, lambda s: s.score(items, modes), scoring_path="cached")
    recomputed = run(server, tokenizer, lambda s: s.score(items, modes), scoring_path="prompt")
    assert min(r.prompt_tokens for r in cached) > 4 * 128  # several KV blocks behind the choices
    for a, b in zip(cached, recomputed, strict=True):
        assert a.error is None and b.error is None
        assert a.choice_tokens == b.choice_tokens
        assert a.choice_logprobs == pytest.approx(b.choice_logprobs, abs=1e-3)
        assert (a.pred_sum, a.pred_norm) == (b.pred_sum, b.pred_norm)
