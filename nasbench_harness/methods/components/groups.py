"""The softmax groups of alphas and mixing weights (NB201: six edges of 5 ops; NB-1Shot1: the op,
output and input groups of its layout, ``state.space.group_sizes``), as components see them."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from nasbench_harness.errors import ConfigError

RowFn = Callable[[torch.Tensor], torch.Tensor]


def _repeats(flat: torch.Tensor, sizes: list[int]) -> int:
    """How often the group sizes repeat in ``flat`` (ConfigError when they do not tile it)."""
    total = sum(sizes)
    if total == 0 or flat.numel() % total:
        raise ConfigError(
            f"a tensor of {flat.numel()} values cannot be split into softmax groups {tuple(sizes)} "
            f"(it must hold a multiple of {total} values)"
        )
    return flat.numel() // total


def group_rows(tensor: torch.Tensor, group_sizes: Sequence[int]) -> list[torch.Tensor]:
    """The softmax groups of ``tensor`` as blocks of rows: equal-size groups (NB201's six edges)
    in one (k, n) block, otherwise one (1, n) block per group, in the order of ``tensor.reshape(-1)``
    (the sizes repeat when it holds a multiple of their sum)."""
    flat = tensor.reshape(-1)
    sizes = list(group_sizes)
    repeats = _repeats(flat, sizes)
    if len(set(sizes)) == 1:
        return [flat.view(-1, sizes[0])]
    return [part.unsqueeze(0) for part in flat.split(sizes * repeats)]


def map_groups(tensor: torch.Tensor, group_sizes: Sequence[int], fn: RowFn) -> torch.Tensor:
    """``fn`` applied to every block of :func:`group_rows`; the result has ``tensor``'s shape.

    ``fn`` maps a (k, n) tensor of k groups of size n to a tensor of the same shape, row by row.
    """
    blocks = group_rows(tensor, group_sizes)
    return torch.cat([fn(block).reshape(-1) for block in blocks]).reshape(tensor.shape)


def groups_of(tensor: torch.Tensor, group_sizes: Sequence[int]) -> list[torch.Tensor]:
    """``tensor`` flattened and split into consecutive softmax groups of ``group_sizes``.

    NB201's (6, 5) alphas or weights give its six rows (edges); a (num_cells, 6, 5) tensor gives
    every cell's rows (the sizes repeat); an NB-1Shot1 flat vector gives its layout's groups.
    """
    flat = tensor.reshape(-1)
    return list(flat.split(list(group_sizes) * _repeats(flat, list(group_sizes))))
