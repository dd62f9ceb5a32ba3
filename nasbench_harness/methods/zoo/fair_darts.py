"""FairDARTS (Chu, Zhou, Zhang & Li, ECCV 2020): independent sigmoids and the zero-one loss; see :func:`fair_darts`."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from nasbench_harness.methods.components.arch_steps import FirstOrderStep
from nasbench_harness.methods.components.mixing import SigmoidMixing
from nasbench_harness.methods.components.regularizers import ZeroOneLoss
from nasbench_harness.methods.engine.base import Method
from nasbench_harness.methods.engine.options import Options, parse_options


class FairDartsOptions(Options):
    """Options of FairDARTS."""

    w01: float = Field(10.0, ge=0.0, description="weight of the zero-one loss in the arch loss")
    include_none: bool = Field(False, description="whether NB201's `none` may win an edge")


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

    Trajectory columns: ``reg_zero_one`` (``L01`` at the epoch's last arch step, unweighted) and
    ``reg_zero_one_weight`` (``w01``); the regularizer is the built-in ``zero-one``.
    """
    opts = parse_options(FairDartsOptions, options, "fair-darts")
    components = [SigmoidMixing(), ZeroOneLoss(opts.w01)]
    return Method(name="fair-darts", arch_step=FirstOrderStep(), components=components, include_none=opts.include_none)
