"""An adapter answers through vLLM exactly as through peft: the same greedy tokens on a fixed set
of prompts, and each token's log-probability within a stated tolerance (both in float32).

LoRA serving has a history of silently wrong answers (vLLM #5148, #10798), and docadapt replaces
vLLM's CPU LoRA ops with its own (adapters/vllm/plugin.py, fused_lora.py), so this is checked
against the reference implementation, with the prompts sent at once (mixed with base requests)
so the batched path is the one compared.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file, save_file

from adapters.base_model import load_tokenizer
from adapters.vllm.loader import AdapterLoader
from adapters.vllm.server import LocalVLLMServer

pytestmark = pytest.mark.e2e

QUESTIONS = [
    "What is the capital of France?",
    "Name three colours of the rainbow.",
    "Who wrote the play Romeo and Juliet?",
    "How many legs does a spider have?",
    "Explain in one sentence what a library is.",
]
NEW_TOKENS = 24
# float32 on both sides; what is left is summation order (oneDNN vs eager matmuls).
LOGPROB_TOLERANCE = 2e-3
# A random adapter at full strength answers noise, where near-ties make greedy decoding fragile;
# scaled down it still changes every answer, like a trained adapter does.
B_SCALE = 0.3


@pytest.fixture(scope="module")
def parity_adapter(make_random_adapter: Callable[..., Path], tmp_path_factory: Any) -> Path:
    folder = make_random_adapter(tmp_path_factory.mktemp("parity"), seed=7, rank=16)
    weights_file = folder / "adapter_model.safetensors"
    weights = load_file(weights_file)
    scaled = {k: v * B_SCALE if "lora_B" in k else v for k, v in weights.items()}
    save_file(scaled, weights_file, metadata={"format": "pt"})
    return folder


def _prompts(base_model_dir: Path) -> list[list[int]]:
    tokenizer = load_tokenizer(base_model_dir)
    return [
        list(
            tokenizer.apply_chat_template(
                [{"role": "user", "content": q}],
                add_generation_prompt=True,
                tokenize=True,
                return_dict=True,
            )["input_ids"]
        )
        for q in QUESTIONS
    ]


def _peft_answers(base_model_dir: Path, adapter: Path, prompts: list[list[int]]) -> list[Any]:
    """(tokens, log-probability of each) per prompt, greedy, from transformers + peft."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(
        base_model_dir, dtype=torch.float32, local_files_only=True
    )
    model = PeftModel.from_pretrained(base, adapter).eval()
    answers = []
    with torch.no_grad():
        for ids in prompts:
            out = model.generate(
                torch.tensor([ids]),
                max_new_tokens=NEW_TOKENS,
                do_sample=False,
                output_scores=True,
                return_dict_in_generate=True,
                pad_token_id=base.config.eos_token_id,
            )
            tokens = out.sequences[0, len(ids) :].tolist()
            logprobs = [
                float(torch.log_softmax(score[0].float(), dim=-1)[tok])
                for score, tok in zip(out.scores, tokens, strict=True)
            ]
            answers.append((tokens, logprobs))
    return answers


async def _vllm_answers(server: LocalVLLMServer, adapter: Path, prompts: list[list[int]]) -> Any:
    client = server.client()
    try:
        loader = AdapterLoader(
            client, max_lora_rank=server.config.max_lora_rank, lock_dir=adapter.parent / "locks"
        )
        assert await loader.load("parity-1", adapter) in {"loaded", "already_loaded"}

        async def ask(model: str, ids: list[int]) -> tuple[list[int], list[float]]:
            data = await client.completion(
                {
                    "model": model,
                    "prompt": ids,
                    "max_tokens": NEW_TOKENS,
                    "temperature": 0.0,
                    "logprobs": 0,
                    "return_token_ids": True,
                }
            )
            choice = data["choices"][0]
            return list(choice["token_ids"]), list(choice["logprobs"]["token_logprobs"])

        # All at once, adapter and base interleaved: the batched LoRA path is the one compared.
        jobs = [ask(model, ids) for ids in prompts for model in ("parity-1", "base")]
        results = await asyncio.gather(*jobs)
        await loader.unload("parity-1")
        return results[0::2], results[1::2]
    finally:
        await client.aclose()


def test_adapter_through_vllm_answers_as_peft_token_for_token(
    vllm_server: LocalVLLMServer, base_model_dir: Path, parity_adapter: Path
) -> None:
    assert vllm_server.config.dtype == "float32"
    prompts = _prompts(base_model_dir)
    served, base = asyncio.run(_vllm_answers(vllm_server, parity_adapter, prompts))
    reference = _peft_answers(base_model_dir, parity_adapter, prompts)

    for question, (tokens, logprobs), (want_tokens, want_logprobs) in zip(
        QUESTIONS, served, reference, strict=True
    ):
        assert tokens == want_tokens, question
        assert len(tokens) > 3, question
        worst = max(abs(a - b) for a, b in zip(logprobs, want_logprobs, strict=True))
        assert worst <= LOGPROB_TOLERANCE, (question, worst)
    # The adapter changed the answers: the comparison is of LoRA, not of the base model.
    assert sum(a[0] != b[0] for a, b in zip(served, base, strict=True)) >= len(QUESTIONS) - 1
