"""The NAS-Bench-201 supernet with PC-DARTS's partial channel connections and edge normalisation.

PC-DARTS (Xu et al., ICLR 2020, "PC-DARTS: Partial Channel Connections for Memory-Efficient
Architecture Search"), on NB201's cell:

- Partial channels: on an edge from node ``h`` (C channels), only the first C/K channels go
  through the mixed op (ops of C/K channels, ``none`` zero); the other C - C/K bypass it; the
  edge's output is ``channel_shuffle(cat([sum_o w_o op_o(h[:, :C/K]), h[:, C/K:]]), K)``. K=4
  is the paper's CIFAR setting, and the one NB201 ports use (few-shot NAS's
  ``TinyNetworkPCDarts``, DrNAS's ``NAS201SearchCell_PartialChannel``).
- Edge normalisation: architecture parameters ``beta`` (one per edge, shared by all cells like
  the alphas, initialised 1e-3 * N(0, 1) as PC-DARTS's betas); node j sums its incoming edge
  outputs weighted by ``softmax(beta)`` over those edges, as the automl ConfigurableOptimizer's
  NB201 search model does (node 1 has one incoming edge, whose weight is then 1).

The shuffle is a fixed channel permutation and a node sums its edges linearly, so a node is
``shuffle_cat(A, R, K)`` with ``A`` the beta- and alpha-weighted sum of all its (edge, op)
terms on the partial channels and ``R`` the beta-weighted sum of its edges' bypassed channels:
one shuffle per node instead of one per edge. The fused convolutions and BN-folded op weights
are :mod:`nasbench_harness.supernets.nb201`'s, on C/K channels; the op weight of an edge's conv
is ``alpha-weight * beta-weight``.

``beta`` is a parameter of this network (checkpointed with it) created with
``requires_grad=False``, so every generic weight utility leaves it alone; PC-DARTS's arch step
turns its gradient on while it computes the validation loss and updates it with the alphas.
"""

from __future__ import annotations

import torch
from torch import nn

from nasbench_harness.errors import ConfigError
from nasbench_harness.spaces.nb201 import EDGES, NUM_EDGES, NUM_NODES
from nasbench_harness.supernets.mixing import Term, check_partial_channels, shuffle_cat, weighted_sum
from nasbench_harness.supernets.nb201 import (
    OUT_EDGES,
    Mask,
    NB201SearchNet,
    StackedConvBN,
    append_edge_terms,
    source_ops,
)

IN_EDGES: tuple[tuple[int, ...], ...] = tuple(
    tuple(e for e, (_, dst) in enumerate(EDGES) if dst == node) for node in range(1, NUM_NODES)
)
"""Edge indices entering node 1, 2, 3 (the groups of edge normalisation's softmax)."""


def edge_weights(beta: torch.Tensor) -> torch.Tensor:
    """Edge normalisation: (6,) weights, ``softmax(beta)`` over the edges entering each node."""
    by_edge: dict[int, torch.Tensor] = {}
    for edges in IN_EDGES:  # selects and stacks: no index tensor built from Python data
        by_edge.update(zip(edges, torch.softmax(torch.stack([beta[e] for e in edges]), dim=0).unbind(), strict=True))
    return torch.stack([by_edge[e] for e in range(NUM_EDGES)])


class PCNB201SearchCell(nn.Module):
    """One NB201 cell whose edges mix the five ops on the first C/K channels (module doc)."""

    def __init__(self, channels: int, partial_channels: int, track_running_stats: bool = False) -> None:
        super().__init__()
        self.k, self.part = partial_channels, channels // partial_channels
        self.conv3 = nn.ModuleList(StackedConvBN(self.part, len(o), 3, track_running_stats) for o in OUT_EDGES)
        self.conv1 = nn.ModuleList(StackedConvBN(self.part, len(o), 1, track_running_stats) for o in OUT_EDGES)

    def forward(
        self, x: torch.Tensor, weights: torch.Tensor, edges: torch.Tensor, mask: Mask | None, batch_stats: bool
    ) -> torch.Tensor:
        """Output node for input ``x``, op weights ``weights`` (6, 5) and edge weights ``edges`` (6,)."""
        scaled = weights * edges[:, None]
        mixed: list[list[Term]] = [[] for _ in range(NUM_NODES)]
        bypass: list[list[Term]] = [[] for _ in range(NUM_NODES)]
        nodes = [x]
        for src, out in enumerate(OUT_EDGES):
            h = nodes[src]
            hp = h[:, : self.part] if self.k > 1 else h
            uses, y1, y3, pooled = source_ops(self.conv3[src], self.conv1[src], hp, out, scaled, mask, batch_stats)
            for k, e in enumerate(out):
                dst = EDGES[e][1]
                append_edge_terms(mixed[dst], uses[k], k, hp, y1, y3, pooled, scaled[e])
                if self.k > 1:
                    bypass[dst].append((h[:, self.part :], edges[e]))
            node = src + 1
            a = weighted_sum(mixed[node], hp)
            nodes.append(a if self.k == 1 else shuffle_cat(a, weighted_sum(bypass[node], h[:, self.part :]), self.k))
        return nodes[-1]


class PCNB201SearchNet(NB201SearchNet):
    """NB201's search network (stem, 3 stages of ``cells_per_stage`` cells, head) with PC-DARTS cells.

    ``forward(x, weights)`` takes images (B, 3, H, W) and the mixing weights, (6, 5) or
    (num_cells, 6, 5), ops in NB201 order; the edge weights come from the parameter ``beta`` (6,).
    ``partial_channels`` K must divide ``channels`` (then it divides every stage's width).
    Drop path is not implemented for these cells (a ``drop_prob`` > 0 in training is an error).
    """

    def __init__(
        self,
        channels: int = 16,
        cells_per_stage: int = 5,
        num_classes: int = 10,
        bn_track_running_stats: bool = False,
        partial_channels: int = 4,
    ) -> None:
        check_partial_channels(channels, partial_channels)
        super().__init__(
            channels,
            cells_per_stage,
            num_classes,
            bn_track_running_stats,
            cell=lambda c, track: PCNB201SearchCell(c, partial_channels, track),
        )
        self.partial_channels = partial_channels
        self.beta = nn.Parameter(1e-3 * torch.randn(NUM_EDGES), requires_grad=False)

    def edge_weights(self) -> torch.Tensor:
        """The current edge normalisation weights (6,): softmax of ``beta`` per node."""
        return edge_weights(self.beta)

    def run_cell(
        self,
        cell: nn.Module,
        x: torch.Tensor,
        weights: torch.Tensor,
        mask: Mask | None,
        batch_stats: bool,
        drop_prob: float,
        edge_constants: torch.Tensor | None = None,
    ) -> torch.Tensor:
        if drop_prob > 0:
            raise ConfigError("PC-DARTS's partial-channel cells do not implement drop path; use drop_prob=0")
        if edge_constants is not None:
            raise ConfigError("PC-DARTS's partial-channel cells do not implement masked_as_constants (GDAS's forward)")
        return cell(x, weights, self.edge_weights(), mask, batch_stats)
