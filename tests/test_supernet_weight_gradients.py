"""d loss / d mixing weight of every supernet against float64 finite differences, at the edges of the
weights' domain: softmax weights (all > 0), exactly one-hot weights, and weights with exact zeros
(some entries of a group, and whole groups), with and without drop path and partial channels.

The reference function is the authors' ``sum_o w_o * op_o(x)``, linear in each weight: its
derivative at a weight of 0 is ``<grad, op(x)>``. The analytic gradient (weights requiring grad)
and the finite differences (no grad: the fused path the weight step runs, for weights >= 0; at an
entry that is 0 one-sided, inside the domain) are two computations of it.

Finite differences need a point where the function is differentiable. At one-hot and zero weights
the authors' function itself has kinks wherever an exact zero meets a ReLU or a max-pool tie (a
node whose every term has weight 0; a block input that is one dropped state), so the weights here
avoid them: the checks run on the cell (the only part the weights enter) with a random linear
probe of its output; NB201's one-hot choices are never ``none`` and every edge keeps a positive
skip weight in the zero-weight case; NB-1Shot1 block inputs keep a positive weight on the cell-input
projection, and its BN biases are positive (a conv-BN-ReLU output is then nowhere exactly 0).
Arbitrary one-hot and zero weights (``none``, every group empty) are checked against the plain
transcription of the authors' cells instead (same autograd conventions at the kinks), and the
whole network at GDAS's NB-1Shot1 weights (ops one-hot, inputs and outputs soft)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F
from reference_cells import nb1shot1_reference_cell, nb201_reference_cell

from nasbench_harness.spaces.nb201 import EDGES, OPS
from nasbench_harness.supernets.mixing import drop_path_masks
from nasbench_harness.supernets.nb1shot1 import NB1Shot1SearchNet
from nasbench_harness.supernets.nb201 import NONE, SKIP, NB201SearchCell
from nasbench_harness.supernets.nb201_pc import PCNB201SearchCell, edge_weights

H = 1e-6
KINDS = ("softmax", "one-hot", "zeros")
Loss = Callable[[torch.Tensor], torch.Tensor]


def _group(size: int, kind: str, generator: torch.Generator, keep: int | None, choices: list[int]) -> torch.Tensor:
    """One group: softmax, one-hot (on one of ``choices``), or softmax with about half its entries
    set to exactly 0 (never entry ``keep``), renormalised."""
    if kind == "one-hot":
        group = torch.zeros(size, dtype=torch.float64)
        group[choices[int(torch.randint(len(choices), (1,), generator=generator))]] = 1.0
        return group
    group = torch.softmax(torch.randn(size, dtype=torch.float64, generator=generator), 0)
    if kind == "zeros":
        drop = [j for j in torch.randperm(size, generator=generator).tolist() if j != keep][: max(1, size // 2)]
        group[drop] = 0.0
        group = group / group.sum()
    return group


def nb201_weights(kind: str, seed: int) -> torch.Tensor:
    """(6, 5): one-hot never on ``none``; with zeros, skip_connect stays > 0 and edge 1->3 is all 0."""
    generator = torch.Generator().manual_seed(seed)
    not_none = [op for op in range(len(OPS)) if op != NONE]
    rows = [_group(5, kind, generator, SKIP, not_none) for _ in EDGES]
    if kind == "zeros":
        rows[EDGES.index((1, 3))] = torch.zeros(5, dtype=torch.float64)  # node 3 has two more edges
    return torch.stack(rows)


def nb1shot1_weights(net: NB1Shot1SearchNet, kind: str, seed: int) -> torch.Tensor:
    """Flat weights; input groups keep the projection (entry 0) > 0, or one-hot on it; with
    zeros, one block's ops are all 0."""
    generator = torch.Generator().manual_seed(seed)
    groups = []
    for name, _, size in net.layout.groups:
        if name.startswith("inputs"):
            groups.append(_group(size, kind, generator, 0, [0]))
        else:
            groups.append(_group(size, kind, generator, None, list(range(size))))
    if kind == "zeros":
        groups[1] = torch.zeros_like(groups[1])  # block 2's mixed op outputs 0
    return torch.cat(groups)


def finite_difference(f: Callable[[torch.Tensor], float], w: torch.Tensor, j: int) -> float:
    """d f / d w_j by fourth-order differences: central, or (w_j < 2H) one-sided inside w >= 0."""
    e = torch.zeros_like(w)
    e.view(-1)[j] = H
    if float(w.view(-1)[j]) >= 2 * H:
        return (-f(w + 2 * e) + 8 * f(w + e) - 8 * f(w - e) + f(w - 2 * e)) / (12 * H)
    values = [f(w + k * e) for k in range(5)]
    return sum(c * v for c, v in zip((-25, 48, -36, 16, -3), values, strict=True)) / (12 * H)


