"""`docadapt perf score`: what scoring multiple-choice items behind a shared context costs on one
vLLM, by path.

The evaluation's `icl` mode puts the collection in front of every question and scores each choice
as a continuation. vLLM computes prompt log-probabilities without its prefix cache, so the
"prompt" path recomputes the whole context for every choice; the "cached" path sends one request
per choice token that reads the context from the cache but recomputes the context's partial last
KV block. Which is cheaper depends on the context's length and the server's KV block size
(`Scorer.cached_path_is_cheaper`). For each context length this prints the wall time of both
paths on the same items (same context, already cached, `concurrency` requests in flight), their
ratio, and the path "auto" picks. Contexts are random words, so nothing is cached across lengths.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from adapters.vllm.client import VLLMClient
from service.benchmark.perf_cli import perf_parser
from service.benchmark.query_perf import served_model_info
from service.evaluate.scoring import Scorer

# Made-up and function words, as in the bench's documents.
WORDS = ("glon", "femp", "yomp", "troff", "snald", "onke", "are", "more", "less", "dangerous")
WORDS += ("than", "older", "younger", "quick", "and", "the", "a", "of", "river", "stone", "blue")


async def run_score_benchmark(
    vllm_url: str,
    *,
    api_key: str | None,
    base_model: str,
    model_dir: Path | None,
    context_words: Sequence[int],
    items: int,
    choices: int,
    block_size: int,
    concurrency: int,
) -> list[dict[str, Any]]:
    from transformers import AutoTokenizer

    client = VLLMClient(vllm_url, api_key=api_key)
    rng = random.Random(0)
    nonce = uuid.uuid4().hex[:8]  # a fresh context per run: nothing cached from an earlier run

    def text(n: int) -> str:
        return " ".join(rng.choice(WORDS) for _ in range(n))

    rows = []
    try:
        info = await served_model_info(client, base_model)
        tokenizer = AutoTokenizer.from_pretrained(
            model_dir or Path(info["root"]), local_files_only=True
        )
        for n_words in context_words:
            context = f"Run {nonce}. {text(n_words)}\n\n"
            work = [
                (context + f"Question {k}: {text(8)}", [text(8) for _ in range(choices)])
                for k in range(items)
            ]
            row: dict[str, Any] = {"context_words": n_words}
            for path in ("prompt", "cached"):
                scorer = Scorer(
                    client,
                    tokenizer,
                    concurrency=concurrency,
                    scoring_path=path,  # type: ignore[arg-type]
                    kv_block_tokens=block_size,
                )
                await scorer.choice_loglikelihoods(base_model, context + "warm", ["x"])
                started = time.perf_counter()
                scored = await asyncio.gather(
                    *(scorer.choice_loglikelihoods(base_model, p, c) for p, c in work)
                )
                row[f"{path}_s"] = round(time.perf_counter() - started, 2)
                row["choice_tokens"] = sum(len(s.token_ids) for r in scored for s in r) / (
                    items * choices
                )
            auto = Scorer(client, tokenizer, kv_block_tokens=block_size)
            row["prompt_tokens"] = len(auto.encode_prompt(work[0][0]))
            row["auto_picks"] = (
                "cached"
                if auto.cached_path_is_cheaper(row["prompt_tokens"], round(row["choice_tokens"]))
                else "prompt"
            )
            row["cached_over_prompt"] = round(row["cached_s"] / row["prompt_s"], 3)
            rows.append(row)
            print(format_row(row), flush=True)
    finally:
        await client.aclose()
    return rows


def format_row(row: dict[str, Any]) -> str:
    faster = "cached" if row["cached_s"] < row["prompt_s"] else "prompt"
    return (
        f"{row['prompt_tokens']:>6} prompt tokens  prompt path {row['prompt_s']:>7.1f} s  "
        f"cached path {row['cached_s']:>7.1f} s  cached/prompt {row['cached_over_prompt']:.2f}  "
        f"faster: {faster}  auto picks: {row['auto_picks']}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = perf_parser("score", __doc__)
    parser.add_argument("--vllm-url", default="http://127.0.0.1:8000", help="vLLM server URL")
    parser.add_argument(
        "--vllm-api-key",
        default=os.environ.get("DOCADAPT_VLLM_API_KEY"),
        help="vLLM's API key (default: $DOCADAPT_VLLM_API_KEY)",
    )
    parser.add_argument("--base-model", default="base", help="vLLM's name of the base model")
    parser.add_argument("--model-dir", type=Path, help="base model folder (default: from vLLM)")
    parser.add_argument(
        "--context-words", default="600,1200", help="comma-separated context lengths, in words"
    )
    parser.add_argument("--items", type=int, default=6, help="questions per context")
    parser.add_argument("--choices", type=int, default=4, help="choices per question")
    parser.add_argument(
        "--block-size", type=int, default=32, help="the server's KV block size (for 'auto')"
    )
    parser.add_argument("--concurrency", type=int, default=8, help="requests in flight")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    rows = asyncio.run(
        run_score_benchmark(
            args.vllm_url,
            api_key=args.vllm_api_key,
            base_model=args.base_model,
            model_dir=args.model_dir,
            context_words=[int(w) for w in args.context_words.split(",")],
            items=args.items,
            choices=args.choices,
            block_size=args.block_size,
            concurrency=args.concurrency,
        )
    )
    print(f"(took {time.perf_counter() - started:.0f} s)")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
