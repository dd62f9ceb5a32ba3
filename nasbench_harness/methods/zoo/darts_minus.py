"""DARTS- (Chu et al., ICLR 2021): an auxiliary skip connection whose weight decays to 0; see :func:`darts_minus`."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from nasbench_harness.methods.components.arch_steps import FirstOrderStep
from nasbench_harness.methods.components.mixing import AuxiliarySkip
from nasbench_harness.methods.engine.base import Method
from nasbench_harness.methods.engine.options import Options, parse_options


class DartsMinusOptions(Options):
    """Options of DARTS-."""

    beta0: float = Field(1.0, ge=0.0, description="auxiliary skip weight in the first epoch (decays to 0)")


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
