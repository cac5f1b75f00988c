"""Training rows: examples from `adapters.training_data`, encoded with next-token labels already
shifted (loss falls only on each target, never on its context, never across examples), packed
into rows of at most `max_seq_length` tokens, ordered per epoch and cut into padded micro-batches.

Packing (default) is first-fit decreasing and never splits an example. Each example's position
ids restart at 0; with no attention mask, transformers turns those restarts into a
block-diagonal causal mask, so an example attends only to its own tokens and packing changes
nothing but speed. (EOS closes every example too, so a model that ignored position ids would
still see a separator.) Rows are shuffled each epoch with the seed.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from adapters.training_data import IGNORE_INDEX, encode_example


@dataclass(frozen=True)
class Row:
    """One training sequence: tokens, shifted labels, and per-example position ids."""

    tokens: list[int]
    labels: list[int]
    positions: list[int]


def pack_examples(
    tokenizer: Any,
    examples: Sequence[tuple[str, str]],
    max_seq_length: int,
    *,
    packing: bool = True,
) -> list[Row]:
    """Encode examples and pack them into rows of at most `max_seq_length` tokens.

    First-fit decreasing (by length, ties by input order): deterministic, and within a few
    percent of perfect for examples much shorter than a row. An example is never split; position
    ids restart at 0 for each one, which keeps its attention inside itself. Without `packing`,
    every example is its own row.
    """
    encoded = [encode_example(tokenizer, c, t, max_length=max_seq_length) for c, t in examples]
    if not packing:
        return [Row(tokens, labels, list(range(len(tokens)))) for tokens, labels in encoded]
    order = sorted(range(len(encoded)), key=lambda i: (-len(encoded[i][0]), i))
    bins: list[list[int]] = []
    free: list[int] = []
    # bins_by_room[r]: bins with exactly r tokens of room, so a fit is found without scanning
    # every bin.
    bins_by_room: list[list[int]] = [[] for _ in range(max_seq_length + 1)]
    for i in order:
        size = len(encoded[i][0])
        room = next((r for r in range(size, max_seq_length + 1) if bins_by_room[r]), None)
        if room is None:
            b = len(bins)
            bins.append([])
            free.append(max_seq_length)
        else:
            b = bins_by_room[room].pop()
        bins[b].append(i)
        free[b] -= size
        bins_by_room[free[b]].append(b)
    rows = []
    for members in bins:
        tokens: list[int] = []
        labels: list[int] = []
        positions: list[int] = []
        for i in sorted(members):
            tokens += encoded[i][0]
            labels += encoded[i][1]
            positions += range(len(encoded[i][0]))
        rows.append(Row(tokens, labels, positions))
    return rows


def epoch_order(n_rows: int, seed: int, epoch: int) -> list[int]:
    """The row order of one epoch: a permutation fixed by (seed, epoch), so resume needs no
    generator state."""
    generator = torch.Generator().manual_seed(seed * 100_003 + epoch)
    return torch.randperm(n_rows, generator=generator).tolist()


def cycle_take(order: list[int], offset: int, count: int, *, exact: bool) -> list[int]:
    """`count` rows from `order` starting at `offset`; with `exact`, a short final step wraps
    around to the start so every rank gets the same number of micro-batches."""
    taken = order[offset : offset + count]
    while exact and len(taken) < count:
        taken += order[: count - len(taken)]
    return taken


def collate(
    rows: Sequence[Row],
    pad_id: int,
    device: torch.device,
    *,
    shape: tuple[int, int] | None = None,
) -> dict[str, torch.Tensor]:
    """Pad rows to the longest, or to `shape` (rows, width) when given: extra rows are all
    padding; padding gets its own position run and no labels, so it adds nothing to the loss."""
    n_rows, width = shape or (len(rows), max(len(r.tokens) for r in rows))
    ids = torch.full((n_rows, width), pad_id, dtype=torch.long)
    labels = torch.full((n_rows, width), IGNORE_INDEX, dtype=torch.long)
    positions = torch.arange(width).repeat(n_rows, 1)
    for b, row in enumerate(rows):
        n = len(row.tokens)
        ids[b, :n] = torch.tensor(row.tokens)
        labels[b, :n] = torch.tensor(row.labels)
        positions[b, :n] = torch.tensor(row.positions)
        positions[b, n:] = torch.arange(width - n)
    return {
        k: v.to(device, non_blocking=True)
        for k, v in {"input_ids": ids, "labels": labels, "position_ids": positions}.items()
    }


def micro_batches(rows: Sequence[Row], batch_size: int) -> Iterator[Sequence[Row]]:
    for start in range(0, len(rows), batch_size):
        yield rows[start : start + batch_size]


def padded_size(rows: Sequence[Row], batch_size: int, *, fixed: int | None = None) -> int:
    """Token slots the micro-batches of `rows` occupy once padded (for packing efficiency); with
    `fixed` (a width), each micro-batch is padded to `batch_size` rows of that width."""
    if fixed:
        return -(-len(rows) // batch_size) * batch_size * fixed  # micro-batches x full shape
    return sum(len(mb) * max(len(r.tokens) for r in mb) for mb in micro_batches(rows, batch_size))
