"""The knowledge check inside the training loop: multiple-choice probes scored on the model being
trained, so training can stop once it knows its documents (issue 13).

A probe is a training sentence with its key span left out and the span's alternatives
(`service.evaluate.probes` writes them). It is scored here exactly as the evaluation scores it
through vLLM: the prompt and each choice tokenized apart (`encode_prompt`,
`encode_continuation`), the choice's summed token log-likelihood, the highest wins. Right padding
keeps every sequence's positions as they would be alone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from adapters.training_data import encode_continuation, encode_prompt

# An adapter should know at least this share of its documents' facts (issue 13); below it,
# early stopping waits for the held-out loss to stall too.
KNOWLEDGE_TARGET = 0.9
# Families whose logits are exactly lm_head(last hidden state): for these the head runs only
# where a score is read (no softcapping or scaling to reproduce).
PLAIN_HEAD_MODEL_TYPES = frozenset({"llama", "mistral", "qwen2", "qwen3", "phi3", "smollm3"})
# Sequences per forward pass: ~40 probes x 4 choices of ~25 tokens fit a few passes on a CPU.
_BATCH = 32


@dataclass(frozen=True)
class KnowledgeProbe:
    """One probe as token ids: the prompt, each choice's continuation, the right choice."""

    prompt_ids: list[int]
    choice_ids: list[list[int]]
    answer: int

    @classmethod
    def from_text(
        cls, tokenizer, question: str, choices: Sequence[str], answer: int
    ) -> KnowledgeProbe:  # type: ignore[no-untyped-def]
        prompt = encode_prompt(tokenizer, question)
        conts = [encode_continuation(tokenizer, question, c) for c in choices]
        if not prompt or not all(conts) or not 0 <= answer < len(conts):
            raise ValueError(f"probe {question!r} has an empty prompt or choice, or no answer")
        return cls(prompt_ids=prompt, choice_ids=conts, answer=answer)


@torch.no_grad()
def probe_accuracy(
    model: nn.Module,
    probes: Sequence[KnowledgeProbe],
    *,
    pad_id: int,
    device: torch.device,
    autocast: Callable[[], AbstractContextManager],
) -> float:
    """Share of `probes` whose right choice has the highest summed log-likelihood under `model`
    (a causal LM returning `.logits`); dropout is off while scoring."""
    if not probes:
        raise ValueError("no probes to score")
    sequences = [(p.prompt_ids, c) for p in probes for c in p.choice_ids]
    # Batches of similar lengths pad little; the scores go back to the sequences' order.
    order = sorted(range(len(sequences)), key=lambda i: len(sequences[i][0]) + len(sequences[i][1]))
    totals = [0.0] * len(sequences)
    was_training = model.training
    model.eval()
    try:
        for start in range(0, len(order), _BATCH):
            batch = order[start : start + _BATCH]
            scores = choice_loglikelihoods(
                model, [sequences[i] for i in batch], pad_id, device, autocast
            )
            for i, score in zip(batch, scores, strict=True):
                totals[i] = score
    finally:
        model.train(was_training)
    right, at = 0, 0
    for probe in probes:
        scores = totals[at : at + len(probe.choice_ids)]
        at += len(probe.choice_ids)
        right += int(max(range(len(scores)), key=scores.__getitem__) == probe.answer)
    return right / len(probes)


def choice_loglikelihoods(
    model: nn.Module,
    sequences: Sequence[tuple[list[int], list[int]]],
    pad_id: int,
    device: torch.device,
    autocast: Callable[[], AbstractContextManager],
) -> list[float]:
    """Summed log-probability of each continuation after its prompt, one padded batch."""
    width = max(len(p) + len(c) for p, c in sequences)
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, (prompt, cont) in enumerate(sequences):
        ids[row, : len(prompt) + len(cont)] = torch.tensor(prompt + cont)
        mask[row, : len(prompt) + len(cont)] = 1
    # Token t is predicted at position t - 1; only those positions go through the output head
    # (a fifth of the model's work for a 49k-word vocabulary).
    rows = torch.tensor([r for r, (p, c) in enumerate(sequences) for _ in c], device=device)
    positions = torch.tensor(
        [len(p) - 1 + k for p, c in sequences for k in range(len(c))], device=device
    )
    targets = torch.tensor([t for _, c in sequences for t in c], device=device)
    with autocast():
        if getattr(model.config, "model_type", None) in PLAIN_HEAD_MODEL_TYPES:
            causal_lm = model.get_base_model() if hasattr(model, "get_base_model") else model
            hidden = causal_lm.get_decoder()(
                input_ids=ids.to(device), attention_mask=mask.to(device), use_cache=False
            ).last_hidden_state
            logits = causal_lm.get_output_embeddings()(hidden[rows, positions])
        else:
            logits = model(
                input_ids=ids.to(device), attention_mask=mask.to(device), use_cache=False
            ).logits[rows, positions]
    token_logprobs = F.log_softmax(logits.float(), dim=-1).gather(1, targets[:, None])[:, 0]
    out, at = [], 0
    for _, cont in sequences:
        out.append(float(token_logprobs[at : at + len(cont)].sum()))
        at += len(cont)
    return out
