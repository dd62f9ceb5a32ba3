"""A standalone NAS-Bench-201 network for one genotype, as the benchmark trained it.

Cells hold one op per edge with affine BN; the parameter count at C=16, N=5 equals the count
the NB201 table lists for the cell (``<dataset>/params@200``, in millions).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from nasbench_harness.spaces.nb201 import EDGES, NUM_NODES, OPS, NB201Genotype
from nasbench_harness.supernets.nb201_ops import Head, ReLUConvBN, ResNetBasicBlock, stage_layout, stem


class _AvgPool(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)


def _op(name: str, channels: int) -> nn.Module | None:
    """The module of one op; ``None`` for ``none`` (the edge contributes nothing)."""
    if name == "none":
        return None
    if name == "skip_connect":
        return nn.Identity()
    if name == "avg_pool_3x3":
        return _AvgPool()
    return ReLUConvBN(channels, channels, 1 if name == "nor_conv_1x1" else 3)


class NB201Cell(nn.Module):
    """One discrete NB201 cell: node j sums op_e(node_i) over its incoming edges e = i -> j."""

    def __init__(self, genotype: NB201Genotype, channels: int) -> None:
        super().__init__()
        self.genotype = genotype
        ops = [_op(OPS[op], channels) for op in genotype.ops]
        self.ops = nn.ModuleList(op if op is not None else nn.Identity() for op in ops)
        self.active = tuple(op is not None for op in ops)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        for target in range(1, NUM_NODES):
            terms = [self.ops[e](nodes[src]) for e, (src, dst) in enumerate(EDGES) if dst == target and self.active[e]]
            total = terms[0] if terms else torch.zeros_like(x)
            for term in terms[1:]:
                total = total + term
            nodes.append(total)
        return nodes[-1]


class NB201Network(nn.Module):
    """NB201's evaluation network for ``genotype``: stem, 3 x ``cells_per_stage`` cells, head."""

    def __init__(
        self, genotype: NB201Genotype, channels: int = 16, cells_per_stage: int = 5, num_classes: int = 10
    ) -> None:
        super().__init__()
        self.genotype = genotype
        self.stem = stem(channels)
        layers: list[nn.Module] = []
        c_prev = channels
        for c_out, reduction in stage_layout(channels, cells_per_stage):
            layers.append(ResNetBasicBlock(c_prev, c_out) if reduction else NB201Cell(genotype, c_out))
            c_prev = c_out
        self.layers = nn.Sequential(*layers)
        self.head = Head(c_prev, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.layers(self.stem(x)))


def count_parameters(net: nn.Module) -> int:
    """Trainable parameters of ``net``."""
    return sum(p.numel() for p in net.parameters() if p.requires_grad)
