"""How fast LoRA training could go on this machine if it did nothing but matrix multiplies.

A trained-tokens-per-second figure means little without the machine it ran on: the same recipe did
~130 tokens/s on one 2-core CPU and (per the runtime notes) 270 on another. Almost all of a
training step is matmuls (76% of a CPU step in a profile here), so this module counts the matmul
FLOPs one trained token costs and times this machine's matmul rate on the model's own shapes.
Their ratio is a ceiling; measured throughput over it says how much of the hardware the recipe
uses, and what rate a given target would need.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import torch
from torch import nn


@dataclass(frozen=True)
class LinearShape:
    """One linear layer of the model: its name, input and output width, and if LoRA adapts it."""

    name: str
    in_features: int
    out_features: int
    adapted: bool


@dataclass(frozen=True)
class TrainingFlops:
    """Matmul FLOPs per trained token of one LoRA training step (frozen base, trained adapters)."""

    forward: float
    backward: float

    @property
    def total(self) -> float:
        return self.forward + self.backward


def linear_shapes(model_dir: Path | str, target_modules: list[str]) -> list[LinearShape]:
    """Every nn.Linear of the model at `model_dir`, built on the meta device (no weights read)."""
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(model_dir)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    targets = set(target_modules)
    return [
        LinearShape(name, module.in_features, module.out_features, name.split(".")[-1] in targets)
        for name, module in model.named_modules()
        if isinstance(module, nn.Linear)
    ]


def attention_dims(model_dir: Path | str) -> tuple[int, int]:
    """(layers, query width = heads x head dim) of the model at `model_dir`."""
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(model_dir)
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    return config.num_hidden_layers, config.num_attention_heads * head_dim


def training_flops_per_token(
    shapes: list[LinearShape], *, rank: int, layers: int, query_width: int, seq_len: int
) -> TrainingFlops:
    """Matmul FLOPs per token for one forward and backward pass of LoRA training.

    A multiply-add is 2 FLOPs. Base weights are frozen, so their backward computes only the
    gradient of the input (as many FLOPs as their forward); each LoRA pair (in x r, r x out) costs
    its forward again for the input gradient and once more for its weight gradient. Causal
    attention scores and the weighted sum see on average half the row; their backward is twice
    their forward. Norms, activations, the softmax and the optimizer are left out: the ceiling
    this gives is one the real step can only approach.
    """
    base = sum(2 * s.in_features * s.out_features for s in shapes)
    lora = sum(2 * rank * (s.in_features + s.out_features) for s in shapes if s.adapted)
    attention = layers * 2 * 2 * (seq_len / 2) * query_width
    return TrainingFlops(
        forward=base + lora + attention,
        backward=base + 2 * lora + 2 * attention,
    )


def matmul_gflops(
    shapes: list[LinearShape],
    rows: int,
    dtype: torch.dtype = torch.float32,
    repeats: int = 5,
    rank: int = 0,
) -> float:
    """This machine's best matmul rate (GFLOP/s) on the products one training step of the model
    makes with `rows` token rows: each distinct linear shape timed as the forward multiplies
    (x @ W.T) and as the backward computes the input's gradient (grad @ W); with a LoRA `rank`,
    each adapted shape's six low-rank products too (down and up projections forward, their input
    gradients, and their weight gradients). Thin rank-16 products run several times slower than
    the square ones, so leaving them out would promise a ceiling no step can reach. Each product
    is weighted by how often the model makes it; the fastest of `repeats` timings after warm-up
    is taken, since this is meant as a ceiling."""
    counts = Counter((s.in_features, s.out_features, s.adapted) for s in shapes)
    flops = seconds = 0.0
    for (k, n, adapted), count in counts.items():
        products = _base_products(rows, k, n, dtype)
        if adapted and rank:
            products += _lora_products(rows, k, n, rank, dtype)
        for product, product_flops in products:
            flops += count * product_flops
            seconds += count * _fastest(product, repeats)
    return flops / seconds / 1e9


def _base_products(rows: int, k: int, n: int, dtype: torch.dtype) -> list[tuple[Callable, int]]:
    """A frozen linear layer's products: forward, and the backward's input gradient."""
    weight = torch.randn(n, k, dtype=dtype)
    inputs, grads = torch.randn(rows, k, dtype=dtype), torch.randn(rows, n, dtype=dtype)
    multiply_adds = rows * k * n
    return [
        (partial(nn.functional.linear, inputs, weight), 2 * multiply_adds),
        (partial(torch.mm, grads, weight), 2 * multiply_adds),
    ]


def _lora_products(
    rows: int, k: int, n: int, rank: int, dtype: torch.dtype
) -> list[tuple[Callable, int]]:
    """A LoRA pair's products (A: rank x k, B: n x rank): forward, input and weight gradients."""
    a, b = torch.randn(rank, k, dtype=dtype), torch.randn(n, rank, dtype=dtype)
    x, h = torch.randn(rows, k, dtype=dtype), torch.randn(rows, rank, dtype=dtype)
    grads = torch.randn(rows, n, dtype=dtype)
    down, up = 2 * rows * k * rank, 2 * rows * rank * n
    return [
        (partial(nn.functional.linear, x, a), down),  # h = x A^T
        (partial(nn.functional.linear, h, b), up),  # y = h B^T
        (partial(torch.mm, grads, b), up),  # dh = dy B
        (partial(torch.mm, h, a), down),  # dx = dh A
        (partial(torch.mm, grads.t(), h), up),  # dB = dy^T h
        (partial(torch.mm, h.t(), x), down),  # dA = dh^T x
    ]


def _fastest(product: Callable, repeats: int) -> float:
    """The fastest of `repeats` timings of `product`, after two untimed calls."""
    product()
    product()
    fastest = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        product()
        fastest = min(fastest, time.perf_counter() - started)
    return fastest
