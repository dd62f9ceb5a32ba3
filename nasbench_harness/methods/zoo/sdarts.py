"""SDARTS (Chen & Hsieh, ICML 2020): DARTS whose weight step trains under perturbed mixing weights.

Xiangning Chen and Cho-Jui Hsieh, "Stabilizing Differentiable Architecture Search via
Perturbation-based Regularization", ICML 2020. The arch step is DARTS's first-order step; the
weight step minimises ``L_train(w, A + delta)`` with ``A = softmax(alpha)`` and
``||delta||_inf <= eps`` (random for RS, adversarial for ADV), which implicitly regularises the
Hessian of the validation loss in alpha. The perturbation lives in
:mod:`nasbench_harness.methods.components.perturbation`.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from nasbench_harness.methods.components.perturbation import AdversarialPerturbation, RandomPerturbation
from nasbench_harness.methods.components.regularizers import LinearSchedule
from nasbench_harness.methods.engine.base import Method
from nasbench_harness.methods.engine.options import Options, parse_options
from nasbench_harness.methods.zoo.darts import FirstOrderStep


class SDARTSOptions(Options):
    """Options of SDARTS-RS."""

    ordered = (("eps_min", "eps_max"),)

    eps_min: float = Field(0.03, ge=0.0, le=1.0, description="perturbation radius in the first epoch")
    eps_max: float = Field(0.3, ge=0.0, le=1.0, description="perturbation radius in the last epoch")


class SDARTSAdvOptions(SDARTSOptions):
    """Options of SDARTS-ADV."""

    steps: int = Field(7, ge=1, le=100, description="PGD steps per weight step")


def sdarts_rs(options: dict[str, Any]) -> Method:
    """SDARTS-RS: DARTS (first order) + weight step under randomly perturbed mixing weights.

    Chen & Hsieh, 2020, "Stabilizing Differentiable Architecture Search via Perturbation-based
    Regularization" (ICML). Weight step: ``min_w L_train(w, P(A + delta))`` with
    ``A = softmax(alpha)`` per edge, ``delta_i ~ U[-eps, eps]`` independently, and ``P``
    clipping each softmax group to [0, 1] and renormalising it to sum 1.

    ``eps`` rises linearly from ``eps_min`` (first epoch) to ``eps_max`` (last epoch):
    ``eps = eps_min + (eps_max - eps_min) * (epoch - 1) / (epochs - 1)``. Defaults 0.03 and 0.3
    as the official code (``xiangning-chen/SmoothDARTS``; read in its copy in
    ``Sunshine-Ye/Beta-DARTS``, ``nasbench201/train_search.py``: ``--epsilon_alpha 0.3``,
    ``0.03 + (0.3 - 0.03) * epoch / epochs`` with 0-based epochs, which stops one step short of 0.3).

    Trajectory column: ``sdarts_eps``, the eps of the epoch.
    """
    opts = parse_options(SDARTSOptions, options, "sdarts-rs")
    perturbation = RandomPerturbation(LinearSchedule(opts.eps_min, opts.eps_max))
    return Method(name="sdarts-rs", arch_step=FirstOrderStep(), components=[perturbation])


def sdarts_adv(options: dict[str, Any]) -> Method:
    """SDARTS-ADV: DARTS (first order) + weight step under adversarially perturbed mixing weights.

    Chen & Hsieh, 2020 (as :func:`sdarts_rs`). ``delta`` approximately maximises the weight-step
    loss on the current train batch within ``||delta||_inf <= eps``: PGD with a uniform random
    start in the ball and ``steps`` (default 7) signed-gradient ascent steps of size
    ``2 * eps / steps``, each followed by projection onto the ball and per-group clipping to the
    simplex; the result is used unless it lowered the loss below the unperturbed weights' (then
    the step trains unperturbed). The attack runs with the network in eval mode. Same eps
    schedule and defaults as SDARTS-RS; the 7 steps, the step size, eval mode and the keep rule
    from the official code (``attacker/perturb.py: Linf_PGD_alpha``, same copy).

    Costs about 9 forward and 7 backward passes (in the mixing weights only) more per step.

    Trajectory columns: ``sdarts_eps`` (eps of the epoch) and ``sdarts_adv_kept`` (fraction of
    the epoch's weight steps whose perturbation was used).
    """
    opts = parse_options(SDARTSAdvOptions, options, "sdarts-adv")
    perturbation = AdversarialPerturbation(LinearSchedule(opts.eps_min, opts.eps_max), steps=opts.steps)
    return Method(name="sdarts-adv", arch_step=FirstOrderStep(), components=[perturbation])
