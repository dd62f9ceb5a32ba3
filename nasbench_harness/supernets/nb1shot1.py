"""The NAS-Bench-1Shot1 one-shot model for search spaces 1, 2 and 3.

Follows the authors' DARTS model (``automl/nasbench-1shot1``, ``optimizers/darts/model_search.py``):

- A cell has B choice blocks (4 in spaces 1 and 2, 5 in space 3). Block i sums a 1x1
  conv-BN-ReLU projection of the cell input and the outputs of blocks before it, weighted by
  its input weights (fixed parents, unweighted, for node 1 and, in space 1, node 2), then
  applies a mixed op over NB101's {conv3x3-bn-relu, conv1x1-bn-relu, maxpool3x3}.
- The cell output concatenates the output-weighted block outputs and adds the weighted
  projection of the cell input (C*B channels).
- Macro: 3x3 conv-BN-ReLU stem to C channels; ``num_cells`` cells in 3 stacks with 2x2
  max-pool (padding 1, as the authors) and channel doubling before stacks 2 and 3; ReLU, 1x1
  conv, BN; global average pooling; linear.

Architecture weights come as one flat vector (``forward(x, weights)``), laid out by
:class:`Layout`: the ops of every block (B x 3, ops in :data:`nasbench_harness.spaces.nb101.OPS`
order), the output weights (B + 1: cell input, block 1..B), then the input weights of each
block with a choice (node n: n values over nodes 0..n-1). Each group is a softmax in DARTS.

Arranged for speed, with the same function: the B + 1 input projections run as one 1x1
convolution (BN is per channel), and, when no gradient flows to the mixing weights (the weight
step, evaluations), the weights of the conv-BN-ReLU terms fold into BN's affine parameters
(``w * relu(bn(y)) = relu(w * bn(y))`` for the non-negative weights every method passes; the
network weights' gradients are the same too). When the weights need a gradient (the arch step,
Hessians, adversarial perturbations) the terms are ``w * relu(bn(y))`` as the authors compute
them, since the folded form's derivative in ``w`` is 0 at ``w = 0`` where the authors' is
``<grad, relu(bn(y))>``: a sampled one-hot or a clipped zero weight would never move.
BN momentum is PyTorch's 0.1; the authors pass TensorFlow's 0.997 as PyTorch momentum, which
makes their running statistics nearly the last batch's (training is unaffected).

Options for methods (defaults change nothing):

- ``forward(..., drop_prob=p)``: ScheduledDropPath (R-DARTS(DP), Zela et al. 2020). In training
  mode each choice block's mixed-op output is multiplied, per sample, by a Bernoulli(1 - p)
  mask divided by 1 - p, independently per block and per cell (folded into the op terms'
  weights, which become (B, 1, 1, 1)).
- ``partial_channels=K`` (PC-DARTS, Xu et al. 2020, as NB-1Shot1's authors ran it,
  ``optimizers/pc_darts/model_search.py``): a block's mixed op sees only the first C/K channels
  of its input, on ops of C/K channels; the other channels bypass it, and the concatenation is
  channel-shuffled with K groups. (Edge normalisation does not apply: a block's input weights
  are already a softmax over its candidate inputs.)
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from nasbench_harness.errors import ConfigError
from nasbench_harness.spaces.nb1shot1 import SearchSpace, get_space
from nasbench_harness.spaces.nb101 import CONV1X1, CONV3X3, MAXPOOL3X3, OPS
from nasbench_harness.supernets.mixing import (
    Term,
    channels_last,
    check_drop_prob,
    check_partial_channels,
    drop_path_masks,
    shuffle_cat,
    weighted_sum,
)

CONV3, CONV1, POOL = OPS.index(CONV3X3), OPS.index(CONV1X1), OPS.index(MAXPOOL3X3)
BN_EPS = 1e-5
BN_MOMENTUM = 0.1


@dataclass(frozen=True)
class Layout:
    """Where each group of architecture weights sits in the flat vector of a space."""

    space: SearchSpace

    @property
    def blocks(self) -> int:
        """Choice blocks B."""
        return self.space.num_choice_blocks

    @cached_property
    def choice_nodes(self) -> tuple[int, ...]:
        """Nodes (1..B) that choose their parents: more candidate inputs than parents."""
        return tuple(n for n in range(1, self.blocks + 1) if n > self.space.num_parents[n - 1])

    @cached_property
    def groups(self) -> tuple[tuple[str, int, int], ...]:
        """(name, start, length) of every softmax group, in vector order."""
        out: list[tuple[str, int, int]] = []
        start = 0
        for b in range(1, self.blocks + 1):
            out.append((f"ops{b}", start, len(OPS)))
            start += len(OPS)
        out.append(("output", start, self.blocks + 1))
        start += self.blocks + 1
        for n in self.choice_nodes:
            out.append((f"inputs{n}", start, n))
            start += n
        return tuple(out)

    @property
    def size(self) -> int:
        """Length of the flat vector."""
        _, start, length = self.groups[-1]
        return start + length

    @property
    def group_sizes(self) -> tuple[int, ...]:
        """Lengths of the groups, in order."""
        return tuple(length for _, _, length in self.groups)

    def split(self, flat: torch.Tensor) -> Weights:
        """Views of ``flat`` as ops (B, 3), output (B+1,) and per-node input weights (None: fixed)."""
        if tuple(flat.shape) != (self.size,):
            raise ConfigError(
                f"NB-1Shot1 space {self.space.number} takes {self.size} architecture weights "
                f"(groups {', '.join(f'{n}:{length}' for n, _, length in self.groups)}), got shape {tuple(flat.shape)}"
            )
        n_ops = self.blocks * len(OPS)
        ops = flat[:n_ops].view(self.blocks, len(OPS))
        output = flat[n_ops : n_ops + self.blocks + 1]
        by_node = {int(name[6:]): flat[s : s + length] for name, s, length in self.groups if name.startswith("inputs")}
        return Weights(ops, output, tuple(by_node.get(n) for n in range(1, self.blocks + 1)))


@dataclass(frozen=True)
class Weights:
    """Structured architecture weights; ``inputs[i]`` belongs to node i+1 (None: fixed parents)."""

    ops: torch.Tensor
    output: torch.Tensor
    inputs: tuple[torch.Tensor | None, ...]


@dataclass(frozen=True)
class Mask:
    """Which ops, inputs and outputs a final net keeps (False entries are not computed)."""

    ops: tuple[tuple[bool, ...], ...]
    output: tuple[bool, ...]
    inputs: tuple[tuple[bool, ...] | None, ...]


def grouped_softmax(flat: torch.Tensor, sizes: tuple[int, ...]) -> torch.Tensor:
    """Softmax within each consecutive group of ``sizes`` of a flat vector."""
    return torch.cat([torch.softmax(part, dim=0) for part in flat.split(sizes)])


class _SplitChannels(torch.autograd.Function):
    """``x.split(sizes, dim=1)`` whose backward writes the parts' gradients into one buffer laid
    out like ``x``. (Autograd's own backward concatenates the parts' gradients, which arrive in
    mixed layouts, into a contiguous tensor; against a channels-last ``x`` that makes the ReLU
    and BN backward of the projection several times slower.)"""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, sizes: list[int]) -> tuple[torch.Tensor, ...]:
        ctx.sizes, ctx.shape = sizes, x.shape
        ctx.memory_format = torch.channels_last if channels_last(x) else torch.contiguous_format
        ctx.set_materialize_grads(False)
        return x.split(sizes, dim=1)

    @staticmethod
    def backward(ctx: Any, *grads: torch.Tensor | None) -> tuple[torch.Tensor | None, None]:
        like = next(g for g in grads if g is not None)
        out = torch.empty(ctx.shape, dtype=like.dtype, device=like.device, memory_format=ctx.memory_format)
        start = 0
        for size, grad in zip(ctx.sizes, grads, strict=True):
            part = out.narrow(1, start, size)
            if grad is None:
                part.zero_()
            else:
                part.copy_(grad)
            start += size
        return out, None


def split_channels(x: torch.Tensor, sizes: list[int]) -> tuple[torch.Tensor, ...]:
    """The channel groups of ``x`` (dim 1), as views; backward keeps ``x``'s memory layout."""
    return _SplitChannels.apply(x, sizes)


