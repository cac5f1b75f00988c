"""The matmul ceiling's FLOP count, checked against a hand count for SmolLM2-135M."""

from pathlib import Path

import pytest
import torch

from adapters.train import DEFAULT_TARGET_MODULES
from service.benchmark.roofline import (
    LinearShape,
    attention_dims,
    linear_shapes,
    matmul_gflops,
    training_flops_per_token,
)

HIDDEN, KV, MLP, VOCAB, LAYERS = 576, 192, 1536, 49152, 30


def smollm2_shapes(adapted: bool = True) -> list[LinearShape]:
    per_layer = [
        ("q_proj", HIDDEN, HIDDEN),
        ("k_proj", HIDDEN, KV),
        ("v_proj", HIDDEN, KV),
        ("o_proj", HIDDEN, HIDDEN),
        ("gate_proj", HIDDEN, MLP),
        ("up_proj", HIDDEN, MLP),
        ("down_proj", MLP, HIDDEN),
    ]
    shapes = [
        LinearShape(f"layers.{i}.{name}", k, n, adapted)
        for i in range(LAYERS)
        for name, k, n in per_layer
    ]
    return [*shapes, LinearShape("lm_head", HIDDEN, VOCAB, False)]


def test_flops_match_a_hand_count_for_smollm2() -> None:
    flops = training_flops_per_token(
        smollm2_shapes(), rank=16, layers=LAYERS, query_width=HIDDEN, seq_len=128
    )
    # 134,479,872 multiply-adds in the linears (30 layers x 3,538,944 + a 576 x 49,152 head).
    base = 2 * 134_479_872
    # Each layer's seven LoRA pairs: r x (in + out) summed to 16 x 10,176 multiply-adds.
    lora = 2 * LAYERS * 16 * 10_176
    # Scores and weighted sum over on average 64 earlier positions, 576 query dims, per layer.
    attention = LAYERS * 2 * 2 * 64 * HIDDEN
    assert flops.forward == base + lora + attention == 283_152_384
    assert flops.backward == base + 2 * lora + 2 * attention
    assert flops.total == pytest.approx(0.5805e9, rel=1e-3)


def test_unadapted_layers_cost_no_lora_flops() -> None:
    with_lora = training_flops_per_token(
        smollm2_shapes(True), rank=16, layers=LAYERS, query_width=HIDDEN, seq_len=128
    )
    without = training_flops_per_token(
        smollm2_shapes(False), rank=16, layers=LAYERS, query_width=HIDDEN, seq_len=128
    )
    assert with_lora.total - without.total == 3 * 2 * LAYERS * 16 * 10_176


def test_shapes_read_from_the_embedded_model(base_model_dir: Path) -> None:
    shapes = linear_shapes(base_model_dir, list(DEFAULT_TARGET_MODULES))
    assert len(shapes) == LAYERS * 7 + 1
    assert sorted((s.in_features, s.out_features, s.adapted) for s in shapes) == sorted(
        (s.in_features, s.out_features, s.adapted) for s in smollm2_shapes()
    )
    assert attention_dims(base_model_dir) == (LAYERS, HIDDEN)
    only_q = linear_shapes(base_model_dir, ["q_proj"])
    assert sum(s.adapted for s in only_q) == LAYERS


def test_matmul_rate_is_timed_per_shape() -> None:
    shapes = [LinearShape("a", 64, 64, True), LinearShape("b", 64, 32, False)]
    rate = matmul_gflops(shapes, rows=32, dtype=torch.float32, repeats=2)
    # A 2-core CPU does tens of GFLOP/s; anything outside this range means a units slip.
    assert 0.01 < rate < 100_000


def test_timed_lora_products_are_the_flops_the_count_charges() -> None:
    """The six low-rank products timed for an adapted layer cost what training_flops_per_token
    charges a LoRA pair per token (forward, input gradient, weight gradient), times the rows."""
    from service.benchmark.roofline import _base_products, _lora_products

    rows, k, n, rank = 8, 64, 32, 4
    lora = sum(f for _, f in _lora_products(rows, k, n, rank, torch.float32))
    base = sum(f for _, f in _base_products(rows, k, n, torch.float32))
    one_layer = training_flops_per_token(
        [LinearShape("a", k, n, True)], rank=rank, layers=0, query_width=0, seq_len=1
    )
    assert lora + base == rows * one_layer.total
    for product, _ in _lora_products(rows, k, n, rank, torch.float32):
        product()  # the shapes multiply


def test_a_lora_rank_adds_its_products_to_the_timed_mix() -> None:
    shapes = [LinearShape("a", 64, 64, True)]
    rate = matmul_gflops(shapes, rows=32, dtype=torch.float32, repeats=2, rank=4)
    assert 0.01 < rate < 100_000
