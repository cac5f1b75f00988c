"""The chunked head-and-loss pass gives the loss and the hidden states' gradient the unchunked
head and F.cross_entropy give: exactly in fp32, to bf16 rounding in bf16; and the training loss
module uses it on the embedded model with the same result as its plain path."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from adapters.train import head_loss
from adapters.train.head_loss import linear_cross_entropy_sum
from adapters.train.step import CausalLMLoss
from adapters.training_data import IGNORE_INDEX


def _problem(rows: int = 300, width: int = 64, vocab: int = 1000) -> tuple[torch.Tensor, ...]:
    generator = torch.Generator().manual_seed(0)
    weight = torch.randn(vocab, width, generator=generator) * 0.5
    hidden = torch.randn(rows, width, generator=generator)
    labels = torch.randint(0, vocab, (rows,), generator=generator)
    return hidden, weight, labels


def _reference(hidden, weight, labels, dtype, scale):
    hidden = hidden.clone().requires_grad_()
    logits = F.linear(hidden.to(dtype), weight.to(dtype))
    loss = F.cross_entropy(logits.float(), labels, reduction="sum")
    (loss * scale).backward()
    return loss.detach(), hidden.grad


def _chunked(hidden, weight, labels, dtype, scale):
    hidden = hidden.clone().requires_grad_()
    loss = linear_cross_entropy_sum(hidden, weight, labels, dtype)
    (loss * scale).backward()
    return loss.detach(), hidden.grad


@pytest.mark.parametrize("chunk_elements", [1 << 23, 7_000])  # one chunk; 7 rows, a short last
def test_fp32_matches_the_unchunked_loss_and_gradient(
    chunk_elements: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(head_loss, "CHUNK_ELEMENTS", chunk_elements)
    hidden, weight, labels = _problem()
    want_loss, want_grad = _reference(hidden, weight, labels, torch.float32, 0.25)
    loss, grad = _chunked(hidden, weight, labels, torch.float32, 0.25)
    assert loss.dtype == torch.float32
    torch.testing.assert_close(loss, want_loss, rtol=1e-6, atol=0)
    assert _relative_error(grad, want_grad) < 1e-5


def test_bf16_matmuls_keep_an_fp32_loss() -> None:
    hidden, weight, labels = _problem()
    want_loss, want_grad = _reference(hidden, weight, labels, torch.bfloat16, 1.0)
    loss, grad = _chunked(hidden, weight, labels, torch.bfloat16, 1.0)
    # Same bf16 logits, log-sum-exp in fp32 either way: the loss agrees to fp32 rounding.
    assert loss.dtype == torch.float32
    torch.testing.assert_close(loss, want_loss, rtol=1e-6, atol=0)
    # The gradient goes through a bf16 matmul in both; they round at different points.
    assert grad.dtype == torch.float32
    assert _relative_error(grad, want_grad) < 1e-2


def test_without_a_gradient_it_only_sums_the_loss() -> None:
    hidden, weight, labels = _problem()
    want_loss, _ = _reference(hidden, weight, labels, torch.float32, 1.0)
    with torch.no_grad():
        loss = linear_cross_entropy_sum(hidden, weight, labels, torch.float32)
    torch.testing.assert_close(loss, want_loss, rtol=1e-6, atol=0)


def test_a_micro_batch_without_labels_costs_nothing_and_breaks_nothing() -> None:
    hidden, weight, labels = _problem(rows=0)
    loss, grad = _chunked(hidden, weight, labels, torch.bfloat16, 1.0)
    assert loss.item() == 0.0
    assert grad.shape == (0, 64)


def test_a_trainable_head_is_refused() -> None:
    hidden, weight, labels = _problem()
    with pytest.raises(ValueError, match="no gradient for the head's weight"):
        linear_cross_entropy_sum(hidden, weight.requires_grad_(), labels, torch.float32)


@pytest.mark.parametrize("autocast", [False, True])
def test_the_training_loss_module_agrees_with_its_plain_path(
    base_model_dir: Path, autocast: bool
) -> None:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(base_model_dir, dtype=torch.float32)
    model = get_peft_model(base, LoraConfig(r=4, target_modules=["q_proj", "v_proj"]))
    loss_module = CausalLMLoss(model)
    input_ids = torch.randint(0, model.config.vocab_size, (2, 24))
    position_ids = torch.arange(24).repeat(2, 1)
    labels = input_ids.roll(-1, dims=1)
    labels[:, :5] = IGNORE_INDEX  # context positions have no label
    labels[:, -1] = IGNORE_INDEX

    def run() -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
        model.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            loss, count = loss_module(input_ids, position_ids, labels)
        loss.backward()
        grads = [p.grad.clone() for p in model.parameters() if p.requires_grad]
        return loss.detach(), count, grads

    loss, count, grads = run()
    loss_module.head_on_labels_only = False  # the whole model's logits, then F.cross_entropy
    want_loss, want_count, want_grads = run()
    assert int(count) == int(want_count) == 2 * 18
    torch.testing.assert_close(loss, want_loss, rtol=1e-5 if not autocast else 2e-3, atol=0)
    for grad, want in zip(grads, want_grads, strict=True):
        assert _relative_error(grad, want) < (1e-4 if not autocast else 3e-2)


def _relative_error(got: torch.Tensor, want: torch.Tensor) -> float:
    return ((got - want).norm() / want.norm().clamp_min(1e-12)).item()
