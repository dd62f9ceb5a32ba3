"""GDAS, SNAS and DrNAS: their samplers (one-hot, straight-through, simplex, KL), schedules,
SNAS's arch step on the training batch, option errors, and two-epoch searches on NB201 and
NB-1Shot1 (space 1) with the eigenvalue tracked, including an exactly resumed GDAS run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from reference_cells import nb201_gdas_reference_cell
from scipy.special import digamma, gammaln
from tiny import interrupted_search, tiny_config, tiny_search, trajectory, without_times

from nasbench_harness.errors import ConfigError
from nasbench_harness.methods.components.samplers import (
    TemperatureSchedule,
    dirichlet_concentration,
    dirichlet_kl,
    dirichlet_sample,
    relaxed_sample,
    straight_through,
)
from nasbench_harness.methods.engine.base import SearchState
from nasbench_harness.methods.engine.loop import build_state
from nasbench_harness.registry import make_method
from nasbench_harness.supernets.nb201 import NB201SearchCell, as_mask, masked_constants
from nasbench_harness.tracking import read_alphas

COLUMNS = {"gdas": "gdas_tau", "snas": "snas_tau", "drnas": "drnas_reg"}


pytestmark = pytest.mark.usefixtures("one_thread")


def _state(method: str, space: str = "nb201", epoch: int = 1, **options: Any) -> SearchState:
    config = tiny_config(method=method, space=space, epochs=10, method_options=options)
    state, _ = build_state(config, make_method(method, options), 10, torch.device("cpu"))
    for component in state.method.all_components:
        component.setup(state)
    state.epoch = epoch
    return state


def _batch(seed: int, n: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, 16, 16, generator=g), torch.randint(0, 10, (n,), generator=g)


def _groups(weights: torch.Tensor, state: SearchState) -> list[torch.Tensor]:
    return list(weights.reshape(-1).split(list(state.space.group_sizes)))


def _is_one_hot(group: torch.Tensor) -> bool:
    return int((group == 1.0).sum()) == 1 and int((group == 0.0).sum()) == group.numel() - 1


# -- GDAS --------------------------------------------------------------------------------------


def test_gdas_samples_are_exactly_one_hot_with_the_straight_through_gradient() -> None:
    state = _state("gdas")
    for phase in ("arch", "weights"):
        weights = state.mixing(phase=phase)
        assert all(_is_one_hot(g) for g in _groups(weights, state)), phase
    # forward: one-hot; backward: the relaxed sample's gradient, drawn with the same noise
    c = torch.randn(6, 5)
    torch.manual_seed(7)
    (st_grad,) = torch.autograd.grad((state.mixing(phase="arch") * c).sum(), [state.alphas])
    torch.manual_seed(7)
    soft = relaxed_sample(state.alphas, state.space.group_sizes, tau=10.0)
    (soft_grad,) = torch.autograd.grad((soft * c).sum(), [state.alphas])
    assert torch.allclose(st_grad, soft_grad) and st_grad.abs().min() > 0
    # through the supernet the alphas get a non-zero gradient
    x, y = _batch(0)
    loss = F.cross_entropy(state.forward(x, state.mixing(phase="arch"), "arch"), y)
    (grad,) = torch.autograd.grad(loss, [state.alphas])
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0


def test_gdas_resamples_every_call_and_reproduces_from_the_global_seed() -> None:
    state = _state("gdas")
    torch.manual_seed(3)
    draws = [state.mixing(phase="weights") for _ in range(4)]
    assert any(not torch.equal(draws[0], d) for d in draws[1:])
    torch.manual_seed(3)
    assert torch.equal(state.mixing(phase="weights"), draws[0])
    assert torch.allclose(state.mixing(phase="eval"), torch.softmax(state.alphas, -1))


def test_straight_through_rows_are_one_hot_at_the_argmax() -> None:
    soft = torch.tensor([[0.1, 0.7, 0.2], [0.5, 0.2, 0.3]], requires_grad=True)
    hard = straight_through(soft)
    assert torch.equal(hard, torch.tensor([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]]))
    (grad,) = torch.autograd.grad((hard * torch.arange(3.0)).sum(), [soft])
    assert torch.equal(grad, torch.arange(3.0).expand(2, 3))


def test_gdas_on_nb1shot1_samples_the_ops_and_leaves_inputs_and_outputs_soft() -> None:
    state = _state("gdas", "nb1shot1-1")
    names = [name for name, _, _ in state.space.layout.groups]
    weights = state.mixing(phase="arch").detach()
    for name, group in zip(names, _groups(weights, state), strict=True):
        if name.startswith("ops"):
            assert _is_one_hot(group), name
        else:
            assert (group > 0).all() and not _is_one_hot(group) and float(group.sum()) == pytest.approx(1.0), name
    plain = _state("gdas", "nb1shot1-1", soft="softmax")
    softmax = plain.space.softmax(plain.alphas)
    sampled = _groups(plain.mixing(phase="weights"), plain)
    for name, got, want in zip(names, sampled, _groups(softmax, plain), strict=True):
        assert _is_one_hot(got) if name.startswith("ops") else torch.equal(got, want), name


@pytest.mark.parametrize("space", ["nb201", "nb1shot1-1"])
def test_gdas_computes_only_the_sampled_ops_in_both_steps_by_default(space: str) -> None:
    state = _state("gdas", space)
    (sampler,) = state.method.components
    for phase in ("arch", "weights"):
        weights = state.mixing(phase=phase).detach()
        options = sampler.forward_options(state, phase)
        assert _same_options(options, weights, state)
        assert sampler.forward_options(state, "eval") == {}
        state.step += 1  # a later step never reuses the options
        assert sampler.forward_options(state, phase) == {}
        state.step -= 1
    exact = _state("gdas", space, gradient="straight-through")
    exact.mixing(phase="arch")
    assert exact.method.components[0].forward_options(exact, "arch") == {}


def _same_options(options: dict[str, Any], weights: torch.Tensor, state: SearchState) -> bool:
    expected = state.space.sampled_ops_forward(weights)
    if set(options) != set(expected):
        return False
    return all(
        torch.equal(a, b) if isinstance(a, torch.Tensor) else a == b
        for a, b in ((options[k], expected[k]) for k in options)
    )


def test_gdas_reference_forward_on_nb201_is_autodls_forward_gdas() -> None:
    """Same value as every op computed (the constants are 0), and AutoDL's gradient: an unsampled
    op's weight gets the sum of its node's gradient, not <grad, op(x)>."""
    torch.manual_seed(0)
    cell = NB201SearchCell(4).double().train()
    x = torch.randn(4, 4, 6, 6, dtype=torch.float64)
    alphas = torch.randn(6, 5, dtype=torch.float64, requires_grad=True)
    probs = torch.softmax(alphas, -1)
    hard = straight_through(probs)
    mask = as_mask(hard.detach() != 0)
    ours = cell(x, hard, mask, False, 0.0, masked_constants(hard, mask))
    ref = nb201_gdas_reference_cell(cell, x, hard)
    torch.testing.assert_close(ours, ref)
    torch.testing.assert_close(ours, cell(x, hard, None, False))
    probe = torch.randn_like(ours)
    (g_ours,) = torch.autograd.grad((ours * probe).sum(), [alphas], retain_graph=True)
    (g_ref,) = torch.autograd.grad((ref * probe).sum(), [alphas], retain_graph=True)
    torch.testing.assert_close(g_ours, g_ref)
    (g_exact,) = torch.autograd.grad((cell(x, hard, None, False) * probe).sum(), [alphas])
    assert not torch.allclose(g_ours, g_exact)  # the straight-through option's gradient differs


def test_gdas_reference_forward_on_nb1shot1_leaves_unsampled_ops_without_gradient() -> None:
    """The NB-1Shot1 authors' MixedOpGDAS computes only the ops of nonzero weight."""
    state = _state("gdas", "nb1shot1-1")
    torch.manual_seed(0)
    weights = state.mixing(phase="arch")
    options = state.method.components[0].forward_options(state, "arch")
    x, _ = _batch(1)
    (grad,) = torch.autograd.grad(state.net(x, weights, **options).sum(), [weights])
    ops = state.space.layout.split(weights.detach()).ops
    op_grads = state.space.layout.split(grad).ops
    assert bool((op_grads[ops == 0] == 0).all()) and bool((op_grads[ops == 1] != 0).all())
    with torch.no_grad():
        torch.testing.assert_close(state.net(x, weights, **options), state.net(x, weights))


