"""Augmentation benchmark: concurrency, prefix cache, reversal precision and throughput on a real
teacher.

    python -m service.benchmark.augment_perf --teacher-url http://127.0.0.1:8900 [--out perf.json]

Four measurements, each on fresh synthetic text (a run nonce keeps vLLM's prefix cache from
carrying anything over from an earlier run):
1. concurrency: the same local-strategy workload (N sentence units, n=1, temperature 0, a fixed
   token limit) sent one request at a time, then with the configured concurrency. Two sets of
   units of the same shape are used, so the second run does not find the first run's prompts
   in the prefix cache; one warm-up request caches the shared few-shot prefix for both.
   Target: concurrent at least 6x faster.
2. prefix cache (global): a corpus of about `corpus_tokens` tokens in `documents` documents; one
   global prompt per target (the corpus, then the target's own text again),
   sent one at a time; the first pays the corpus prefill, the later ones should find it cached.
   Target: later requests' median latency at most 40% of the first's.
3. reversal precision: about 30 comparative facts with nonsense names, as in notes/teacher.md.
   The decomposed strategy (with and without its rule tables) and the free-form local strategy
   (with and without the gate) write reversals; an independent judge (its own phrase table, not
   the engine's) calls each output a correct reversal, a contradiction, or other.
4. throughput: generated tokens per second of the global strategy over a ~1.5k-token corpus
   shared by every prompt, with `concurrency` requests of n sequences in flight, and of the
   local strategy on as many units; their ratio.
5. teacher (`--parts teacher`, not by default; no --teacher-url): throughput on the serving
   vLLM against a teacher-only vLLM in `--teacher-dtype`, both started here (teacher_perf.py).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from service.augment.engine import run_strategy
from service.augment.params import AugmentParams
from service.augment.prompts import builtin_template
from service.augment.strategies.global_ import render_prompt
from service.augment.teacher import Sampling, Teacher, TeacherConfig
from service.augment.types import Unit
from service.benchmark.perf_cli import perf_parser
from service.benchmark.teacher_perf import compare_teachers
from service.core.config import Settings

CONCURRENCY_TARGET = 6.0
PREFIX_TARGET = 0.40

# The judge's own table: adjective, "higher" comparative, "lower" comparative, lower adjective.
# Deliberately separate from service/augment/relations/, so the engine is not judged by itself.
JUDGE_DIMENSIONS: tuple[tuple[str, str, str, str | None], ...] = (
    ("dangerous", "more dangerous", "less dangerous", "safe"),
    ("bright", "brighter", "dimmer", "dim"),
    ("heavy", "heavier", "lighter", "light"),
    ("fast", "faster", "slower", "slow"),
    ("old", "older", "younger", "young"),
    ("loud", "louder", "quieter", "quiet"),
    ("warm", "warmer", "colder", "cold"),
    ("strong", "stronger", "weaker", "weak"),
    ("tall", "taller", "shorter", "short"),
    ("wet", "wetter", "drier", "dry"),
)
_ONSETS = (
    "b",
    "d",
    "f",
    "g",
    "k",
    "l",
    "m",
    "n",
    "p",
    "r",
    "s",
    "t",
    "v",
    "z",
    "bl",
    "br",
    "dr",
    "fl",
    "gl",
    "gr",
    "kl",
    "kr",
    "pl",
    "pr",
    "sn",
    "sp",
    "st",
    "tr",
)
_VOWELS = ("a", "e", "i", "o", "u")
_CODAS = (
    "b",
    "d",
    "f",
    "g",
    "k",
    "m",
    "n",
    "p",
    "r",
    "s",
    "t",
    "x",
    "mp",
    "nk",
    "rd",
    "rn",
    "sk",
    "st",
)


@dataclass(frozen=True)
class Fact:
    """ "left <phrase> right", where phrase puts left `direction` (higher/lower) on `dim`."""

    left: str
    right: str
    dim: int
    direction: str  # "higher" or "lower"

    @property
    def statement(self) -> str:
        adj, higher, lower, _ = JUDGE_DIMENSIONS[self.dim]
        phrase = higher if self.direction == "higher" else lower
        return f"{self.left.capitalize()} are {phrase} than {self.right}."


def nonsense_words(count: int, rng: random.Random) -> list[str]:
    """Distinct pronounceable made-up words ("kreb", "quom"-like)."""
    out: list[str] = []
    while len(out) < count:
        w = rng.choice(_ONSETS) + rng.choice(_VOWELS) + rng.choice(_CODAS)
        if w not in out:
            out.append(w)
    return out


def make_facts(count: int, seed: int) -> list[Fact]:
    """`count` facts over the judge's dimensions, half stated "higher", half "lower"."""
    rng = random.Random(seed)
    names = nonsense_words(2 * count, rng)
    return [
        Fact(
            names[2 * i],
            names[2 * i + 1],
            i % len(JUDGE_DIMENSIONS),
            "higher" if (i // len(JUDGE_DIMENSIONS) + i) % 2 == 0 else "lower",
        )
        for i in range(count)
    ]


def _phrases(dim: int, direction: str) -> set[str]:
    adj, higher, lower, low_adj = JUDGE_DIMENSIONS[dim]
    if direction == "higher":
        out = {higher, f"more {adj}"}
        if low_adj:
            out.add(f"less {low_adj}")
    else:
        out = {lower, f"less {adj}"}
        if low_adj:
            out.add(f"more {low_adj}")
    return out


def judge(fact: Fact, text: str) -> str:
    """ "correct" (the reversal), "contradiction", or "other" for one output about `fact`."""
    words = text.lower().strip().rstrip(".!").replace(" is ", " are ").split()
    norm = " ".join(w for w in words if w not in {"the", "a", "an"})
    flip = "lower" if fact.direction == "higher" else "higher"
    for first, second, direction, verdict in (
        (fact.right, fact.left, flip, "correct"),
        (fact.left, fact.right, fact.direction, "restatement"),
        (fact.right, fact.left, fact.direction, "contradiction"),
        (fact.left, fact.right, flip, "contradiction"),
    ):
        for phrase in _phrases(fact.dim, direction):
            if norm == f"{first} are {phrase} than {second}":
                return (
                    "correct"
                    if verdict == "correct"
                    else ("other" if verdict == "restatement" else "contradiction")
                )
    return "other"


def _nonce_units(facts: list[Fact], prefix: str) -> list[Unit]:
    return [
        Unit(f"{prefix}-{i}", f"{prefix}-doc{i // 3}", f.statement) for i, f in enumerate(facts)
    ]


async def measure_concurrency(
    url: str, model: str, units: int, concurrency: int, max_tokens: int
) -> dict[str, Any]:
    """Wall time of one local-strategy workload, one request at a time vs concurrently."""
    nonce = random.Random(uuid.uuid4().int)
    seq_units = _nonce_units(make_facts(units, nonce.randrange(1 << 30)), "seq")
    con_units = _nonce_units(make_facts(units, nonce.randrange(1 << 30)), "con")
    params = AugmentParams(outputs_per_unit=1, temperature=0.0, max_tokens=max_tokens)
    out: dict[str, Any] = {"units": units, "max_tokens": max_tokens, "concurrency": concurrency}
    warm = Unit("warm", "warm", make_facts(1, nonce.randrange(1 << 30))[0].statement)
    for label, unit_set, bound in (
        ("sequential", seq_units, 1),
        ("concurrent", con_units, concurrency),
    ):
        async with Teacher(
            TeacherConfig(base_url=url, model=model, concurrency=bound, timeout_s=600)
        ) as teacher:
            await run_strategy("local", [warm], teacher, params)  # caches the few-shot prefix
            started = time.perf_counter()
            result = await run_strategy("local", unit_set, teacher, params)
            wall = time.perf_counter() - started
        out[label] = {
            "wall_s": round(wall, 2),
            "completion_tokens": result.stats.completion_tokens,
            "prompt_tokens": result.stats.prompt_tokens,
            "failed_units": result.stats.units_failed,
        }
    out["speedup"] = round(out["sequential"]["wall_s"] / out["concurrent"]["wall_s"], 2)
    out["target"] = CONCURRENCY_TARGET
    out["meets_target"] = out["speedup"] >= CONCURRENCY_TARGET
    return out


def global_corpus(corpus_tokens: int, documents: int) -> list[Unit]:
    """About `corpus_tokens` tokens of fresh nonsense-word facts in `documents` documents; the
    run nonce in every title keeps vLLM's prefix cache from holding any of it already."""
    nonce = uuid.uuid4().hex[:8]
    rng = random.Random(nonce)
    facts = make_facts(max(documents, corpus_tokens // 12), rng.randrange(1 << 30))
    per_doc = max(1, len(facts) // documents)
    return [
        Unit(
            f"g{i:03d}",
            f"g{i:03d}",
            " ".join(f.statement for f in facts[i * per_doc : (i + 1) * per_doc]),
            title=f"Notes {nonce} {i}",
        )
        for i in range(len(facts) // per_doc)
    ]


async def measure_prefix_cache(
    url: str, model: str, corpus_tokens: int, documents: int, targets: int, max_tokens: int
) -> dict[str, Any]:
    """Latency of global requests sent one at a time: the first (cold corpus) vs the rest."""
    docs = global_corpus(corpus_tokens, documents)
    template = builtin_template("global")
    docs_by_id = {d.id: d for d in docs}
    ids = [d.id for d in docs]
    texts = {d.id: d.text for d in docs}
    sampling = Sampling(n=1, temperature=0.0, max_tokens=max_tokens, stop=template.stop)
    latencies: list[float] = []
    prompt_tokens: list[int] = []
    cached: list[int] = []
    async with Teacher(
        TeacherConfig(base_url=url, model=model, concurrency=1, timeout_s=600)
    ) as teacher:
        for target in docs[:targets]:
            prompt = render_prompt(template, docs_by_id, ids, target, texts)
            c = await teacher.complete(prompt, sampling)
            latencies.append(c.latency_s)
            prompt_tokens.append(c.prompt_tokens)
            cached.append(c.cached_prompt_tokens)
    later = statistics.median(latencies[1:])
    return {
        "documents": len(docs),
        "prompt_tokens": prompt_tokens,
        "max_tokens": max_tokens,
        "latencies_s": [round(x, 2) for x in latencies],
        "first_s": round(latencies[0], 2),
        "later_median_s": round(later, 2),
        "ratio": round(later / latencies[0], 3),
        "cached_prompt_tokens": cached,
        "target": PREFIX_TARGET,
        "meets_target": later / latencies[0] <= PREFIX_TARGET,
    }


async def measure_throughput(
    url: str,
    model: str,
    *,
    corpus_tokens: int,
    documents: int,
    concurrency: int,
    outputs_per_unit: int,
    global_max_tokens: int,
    local_max_tokens: int,
) -> dict[str, Any]:
    """Generated tokens per second of the global strategy over a shared corpus (every prompt is
    the whole corpus, then its target), and of the local strategy on as many units, both run
    as a job runs them (`concurrency` requests of `outputs_per_unit` sequences in flight)."""
    docs = global_corpus(corpus_tokens, documents)
    facts = make_facts(len(docs), random.Random(uuid.uuid4().int).randrange(1 << 30))
    local_units = _nonce_units(facts, f"tp{uuid.uuid4().hex[:6]}")
    params = AugmentParams(
        outputs_per_unit=outputs_per_unit,
        max_tokens=local_max_tokens,
        global_max_tokens=global_max_tokens,
    )
    out: dict[str, Any] = {
        "documents": len(docs),
        "concurrency": concurrency,
        "outputs_per_unit": outputs_per_unit,
        "sequences_in_flight": min(concurrency, len(docs)) * outputs_per_unit,
    }
    for strategy, units in (("global", docs), ("local", local_units)):
        async with Teacher(
            TeacherConfig(base_url=url, model=model, concurrency=concurrency, timeout_s=1200)
        ) as teacher:
            started = time.perf_counter()
            result = await run_strategy(strategy, units, teacher, params)
            wall = time.perf_counter() - started
        stats = result.stats
        out[strategy] = {
            "wall_s": round(wall, 2),
            "requests": stats.requests,
            "prompt_tokens": stats.prompt_tokens,
            "completion_tokens": stats.completion_tokens,
            "tokens_per_second": round(stats.completion_tokens / wall, 1),
            "failed_units": stats.units_failed,
        }
    out["global_over_local"] = round(
        out["global"]["tokens_per_second"] / max(out["local"]["tokens_per_second"], 1e-9), 3
    )
    return out


async def measure_reversal_precision(url: str, model: str, count: int, seed: int) -> dict[str, Any]:
    """Judge every reversal-shaped output of decomposed (rules on/off) and local (gate on/off)."""
    facts = make_facts(count, seed)
    units = [Unit(f"f{i}", f"f{i}", f.statement) for i, f in enumerate(facts)]
    by_unit = {u.id: f for u, f in zip(units, facts, strict=True)}
    runs = {
        "decomposed_rules": ("decomposed", AugmentParams(use_rules=True)),
        "decomposed_teacher_only": ("decomposed", AugmentParams(use_rules=False)),
        "decomposed_teacher_only_ungated": (
            "decomposed",
            AugmentParams(use_rules=False, gate=False),
        ),
        "local_gated": ("local", AugmentParams(outputs_per_unit=1, temperature=0.0)),
        "local_ungated": ("local", AugmentParams(outputs_per_unit=1, temperature=0.0, gate=False)),
    }
    out: dict[str, Any] = {"facts": count, "seed": seed}
    async with Teacher(
        TeacherConfig(base_url=url, model=model, concurrency=16, timeout_s=600)
    ) as teacher:
        for label, (strategy, params) in runs.items():
            result = await run_strategy(strategy, units, teacher, params)
            verdicts = {"correct": 0, "contradiction": 0, "other": 0}
            samples: dict[str, list[str]] = {"contradiction": [], "other": []}
            facts_right: set[str] = set()
            for ex in result.examples:
                fact = by_unit[ex.unit_ids[0]]
                verdict = judge(fact, ex.text)
                verdicts[verdict] += 1
                if verdict == "correct":
                    facts_right.add(ex.unit_ids[0])
                elif len(samples[verdict]) < 4:
                    samples[verdict].append(f"{fact.statement} -> {ex.text}")
            judged = verdicts["correct"] + verdicts["contradiction"]
            out[label] = {
                "examples": len(result.examples),
                **verdicts,
                # precision among outputs the judge recognises as either reversal or its
                # contradiction; "other" counts rephrasings and garbage
                "precision_on_reversals": round(verdicts["correct"] / judged, 3)
                if judged
                else None,
                "precision_all_outputs": round(verdicts["correct"] / len(result.examples), 3)
                if result.examples
                else None,
                "facts_with_correct_reversal": len(facts_right),
                "dropped": dict(result.stats.dropped),
                "unparsed": dict(result.stats.unparsed),
                "requests": result.stats.requests,
                "samples": samples,
            }
    return out


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    report: dict[str, Any] = {"url": args.teacher_url, "model": args.teacher_model}
    if "precision" in args.parts:
        report["reversal_precision"] = await measure_reversal_precision(
            args.teacher_url, args.teacher_model, args.facts, args.seed
        )
    if "concurrency" in args.parts:
        report["concurrency"] = await measure_concurrency(
            args.teacher_url, args.teacher_model, args.units, args.concurrency, args.max_tokens
        )
    if "prefix" in args.parts:
        report["prefix_cache"] = await measure_prefix_cache(
            args.teacher_url,
            args.teacher_model,
            args.corpus_tokens,
            args.documents,
            args.targets,
            args.global_max_tokens,
        )
    if "throughput" in args.parts:
        report["throughput"] = await _throughput(args, args.teacher_url)
    if "teacher" in args.parts:
        report["teacher_vllm"] = await compare_teachers(
            Settings(),
            args.teacher_dtype,
            args.repeats,
            lambda url: _throughput(args, url),
            lambda line: print(line, file=sys.stderr, flush=True),
        )
    return report


def _throughput(args: argparse.Namespace, url: str) -> Awaitable[dict[str, Any]]:
    return measure_throughput(
        url,
        args.teacher_model,
        corpus_tokens=args.throughput_corpus_tokens,
        documents=args.documents,
        concurrency=args.concurrency,
        outputs_per_unit=args.outputs_per_unit,
        global_max_tokens=args.throughput_max_tokens,
        local_max_tokens=args.throughput_max_tokens,
    )


def main(argv: list[str] | None = None) -> int:
    parser = perf_parser("augment", __doc__)
    parser.add_argument(
        "--teacher-url",
        default="http://127.0.0.1:8900",
        help="the teacher: an OpenAI-compatible server (a vLLM)",
    )
    parser.add_argument("--teacher-model", default="base", help="the teacher's model name")
    parser.add_argument(
        "--parts",
        nargs="+",
        default=["precision", "concurrency", "prefix", "throughput"],
        choices=["precision", "concurrency", "prefix", "throughput", "teacher"],
        help="which measurements to run; teacher (not by default) starts two vLLMs itself",
    )
    parser.add_argument("--teacher-dtype", default="bfloat16", help="teacher-only vLLM's dtype")
    parser.add_argument("--repeats", type=int, default=2, help="teacher: runs on each vLLM")
    parser.add_argument("--units", type=int, default=24, help="local units per run")
    parser.add_argument("--concurrency", type=int, default=16, help="teacher requests in flight")
    parser.add_argument("--max-tokens", type=int, default=48, help="tokens per local request")
    parser.add_argument("--corpus-tokens", type=int, default=3500, help="global corpus tokens")
    parser.add_argument("--documents", type=int, default=16, help="global corpus documents")
    parser.add_argument("--targets", type=int, default=6, help="global requests timed")
    parser.add_argument(
        "--global-max-tokens", type=int, default=32, help="tokens generated per global request"
    )
    parser.add_argument(
        "--throughput-corpus-tokens",
        type=int,
        default=1500,
        help="size of the shared corpus of the throughput measurement, in tokens",
    )
    parser.add_argument(
        "--throughput-max-tokens",
        type=int,
        default=128,
        help="tokens generated per sequence in the throughput measurement (global and local)",
    )
    parser.add_argument(
        "--outputs-per-unit",
        type=int,
        default=AugmentParams.outputs_per_unit,
        help="completions per prompt (n) in the throughput measurement",
    )
    parser.add_argument("--facts", type=int, default=30, help="facts for the reversal precision")
    parser.add_argument("--seed", type=int, default=7, help="seed of the synthetic data")
    parser.add_argument("--out", type=Path, help="write the report as JSON here too")
    args = parser.parse_args(argv)
    report = asyncio.run(main_async(args))
    text = json.dumps(report, indent=1)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
