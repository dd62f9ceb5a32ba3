"""SP-DARTS and the single-stage protocol: schedules, mixing, the freeze, the entropy penalty,
two-epoch searches on NB201 (the synthetic table) and NB-1Shot1 space 1 (a small NB101 table), resume."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from tiny import interrupted_search, tiny_config, tiny_search, without_times

from nasbench_harness.errors import ConfigError
from nasbench_harness.methods.components.regularizers import group_entropy
from nasbench_harness.methods.engine.loop import build_state
from nasbench_harness.methods.zoo.sp_darts import SPDartsOptions, sp_schedule
from nasbench_harness.registry import make_method
from nasbench_harness.spaces.nb201 import NB201Genotype
from nasbench_harness.tabular.nb101 import NB101Benchmark
from nasbench_harness.tracking import read_alphas, read_trajectory

STEP = 0.9 / 49
SP_COLUMNS = ("sp_tau", "sp_dense_tau", "sp_sparse_prob", "sp_sparse_fraction")
SS_COLUMNS = ("single_stage_frozen", "single_stage_tau", "single_stage_entropy")


pytestmark = pytest.mark.usefixtures("one_thread")


def _state(method: str, options: dict[str, Any], space: str = "nb201", epochs: int = 2) -> Any:
    config = tiny_config(space=space, epochs=epochs, method=method, method_options=options)
    m = make_method(method, options)
    state, _ = build_state(config, m, 10, torch.device("cpu"))
    for component in m.all_components:
        component.setup(state)
    return state, m


# -- SP-DARTS ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("epoch", "epochs", "expected"),
    [
        (1, 50, (1, 0.0013, 0.013, 0.0)),  # warm-up: dense only, at 10 tau
        (2, 50, (2, 0.0013, 0.0143, STEP)),
        (45, 50, (45, 0.0013, 0.0143, 44 * STEP)),
        (46, 50, (46, 0.0006, 0.0066, 44 * STEP)),  # late: tau_late, C_t kept
        (50, 50, (50, 0.0006, 0.0066, 44 * STEP)),
        (2, 2, (26, 0.0013, 0.0143, 25 * STEP)),  # the 50-epoch schedule stretched onto 2 epochs
        (10, 10, (46, 0.0006, 0.0066, 44 * STEP)),
        (2, 10, (6, 0.0013, 0.0143, 5 * STEP)),
        (2, 100, (1, 0.0013, 0.013, 0.0)),
    ],
)
def test_sp_schedule_by_epoch(epoch: int, epochs: int, expected: tuple[float, ...]) -> None:
    got = sp_schedule(SPDartsOptions(), epoch, epochs)
    assert got.reference_epoch == expected[0]
    assert got[1:] == pytest.approx(expected[1:], rel=1e-12, abs=1e-15)


def test_sp_schedule_without_reference_and_clipping() -> None:
    literal = SPDartsOptions(reference_epochs=None, late_after=3)
    assert [sp_schedule(literal, e, 2).reference_epoch for e in (1, 2, 3, 4)] == [1, 2, 3, 4]
    assert sp_schedule(literal, 4, 2).sparse_tau == 0.0006
    steep = SPDartsOptions(c_start=0.5, c_step=0.2)
    assert sp_schedule(steep, 10, 50).sparse_prob == 1.0


def test_sp_mixing_draws_one_temperature_per_step_and_evaluates_at_tau_eval() -> None:
    state, method = _state("sp-darts", {})
    component = method.components[0]
    with torch.no_grad():
        state.alphas.copy_(1e-3 * torch.randn(6, 5, generator=torch.Generator().manual_seed(1)))
    state.epoch = 2  # reference epoch 26: C_t = 25 * 0.9 / 49
    schedule = sp_schedule(SPDartsOptions(), 2, 2)

    def taus() -> list[float]:
        torch.manual_seed(5)
        out = []
        for step in range(300):
            state.step = step
            arch, weights = state.mixing(phase="arch"), state.mixing(phase="weights")
            tau = component.step_tau(state)
            assert tau in (schedule.sparse_tau, schedule.dense_tau)
            assert torch.equal(arch, weights)
            assert torch.allclose(arch, torch.softmax(state.alphas / tau, dim=-1))
            out.append(tau)
        return out

    first = taus()
    assert first == taus()  # the same global seed draws the same temperatures
    share = sum(t == schedule.sparse_tau for t in first) / len(first)
    assert abs(share - schedule.sparse_prob) < 0.12
    assert torch.allclose(state.mixing(phase="eval"), torch.softmax(state.alphas / 1e-4, dim=-1))


def test_sp_darts_two_epochs_on_nb201(tmp_path: Path, synthetic_nb201: Any) -> None:
    result = tiny_search(tmp_path, synthetic_nb201, method="sp-darts")
    rows = read_trajectory(result.path).to_pylist()
    assert len(rows) == 2
    for row in rows:
        for column in (*SP_COLUMNS, "valid_acc", "final_valid_acc", "eigenvalue"):
            assert row[column] is not None and math.isfinite(row[column]), column
        expected = sp_schedule(SPDartsOptions(), row["epoch"], 2)
        assert (row["sp_tau"], row["sp_dense_tau"], row["sp_sparse_prob"]) == pytest.approx(expected[1:])
    assert rows[0]["sp_sparse_fraction"] == 0.0  # the warm-up epoch never uses the sparse tau
    alphas = read_alphas(result.path).to_pylist()
    assert all(math.isfinite(a["alpha"]) and math.isfinite(a["weight"]) for a in alphas)


def test_sp_darts_two_epochs_on_nb1shot1(tmp_path: Path, small_nb101: NB101Benchmark) -> None:
    result = tiny_search(tmp_path, small_nb101, space="nb1shot1-1", method="sp-darts")
    rows = read_trajectory(result.path).to_pylist()
    assert len(rows) == 2
    assert all(row[c] is not None for row in rows for c in SP_COLUMNS)
    assert all(math.isfinite(row["valid_loss"]) for row in rows)


@pytest.mark.parametrize(
    ("method", "options", "fragment"),
    [
        ("sp-darts", {"tau": 0}, "tau"),
        ("sp-darts", {"late_after": 0, "warmup_epochs": 2}, "late_after"),
        ("sp-darts", {"late_after": 60}, "reference_epochs"),
        ("sp-darts", {"c_start": 1.5}, "c_start"),
        ("sp-darts", {"temperature": 1}, "unknown option"),
        ("single-stage", {"tau_min": 5, "tau_max": 1}, "tau_min"),
        ("single-stage", {"freeze_epoch": 0}, "freeze_epoch"),
        ("single-stage", {"entropy_weight": -1}, "entropy_weight"),
    ],
)
def test_bad_options_are_config_errors(method: str, options: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        make_method(method, options)


# -- single-stage -----------------------------------------------------------------------------


def test_entropy_penalty_matches_a_hand_computation() -> None:
    state, method = _state("single-stage", {"entropy_weight": 0.25})
    values = np.linspace(-1.0, 2.0, 30).reshape(6, 5)
    with torch.no_grad():
        state.alphas.copy_(torch.tensor(values, dtype=torch.float32))
    p = np.exp(values) / np.exp(values).sum(axis=1, keepdims=True)
    expected = 0.25 * float(-(p * np.log(p)).sum())
    got = method.arch_step.extra_loss(state, "arch", state.mixing(phase="arch"))
    assert float(got.detach()) == pytest.approx(expected, rel=1e-5)
    assert method.arch_step.extra_loss(state, "weights", state.mixing(phase="weights")) is None
    flat = torch.tensor([0.0, 1.0, 2.0, 0.5, 0.5])  # groups of 3 and 2
    q = np.exp([0.0, 1.0, 2.0]) / np.exp([0.0, 1.0, 2.0]).sum()
    assert float(group_entropy(flat, (3, 2))) == pytest.approx(float(-(q * np.log(q)).sum() + np.log(2)), rel=1e-6)


def test_single_stage_trains_on_hard_samples_with_straight_through_gradients() -> None:
    state, method = _state("single-stage", {})
    step = method.arch_step
    state.epoch, state.step = 1, 0
    weights = state.mixing(phase="weights")
    assert set(weights.unique().tolist()) <= {0.0, 1.0} and torch.equal(weights.sum(1), torch.ones(6))
    mask = step.forward_options(state, "weights")["mask"]
    assert mask == tuple(tuple(bool(v) for v in row) for row in weights.tolist())
    state.step = 1
    assert step.forward_options(state, "weights") == {}  # a mask only for the step it was drawn in
    arch = state.mixing(phase="arch")
    assert torch.allclose(arch, arch.detach().round(), atol=1e-6)  # forward: a one-hot sample
    (grad,) = torch.autograd.grad((arch * torch.arange(30.0).reshape(6, 5)).sum(), [state.alphas])
    assert grad.abs().sum() > 0  # backward: the soft sample's gradient
    assert step.mixing(state, state.alphas, "eval") is None


def test_after_the_freeze_the_supernet_evaluation_is_the_final_net() -> None:
    state, method = _state("single-stage", {"freeze_epoch": 1})
    state.epoch = 1
    method.arch_step.end_of_epoch(state, {})
    genotype = state.derive()
    assert isinstance(genotype, NB201Genotype) and method.arch_step.frozen
    weights, mask = state.space.final_net(genotype, torch.device("cpu"))
    for phase in ("arch", "weights", "eval"):
        assert torch.equal(state.mixing(phase=phase).detach(), weights)
    assert method.arch_step.forward_options(state, "eval") == {"mask": mask}
    x = torch.randn(8, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    state.net.eval()
    with torch.no_grad():
        assert torch.allclose(state.net(x, weights), state.net(x, weights, mask=mask), atol=1e-6)


def test_single_stage_two_epochs_frozen_after_the_first(tmp_path: Path, synthetic_nb201: Any) -> None:
    options = {"freeze_epoch": 1, "entropy_weight": 0.1}
    result = tiny_search(tmp_path, synthetic_nb201, method="single-stage", method_options=options)
    rows = read_trajectory(result.path).to_pylist()
    assert all(row[c] is not None for row in rows for c in SS_COLUMNS)
    assert [r["single_stage_frozen"] for r in rows] == [True, True]
    assert rows[0]["genotype"] == rows[1]["genotype"]
    assert rows[1]["gap"] == 0.0 and rows[1]["valid_acc"] == rows[1]["final_valid_acc"]  # frozen: one net
    assert rows[1]["eigenvalue"] == 0.0  # the loss no longer depends on the alphas
    alphas = read_alphas(result.path).to_pylist()
    first, second = ([a["alpha"] for a in alphas if a["epoch"] == e] for e in (1, 2))
    assert len(first) == 30 and first == second



def test_single_stage_freezes_at_the_default_epoch_and_resumes_exactly(tmp_path: Path, synthetic_nb201: Any) -> None:
    config = tiny_config(epochs=3, method="single-stage", tracking={"eigen_every": 0})
    whole = tiny_search(tmp_path, synthetic_nb201, "whole", config=config)

    interrupted_search(tmp_path, synthetic_nb201, "split", after_epoch=2, config=config)
    resumed = tiny_search(tmp_path, synthetic_nb201, "split", config=config)
    assert resumed.resumed_from == 2
    rows = read_trajectory(whole.path).to_pylist()
    assert without_times(rows) == without_times(read_trajectory(resumed.path).to_pylist())
    assert [r["single_stage_frozen"] for r in rows] == [False, True, True]  # ceil(3 / 2) = 2
    assert rows[1]["genotype"] == rows[2]["genotype"]
    assert [r["single_stage_tau"] for r in rows] == pytest.approx([10.0, 0.1, 0.1])
    alphas = read_alphas(whole.path).to_pylist()
    assert alphas == read_alphas(resumed.path).to_pylist()
    by_epoch = [[a["alpha"] for a in alphas if a["epoch"] == e] for e in (1, 2, 3)]
    assert by_epoch[1] == by_epoch[2] and by_epoch[0] != by_epoch[1]
    weights = [a["weight"] for a in alphas if a["epoch"] == 3]
    assert sorted(set(weights)) == [0.0, 1.0] and sum(weights) == 6  # eval mixing: the frozen one-hot
    a = torch.load(whole.path / "checkpoint.pt", weights_only=False)
    b = torch.load(resumed.path / "checkpoint.pt", weights_only=False)
    for key in a["net"]:
        assert torch.equal(a["net"][key], b["net"][key]), key
    assert torch.equal(a["components"][0]["frozen_weights"], b["components"][0]["frozen_weights"])


def test_single_stage_on_nb1shot1_and_a_freeze_after_the_last_epoch(
    tmp_path: Path, small_nb101: NB101Benchmark
) -> None:
    result = tiny_search(
        tmp_path, small_nb101, space="nb1shot1-1", method="single-stage", method_options={"entropy_weight": 0.1}
    )
    rows = read_trajectory(result.path).to_pylist()
    assert [r["single_stage_frozen"] for r in rows] == [True, True]
    assert rows[0]["genotype"] == rows[1]["genotype"]
    with pytest.raises(ConfigError, match="freeze_epoch=3"):
        tiny_search(tmp_path, small_nb101, "late", space="nb1shot1-1", method="single-stage",
                    method_options={"freeze_epoch": 3})  # fmt: skip
