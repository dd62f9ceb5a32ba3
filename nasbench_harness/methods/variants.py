"""DARTS variants that change the mixing or add a regulariser: DARTS-, beta-DARTS, FairDARTS.

Each is DARTS's first-order arch step plus components:

- DARTS- : :class:`AuxiliarySkip` (mixing weights + a decaying constant on ``skip_connect``);
- beta-DARTS: :class:`~nasbench_harness.methods.components.regularizers.BetaDecay`;
- FairDARTS: :class:`SigmoidMixing` + :class:`~nasbench_harness.methods.components.regularizers.ZeroOneLoss`.
"""

from __future__ import annotations

from typing import Any

import torch
from pydantic import Field

from nasbench_harness.methods.base import Component, Method, Phase, SearchState
from nasbench_harness.methods.components.regularizers import BetaDecay, LinearSchedule, ZeroOneLoss
from nasbench_harness.methods.darts import FirstOrderStep
from nasbench_harness.methods.options import Options, parse_options
from nasbench_harness.spaces.nb201 import OPS as NB201_OPS

SKIP = NB201_OPS.index("skip_connect")


class AuxiliarySkip(Component):
    """DARTS-'s auxiliary skip connection, ``beta = beta0 * (1 - progress)``, on every NB201 edge.

    Each edge computes ``sum_o w_o * o(x) + beta * x``; since NB201's ``skip_connect`` is the
    identity, that equals the supernet under mixing weights ``w + beta * e_skip`` (beta added
    to the ``skip_connect`` column, outside the softmax). beta is a constant, so the alphas'
    gradients are those of the auxiliary-skip network. Applied in every phase ("arch",
    "weights", and "eval": the supernet as trained). Column ``aux_skip_beta``: beta of the epoch.
    """

    name = "auxiliary-skip"

    def __init__(self, beta0: float) -> None:
        self.schedule = LinearSchedule(beta0, 0.0)
        self._beta: float | None = None

    def check_space(self, space: str) -> str | None:
        if space != "nb201":
            return (
                "DARTS- adds an auxiliary skip connection through NB201's skip_connect op, and NB-1Shot1 "
                "cells have no skip-connection op (only conv3x3, conv1x1, maxpool3x3); use --space nb201"
            )
        return None

    def mixing(self, state: SearchState, alphas: torch.Tensor, phase: Phase) -> torch.Tensor | None:
        weights = state.space.softmax(alphas)
        beta = self.schedule.at(state.progress)
        if beta == 0.0:
            return weights
        aux = torch.zeros(weights.shape[-1], dtype=weights.dtype, device=weights.device)
        aux[SKIP] = beta
        return weights + aux

    def end_of_epoch(self, state: SearchState, row: dict[str, Any]) -> None:
        self._beta = self.schedule.at(state.progress)
        return None

    def state_columns(self) -> dict[str, float | int | str | None]:
        return {"aux_skip_beta": self._beta}


class SigmoidMixing(Component):
    """FairDARTS's mixing: ``sigmoid(alpha)`` for every op independently (no softmax), in all phases."""

    name = "sigmoid-mixing"

    def mixing(self, state: SearchState, alphas: torch.Tensor, phase: Phase) -> torch.Tensor | None:
        return torch.sigmoid(alphas)


class DartsMinusOptions(Options):
    """Options of DARTS-."""

    beta0: float = Field(1.0, ge=0.0, description="auxiliary skip weight in the first epoch (decays to 0)")


class BetaDartsOptions(Options):
    """Options of beta-DARTS."""

    ordered = (("lambda_min", "lambda_max"),)

    lambda_min: float = Field(0.0, ge=0.0, description="beta-decay weight in the first epoch")
    lambda_max: float = Field(50.0, ge=0.0, description="beta-decay weight in the last epoch")


class FairDartsOptions(Options):
    """Options of FairDARTS."""

    w01: float = Field(10.0, ge=0.0, description="weight of the zero-one loss in the arch loss")
    include_none: bool = Field(False, description="whether NB201's `none` may win an edge")


