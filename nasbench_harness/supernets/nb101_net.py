"""A standalone NAS-Bench-101 network for one cell spec, as the benchmark trained it.

Follows ``google-research/nasbench`` (``lib/model_builder.py``, ``lib/base_ops.py``):

- Stem: 3x3 conv-BN-ReLU to ``stem_channels`` (128). Then ``num_stacks`` (3) stacks of
  ``cells_per_stack`` (3) cells; before every stack but the first a 2x2 max-pool, stride 2
  (TF ``padding='same'``, i.e. ``ceil_mode``), doubles the channels. Global average pooling and
  a linear classifier with bias.
- Cell (on the pruned spec): :func:`compute_vertex_channels` splits the output channels over
  the vertices feeding the output (earlier ones get the remainder's +1) and gives every other
  vertex the max of its successors. A vertex sums its interior inputs, truncated to its
  channel count, and a 1x1 conv-BN-ReLU projection of the cell input if the input feeds it,
  then applies its op (3x3 / 1x1 conv-BN-ReLU, or 3x3 max-pool stride 1). The output
  concatenates the vertices feeding it and adds a projection of the cell input if the input
  feeds it (a cell of input -> output only is that projection).
- Convolutions have no bias; BN is affine with TF's ``momentum=0.997`` (PyTorch's 0.003, the
  weight of the new batch) and ``eps=1e-5``. Initialisation as TF: convolutions
  variance-scaling (fan-in, truncated normal), the classifier Glorot-uniform, biases zero.

The trainable parameter count (conv kernels, BN gamma/beta, classifier weight and bias) equals
the NB101 table's ``params`` (``trainable_parameters``) exactly: TF keeps BN's moving mean and
variance as non-trainable variables, as PyTorch keeps them as buffers, so there is no offset.

Own code, not a wrapper of ``nasbench_pytorch.model.Network``, because (checked on v1.3.1):

- ``nasbench-pytorch`` is only a dev dependency (the tests use it as the reference);
- every ``Placeholder`` (unused input op slots: 2 per cell plus one per vertex the input does
  not feed) holds a trainable random scalar that never touches the output, so its parameter
  count exceeds the table's by 18..63 (9 cells x 2..7), a spec-dependent amount, and its
  construction draws from the RNG;
- BN momentum is wrong and inconsistent: the stem and projections get TF's 0.997 as PyTorch
  momentum (running statistics become nearly the last batch's), the vertex ops PyTorch's 0.1;
- its init is not TF's unless ``tf_like=True``; an invalid spec fails with a ``TypeError``.

With those set aside its structure and vertex channels are the same as ours; the tests check
that (vertex channels, parameter counts minus placeholders, and outputs with copied weights).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from nasbench_harness.errors import ConfigError, GenotypeError
from nasbench_harness.spaces.nb101 import CONV1X1, CONV3X3, MAXPOOL3X3, NB101Spec

BN_MOMENTUM = 1 - 0.997
"""PyTorch momentum (weight of the new batch) equal to NB101's TF ``momentum=0.997``."""
BN_EPS = 1e-5
_TRUNC_STD = 0.87962566103423978  # std of a standard normal truncated to [-2, 2], as TF corrects for


def compute_vertex_channels(in_channels: int, out_channels: int, matrix: Sequence[Sequence[int]]) -> list[int]:
    """Channels of every vertex of a pruned cell, as NB101 computes them.

    The output channels are split over the interior vertices feeding the output (the first
    ``out_channels % fan_in`` of them get one more); every other interior vertex gets the max
    of the interior vertices it feeds.
    """
    n = len(matrix)
    channels = [0] * n
    channels[0], channels[-1] = in_channels, out_channels
    feeders = [v for v in range(1, n - 1) if matrix[v][n - 1]]
    if n == 2:
        return channels
    if not feeders:
        raise GenotypeError("the cell is not pruned: no interior vertex feeds the output; pass spec.pruned().matrix")
    if out_channels < len(feeders):
        raise ConfigError(
            f"{out_channels} output channels cannot be split over the {len(feeders)} vertices feeding the output; "
            f"use at least {len(feeders)} channels"
        )
    share, extra = divmod(out_channels, len(feeders))
    for k, v in enumerate(feeders):
        channels[v] = share + (k < extra)
    for v in range(n - 3, 0, -1):
        if not matrix[v][n - 1]:
            channels[v] = max(channels[dst] for dst in range(v + 1, n - 1) if matrix[v][dst])
    return channels


