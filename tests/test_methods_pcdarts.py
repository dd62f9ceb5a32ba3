"""PC-DARTS: the channel shuffle, the partial-channel cells of NB201 and NB-1Shot1 against plain
transcriptions of the paper's formulas, the arch step on alphas and beta, derivation, options,
and two-epoch searches on both spaces (through the method's ``build_net`` hook)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from reference_cells import assert_same_gradients, nb1shot1_reference_cell, nb201_reference_cell, paper_shuffle
from tiny import interrupted_search, tiny_search, trajectory, without_times

from nasbench_harness.config import build_config
from nasbench_harness.errors import ConfigError
from nasbench_harness.methods.engine.adapters import get_search_space
from nasbench_harness.methods.engine.base import SearchState
from nasbench_harness.methods.engine.steps import weight_step
from nasbench_harness.methods.zoo.pc_darts import PartialChannelStep, pc_darts
from nasbench_harness.registry import make_method
from nasbench_harness.spaces.nb201 import EDGES, NB201Genotype
from nasbench_harness.supernets.mixing import shuffle_cat
from nasbench_harness.supernets.nb1shot1 import NB1Shot1SearchNet, grouped_softmax
from nasbench_harness.supernets.nb201_pc import PCNB201SearchCell, PCNB201SearchNet, edge_weights

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("groups", [2, 4])
@pytest.mark.parametrize("channels_last", [False, True])
def test_shuffle_cat_is_the_papers_shuffle_of_the_concatenation(groups: int, channels_last: bool) -> None:
    torch.manual_seed(0)
    part = 3
    a = torch.randn(2, part, 4, 5, dtype=torch.float64, requires_grad=True)
    r = torch.randn(2, (groups - 1) * part, 4, 5, dtype=torch.float64, requires_grad=True)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    ours = shuffle_cat(a.contiguous(memory_format=fmt), r.contiguous(memory_format=fmt), groups)
    ref = paper_shuffle(torch.cat([a, r], dim=1), groups)
    assert torch.equal(ours, ref)
    assert ours.is_contiguous(memory_format=fmt)
    # channel j * groups + g holds channel j of group g (group 0: the mixed part)
    assert torch.equal(ours[:, groups], a[:, 1]) and torch.equal(ours[:, groups + 1], r[:, 1])
    probe = torch.randn_like(ref)
    for x, y in zip(
        torch.autograd.grad((ours * probe).sum(), [a, r]), torch.autograd.grad((ref * probe).sum(), [a, r]), strict=True
    ):
        assert torch.equal(x, y)


def test_edge_weights_are_a_softmax_over_each_nodes_incoming_edges() -> None:
    assert edge_weights(torch.zeros(6)).tolist() == pytest.approx([1, 1 / 2, 1 / 2, 1 / 3, 1 / 3, 1 / 3])
    beta = torch.randn(6)
    w = edge_weights(beta)
    for node in (1, 2, 3):
        into = [e for e, (_, dst) in enumerate(EDGES) if dst == node]
        torch.testing.assert_close(w[into], torch.softmax(beta[into], 0))


@pytest.mark.parametrize(("k", "channels_last"), [(4, False), (4, True), (2, False), (1, False)])
def test_pc_nb201_cell_equals_the_papers_formulas(k: int, channels_last: bool) -> None:
    torch.manual_seed(k)
    cell = PCNB201SearchCell(8, k).double()
    x = torch.randn(4, 8, 6, 6, dtype=torch.float64)
    if channels_last:
        cell, x = cell.to(memory_format=torch.channels_last), x.to(memory_format=torch.channels_last)
    x.requires_grad_(True)
    alphas = torch.randn(6, 5, dtype=torch.float64, requires_grad=True)
    beta = torch.randn(6, dtype=torch.float64, requires_grad=True)
    ours = cell(x, torch.softmax(alphas, -1), edge_weights(beta), None, False)
    ref = nb201_reference_cell(cell, x, torch.softmax(alphas, -1), edge_weights=edge_weights(beta), k=cell.k)
    torch.testing.assert_close(ours, ref)
    if channels_last:
        assert ours.is_contiguous(memory_format=torch.channels_last)
    g_ours = assert_same_gradients(ours, ref, [alphas, beta, x, *cell.parameters()])
    assert g_ours[1].abs().sum() > 0  # beta gets a gradient


def test_pc_nb201_final_net_mask_skips_only_unchosen_ops() -> None:
    torch.manual_seed(0)
    net = PCNB201SearchNet(8, 1, 10, partial_channels=4)
    space = get_search_space("nb201")
    x = torch.randn(4, 3, 8, 8)
    for index in (0, 1234, 15624):
        weights, mask = space.final_net(NB201Genotype.from_index(index), torch.device("cpu"))
        with torch.no_grad():
            torch.testing.assert_close(net(x, weights, mask=mask), net(x, weights))


def test_pc_nb201_channels_must_divide_by_k() -> None:
    with pytest.raises(ConfigError, match="multiple of K=4"):
        PCNB201SearchNet(6, 1, 10, partial_channels=4)
    with pytest.raises(ConfigError, match="multiple of K=4"):
        NB1Shot1SearchNet(1, channels=6, num_cells=3, partial_channels=4)


def test_pc_nb1shot1_cell_equals_the_papers_formulas() -> None:
    """The authors' cell, each choice block's mixed op on the first C/K channels, then concat + shuffle."""
    torch.manual_seed(0)
    net = NB1Shot1SearchNet(1, channels=8, num_cells=3, partial_channels=4).double()
    cell = net.cells[0]
    s0 = torch.randn(4, 8, 6, 6, dtype=torch.float64, requires_grad=True)
    alphas = torch.randn(net.layout.size, dtype=torch.float64, requires_grad=True)
    ours = cell(s0, net.layout.split(grouped_softmax(alphas, net.layout.group_sizes)), None, False)

    ref = nb1shot1_reference_cell(cell, s0, grouped_softmax(alphas, net.layout.group_sizes), k=4)

    assert cell.conv3[0].conv.weight.shape == (2, 2, 3, 3)  # ops of C/K channels
    torch.testing.assert_close(ours, ref)
    assert_same_gradients(ours, ref, [alphas, s0, *cell.parameters()])


def _hand_built_state(k: int = 4) -> SearchState:
    """What the loop's build_state makes for PC-DARTS on NB201, built here without it."""
    torch.manual_seed(0)
    method = pc_darts({"k": k})
    space = get_search_space("nb201")
    config = build_config("cpu", {"model": {"channels": 8, "cells_per_stage": 1}})
    net = method.arch_step.build_net(space, config.model, 10)  # type: ignore[attr-defined]
    alphas = torch.nn.Parameter(1e-3 * torch.randn(6, 5))
    w_optim = torch.optim.SGD(net.parameters(), lr=0.025, momentum=0.9, weight_decay=5e-4)
    a_optim = torch.optim.Adam([alphas], lr=3e-2, betas=(0.5, 0.999), weight_decay=1e-3)
    state = SearchState(net, alphas, w_optim, a_optim, 5.0, method, space, epochs=2)
    for component in method.all_components:
        component.setup(state)
    return state


