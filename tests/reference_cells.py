"""Plain transcriptions of the supernet cells, the references the fused implementations are
tested against: every edge and op computed separately, as the authors' code does.

Options cover the variants: ``keep`` (DARTS's drop path: a per-sample mask per edge / block),
``k`` (PC-DARTS's partial channels: ops on the first C/k channels, the rest bypass, then the
paper's channel shuffle) and, on NB201, ``edge_weights`` (PC-DARTS's edge normalisation)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from nasbench_harness.spaces.nb201 import EDGES
from nasbench_harness.supernets import nb1shot1 as s1
from nasbench_harness.supernets.nb201 import CONV1, CONV3, OUT_EDGES, POOL, SKIP


def assert_same_gradients(
    ours: torch.Tensor, ref: torch.Tensor, inputs: list[torch.Tensor]
) -> tuple[torch.Tensor, ...]:
    """Assert that ``ours`` and ``ref`` have the same gradients with respect to ``inputs`` for one
    random output probe; returns ours."""
    probe = torch.randn_like(ours)
    g_ours = torch.autograd.grad((ours * probe).sum(), inputs)
    g_ref = torch.autograd.grad((ref * probe).sum(), inputs)
    for a, b in zip(g_ours, g_ref, strict=True):
        torch.testing.assert_close(a, b)
    return g_ours


def paper_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """PC-DARTS's channel_shuffle (ShuffleNet's): view as groups, transpose, flatten."""
    b, c, h, w = x.shape
    return x.view(b, groups, c // groups, h, w).transpose(1, 2).contiguous().view(b, c, h, w)


def cbr(module: Any, x: torch.Tensor) -> torch.Tensor:
    """conv -> BN (batch statistics, the module's affine parameters) -> ReLU."""
    return torch.relu(F.batch_norm(module.conv(x), None, None, module.bn.weight, module.bn.bias, training=True))


def nb201_reference_cell(
    cell: Any,
    x: torch.Tensor,
    w: torch.Tensor,
    keep: torch.Tensor | None = None,
    edge_weights: torch.Tensor | None = None,
    k: int = 1,
) -> torch.Tensor:
    """NB201's cell: node = sum over incoming edges of
    keep_e * beta_e * shuffle(cat(sum_o w_o op_o(h[:C/k]), h[C/k:]))."""
    p = x.shape[1] // k
    nodes = [x]
    for target in range(1, 4):
        total = torch.zeros_like(x)
        for e, (src, dst) in enumerate(EDGES):
            if dst != target:
                continue
            h = nodes[src]
            hp = h[:, :p]
            j = OUT_EDGES[src].index(e)
            conv3 = cell.conv3[src].conv.weight[j * p : (j + 1) * p]
            conv1 = cell.conv1[src].conv.weight[j * p : (j + 1) * p]
            y3 = F.batch_norm(F.conv2d(F.relu(hp), conv3, padding=1), None, None, training=True)
            y1 = F.batch_norm(F.conv2d(F.relu(hp), conv1), None, None, training=True)
            pool = F.avg_pool2d(hp, 3, 1, 1, count_include_pad=False)
            edge = w[e, 0] * torch.zeros_like(hp) + w[e, SKIP] * hp + w[e, CONV1] * y1 + w[e, CONV3] * y3
            edge = edge + w[e, POOL] * pool
            if k > 1:
                edge = paper_shuffle(torch.cat([edge, h[:, p:]], dim=1), k)
            if edge_weights is not None:
                edge = edge_weights[e] * edge
            total = total + (edge if keep is None else keep[e] * edge)
        nodes.append(total)
    return nodes[-1]


def nb1shot1_reference_cell(
    cell: Any, s0: torch.Tensor, flat: torch.Tensor, keep: torch.Tensor | None = None, k: int = 1
) -> torch.Tensor:
    """The NB-1Shot1 authors' cell: separate projections, inputs weighted then summed, sum of
    w * op(x) per block (on the first C/k channels, then shuffled), weighted concatenation."""
    w = cell.layout.split(flat)
    c, b = cell.channels, cell.layout.blocks
    p = c // k
    # one conv of B*C channels == B convs on output-channel slices
    full = torch.cat([cbr(cell.projection, s0), cbr(cell.out_projection, s0)], dim=1)
    states: list[torch.Tensor] = []
    for i in range(b):
        inputs = [full[:, i * c : (i + 1) * c], *states]
        if w.inputs[i] is not None:
            inputs = [wk * t for wk, t in zip(w.inputs[i], inputs, strict=True)]
        x: Any = sum(inputs)
        xp = x[:, :p]
        ops = {s1.CONV3: cbr(cell.conv3[i], xp), s1.CONV1: cbr(cell.conv1[i], xp), s1.POOL: F.max_pool2d(xp, 3, 1, 1)}
        mixed: Any = sum(w.ops[i, o] * ops[o] for o in (s1.CONV3, s1.CONV1, s1.POOL))
        if k > 1:
            mixed = paper_shuffle(torch.cat([mixed, x[:, p:]], dim=1), k)
        states.append(mixed if keep is None else keep[i] * mixed)
    weighted = [w.output[j + 1] * s for j, s in enumerate(states)]
    return w.output[0] * full[:, b * c :] + torch.cat(weighted, dim=1)


def nb201_gdas_reference_cell(cell: Any, x: torch.Tensor, hardwts: torch.Tensor) -> torch.Tensor:
    """AutoDL's ``NAS201SearchCell.forward_gdas`` on our cell's parameters: on every edge the sampled
    (argmax) op times its weight, plus every other op's weight as a constant."""
    nodes = [x]
    for target in range(1, 4):
        total: Any = 0.0
        for e, (src, dst) in enumerate(EDGES):
            if dst != target:
                continue
            h, chosen = nodes[src], int(hardwts[e].detach().argmax())
            total = total + _nb201_op(cell, h, src, e, chosen) * hardwts[e, chosen]
            total = total + sum(hardwts[e, k] for k in range(hardwts.shape[1]) if k != chosen)
        nodes.append(total)
    return nodes[-1]


def _nb201_op(cell: Any, h: torch.Tensor, src: int, e: int, op: int) -> torch.Tensor:
    """NB201 op ``op`` of edge ``e`` (leaving node ``src``) on ``h``, with our cell's parameters."""
    c, j = h.shape[1], OUT_EDGES[src].index(e)
    if op == SKIP:
        return h
    if op == POOL:
        return F.avg_pool2d(h, 3, 1, 1, count_include_pad=False)
    if op in (CONV1, CONV3):
        conv = (cell.conv1 if op == CONV1 else cell.conv3)[src].conv.weight[j * c : (j + 1) * c]
        return F.batch_norm(F.conv2d(F.relu(h), conv, padding=1 if op == CONV3 else 0), None, None, training=True)
    return torch.zeros_like(h)  # none