class _ConvBNReLU(nn.Module):
    """conv (no bias) -> BN (affine) -> ReLU; ``forward`` can scale the output by a weight >= 0."""

    def __init__(self, c_in: int, c_out: int, kernel: int, track_running_stats: bool = True) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2, bias=False)
        self.bn = nn.BatchNorm2d(c_out, eps=BN_EPS, momentum=BN_MOMENTUM, track_running_stats=track_running_stats)

    def forward(self, x: torch.Tensor, scale: torch.Tensor | None = None, batch_stats: bool = False) -> torch.Tensor:
        bn = self.bn
        weight, bias = (bn.weight, bn.bias) if scale is None else (bn.weight * scale, bn.bias * scale)
        use_batch = self.training or batch_stats or not bn.track_running_stats
        y = F.batch_norm(
            self.conv(x),
            bn.running_mean,
            bn.running_var,
            weight,
            bias,
            training=use_batch,
            momentum=bn.momentum if self.training else 0.0,
            eps=bn.eps,
        )
        return torch.relu(y)


class NB1Shot1SearchCell(nn.Module):
    """One NB-1Shot1 cell with every op on every block and every candidate edge."""

    def __init__(
        self, layout: Layout, c_in: int, channels: int, track_running_stats: bool = False, partial_channels: int = 1
    ) -> None:
        super().__init__()
        self.layout, self.channels, self.partial_channels = layout, channels, partial_channels
        b = layout.blocks
        c_op = channels // partial_channels
        # The B block projections (C each) as one conv; the input-to-output projection (B*C).
        # (Kept apart: one conv of 2*B*C channels makes tensors past glibc's 32 MiB mmap
        # threshold at the paper preset, and every step then pays page faults on them.)
        self.projection = _ConvBNReLU(c_in, b * channels, 1, track_running_stats)
        self.out_projection = _ConvBNReLU(c_in, b * channels, 1, track_running_stats)
        self.conv3 = nn.ModuleList(_ConvBNReLU(c_op, c_op, 3, track_running_stats) for _ in range(b))
        self.conv1 = nn.ModuleList(_ConvBNReLU(c_op, c_op, 1, track_running_stats) for _ in range(b))

    def forward(
        self,
        s0: torch.Tensor,
        w: Weights,
        mask: Mask | None,
        batch_stats: bool,
        drop_prob: float = 0.0,
        fold: bool = True,
    ) -> torch.Tensor:
        """The cell's output; ``drop_prob`` > 0 drops each block's mixed op per sample (module doc).

        ``fold``: the weights of the conv-BN-ReLU terms scale BN's affine parameters (exact for
        weights >= 0 except for the weights' own gradient at 0); else every term is
        ``w * relu(bn(conv(x)))`` as the authors compute it.
        """
        c, b = self.channels, self.layout.blocks
        dropped = drop_path_masks(s0, b, drop_prob) if drop_prob > 0.0 else None
        scale = None
        if fold:  # the projected input's weight (into each block) scales the projection's BN
            one = w.output.new_ones(())
            scale = torch.cat([(one if in_w is None else in_w[0]).expand(c) for in_w in w.inputs])
        # one split, whose backward is one concatenation, hands out the B block inputs
        block_inputs = split_channels(self.projection(s0, scale, batch_stats), [c] * b)
        states: list[torch.Tensor] = []
        for i in range(b):
            in_w = w.inputs[i]
            keep = mask.inputs[i] if mask is not None and mask.inputs[i] is not None else None
            terms: list[Term] = [
                (t, None if in_w is None or (k == 0 and fold) else in_w[k])
                for k, t in enumerate([block_inputs[i], *states])
                if keep is None or keep[k]
            ]
            x = weighted_sum(terms, block_inputs[i])
            block_keep = None if dropped is None else dropped[i]
            states.append(self._mixed_op(i, x, w, mask, batch_stats, block_keep, fold))
        out_scale = w.output[1:].repeat_interleave(c).view(1, -1, 1, 1)
        if mask is not None and not mask.output[0]:
            return torch.cat(states, dim=1) * out_scale
        if fold:
            to_output = self.out_projection(s0, w.output[0], batch_stats)
        else:
            to_output = self.out_projection(s0, None, batch_stats) * w.output[0]
        return torch.addcmul(to_output, torch.cat(states, dim=1), out_scale)

    def _mixed_op(
        self,
        i: int,
        x: torch.Tensor,
        w: Weights,
        mask: Mask | None,
        batch_stats: bool,
        keep: torch.Tensor | None,
        fold: bool,
    ) -> torch.Tensor:
        """Block i's mixed op on ``x``; ``keep`` (B, 1, 1, 1): the drop-path mask, None: no dropping."""
        k = self.partial_channels
        rest = None
        if k > 1:
            part = self.channels // k
            x, rest = x[:, :part], x[:, part:]
        use = mask.ops[i] if mask is not None else (True, True, True)
        op_terms: list[Term] = []
        for op, convs in ((CONV3, self.conv3), (CONV1, self.conv1)):
            if use[op]:
                op_terms.append(_conv_term(convs[i], x, w.ops[i, op], keep, batch_stats, fold))
        if use[POOL]:
            op_terms.append(
                (F.max_pool2d(x, 3, stride=1, padding=1), w.ops[i, POOL] if keep is None else w.ops[i, POOL] * keep)
            )
        mixed = weighted_sum(op_terms, x)
        if rest is None:
            return mixed
        return shuffle_cat(mixed, rest if keep is None else rest * keep, k)