def conv_bn_relu(in_channels: int, out_channels: int, kernel_size: int, bn_momentum: float = BN_MOMENTUM) -> nn.Module:
    """Conv (stride 1, 'same' padding, no bias), affine BN, ReLU."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False),
        nn.BatchNorm2d(out_channels, eps=BN_EPS, momentum=bn_momentum),
        nn.ReLU(),
    )


def _vertex_op(op: str, channels: int, bn_momentum: float) -> nn.Module:
    if op == CONV3X3:
        return conv_bn_relu(channels, channels, 3, bn_momentum)
    if op == CONV1X1:
        return conv_bn_relu(channels, channels, 1, bn_momentum)
    assert op == MAXPOOL3X3, op  # NB101Spec admits no other op
    return nn.MaxPool2d(3, stride=1, padding=1)


class NB101Cell(nn.Module):
    """One NB101 cell (module) of a pruned spec, from ``in_channels`` to ``out_channels``."""

    def __init__(self, spec: NB101Spec, in_channels: int, out_channels: int, bn_momentum: float = BN_MOMENTUM) -> None:
        super().__init__()
        self.matrix = spec.matrix
        self.num_vertices = n = spec.num_vertices
        self.vertex_channels = tuple(compute_vertex_channels(in_channels, out_channels, spec.matrix))
        self.ops = nn.ModuleList(_vertex_op(spec.ops[t], self.vertex_channels[t], bn_momentum) for t in range(1, n - 1))
        # projections of the cell input, keyed by the vertex they feed (1..n-1)
        self.projections = nn.ModuleDict(
            {
                str(t): conv_bn_relu(in_channels, self.vertex_channels[t], 1, bn_momentum)
                for t in range(1, n)
                if spec.matrix[0][t]
            }
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, matrix = self.num_vertices, self.matrix
        tensors = [x]
        for t in range(1, n - 1):
            c = self.vertex_channels[t]
            terms = [tensors[src][:, :c] for src in range(1, t) if matrix[src][t]]
            if matrix[0][t]:
                terms.append(self.projections[str(t)](x))
            total = terms[0]
            for term in terms[1:]:
                total = total + term
            tensors.append(self.ops[t - 1](total))
        concat = [tensors[v] for v in range(1, n - 1) if matrix[v][n - 1]]
        if not concat:
            return self.projections[str(n - 1)](x)
        out = concat[0] if len(concat) == 1 else torch.cat(concat, dim=1)
        if matrix[0][n - 1]:
            out = out + self.projections[str(n - 1)](x)
        return out


class NB101Network(nn.Module):
    """NB101's CIFAR-10 network for ``spec`` (pruned first): stem, stacks of cells, pooling, linear.

    Input images have 3 channels, any size; output logits ``(batch, num_classes)``.
    ``bn_momentum`` is PyTorch's (weight of the new batch); the default is NB101's.
    """

    def __init__(
        self,
        spec: NB101Spec,
        stem_channels: int = 128,
        num_stacks: int = 3,
        cells_per_stack: int = 3,
        num_classes: int = 10,
        *,
        bn_momentum: float = BN_MOMENTUM,
    ) -> None:
        super().__init__()
        if not isinstance(spec, NB101Spec):
            raise GenotypeError(
                f"NB101Network takes an NB101Spec (e.g. NB101Spec.from_matrix(matrix, ops)), got {type(spec).__name__}"
            )
        for name, value in (
            ("stem_channels", stem_channels),
            ("num_stacks", num_stacks),
            ("cells_per_stack", cells_per_stack),
            ("num_classes", num_classes),
        ):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
        if not 0.0 <= bn_momentum <= 1.0:
            raise ConfigError(f"bn_momentum is PyTorch's, in [0, 1] (NB101: {BN_MOMENTUM:.3f}), got {bn_momentum!r}")
        self.spec = spec.validate()
        self.stem = conv_bn_relu(3, stem_channels, 3, bn_momentum)
        layers: list[nn.Module] = []
        in_channels = channels = stem_channels
        for stack in range(num_stacks):
            if stack > 0:
                layers.append(nn.MaxPool2d(2, stride=2, ceil_mode=True))
                channels *= 2
            for _ in range(cells_per_stack):
                layers.append(NB101Cell(self.spec, in_channels, channels, bn_momentum))
                in_channels = channels
        self.layers = nn.Sequential(*layers)
        self.classifier = nn.Linear(channels, num_classes)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """TF's initialisation: variance-scaling convs, Glorot-uniform classifier, BN gamma 1 beta 0."""
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                fan_in = module.in_channels * module.kernel_size[0] * module.kernel_size[1]
                std = math.sqrt(1.0 / fan_in) / _TRUNC_STD
                nn.init.trunc_normal_(module.weight, std=std, a=-2 * std, b=2 * std)
            elif isinstance(module, nn.BatchNorm2d):
                module.reset_parameters()
            elif isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.layers(self.stem(x)).mean(dim=(2, 3)))


def count_parameters(net: nn.Module) -> int:
    """Trainable parameters of ``net`` (for an :class:`NB101Network`, the NB101 table's ``params``)."""
    return sum(p.numel() for p in net.parameters() if p.requires_grad)
