"""DARTS-, beta-DARTS and FairDARTS: regulariser values against hand-computed numbers, the
auxiliary skip's mixing, two-epoch searches with their state columns, NB-1Shot1, bad options."""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch
from tiny import alphas as alpha_rows
from tiny import tiny_search, trajectory

from nasbench_harness.config import build_config
from nasbench_harness.errors import ConfigError
from nasbench_harness.methods.components.mixing import SKIP, AuxiliarySkip
from nasbench_harness.methods.components.regularizers import (
    BetaDecay,
    LinearSchedule,
    ZeroOneLoss,
    beta_decay_loss,
    zero_one_loss,
)
from nasbench_harness.methods.engine.adapters import get_search_space
from nasbench_harness.methods.engine.run import run_search
from nasbench_harness.registry import make_method

pytestmark = pytest.mark.usefixtures("one_thread")


# -- regularisers ---------------------------------------------------------------------------------
def test_beta_decay_loss_by_hand_on_nb201() -> None:
    alphas = torch.zeros(6, 5)
    alphas[0] = torch.log(torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0]))  # sum of exp = 15
    alphas[1] = 2.0  # logsumexp = 2 + log 5
    expected = (math.log(15) + (2 + math.log(5)) + 4 * math.log(5)) / 6
    assert float(beta_decay_loss(alphas, (5,) * 6)) == pytest.approx(expected, rel=1e-6)
    # its gradient is softmax(alpha_e) / (number of edges): the largest alphas decay most
    a = alphas.clone().requires_grad_(True)
    beta_decay_loss(a, (5,) * 6).backward()
    torch.testing.assert_close(a.grad, torch.softmax(alphas, -1) / 6)


def test_beta_decay_loss_by_hand_on_nb1shot1_groups() -> None:
    sizes = get_search_space("nb1shot1-1").group_sizes
    assert sizes == (3, 3, 3, 3, 5, 3, 4)
    alphas = torch.zeros(sum(sizes))
    alphas[12:17] = torch.log(torch.tensor([1.0, 1.0, 1.0, 1.0, 6.0]))  # the output group: sum of exp = 10
    expected = (5 * math.log(3) + math.log(10) + math.log(4)) / 7  # every group counts once
    assert float(beta_decay_loss(alphas, sizes)) == pytest.approx(expected, rel=1e-6)


def test_zero_one_loss_by_hand() -> None:
    alphas = torch.tensor([0.0, math.log(3.0), -math.log(3.0), 100.0])  # sigmoids 0.5, 0.75, 0.25, 1
    expected = -(0.0 + 0.0625 + 0.0625 + 0.25) / 4
    assert float(zero_one_loss(alphas)) == pytest.approx(expected, rel=1e-6)


def test_regularisers_add_their_weighted_term_to_the_arch_loss_only() -> None:
    alphas = torch.zeros(6, 5)
    alphas[0, 0] = math.log(3.0)
    state = SimpleNamespace(alphas=alphas, progress=0.5, space=get_search_space("nb201"))
    beta = BetaDecay(LinearSchedule(0.0, 50.0))
    value = beta.extra_loss(state, "arch", alphas)  # type: ignore[arg-type]
    assert value is not None
    assert float(value) == pytest.approx(25.0 * (math.log(7) + 5 * math.log(5)) / 6, rel=1e-6)
    assert beta.extra_loss(state, "weights", alphas) is None  # type: ignore[arg-type]
    zero_one = ZeroOneLoss(LinearSchedule.constant(10.0))
    value = zero_one.extra_loss(state, "arch", alphas)  # type: ignore[arg-type]
    assert value is not None and float(value) == pytest.approx(10.0 * -(0.0625 / 30), rel=1e-6)
    assert zero_one.extra_loss(state, "weights", alphas) is None  # type: ignore[arg-type]
    assert LinearSchedule(0.03, 0.3).at(0.0) == 0.03 and LinearSchedule(0.03, 0.3).at(1.0) == 0.3


# -- DARTS- ---------------------------------------------------------------------------------------
def test_auxiliary_skip_adds_beta_outside_the_softmax() -> None:
    space = get_search_space("nb201")
    alphas = torch.randn(6, 5, generator=torch.Generator().manual_seed(0)).requires_grad_(True)
    component = AuxiliarySkip(1.0)
    for progress, beta in ((0.0, 1.0), (0.25, 0.75), (1.0, 0.0)):
        state = SimpleNamespace(progress=progress, space=space)
        weights = component.mixing(state, alphas, "weights")  # type: ignore[arg-type]
        assert weights is not None
        expected = torch.softmax(alphas, -1).detach().clone()
        expected[:, SKIP] += beta
        torch.testing.assert_close(weights.detach(), expected)
        # beta is a constant: the alphas' gradient is the softmax's
        c = torch.randn(6, 5, generator=torch.Generator().manual_seed(1))
        (grad,) = torch.autograd.grad((c * weights).sum(), [alphas])
        (plain,) = torch.autograd.grad((c * torch.softmax(alphas, -1)).sum(), [alphas])
        torch.testing.assert_close(grad, plain)