def _conv_term(
    module: _ConvBNReLU, x: torch.Tensor, weight: torch.Tensor, keep: torch.Tensor | None, batch_stats: bool, fold: bool
) -> Term:
    """A conv op's term of a mixed op: its weight folded into BN, or applied to its output."""
    if fold:
        return module(x, weight, batch_stats), keep
    return module(x, None, batch_stats), weight if keep is None else weight * keep


class NB1Shot1SearchNet(nn.Module):
    """The NB-1Shot1 one-shot model; ``forward(x, weights)`` with the flat mixing weights of :class:`Layout`."""

    def __init__(
        self,
        space: int,
        channels: int = 16,
        num_cells: int = 9,
        num_classes: int = 10,
        bn_track_running_stats: bool = False,
        partial_channels: int = 1,
    ) -> None:
        super().__init__()
        if channels < 1 or num_cells < 3 or num_classes < 2:
            raise ConfigError(
                f"the NB-1Shot1 one-shot model needs channels >= 1, num_cells >= 3 and num_classes >= 2, got "
                f"channels={channels}, num_cells={num_cells}, num_classes={num_classes}"
            )
        check_partial_channels(channels, partial_channels)
        self.layout = Layout(get_space(space))
        self.num_cells, self.partial_channels = num_cells, partial_channels
        b = self.layout.blocks
        self.stem = _ConvBNReLU(3, channels, 3)
        self.downsample_at = frozenset({num_cells // 3, 2 * num_cells // 3})
        cells: list[nn.Module] = []
        c_curr, c_in = channels, channels
        for i in range(num_cells):
            if i in self.downsample_at:
                c_curr *= 2
            cells.append(NB1Shot1SearchCell(self.layout, c_in, c_curr, bn_track_running_stats, partial_channels))
            c_in = c_curr * b
        self.cells = nn.ModuleList(cells)
        self.post = nn.Sequential(
            nn.ReLU(), nn.Conv2d(c_in, c_curr, 1, bias=False), nn.BatchNorm2d(c_curr, affine=False)
        )
        self.classifier = nn.Linear(c_curr, num_classes)

    def forward(
        self,
        x: torch.Tensor,
        weights: torch.Tensor,
        *,
        mask: Mask | None = None,
        batch_stats: bool = False,
        drop_prob: float = 0.0,
    ) -> torch.Tensor:
        """Logits for images ``x`` under the flat mixing ``weights`` (see :class:`Layout`).

        ``mask`` skips what a final net does not use; ``batch_stats`` makes the cells
        normalise with batch statistics in eval mode (final nets). ``drop_prob`` in [0, 1):
        ScheduledDropPath's probability of dropping a block's mixed op for a sample, in training
        mode only (eval mode or 0: the same computation as without it).
        """
        w = self.layout.split(weights)
        check_drop_prob(drop_prob)
        drop = drop_prob if self.training else 0.0
        # Folding a weight into BN before the ReLU makes its own gradient 0 where it is exactly 0
        # (relu(0 * z) is flat in the weight; the reference's w * relu(z) is not). So the weights
        # fold only when no gradient flows to them: the weight step and every evaluation.
        fold = not (weights.requires_grad and torch.is_grad_enabled())
        out = self.stem(x)
        for i, cell in enumerate(self.cells):
            if i in self.downsample_at:
                out = F.max_pool2d(out, 2, stride=2, padding=1)
            out = cell(out, w, mask, batch_stats, drop, fold)
        return self.classifier(self.post(out).mean(dim=(2, 3)))