def check_weight_gradient(analytic_loss: Loss, fused_loss: Loss, w: torch.Tensor, names: list[str], what: str) -> None:
    """Autograd of ``analytic_loss`` at ``w`` against finite differences of ``fused_loss``, entry by entry
    (to 1e-6 of the largest entry of the gradient)."""
    x = w.clone().requires_grad_(True)
    (analytic,) = torch.autograd.grad(analytic_loss(x), [x])
    scale = float(analytic.abs().max())
    with torch.no_grad():
        for j in range(w.numel()):
            fd = finite_difference(lambda v: float(fused_loss(v)), w, j)
            got = float(analytic.view(-1)[j])
            assert got == pytest.approx(fd, rel=1e-6, abs=1e-6 * scale + 1e-12), (
                f"{what}: d loss / d {names[j]} (weight {float(w.view(-1)[j]):g}) is {got:.6e}, "
                f"finite differences {fd:.6e}"
            )


def _probe_loss(cell_out: Callable[[torch.Tensor], torch.Tensor], shape: tuple[int, ...]) -> Loss:
    """``<probe, cell output>`` with a fixed probe; drop-path masks from the same seed at every call."""
    probe = torch.randn(shape, dtype=torch.float64, generator=torch.Generator().manual_seed(11))

    def loss(w: torch.Tensor) -> torch.Tensor:
        torch.manual_seed(7)
        return (cell_out(w) * probe).sum()

    return loss


NB201_NAMES = [f"edge {src}->{dst} {op}" for src, dst in EDGES for op in OPS]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("drop_prob", [0.0, 0.4])
def test_nb201_cell_weight_gradients(drop_prob: float, kind: str) -> None:
    torch.manual_seed(0)
    cell = NB201SearchCell(4).double().train()
    x = torch.randn(6, 4, 6, 6, dtype=torch.float64)
    loss = _probe_loss(lambda w: cell(x, w, None, False, drop_prob), (6, 4, 6, 6))
    what = f"NB201 cell, drop path {drop_prob}, {kind} weights"
    check_weight_gradient(loss, loss, nb201_weights(kind, seed=3), NB201_NAMES, what)


@pytest.mark.parametrize("kind", KINDS)
def test_nb201_pc_darts_cell_weight_and_edge_gradients(kind: str) -> None:
    torch.manual_seed(0)
    cell = PCNB201SearchCell(8, 4).double().train()
    x = torch.randn(4, 8, 6, 6, dtype=torch.float64)
    beta = torch.randn(6, dtype=torch.float64)
    w = nb201_weights(kind, seed=4)
    ops_loss = _probe_loss(lambda v: cell(x, v, edge_weights(beta), None, False), (4, 8, 6, 6))
    check_weight_gradient(ops_loss, ops_loss, w, NB201_NAMES, f"NB201 PC-DARTS cell, {kind} weights")
    edge_loss = _probe_loss(lambda b: cell(x, w, edge_weights(b), None, False), (4, 8, 6, 6))
    names = [f"beta {src}->{dst}" for src, dst in EDGES]
    check_weight_gradient(edge_loss, edge_loss, beta, names, f"NB201 PC-DARTS edge normalisation, {kind} weights")


NB1SHOT1_VARIANTS = [(space, k, p) for space in (1, 2, 3) for k, p in ((1, 0.0), (2, 0.0), (1, 0.4), (2, 0.4))]


def _positive_bn(net: torch.nn.Module) -> torch.nn.Module:
    """BN scales in [0.5, 1.5] and biases 4: conv-BN-ReLU outputs nowhere exactly 0 (module doc)."""
    for module in net.modules():
        if isinstance(module, torch.nn.BatchNorm2d) and module.affine:
            with torch.no_grad():
                module.weight.uniform_(0.5, 1.5)
                module.bias.fill_(4.0)
    return net


def _nb1shot1_cell(space: int, partial_channels: int) -> tuple[NB1Shot1SearchNet, torch.nn.Module]:
    torch.manual_seed(space)
    net = NB1Shot1SearchNet(space, channels=4, num_cells=3, partial_channels=partial_channels).double().train()
    _positive_bn(net.cells[0])
    return net, net.cells[0]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("space", "partial_channels", "drop_prob"), NB1SHOT1_VARIANTS)
def test_nb1shot1_cell_weight_gradients(space: int, partial_channels: int, drop_prob: float, kind: str) -> None:
    net, cell = _nb1shot1_cell(space, partial_channels)
    s0 = torch.randn(6, 4, 6, 6, dtype=torch.float64)
    split = net.layout.split
    shape = (6, 4 * net.layout.blocks, 6, 6)
    analytic = _probe_loss(lambda w: cell(s0, split(w), None, False, drop_prob, fold=False), shape)
    fused = _probe_loss(lambda w: cell(s0, split(w), None, False, drop_prob, fold=True), shape)
    names = [f"{name}[{k}]" for name, _, length in net.layout.groups for k in range(length)]
    what = f"NB-1Shot1 space {space} cell, K={partial_channels}, drop path {drop_prob}, {kind} weights"
    check_weight_gradient(analytic, fused, nb1shot1_weights(net, kind, seed=space), names, what)


