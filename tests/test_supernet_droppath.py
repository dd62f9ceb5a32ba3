"""ScheduledDropPath in the NB201 and NB-1Shot1 supernets: no change at p=0 or in eval mode, the
exact masked sum against a plain per-edge (per-block) transcription with the same masks,
per-sample masks, independence across cells, gradients, and bad probabilities."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from reference_cells import assert_same_gradients, nb1shot1_reference_cell, nb201_reference_cell

from nasbench_harness.errors import ConfigError
from nasbench_harness.spaces.nb201 import EDGES
from nasbench_harness.supernets import nb201
from nasbench_harness.supernets.mixing import drop_path_masks, weighted_sum
from nasbench_harness.supernets.nb1shot1 import NB1Shot1SearchNet, grouped_softmax
from nasbench_harness.supernets.nb201 import SKIP, NB201SearchCell, NB201SearchNet

pytestmark = pytest.mark.usefixtures("one_thread")


def _nb201_batch(channels_last: bool = False) -> tuple[NB201SearchNet, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    net = NB201SearchNet(4, 1, 10).double()
    x = torch.randn(8, 3, 8, 8, dtype=torch.float64)
    if channels_last:
        net, x = net.to(memory_format=torch.channels_last), x.to(memory_format=torch.channels_last)
    return net, x, torch.softmax(torch.randn(6, 5, dtype=torch.float64), -1)


def test_nb201_zero_probability_and_eval_mode_are_bit_identical() -> None:
    net, x, w = _nb201_batch()
    torch.manual_seed(1)
    plain = net(x, w)
    assert torch.equal(net(x, w, drop_prob=0.0), plain)
    net.eval()
    assert torch.equal(net(x, w, drop_prob=0.7), net(x, w))


@pytest.mark.parametrize("channels_last", [False, True])
def test_nb201_cell_equals_masked_plain_sum_in_value_and_gradients(channels_last: bool) -> None:
    torch.manual_seed(0)
    cell = NB201SearchCell(4).double()
    x = torch.randn(6, 4, 6, 6, dtype=torch.float64)
    if channels_last:
        cell, x = cell.to(memory_format=torch.channels_last), x.to(memory_format=torch.channels_last)
    x.requires_grad_(True)
    alphas = torch.randn(6, 5, dtype=torch.float64, requires_grad=True)
    torch.manual_seed(5)
    ours = cell(x, torch.softmax(alphas, -1), None, False, 0.4)
    torch.manual_seed(5)
    keep = drop_path_masks(x, 6, 0.4)  # the same draw the cell made
    assert set(keep.unique().tolist()) == {0.0, 1 / 0.6}
    ref = nb201_reference_cell(cell, x, torch.softmax(alphas, -1), keep)
    torch.testing.assert_close(ours, ref)
    g_ours = assert_same_gradients(ours, ref, [alphas, x, *cell.parameters()])
    assert g_ours[0].abs().sum() > 0


def test_nb201_masks_are_per_sample() -> None:
    """Only edge 0->3 (skip) is on: the cell's output is x times that edge's mask, per sample."""
    torch.manual_seed(3)
    cell = NB201SearchCell(4)
    x = torch.randn(32, 4, 5, 5)
    w = torch.zeros(6, 5)
    w[EDGES.index((0, 3)), SKIP] = 1.0
    out = cell(x, w, None, False, 0.5)
    ratio = (out / x).flatten(1)
    assert torch.allclose(ratio, ratio[:, :1].expand_as(ratio))  # one factor per sample
    factors = set(ratio[:, 0].tolist())
    assert factors == {0.0, 2.0}  # some samples dropped the edge, others kept it (scaled by 1/(1-p))


def test_nb201_each_cell_draws_its_own_masks(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[int, ...]] = []

    def recording(x: torch.Tensor, n: int, p: float) -> torch.Tensor:
        masks = drop_path_masks(x, n, p)
        calls.append(tuple(masks.shape))
        return masks

    monkeypatch.setattr(nb201, "drop_path_masks", recording)
    net = NB201SearchNet(4, 2, 10)
    net(torch.randn(5, 3, 8, 8), torch.softmax(torch.randn(6, 5), -1), drop_prob=0.2)
    assert calls == [(6, 5, 1, 1, 1)] * net.num_cells  # one mask per edge and sample, drawn in every cell


def test_nb201_expected_output_is_the_undropped_output() -> None:
    """Averaged over many masks the output equals the undropped one (E[mask] = 1 per edge).

    Only edges 0->1 (all ops) and 1->3 (skip) are on, so the output is linear in each mask. The
    4 images are repeated 5000 times in one batch: BN sees the same batch statistics, and each
    copy draws its own masks.
    """
    torch.manual_seed(0)
    cell = NB201SearchCell(3)
    x = torch.randn(4, 3, 5, 5)
    w = torch.zeros(6, 5)
    w[0] = torch.softmax(torch.randn(5), -1)
    w[EDGES.index((1, 3)), SKIP] = 1.0
    undropped = cell(x, w, None, False)
    copies = 5000
    dropped = cell(x.repeat(copies, 1, 1, 1), w, None, False, 0.3).view(copies, *x.shape)
    zeroed = (dropped == 0).flatten(2).all(2).float().mean()  # a sample loses either edge
    assert zeroed == pytest.approx(1 - 0.7**2, abs=0.02)
    torch.testing.assert_close(dropped.mean(0), undropped, atol=0.05 * undropped.abs().max().item(), rtol=0.0)


def test_nb201_gradients_flow_with_drop_path() -> None:
    net, x, _ = _nb201_batch(channels_last=True)
    alphas = torch.randn(6, 5, dtype=torch.float64, requires_grad=True)
    loss = F.cross_entropy(net(x, torch.softmax(alphas, -1), drop_prob=0.3), torch.arange(8) % 10)
    loss.backward()
    assert alphas.grad is not None and torch.isfinite(alphas.grad).all() and alphas.grad.abs().sum() > 0
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters())


@pytest.mark.parametrize("p", [-0.1, 1.0, 1.5])
def test_bad_drop_probability_is_a_config_error(p: float) -> None:
    net, x, w = _nb201_batch()
    with pytest.raises(ConfigError, match=r"\[0, 1\)"):
        net(x, w, drop_prob=p)
    one_shot = NB1Shot1SearchNet(1, channels=4, num_cells=3)
    with pytest.raises(ConfigError, match=r"\[0, 1\)"):
        one_shot(torch.randn(2, 3, 8, 8), torch.zeros(one_shot.layout.size), drop_prob=p)


def test_weighted_sum_takes_per_sample_weights() -> None:
    torch.manual_seed(0)
    xs = [torch.randn(3, 2, 4, 4, dtype=torch.float64, requires_grad=True) for _ in range(3)]
    ws = [torch.rand(3, 1, 1, 1, dtype=torch.float64, requires_grad=True), None, torch.rand((), dtype=torch.float64)]
    ws[2].requires_grad_(True)
    terms = list(zip(xs, ws, strict=True))
    ours = weighted_sum(terms, xs[0])
    ref = ws[0] * xs[0] + xs[1] + ws[2] * xs[2]
    torch.testing.assert_close(ours, ref)
    inputs = [*xs, ws[0], ws[2]]
    for a, b in zip(torch.autograd.grad(ours.sum(), inputs), torch.autograd.grad(ref.sum(), inputs), strict=True):
        torch.testing.assert_close(a, b)


# -- NB-1Shot1 ------------------------------------------------------------------------------------


@pytest.mark.parametrize("space", [1, 3])
def test_nb1shot1_cell_equals_masked_authors_cell(space: int) -> None:
    torch.manual_seed(space)
    net = NB1Shot1SearchNet(space, channels=3, num_cells=3).double()
    cell = net.cells[0]
    s0 = torch.randn(6, 3, 6, 6, dtype=torch.float64, requires_grad=True)
    alphas = torch.randn(net.layout.size, dtype=torch.float64, requires_grad=True)
    torch.manual_seed(9)
    ours = cell(s0, net.layout.split(grouped_softmax(alphas, net.layout.group_sizes)), None, False, 0.5)
    torch.manual_seed(9)
    keep = drop_path_masks(s0, net.layout.blocks, 0.5)
    assert len(set(keep[0].flatten().tolist())) == 2  # block 1 is dropped for some samples only
    ref = nb1shot1_reference_cell(cell, s0, grouped_softmax(alphas, net.layout.group_sizes), keep)
    torch.testing.assert_close(ours, ref)
    assert_same_gradients(ours, ref, [alphas, s0, *cell.parameters()])


def test_nb1shot1_zero_probability_and_eval_mode_are_bit_identical() -> None:
    torch.manual_seed(0)
    net = NB1Shot1SearchNet(2, channels=4, num_cells=3)
    x = torch.randn(4, 3, 8, 8)
    w = grouped_softmax(torch.randn(net.layout.size), net.layout.group_sizes)
    plain = net(x, w)
    assert torch.equal(net(x, w, drop_prob=0.0), plain)
    net.eval()
    assert torch.equal(net(x, w, drop_prob=0.5), net(x, w))
    net.train()
    assert not torch.equal(net(x, w, drop_prob=0.5), plain)
