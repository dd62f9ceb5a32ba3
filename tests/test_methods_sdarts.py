"""SDARTS-RS and SDARTS-ADV: perturbed weights on the simplex, the attack never lowers the loss,
BN statistics untouched by the attack, the eps schedule in the trajectory, NB-1Shot1, resume."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch
from tiny import interrupted_search, tiny_config, tiny_search, trajectory, without_times

from nasbench_harness.errors import ConfigError, TrainingError
from nasbench_harness.methods.components.groups import groups_of
from nasbench_harness.methods.components.hessian import eval_mode
from nasbench_harness.methods.components.perturbation import (
    AdversarialPerturbation,
    RandomPerturbation,
    clip_to_simplex,
    pgd_perturbation,
)
from nasbench_harness.methods.components.schedules import LinearSchedule
from nasbench_harness.methods.engine.adapters import get_search_space
from nasbench_harness.methods.engine.loop import build_state
from nasbench_harness.registry import make_method
from nasbench_harness.tracking import read_trajectory

SPACES = ["nb201", "nb1shot1-1"]


pytestmark = pytest.mark.usefixtures("one_thread")


def _assert_on_simplex(weights: torch.Tensor, group_sizes: tuple[int, ...]) -> None:
    for group in groups_of(weights, group_sizes):
        assert float(group.min()) >= 0.0 and float(group.max()) <= 1.0
        assert float(group.sum()) == pytest.approx(1.0, abs=1e-6)


def _spread_weights(space: str, seed: int = 0) -> torch.Tensor:
    """Softmax weights with small entries (so that a perturbation of 0.3 must be clipped)."""
    adapter = get_search_space(space)
    generator = torch.Generator().manual_seed(seed)
    n = sum(adapter.group_sizes)
    alphas = 3.0 * torch.randn(n, generator=generator)
    return adapter.softmax(alphas.reshape(6, 5) if space == "nb201" else alphas)


# -- projection -----------------------------------------------------------------------------------
def test_clip_to_simplex_clips_renormalises_and_falls_back_to_one_hot() -> None:
    weights = torch.tensor([0.5, -0.2, 0.7, -0.1, -0.3, -0.05, 1.4, 0.2])
    out = clip_to_simplex(weights, (3, 2, 3))
    expected = torch.tensor([0.5 / 1.2, 0.0, 0.7 / 1.2, 1.0, 0.0, 0.0, 1.0 / 1.2, 0.2 / 1.2])
    torch.testing.assert_close(out, expected)  # the second group clipped to zeros: one-hot on its max
    nb201 = clip_to_simplex(torch.full((6, 5), -0.1), (5,) * 6)
    assert nb201.shape == (6, 5) and torch.equal(nb201.sum(1), torch.ones(6))


@pytest.mark.parametrize("space", SPACES)
def test_random_perturbation_stays_on_the_simplex(space: str) -> None:
    adapter = get_search_space(space)
    component = RandomPerturbation(LinearSchedule(0.03, 0.3))
    weights = _spread_weights(space)
    torch.manual_seed(0)
    for progress in (0.0, 1.0):
        state = SimpleNamespace(progress=progress, space=adapter)
        perturbed = component.weight_step_weights(state, weights)  # type: ignore[arg-type]
        assert perturbed.shape == weights.shape
        _assert_on_simplex(perturbed, adapter.group_sizes)
        assert not torch.equal(perturbed, weights)
    # eps 0.3 against entries near 0: some clip to exactly 0
    assert int((perturbed == 0).sum()) > 0


# -- adversarial ----------------------------------------------------------------------------------
def _adv_state(space: str) -> tuple[Any, AdversarialPerturbation]:
    config = tiny_config(space=space, method="sdarts-adv")
    method = make_method("sdarts-adv")
    state, _ = build_state(config, method, 10, torch.device("cpu"))
    state.net.train()
    state.epoch, state.step = 2, 0  # progress 1: eps 0.3
    generator = torch.Generator().manual_seed(1)
    state.batch = (torch.randn(8, 3, 16, 16, generator=generator), torch.randint(0, 10, (8,), generator=generator))
    return state, method.components[0]  # type: ignore[return-value]


@pytest.mark.parametrize("space", SPACES)
def test_adversarial_perturbation_raises_the_loss_on_the_simplex_without_moving_bn(space: str) -> None:
    state, component = _adv_state(space)
    weights = state.mixing(phase="weights").detach()
    buffers = {k: v.clone() for k, v in state.net.named_buffers()}
    torch.manual_seed(0)
    perturbed = component.weight_step_weights(state, weights)
    for name, buf in state.net.named_buffers():  # the attack's forward passes leave BN statistics alone
        assert torch.equal(buf, buffers[name]), name
    _assert_on_simplex(perturbed, state.space.group_sizes)
    with eval_mode(state.net), torch.no_grad():  # the attack's own view of the loss
        before = float(state.loss(state.batch, weights, "weights")[0])
        after = float(state.loss(state.batch, perturbed, "weights")[0])
    assert after > before
    assert component._kept == component._seen == 1


@pytest.mark.parametrize("space", SPACES)
def test_the_attack_runs_in_eval_mode_and_the_weight_step_in_training_mode(space: str) -> None:
    """SDARTS's Linf_PGD_alpha switches to model.eval() for the attack and back to train() after."""
    state, component = _adv_state(space)
    modes: list[bool] = []
    loss = state.loss

    def recording(batch: Any, weights: torch.Tensor, phase: str) -> Any:
        modes.append(state.net.training)
        return loss(batch, weights, phase)

    state.loss = recording  # type: ignore[method-assign]
    component.weight_step_weights(state, state.mixing(phase="weights").detach())
    assert len(modes) == 9 and not any(modes)  # before, 7 ascent steps, after
    assert state.net.training