def test_darts_minus_refuses_nb1shot1(tmp_path: Path) -> None:
    method = make_method("darts-minus")
    assert method.components[0].check_space("nb201") is None
    expected = r"choices have none \(only conv3x3-bn-relu, conv1x1-bn-relu, maxpool3x3\); use --space nb201"
    with pytest.raises(ConfigError, match=expected):
        method.check_space("nb1shot1-1")
    config = build_config("cpu", {"method": "darts-minus", "space": "nb1shot1-2", "epochs": 2})
    with pytest.raises(ConfigError, match=r"darts-minus.*nb1shot1-2"):
        run_search(config, tmp_path / "run", device="cpu")


# -- options --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        ("darts-minus", {"beta0": -1.0}, "beta0"),
        ("darts-minus", {"beta": 1.0}, "unknown option 'beta'"),
        ("beta-darts", {"lambda_min": 10.0, "lambda_max": 1.0}, "must not exceed"),
        ("beta-darts", {"lambda_max": "a lot"}, "lambda_max"),
        ("fair-darts", {"w01": -1.0}, "w01"),
        ("fair-darts", {"weight": 10}, "unknown option 'weight'"),
    ],
)
def test_bad_options_are_config_errors(name: str, options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        make_method(name, options)


# -- searches -------------------------------------------------------------------------------------
def _search(tmp_path: Path, bench: Any, method: str, space: str = "nb201") -> tuple[list[dict[str, Any]], Any]:
    result = tiny_search(tmp_path, bench, method=method, space=space)
    alphas = alpha_rows(result)
    by_epoch = {e: torch.tensor([r["alpha"] for r in alphas if r["epoch"] == e]) for e in {r["epoch"] for r in alphas}}
    return trajectory(result), (alphas, by_epoch)


def _bench(request: pytest.FixtureRequest, space: str) -> Any:
    """The space's table: the synthetic NB201 one, or the small NB101 one (only the one needed is built)."""
    return request.getfixturevalue("synthetic_nb201" if space == "nb201" else "small_nb101")


def test_darts_minus_two_epochs(tmp_path: Path, synthetic_nb201: Any) -> None:
    rows, (alphas, _) = _search(tmp_path, synthetic_nb201, "darts-minus")
    assert [r["aux_skip_beta"] for r in rows] == [1.0, 0.0]
    # the recorded (eval) weights are the supernet as trained: each edge sums to 1 + beta
    for epoch, beta in ((1, 1.0), (2, 0.0)):
        total = sum(r["weight"] for r in alphas if r["epoch"] == epoch and r["edge"] == "0->1")
        assert total == pytest.approx(1.0 + beta, rel=1e-6)
    assert all(r["genotype"] and r["eigenvalue"] is not None for r in rows)


@pytest.mark.parametrize("space", ["nb201", "nb1shot1-1"])
def test_beta_darts_two_epochs(space: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    rows, (_, by_epoch) = _search(tmp_path, _bench(request, space), "beta-darts", space)
    assert [r["reg_beta_decay_weight"] for r in rows] == [0.0, 50.0]
    assert rows[0]["reg_beta_decay"] is None  # weight 0: not applied, not computed
    # the penalty at the epoch's last arch step: one Adam step (lr 3e-4) before the epoch's alphas
    after = float(beta_decay_loss(by_epoch[2], get_search_space(space).group_sizes))
    assert rows[1]["reg_beta_decay"] == pytest.approx(after, abs=1e-3)


@pytest.mark.parametrize("space", ["nb201", "nb1shot1-1"])
def test_fair_darts_two_epochs(space: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    rows, (alphas, by_epoch) = _search(tmp_path, _bench(request, space), "fair-darts", space)
    for row in rows:  # the penalty at the epoch's last arch step, one Adam step before its alphas
        assert row["reg_zero_one"] == pytest.approx(float(zero_one_loss(by_epoch[row["epoch"]])), abs=1e-4)
        assert -0.25 <= row["reg_zero_one"] <= 0.0 and row["reg_zero_one_weight"] == 10.0
    assert rows[0]["reg_zero_one"] != rows[1]["reg_zero_one"]
    for r in alphas:  # independent sigmoids, not a softmax
        assert r["weight"] == pytest.approx(1.0 / (1.0 + math.exp(-r["alpha"])), rel=1e-6)
    if space == "nb201":
        assert all(r["n_none"] == 0 for r in rows)  # include_none=False by default
