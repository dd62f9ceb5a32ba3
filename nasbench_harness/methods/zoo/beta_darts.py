"""beta-DARTS (Ye et al., CVPR 2022): the beta-decay regulariser of the alphas; see :func:`beta_darts`."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from nasbench_harness.methods.components.arch_steps import FirstOrderStep
from nasbench_harness.methods.components.regularizers import BetaDecay
from nasbench_harness.methods.components.schedules import LinearSchedule
from nasbench_harness.methods.engine.base import Method
from nasbench_harness.methods.engine.options import Options, parse_options


class BetaDartsOptions(Options):
    """Options of beta-DARTS."""

    ordered = (("lambda_min", "lambda_max"),)

    lambda_min: float = Field(0.0, ge=0.0, description="beta-decay weight in the first epoch")
    lambda_max: float = Field(50.0, ge=0.0, description="beta-decay weight in the last epoch")


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

    Trajectory columns: ``reg_beta_decay_weight`` (lambda of the epoch) and ``reg_beta_decay``
    (``L_beta`` at the epoch's last arch step, unweighted); the regularizer is the built-in
    ``beta-decay`` (:mod:`~nasbench_harness.methods.components.regularizers`).
    """
    opts = parse_options(BetaDartsOptions, options, "beta-darts")
    regulariser = BetaDecay(LinearSchedule(opts.lambda_min, opts.lambda_max))
    return Method(name="beta-darts", arch_step=FirstOrderStep(), components=[regulariser])