def test_gdas_argmax_eval_mixing_is_the_one_hot_of_the_alphas() -> None:
    state = _state("gdas", eval_mixing="argmax")
    with torch.no_grad():
        state.alphas.normal_()
    weights = state.mixing(phase="eval")
    assert torch.equal(weights.argmax(-1), state.alphas.argmax(-1))
    assert all(_is_one_hot(g) for g in _groups(weights, state))


def test_temperature_schedules() -> None:
    gdas = TemperatureSchedule(10.0, 0.1)
    assert [gdas.at(e, 50) for e in (1, 50)] == [10.0, pytest.approx(0.1)]
    assert gdas.at(25, 49) == pytest.approx(10.0 - 9.9 * 24 / 48)
    assert gdas.at(1, 1) == 10.0
    snas = TemperatureSchedule(1.0, 0.03, "exponential", 0.97)
    assert snas.at(1, 10) == 1.0 and snas.at(3, 10) == pytest.approx(0.97**2)
    assert snas.at(500, 1000) == 0.03  # floored at tau_min
    assert TemperatureSchedule(2.0, 0.5, "constant").at(7, 10) == 2.0
    state = _state("gdas", epoch=10)
    state.mixing(phase="arch")
    assert state.method.state_columns() == {"gdas_tau": pytest.approx(0.1)}
    state = _state("snas", epoch=1)
    state.mixing(phase="arch")
    assert state.method.state_columns() == {"snas_tau": 1.0}


