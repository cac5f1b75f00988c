"""Training examples for one adapter: document sentences plus augmented statements.

A collection's documents arrive here already segmented into ordered sentences. Following
Lampinen et al. (2025), each sentence becomes its own training example ("independent", the
default, which the paper found to fine-tune markedly better), or, as an option, each sentence is
trained with the earlier sentences of its document as context ("cumulative"; loss on the new
sentence only). Each augmented statement is one more example. The examples are shuffled with a
seed, a small deterministic validation split is held out for the held-out loss, and a SHA-256
over the examples and the mode identifies the data set in the adapter registry.

The text format is plain continuation text (no chat template): an example is
``[specials] context " " target <eos>``, which is what log-likelihood scoring of continuations
(the paper's evaluation) reads. `encode_example` is the one place that turns an example into
tokens and labels; the training recipe and `token_count` both use it.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

Mode = Literal["independent", "cumulative"]
MODES: tuple[str, ...] = ("independent", "cumulative")

# Labels with this value carry no loss (PyTorch's cross_entropy default ignore_index).
IGNORE_INDEX = -100


@dataclass(frozen=True)
class DocumentSentences:
    """One document's sentences, in reading order."""

    document_id: str
    sentences: Sequence[str]


@dataclass(frozen=True)
class TrainingSet:
    """The examples one adapter is trained on, and the split held out for its held-out loss.

    `examples` and `validation` are disjoint lists of (context, target) pairs; context is ""
    for independent sentences and augmented statements. `sha256` identifies the data set
    (mode, examples, validation, in order). `token_count` is the number of tokens all examples
    take once encoded (`encode_example`), or None when no tokenizer was given.
    """

    examples: list[tuple[str, str]]
    validation: list[tuple[str, str]]
    mode: Mode
    seed: int
    sha256: str
    token_count: int | None = None
    # How many examples came from documents and how many from augmentation (before the split).
    counts: dict[str, int] = field(default_factory=dict)


def validation_size(n_examples: int, fraction: float = 0.05) -> int:
    """Size of the held-out split: `fraction` of the examples, at least 1 from 10 examples on,
    none below 10 (too few to spare one), and never all of them."""
    if n_examples < 10 or fraction <= 0:
        return 0
    return min(n_examples - 1, max(1, math.floor(n_examples * fraction)))


