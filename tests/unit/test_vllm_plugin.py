"""The plugin's LoRA ops against vLLM's own CPU ops: equal results for rows that have an adapter,
no contribution at all for rows without one (index -1), whatever shares the batch."""

from __future__ import annotations

import pytest
import torch
from vllm.lora.ops.torch_ops import lora_ops

from adapters.vllm import plugin
from adapters.vllm.config import is_vllm_cpu_build

SLOTS, RANK, HIDDEN, OUT = 4, 8, 24, 40


def _originals() -> tuple:
    # The plugin keeps the originals on the wrappers when this process was patched already.
    return tuple(
        getattr(f, "__wrapped_original__", f)
        for f in (lora_ops.bgmv_shrink, lora_ops.bgmv_expand, lora_ops.bgmv_expand_slice)
    )


# 10 rows: a few decode tokens (vLLM's op on masked inputs); 100: a prefill (grouped per slot).
@pytest.fixture(params=[10, plugin.GROUPED_MIN_ROWS + 36])
def data(request: pytest.FixtureRequest) -> dict[str, torch.Tensor]:
    n = request.param
    gen = torch.Generator().manual_seed(n)
    idx = torch.tensor([2, -1, 0, 2, -1, 3, 3, -1, 0, 2] * (n // 10 + 1))[:n]
    return {
        "x": torch.randn(n, HIDDEN, generator=gen),
        "a": torch.randn(SLOTS, 1, RANK, HIDDEN, generator=gen),
        "b": torch.randn(SLOTS, 1, OUT, RANK, generator=gen),
        "h": torch.randn(n, RANK, generator=gen),
        "y": torch.randn(n, OUT + 6, generator=gen),
        "idx": idx,
    }


def test_shrink_matches_vllm_for_adapter_rows_and_zeros_the_rest(data: dict) -> None:
    shrink = plugin._grouped_shrink(_originals()[0])
    idx, keep = data["idx"], data["idx"] >= 0
    got = torch.full((len(idx), RANK + 2), 7.0)
    shrink(data["x"], data["a"], got, idx, 0.5)
    want = torch.full((keep.sum(), RANK + 2), 7.0)
    _originals()[0](data["x"][keep], data["a"], want, idx[keep], 0.5)
    torch.testing.assert_close(got[keep], want, rtol=1e-5, atol=1e-5)
    assert torch.all(got[~keep, :RANK] == 0)
    assert torch.all(got[:, RANK:] == 7.0)  # columns past the rank untouched, like vLLM's op


@pytest.mark.parametrize("add_inputs", [True, False])
def test_expand_matches_vllm_for_adapter_rows_and_adds_nothing_else(
    data: dict, add_inputs: bool
) -> None:
    expand = plugin._grouped_expand(_originals()[1])
    idx, keep = data["idx"], data["idx"] >= 0
    got = data["y"].clone()
    expand(data["h"], data["b"], got, idx, add_inputs)
    want = data["y"][keep].clone()
    _originals()[1](data["h"][keep], data["b"], want, idx[keep], add_inputs)
    torch.testing.assert_close(got[keep], want, rtol=1e-5, atol=1e-5)
    expected_rest = data["y"][~keep].clone()
    if not add_inputs:
        expected_rest[:, :OUT] = 0
    torch.testing.assert_close(got[~keep], expected_rest)


def test_expand_slice_matches_vllm_and_leaves_other_columns(data: dict) -> None:
    expand_slice = plugin._grouped_expand_slice(_originals()[2])
    idx, keep = data["idx"], data["idx"] >= 0
    got = data["y"].clone()
    expand_slice(data["h"], data["b"][:, :, :20], got, idx, 3, 20, True)
    want = data["y"][keep].clone()
    _originals()[2](data["h"][keep], data["b"][:, :, :20], want, idx[keep], 3, 20, True)
    torch.testing.assert_close(got[keep], want, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(got[~keep], data["y"][~keep])


def test_without_the_plugin_vllm_gives_no_adapter_rows_the_last_slot(data: dict) -> None:
    """The bug the plugin exists for: vLLM's op reads slot -1 (the last) for rows without one."""
    y = torch.zeros_like(data["y"])
    _originals()[1](data["h"], data["b"], y, data["idx"], True)
    assert y[data["idx"] == -1].abs().sum() > 0


def test_all_rows_one_adapter_and_no_adapter_at_all(data: dict) -> None:
    shrink = plugin._grouped_shrink(_originals()[0])
    expand = plugin._grouped_expand(_originals()[1])
    n = len(data["idx"])
    same = torch.full((n,), 1)
    got, want = torch.zeros(n, RANK), torch.zeros(n, RANK)
    shrink(data["x"], data["a"], got, same, 1.0)
    _originals()[0](data["x"], data["a"], want, same, 1.0)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    none = torch.full((n,), -1)
    y = data["y"].clone()
    expand(data["h"], data["b"], y, none, True)
    torch.testing.assert_close(y, data["y"])


def test_register_patches_the_names_punica_cpu_uses() -> None:
    plugin.register()
    from vllm.lora.punica_wrapper import punica_cpu

    if is_vllm_cpu_build():
        assert plugin.outcome() and plugin.outcome().startswith("applied")
        for name in (
            "bgmv_shrink", "bgmv_expand", "bgmv_expand_slice",
            "sgmv_shrink", "sgmv_expand", "sgmv_expand_slice",
        ):  # fmt: skip
            assert getattr(getattr(punica_cpu, name), "__docadapt_grouped__", False)
            assert getattr(lora_ops, name) is getattr(punica_cpu, name)
        for method in ("update_metadata", "add_lora_linear"):  # the fused LoRA linear
            assert getattr(punica_cpu.PunicaWrapperCPU, method).__docadapt_grouped__
    else:
        assert plugin.outcome() and plugin.outcome().startswith("not applied")


def _meta(token_slots: list[int]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int, int, int]:
    from vllm.lora.punica_wrapper.utils import compute_meta

    starts, lengths, slots, batches, max_len, tokens, _ = compute_meta(torch.tensor(token_slots))
    return starts, lengths, slots, batches, max_len, tokens


# Runs of tokens as vLLM's CPU runner batches them: base prompts, two adapters, base decodes.
TOKEN_SLOTS = [-1] * 7 + [1] * 5 + [3] * 4 + [-1] * 3 + [1] + [-1] + [3] * 2


def test_sgmv_ops_match_vllm_per_token_and_skip_rows_without_adapter() -> None:
    gen = torch.Generator().manual_seed(1)
    n = len(TOKEN_SLOTS)
    idx = torch.tensor(TOKEN_SLOTS)
    keep = idx >= 0
    x, h = torch.randn(n, HIDDEN, generator=gen), torch.randn(n, RANK, generator=gen)
    a = torch.randn(SLOTS, 1, RANK, HIDDEN, generator=gen)
    b = torch.randn(SLOTS, 1, OUT, RANK, generator=gen)
    y0 = torch.randn(n, OUT + 6, generator=gen)
    meta = _meta(TOKEN_SLOTS)
    orig_shrink, orig_expand, orig_slice = _originals()

    got = torch.full((n, RANK), 7.0)
    plugin._segment_shrink(lora_ops.sgmv_shrink)(x, a, got, *meta, 0.5)
    want = torch.zeros(int(keep.sum()), RANK)
    orig_shrink(x[keep], a, want, idx[keep], 0.5)
    torch.testing.assert_close(got[keep], want, rtol=1e-5, atol=1e-5)
    assert torch.all(got[~keep] == 0)

    for add in (True, False):
        got = y0.clone()
        plugin._segment_expand(lora_ops.sgmv_expand)(h, b, got, *meta, add)
        want = y0[keep].clone()
        orig_expand(h[keep], b, want, idx[keep], add)
        torch.testing.assert_close(got[keep], want, rtol=1e-5, atol=1e-5)
        rest = y0[~keep].clone()
        if not add:
            rest[:, :OUT] = 0
        torch.testing.assert_close(got[~keep], rest)

    got = y0.clone()
    sliced = b[:, :, :20]
    expand_slice = plugin._segment_expand_slice(lora_ops.sgmv_expand_slice)
    expand_slice(h, sliced, got, *meta, 4, 20, True)
    want = y0[keep].clone()
    orig_slice(h[keep], sliced, want, idx[keep], 4, 20, True)
    torch.testing.assert_close(got[keep], want, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(got[~keep], y0[~keep])