@pytest.mark.parametrize("space", [1, 2, 3])
def test_nb1shot1_network_gradient_at_gdas_weights(space: int) -> None:
    """The whole network, as GDAS's NB-1Shot1 arch step sees it: each block's ops exactly one-hot,
    inputs and outputs a softmax; the net must not fold the weights it differentiates."""
    torch.manual_seed(space)
    net = _positive_bn(NB1Shot1SearchNet(space, channels=4, num_cells=3).double().train())
    generator = torch.Generator().manual_seed(space)
    groups = [
        _group(size, "one-hot" if name.startswith("ops") else "softmax", generator, None, list(range(size)))
        for name, _, size in net.layout.groups
    ]
    w = torch.cat(groups)
    x, y = torch.randn(4, 3, 8, 8, dtype=torch.float64, generator=generator), torch.tensor([0, 1, 2, 3])

    def loss(v: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(net(x, v), y)

    assert isinstance(net, NB1Shot1SearchNet)
    names = [f"{name}[{k}]" for name, _, length in net.layout.groups for k in range(length)]
    check_weight_gradient(loss, loss, w, names, f"NB-1Shot1 space {space} network, GDAS weights")


def _arbitrary(sizes: tuple[int, ...], kind: str, seed: int) -> torch.Tensor:
    """One-hot anywhere (``none`` too), or exact zeros with every third group all 0."""
    generator = torch.Generator().manual_seed(seed)
    groups = [_group(size, kind, generator, None, list(range(size))) for size in sizes]
    if kind == "zeros":
        groups = [torch.zeros_like(g) if i % 3 == 2 else g for i, g in enumerate(groups)]
    return torch.cat(groups)


def _same_gradients(ours: torch.Tensor, ref: torch.Tensor, inputs: list[torch.Tensor]) -> None:
    probe = torch.randn_like(ours)
    for a, b in zip(
        torch.autograd.grad((ours * probe).sum(), inputs), torch.autograd.grad((ref * probe).sum(), inputs), strict=True
    ):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("kind", ["one-hot", "zeros"])
@pytest.mark.parametrize("drop_prob", [0.0, 0.4])
def test_nb201_cell_matches_the_plain_transcription_at_any_one_hot_or_zero_weights(drop_prob: float, kind: str) -> None:
    torch.manual_seed(1)
    cell = NB201SearchCell(4).double().train()
    x = torch.randn(6, 4, 6, 6, dtype=torch.float64)
    w = _arbitrary((5,) * 6, kind, seed=5).reshape(6, 5).requires_grad_(True)
    torch.manual_seed(7)
    ours = cell(x, w, None, False, drop_prob)
    torch.manual_seed(7)
    keep = drop_path_masks(x, 6, drop_prob) if drop_prob else None
    ref = nb201_reference_cell(cell, x, w, keep=keep)
    torch.testing.assert_close(ours, ref)
    _same_gradients(ours, ref, [w])


@pytest.mark.parametrize("kind", ["one-hot", "zeros"])
@pytest.mark.parametrize(("space", "partial_channels", "drop_prob"), NB1SHOT1_VARIANTS)
def test_nb1shot1_cell_matches_the_authors_at_any_one_hot_or_zero_weights(
    space: int, partial_channels: int, drop_prob: float, kind: str
) -> None:
    """``sum(w * op(x))``: at w = 0 the gradient is <grad, op(x)>, whatever the fused path would give."""
    torch.manual_seed(space)
    net = NB1Shot1SearchNet(space, channels=4, num_cells=3, partial_channels=partial_channels).double().train()
    cell = net.cells[0]
    s0 = torch.randn(6, 4, 6, 6, dtype=torch.float64)
    w = _arbitrary(net.layout.group_sizes, kind, seed=space).requires_grad_(True)
    torch.manual_seed(7)
    ours = cell(s0, net.layout.split(w), None, False, drop_prob, fold=False)
    torch.manual_seed(7)
    keep = drop_path_masks(s0, net.layout.blocks, drop_prob) if drop_prob else None
    ref = nb1shot1_reference_cell(cell, s0, w, keep=keep, k=partial_channels)
    torch.testing.assert_close(ours, ref)
    _same_gradients(ours, ref, [w])
    with torch.no_grad():  # and the fused path computes the same values
        torch.manual_seed(7)
        torch.testing.assert_close(cell(s0, net.layout.split(w), None, False, drop_prob, fold=True), ref)


def test_finite_differences_catch_a_zero_gradient_at_zero_weight() -> None:
    """The check fails on the folded form relu(w * z) differentiated at w = 0 (autograd gives 0)."""
    z = torch.randn(64, dtype=torch.float64, generator=torch.Generator().manual_seed(0))

    def folded(w: torch.Tensor) -> torch.Tensor:
        return torch.relu(w[0] * z).sum()

    def reference(w: torch.Tensor) -> torch.Tensor:
        return (w[0] * torch.relu(z)).sum()

    w = torch.zeros(1, dtype=torch.float64)
    check_weight_gradient(reference, folded, w, ["w"], "reference")
    with pytest.raises(AssertionError, match="d loss / d w"):
        check_weight_gradient(folded, folded, w, ["w"], "folded")