def build_examples(
    documents: Sequence[DocumentSentences],
    augmented: Sequence[str | tuple[str, str]],
    *,
    mode: Mode = "independent",
    seed: int = 0,
    validation_fraction: float = 0.05,
    tokenizer: PreTrainedTokenizerBase | None = None,
) -> TrainingSet:
    """Build the training set: one example per sentence (`mode` decides whether the earlier
    sentences of its document come along as context), one per augmented statement, shuffled
    with `seed`. An augmented item is a statement, or a (context, target) pair such as a
    chat prompt and its answer (loss on the target only).

    The held-out split (`validation_size`) is taken from the augmented statements when there
    are enough of them, so that every sentence of the user's documents is trained on; without
    augmentation it is taken from the document examples. The result is a pure function of the
    arguments: the same input gives the same examples, order and hash. Blank sentences and
    statements are dropped; exact duplicates are kept (repetition is a weight the caller chose).
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    doc_examples: list[tuple[str, str]] = []
    for document in documents:
        earlier: list[str] = []
        for raw in document.sentences:
            sentence = " ".join(raw.split())
            if not sentence:
                continue
            context = " ".join(earlier) if mode == "cumulative" else ""
            doc_examples.append((context, sentence))
            earlier.append(sentence)
    aug_examples = []
    for item in augmented:
        context, target = item if isinstance(item, tuple) else ("", item)
        target = " ".join(target.split())
        if target:
            aug_examples.append((context, target))

    rng = random.Random(seed)
    rng.shuffle(doc_examples)
    rng.shuffle(aug_examples)
    n_val = validation_size(len(doc_examples) + len(aug_examples), validation_fraction)
    if len(aug_examples) >= n_val:
        validation, aug_examples = aug_examples[:n_val], aug_examples[n_val:]
    else:
        validation, doc_examples = doc_examples[:n_val], doc_examples[n_val:]
    examples = doc_examples + aug_examples
    rng.shuffle(examples)

    token_count = None
    if tokenizer is not None:
        token_count = sum(len(encode_example(tokenizer, c, t)[0]) for c, t in examples + validation)
    return TrainingSet(
        examples=examples,
        validation=validation,
        mode=mode,
        seed=seed,
        sha256=dataset_sha256(mode, examples, validation),
        token_count=token_count,
        counts={
            "documents": len(doc_examples),
            "augmented": len(aug_examples),
            "validation": len(validation),
        },
    )


def dataset_sha256(
    mode: str, examples: Sequence[tuple[str, str]], validation: Sequence[tuple[str, str]]
) -> str:
    """SHA-256 of a canonical JSON rendering of the mode and both example lists, in order."""
    payload = {
        "format": 1,
        "mode": mode,
        "examples": [list(e) for e in examples],
        "validation": [list(e) for e in validation],
    }
    blob = json.dumps(payload, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def encode_example(
    tokenizer: PreTrainedTokenizerBase,
    context: str,
    target: str,
    max_length: int | None = None,
) -> tuple[list[int], list[int]]:
    """Tokens and next-token labels of one example: ``[specials] context " " target <eos>``
    (no space after a context that ends in whitespace, as a chat prompt does).

    The text is encoded the way a server encodes a prompt (the tokenizer's own leading special
    tokens, e.g. Llama's BOS; none for SmolLM2), so training sees what scoring will see.
    `labels[i]` is the token the model should predict after reading `tokens[: i + 1]`, or
    IGNORE_INDEX where no loss applies: labels are already shifted, so packed examples never
    predict across their boundaries. Loss falls on the target and its closing EOS only (without
    context or BOS, the target's first token has nothing to be predicted from). When
    `max_length` is given, the context is cut from the left (keeping the tokens nearest the
    target), then the target from the right, so the result fits.
    """
    eos = tokenizer.eos_token_id
    if eos is None:
        raise ValueError("the tokenizer has no EOS token to close examples with")
    prefix = _leading_special_tokens(tokenizer)
    ctx = tokenizer.encode(context, add_special_tokens=False) if context else []
    joined = " " + target if context and not context[-1].isspace() else target
    tgt = tokenizer.encode(joined, add_special_tokens=False)
    tgt = tgt + [eos]
    if max_length is not None:
        room = max(1, max_length - len(prefix))
        tgt = tgt[:room]
        keep = room - len(tgt)
        ctx = ctx[len(ctx) - keep :] if keep > 0 else []
    tokens = [*prefix, *ctx, *tgt]
    first_target = len(prefix) + len(ctx)
    labels = [
        tokens[i + 1] if i + 1 >= first_target else IGNORE_INDEX for i in range(len(tokens) - 1)
    ]
    return tokens, [*labels, IGNORE_INDEX]


def chat_prompt(tokenizer: PreTrainedTokenizerBase, question: str) -> str:
    """The text a chat request asking `question` (the user's one turn) becomes before the
    answer: the model's chat template with its generation prompt, as vLLM renders
    /v1/chat/completions (the special tokens written out, so `encode_example` reads them back as
    the same ids)."""
    messages = [{"role": "user", "content": question}]
    return str(tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True))


def encode_prompt(tokenizer: PreTrainedTokenizerBase, text: str) -> list[int]:
    """Token ids of a scoring prompt, with the tokenizer's special tokens (BOS if it uses one):
    what the evaluation sends to vLLM and what the training recipe's knowledge check scores."""
    return list(tokenizer(text, add_special_tokens=True)["input_ids"])


def encode_continuation(tokenizer: PreTrainedTokenizerBase, prompt: str, choice: str) -> list[int]:
    """Token ids of a choice as it continues `prompt` (a space between them unless present)."""
    needs_space = not (prompt[-1:].isspace() or choice[:1].isspace())
    text = (" " + choice) if needs_space else choice
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def _leading_special_tokens(tokenizer: PreTrainedTokenizerBase) -> list[int]:
    """The special tokens the tokenizer puts before a text (BOS for Llama-style ones)."""
    with_specials = tokenizer.encode("a", add_special_tokens=True)
    bare = tokenizer.encode("a", add_special_tokens=False)
    for i in range(len(with_specials) - len(bare) + 1):
        if with_specials[i : i + len(bare)] == bare:
            return with_specials[:i]
    return []


def save_training_set(training_set: TrainingSet, path: Path) -> None:
    """Write the training set as JSON (what `load_training_set` reads back)."""
    path.write_text(json.dumps(asdict(training_set), ensure_ascii=False) + "\n", encoding="utf-8")


def load_training_set(path: Path) -> TrainingSet:
    """Read a training set written by `save_training_set`; ValueError when its examples no
    longer match its recorded hash."""
    data = json.loads(path.read_text(encoding="utf-8"))
    examples = [(c, t) for c, t in data["examples"]]
    validation = [(c, t) for c, t in data["validation"]]
    if dataset_sha256(data["mode"], examples, validation) != data["sha256"]:
        raise ValueError(f"{path}: the examples do not match the recorded sha256")
    return TrainingSet(
        examples=examples,
        validation=validation,
        mode=data["mode"],
        seed=data["seed"],
        sha256=data["sha256"],
        token_count=data.get("token_count"),
        counts=data.get("counts", {}),
    )