# -- SNAS --------------------------------------------------------------------------------------


def test_snas_arch_step_descends_the_training_loss_and_shares_its_sample() -> None:
    train = _batch(0)
    x_valid, _ = _batch(1)
    results = []
    for labels in (torch.zeros(8, dtype=torch.long), torch.full((8,), 9)):  # different validation labels
        state = _state("snas")
        before = state.alphas.detach().clone()
        torch.manual_seed(11)
        state.method.arch_step.step(state, train, (x_valid, labels))
        results.append(state.alphas.detach().clone())
        assert not torch.equal(before, results[-1])
        # the weight step of the same batch trains under the arch step's sample
        torch.manual_seed(11)
        expected = relaxed_sample(before, state.space.group_sizes, tau=1.0)
        assert torch.allclose(state.mixing(phase="weights"), expected)
    assert torch.equal(results[0], results[1])
    # the same update by hand: Adam on grad_alpha L_train under the seeded sample
    state = _state("snas")
    torch.manual_seed(11)
    loss = F.cross_entropy(state.forward(train[0], state.mixing(phase="arch"), "arch"), train[1])
    (grad,) = torch.autograd.grad(loss, [state.alphas])
    state.alphas.grad = grad
    state.a_optim.step()
    assert torch.allclose(state.alphas.detach(), results[0])


# -- DrNAS -------------------------------------------------------------------------------------


@pytest.mark.parametrize("space", ["nb201", "nb1shot1-1"])
def test_drnas_samples_lie_on_the_simplex_and_eval_is_the_mean(space: str) -> None:
    state = _state("drnas", space)
    with torch.no_grad():
        state.alphas.normal_()
    for _ in range(3):
        sample = state.mixing(phase="arch")
        for group in _groups(sample.detach(), state):
            assert (group >= 0).all() and float(group.sum()) == pytest.approx(1.0, abs=1e-5)
    (grad,) = torch.autograd.grad((sample * torch.randn_like(sample)).sum(), [state.alphas])
    assert grad.abs().sum() > 0  # pathwise gradient
    beta = F.elu(state.alphas.detach()) + 1
    for got, b in zip(_groups(state.mixing(phase="eval"), state), _groups(beta, state), strict=True):
        assert torch.allclose(got, b / b.sum())
    assert state.derive() == state.space.derive(beta, True)  # ELU + 1 is increasing