def test_pgd_keeps_the_perturbation_when_the_loss_is_unchanged() -> None:
    """The reference restores the weights only if the loss fell (loss_before > loss_after)."""
    sizes = (5,) * 6
    base = torch.softmax(torch.randn(6, 5, generator=torch.Generator().manual_seed(0)), -1)
    torch.manual_seed(0)
    flat = pgd_perturbation(lambda w: (w * 0.0).sum() + 1.0, base, sizes, eps=0.2, steps=7)
    assert bool(flat.kept) and float(flat.loss_after) == float(flat.loss_before)
    assert not torch.equal(flat.weights, base)  # the random start, which no ascent step moved


def test_pgd_never_lowers_the_loss_and_returns_zero_perturbation_when_it_cannot_raise_it() -> None:
    sizes = (5,) * 6
    base = torch.softmax(torch.randn(6, 5, generator=torch.Generator().manual_seed(0)), -1)
    c = torch.randn(6, 5, generator=torch.Generator().manual_seed(1))
    torch.manual_seed(0)
    up = pgd_perturbation(lambda w: (c * w).sum(), base, sizes, eps=0.2, steps=7)
    assert bool(up.kept) and float(up.loss_after) > float(up.loss_before)
    assert float((c * up.weights).sum()) == pytest.approx(float(up.loss_after))
    _assert_on_simplex(up.weights, sizes)

    # a loss largest at the unperturbed weights whose gradient points away from them: the final
    # iterate lowers the loss, so the step trains unperturbed
    def misleading(w: torch.Tensor) -> torch.Tensor:
        uphill = (c * w).sum()
        return -((w - base) ** 2).sum() + uphill - uphill.detach()

    down = pgd_perturbation(misleading, base, sizes, eps=0.2, steps=7)
    assert not bool(down.kept) and float(down.loss_after) < float(down.loss_before) == 0.0
    assert torch.equal(down.weights, base)


def test_adversarial_perturbation_needs_the_batch() -> None:
    state, component = _adv_state("nb201")
    state.batch = None
    with pytest.raises(TrainingError, match=r"state\.batch"):
        component.weight_step_weights(state, state.mixing(phase="weights").detach())


# -- options --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        ("sdarts-rs", {"eps_min": 0.5, "eps_max": 0.3}, "must not exceed"),
        ("sdarts-rs", {"eps_max": 1.5}, "eps_max"),
        ("sdarts-rs", {"steps": 7}, "unknown option 'steps'"),
        ("sdarts-adv", {"steps": 0}, "steps"),
        ("sdarts-adv", {"eps": 0.1}, "unknown option 'eps'"),
    ],
)
def test_bad_options_are_config_errors(name: str, options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        make_method(name, options)


# -- searches -------------------------------------------------------------------------------------
def _run(tmp_path: Path, bench: Any, name: str = "run", **overrides: Any) -> list[dict[str, Any]]:
    return trajectory(tiny_search(tmp_path, bench, name, **overrides))


@pytest.mark.parametrize("method", ["sdarts-rs", "sdarts-adv"])
def test_two_epochs_on_nb201_fill_the_eps_column(method: str, tmp_path: Path, synthetic_nb201: Any) -> None:
    rows = _run(tmp_path, synthetic_nb201, method=method)
    assert [r["sdarts_eps"] for r in rows] == [0.03, 0.3]
    for row in rows:
        assert row["genotype"] and row["eigenvalue"] is not None
        if method == "sdarts-adv":
            assert 0.0 <= row["sdarts_adv_kept"] <= 1.0


@pytest.mark.parametrize("method", ["sdarts-rs", "sdarts-adv"])
def test_two_epochs_on_nb1shot1(method: str, tmp_path: Path, small_nb101: Any) -> None:
    rows = _run(tmp_path, small_nb101, method=method, space="nb1shot1-1")
    assert [r["sdarts_eps"] for r in rows] == [0.03, 0.3]
    assert all(r["module_hash"] for r in rows)



def test_resumed_sdarts_adv_run_equals_the_uninterrupted_run(tmp_path: Path, synthetic_nb201: Any) -> None:
    """Random start and PGD draw from torch's generator, reseeded per epoch by the loop."""
    config = tiny_config(method="sdarts-adv")
    whole = _run(tmp_path, synthetic_nb201, "whole", config=config)

    interrupted_search(tmp_path, synthetic_nb201, "split", after_epoch=1, config=config)
    assert len(read_trajectory(tmp_path / "split").to_pylist()) == 1
    resumed = _run(tmp_path, synthetic_nb201, "split", config=config)
    assert without_times(whole) == without_times(resumed)