def _batch(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(8, 3, 8, 8, generator=g), torch.randint(0, 10, (8,), generator=g)


def test_arch_step_updates_alphas_and_beta_and_weight_step_leaves_beta_alone() -> None:
    state = _hand_built_state()
    net, beta = state.net, state.net.beta  # type: ignore[union-attr]
    assert isinstance(net, PCNB201SearchNet) and not beta.requires_grad
    assert all(p is not beta for g in state.w_optim.param_groups for p in g["params"])
    assert any(p is beta for g in state.a_optim.param_groups for p in g["params"])
    alphas0, beta0 = state.alphas.detach().clone(), beta.detach().clone()
    state.method.arch_step.step(state, _batch(0), _batch(1))
    assert not torch.equal(state.alphas, alphas0) and not torch.equal(beta, beta0)
    assert beta.grad is None and not beta.requires_grad
    beta1 = beta.detach().clone()
    weight_step(state, _batch(2))
    assert torch.equal(beta, beta1) and beta.grad is None
    columns = state.method.state_columns()
    assert columns["pc_k"] == 4
    ew = [float(v) for v in str(columns["pc_edge_weights"]).split(",")]
    assert ew[0] == 1.0 and sum(ew[1:3]) == pytest.approx(1.0) and sum(ew[3:]) == pytest.approx(1.0)
    assert ew == pytest.approx(edge_weights(beta).tolist(), abs=1e-6)


def test_derivation_is_the_argmax_of_alpha_whatever_beta() -> None:
    state = _hand_built_state()
    with torch.no_grad():
        state.alphas.copy_(torch.randn(6, 5))
        expected = state.derive()
        state.net.beta.copy_(torch.tensor([0.0, 5.0, -5.0, 3.0, -3.0, 0.0]))  # type: ignore[union-attr]
    assert state.derive() == expected
    assert expected.ops == tuple(int(i) for i in state.alphas.argmax(1))


def test_options_and_spaces() -> None:
    assert make_method("pc-darts").arch_step.k == 4  # type: ignore[attr-defined]
    with pytest.raises(ConfigError, match="k"):
        pc_darts({"k": 0})
    with pytest.raises(ConfigError, match="unknown option"):
        pc_darts({"partial": 4})
    step = PartialChannelStep(4)
    assert step.check_space("nb201") is None and step.check_space("nb1shot1-1") is None


def test_setup_refuses_a_network_without_partial_channels() -> None:
    from nasbench_harness.supernets.nb201 import NB201SearchNet

    state = _hand_built_state()
    state.net = NB201SearchNet(8, 1, 10)
    with pytest.raises(ConfigError, match="build_net hook"):
        state.method.arch_step.setup(state)


def _search(tmp_path: Path, bench: Any, name: str = "run", **overrides: Any) -> list[dict]:
    return trajectory(tiny_search(tmp_path, bench, name, method="pc-darts", **overrides))


def test_two_epochs_on_nb201_fill_the_pc_columns(tmp_path: Path, synthetic_nb201: Any) -> None:
    rows = _search(tmp_path, synthetic_nb201)
    assert [r["epoch"] for r in rows] == [1, 2]
    for row in rows:
        for column in ("pc_k", "pc_edge_weights", "valid_acc", "final_valid_acc", "genotype", "eigenvalue"):
            assert row[column] is not None, column
        assert row["pc_k"] == 4
        assert len(row["pc_edge_weights"].split(",")) == 6
    assert rows[0]["pc_edge_weights"] != rows[1]["pc_edge_weights"]  # beta is trained


def test_pc_darts_runs_on_nb1shot1(tmp_path: Path, small_nb101: Any) -> None:
    rows = _search(tmp_path, small_nb101, space="nb1shot1-1")
    assert [r["epoch"] for r in rows] == [1, 2]
    assert all(r["pc_k"] == 4 and r["genotype"] and r["valid_acc"] is not None for r in rows)
    assert "pc_edge_weights" not in rows[0]  # no edge normalisation on NB-1Shot1



def test_resumed_pc_darts_run_equals_the_uninterrupted_one(tmp_path: Path, synthetic_nb201: Any) -> None:
    """beta is checkpointed with the network, its Adam state with the arch optimiser."""
    no_eigen = {"tracking": {"eigen_every": 0}}
    whole = _search(tmp_path, synthetic_nb201, "whole", **no_eigen)

    interrupted_search(tmp_path, synthetic_nb201, "split", after_epoch=1, method="pc-darts", **no_eigen)
    resumed = _search(tmp_path, synthetic_nb201, "split", **no_eigen)
    assert without_times(whole) == without_times(resumed)
    a = torch.load(tmp_path / "whole" / "checkpoint.pt", weights_only=False)
    b = torch.load(tmp_path / "split" / "checkpoint.pt", weights_only=False)
    assert torch.equal(a["net"]["beta"], b["net"]["beta"])
    assert len(a["a_optim"]["param_groups"]) == 2