def test_drnas_kl_matches_the_closed_form() -> None:
    alphas = torch.randn(6, 5, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 2
    beta = dirichlet_concentration(alphas).numpy()
    prior = np.ones_like(beta)
    by_hand = (
        gammaln(beta.sum(1))
        - gammaln(beta).sum(1)
        - gammaln(prior.sum(1))
        + gammaln(prior).sum(1)
        + ((beta - prior) * (digamma(beta) - digamma(beta.sum(1, keepdims=True)))).sum(1)
    ).sum()
    assert float(dirichlet_kl(alphas, (5,) * 6)) == pytest.approx(by_hand, rel=1e-9)
    assert float(dirichlet_kl(torch.zeros(6, 5), (5,) * 6)) == pytest.approx(0.0, abs=1e-6)
    flat = torch.randn(24, generator=torch.Generator().manual_seed(1))
    sizes = (3, 3, 3, 3, 5, 3, 4)
    expected = sum(float(dirichlet_kl(g.reshape(1, -1), (g.numel(),))) for g in flat.split(sizes))
    assert float(dirichlet_kl(flat, sizes)) == pytest.approx(expected, rel=1e-5)
    assert dirichlet_sample(flat, sizes).shape == flat.shape


def test_drnas_regulariser_replaces_the_arch_weight_decay() -> None:
    state = _state("drnas")
    assert state.a_optim.param_groups[0]["weight_decay"] == 0.0
    assert _state("drnas", replace_arch_weight_decay=False).a_optim.param_groups[0]["weight_decay"] == 1e-3
    (sampler,) = state.method.components
    with torch.no_grad():
        state.alphas.normal_()
    (grad,) = torch.autograd.grad(sampler.extra_loss(state, "arch", state.alphas), [state.alphas])
    assert torch.allclose(grad, 1e-3 * state.alphas.detach())  # = Adam weight decay 1e-3 on alpha
    assert sampler.extra_loss(state, "weights", state.alphas) is None
    kl = _state("drnas", reg="kl", reg_scale=0.5)
    with torch.no_grad():
        kl.alphas.copy_(state.alphas)
    (kl_sampler,) = kl.method.components
    with torch.no_grad():
        value = float(kl_sampler.extra_loss(kl, "arch", kl.alphas))
        assert value == pytest.approx(0.5 * float(dirichlet_kl(kl.alphas, (5,) * 6))) and value > 0


# -- options -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "options", "match"),
    [
        ("gdas", {"tau_min": 20.0}, "tau_min"),
        ("gdas", {"tau_max": 0}, "tau_max"),
        ("gdas", {"temperature": 1}, "unknown option 'temperature'"),
        ("gdas", {"eval_mixing": "mean"}, "eval_mixing"),
        ("snas", {"tau_min": 0}, "tau_min"),
        ("snas", {"schedule": "cosine"}, "schedule"),
        ("snas", {"decay": 1.5}, "decay"),
        ("drnas", {"reg": "l1"}, "reg"),
        ("drnas", {"reg_scale": -1}, "reg_scale"),
    ],
)
def test_bad_options_are_config_errors(method: str, options: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        make_method(method, options)


# -- searches ----------------------------------------------------------------------------------


def _check_rows(rows: list[dict[str, Any]], method: str) -> None:
    assert [r["epoch"] for r in rows] == [1, 2]
    for row in rows:
        for column in ("genotype", "valid_acc", "final_valid_acc", "eigenvalue", COLUMNS[method]):
            assert row[column] is not None and row[column] == row[column], column  # not None, not NaN


@pytest.mark.parametrize("method", ["snas", "drnas"])
def test_two_epochs_on_nb201(method: str, tmp_path: Path, synthetic_nb201: Any) -> None:
    rows = trajectory(tiny_search(tmp_path, synthetic_nb201, method=method))
    _check_rows(rows, method)
    if method == "snas":
        assert [r["snas_tau"] for r in rows] == [1.0, pytest.approx(0.03)]
    else:
        assert all(r["drnas_reg"] >= 0 for r in rows)


@pytest.mark.parametrize("method", ["gdas", "snas", "drnas"])
def test_two_epochs_on_nb1shot1(method: str, tmp_path: Path, small_nb101: Any) -> None:
    _check_rows(trajectory(tiny_search(tmp_path, small_nb101, method=method, space="nb1shot1-1")), method)



def test_gdas_two_epochs_and_a_resumed_run_equals_the_uninterrupted_one(tmp_path: Path, synthetic_nb201: Any) -> None:
    config = tiny_config(method="gdas")
    whole = tiny_search(tmp_path, synthetic_nb201, "whole", config=config)
    rows = trajectory(whole)
    _check_rows(rows, "gdas")
    assert [r["gdas_tau"] for r in rows] == [10.0, pytest.approx(0.1)]

    interrupted_search(tmp_path, synthetic_nb201, "split", after_epoch=1, config=config)
    resumed = tiny_search(tmp_path, synthetic_nb201, "split", config=config)
    assert resumed.resumed_from == 1 and resumed.epochs_completed == 2
    assert without_times(rows) == without_times(trajectory(resumed))
    assert read_alphas(whole.path).to_pylist() == read_alphas(resumed.path).to_pylist()
    a = torch.load(whole.path / "checkpoint.pt", weights_only=False)["net"]
    b = torch.load(resumed.path / "checkpoint.pt", weights_only=False)["net"]
    assert all(torch.equal(a[k], b[k]) for k in a)