def darts_minus(options: dict[str, Any]) -> Method:
    """DARTS-: DARTS (first order) + an auxiliary skip connection whose weight decays to 0.

    Chu, Wang, Zhang, Lu, Wei and Yan, 2021, "DARTS-: Robustly Stepping out of Performance
    Collapse Without Indicators" (ICLR). Every edge outputs ``sum_o softmax(alpha)_o o(x) +
    beta x``; beta decays linearly from ``beta0`` (default 1.0, the paper's default linear
    decay from 1 to 0) in the first epoch to 0 in the last:
    ``beta = beta0 * (1 - (epoch - 1) / (epochs - 1))``. The skip takes over the residual role
    that otherwise makes DARTS favour ``skip_connect``, so the alphas reflect the ops' merit.
    On NB201 this is the mixing ``softmax(alpha) + beta * e_skip_connect`` (see
    :class:`AuxiliarySkip`); NB-1Shot1 has no skip op, so the method refuses it. Derivation:
    the space's argmax of alpha.

    Trajectory column: ``aux_skip_beta``, beta of the epoch.
    """
    opts = parse_options(DartsMinusOptions, options, "darts-minus")
    return Method(name="darts-minus", arch_step=FirstOrderStep(), components=[AuxiliarySkip(opts.beta0)])


def beta_darts(options: dict[str, Any]) -> Method:
    """beta-DARTS: DARTS (first order) + the beta-decay regulariser of the alphas.

    Ye, Li, Li, Chen, Fan and Ouyang, 2022, "beta-DARTS: Beta-Decay Regularization for
    Differentiable Architecture Search" (CVPR). Arch loss ``L_val + lambda * L_beta`` with
    ``L_beta = mean_e log(sum_o exp(alpha_{e,o}))`` over NB201's edges (over the softmax groups
    on NB-1Shot1); its gradient ``softmax(alpha_e)`` decays large alphas most, keeping the
    activated architecture weights' values and variance small. lambda rises linearly from
    ``lambda_min`` (first epoch) to ``lambda_max`` (last epoch), defaults 0 -> 50. Source: the
    official code (``Sunshine-Ye/Beta-DARTS``, ``optimizers/darts/architect.py``:
    ``mlc_loss`` = mean of ``logsumexp(alpha, -1)``, weight ``0 + 50 * epoch / 100`` for a
    0-based epoch, i.e. 0 -> ~50 over a 100-epoch schedule; on a 50-epoch NB201 search that
    code reaches 24.5, set ``lambda_max=25`` to match it there).

    Trajectory columns: ``beta_weight`` (lambda of the epoch) and ``beta_reg`` (``L_beta`` of
    the alphas after the epoch, unweighted).
    """
    opts = parse_options(BetaDartsOptions, options, "beta-darts")
    regulariser = BetaDecay(LinearSchedule(opts.lambda_min, opts.lambda_max))
    return Method(name="beta-darts", arch_step=FirstOrderStep(), components=[regulariser])


def fair_darts(options: dict[str, Any]) -> Method:
    """FairDARTS: DARTS (first order) with independent sigmoids and the zero-one loss.

    Chu, Zhou, Zhang and Li, 2020, "Fair DARTS: Eliminating Unfair Advantages in Differentiable
    Architecture Search" (ECCV). Mixing weights ``sigmoid(alpha)`` for every op independently
    (no softmax: ops do not compete, so skip connections' unfair advantage goes), in all
    phases. Arch loss ``L_val + w01 * L01`` with ``L01 = -(1/N) sum_i (sigmoid(alpha_i) -
    0.5)^2`` over all N alphas, pushing each weight towards 0 or 1; ``w01 = 10`` as the
    official code (``xiaomi-automl/FairDARTS``, ``--aux_loss_weight 10``, ``ConvSeparateLoss``:
    ``-mse(sigmoid(alpha), 0.5)``). Derivation: per edge (NB-1Shot1: per group) the op with the
    largest sigmoid, i.e. the space's argmax of alpha (the paper thresholds sigmoid > 0.85 in
    the DARTS space, where a node keeps several edges; NB201 takes exactly one op per edge).
    ``include_none`` (default False): with independent sigmoids ``none``'s alpha gets no
    gradient from the data loss (its output is 0 whatever its weight), only from L01, so it
    would win edges by the sign of its random initialisation.

    Trajectory column: ``zero_one_loss``, ``L01`` of the alphas after the epoch (unweighted).
    """
    opts = parse_options(FairDartsOptions, options, "fair-darts")
    components = [SigmoidMixing(), ZeroOneLoss(LinearSchedule.constant(opts.w01))]
    return Method(name="fair-darts", arch_step=FirstOrderStep(), components=components, include_none=opts.include_none)
