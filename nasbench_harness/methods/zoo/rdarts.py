"""The robustified DARTS variants of Zela et al., "Understanding and Robustifying Differentiable
Architecture Search" (ICLR 2020): DARTS-ES, DARTS-ADA, R-DARTS(L2) and R-DARTS(DP).

All four are DARTS (first order by default, ``order=2`` for the paper's unrolled step) plus one
component: early stopping on the Hessian eigenvalue, adaptive regularisation by rollback, a
larger weight decay, or ScheduledDropPath.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from nasbench_harness.methods.components.arch_steps import FirstOrderStep, SecondOrderStep
from nasbench_harness.methods.components.early_stopping import (
    AdaptiveOptions,
    AdaptiveRegularisation,
    EarlyStopOptions,
    EigenvalueEarlyStop,
)
from nasbench_harness.methods.components.training import ScheduledDropPath, WeightDecay
from nasbench_harness.methods.engine.base import Method
from nasbench_harness.methods.engine.options import Options, parse_options


class EsOptions(EarlyStopOptions):
    """DARTS-ES: the early-stopping rule and DARTS's order."""

    order: Literal[1, 2] = 1


class AdaOptions(AdaptiveOptions):
    """DARTS-ADA: the early-stopping rule, how the weight decay grows on each trigger, DARTS's order."""

    order: Literal[1, 2] = 1


class L2Options(Options):
    """R-DARTS(L2): the weight decay (the paper's grid: 3e-4, 9e-4, 27e-4, 81e-4, 243e-4)."""

    order: Literal[1, 2] = 1
    weight_decay: float = Field(27e-4, gt=0)


class DropPathOptions(Options):
    """R-DARTS(DP): the final drop probability of ScheduledDropPath (the paper's grid: 0.2, 0.4, 0.6)."""

    order: Literal[1, 2] = 1
    drop_prob: float = Field(0.2, ge=0, lt=1)


def _arch_step(order: int) -> FirstOrderStep | SecondOrderStep:
    return FirstOrderStep() if order == 1 else SecondOrderStep()


def darts_es(options: dict[str, Any]) -> Method:
    """DARTS-ES (Zela et al., ICLR 2020): DARTS that stops when the dominant eigenvalue of the
    validation-loss Hessian w.r.t. the alphas grows, and answers with the genotype from before
    the growth.

    Rule and measurement as the authors' code (``automl/RobustDARTS``; details and line
    references in :mod:`nasbench_harness.methods.components.early_stopping`): the eigenvalue
    of the arch loss plus the arch L2 term, on the epoch's last (augmented) architecture batch,
    after 1-based epochs 1, 3, 5, ... and the last; local average over 5 measurements (centred:
    it belongs to the epoch 4 before the newest); stop when the newest local average exceeds
    the one 4 measurements (8 epochs) earlier by more than 1.3x, considered once that earlier
    epoch is >= 11 (their 0-based 10) and never after the last epoch; the answer is that
    earlier epoch's genotype (the manifest's ``result_epoch``). ``rule="paper"``:
    lambda(t-5)/lambda(t) < 0.75 with eigenvalues every epoch.
    Options: order (1|2), rule, every, window, delta, factor, start_epoch.
    Columns: ``es_eigenvalue`` (the measurement the rule uses), ``es_local_avg``, ``es_growth``;
    the ``eigenvalue`` column stays the loop's fixed-batch measurement, for comparing methods.
    """
    opts = parse_options(EsOptions, options, "darts-es")
    return Method("darts-es", _arch_step(opts.order), [EigenvalueEarlyStop(opts)])


def darts_ada(options: dict[str, Any]) -> Method:
    """DARTS-ADA (Zela et al., ICLR 2020): DARTS-ES's rule, but on each trigger the search rolls
    back to the answer's epoch with 10x the weight decay and continues to the last epoch.

    As the authors' script (``automl/RobustDARTS``, ``scripts/DARTS-ADA_search.sh``:
    ``--early_stop 3 --extra_rollback_epochs 0 --max_weight_decay 0.03 --mul_factor 10``
    from ``--weight_decay 0.0003``): the rollback restores the network, alphas, optimisers,
    schedule and the eigenvalue history of that epoch (``src/utils.py``, ``load_checkpoint``),
    so the rule can fire again as soon as the restored history allows; adaptations stop once
    the next one would take the weight decay past ``max_weight_decay`` (3e-4 -> 3e-3 -> 3e-2 from
    their start). The search starts from ``optim.weight_decay``: 3e-4 under ``--preset paper``
    (``protocols/darts-ada.yaml``), as the script; 5e-4 under ``common`` and the CPU presets
    (NB201's setting), which allows one adaptation to 5e-3 unless ``max_weight_decay`` is raised.

    Options: those of darts-es, plus wd_factor (10) and max_weight_decay (0.03).
    Columns: ``es_eigenvalue``, ``es_local_avg``, ``es_growth``, ``weight_decay``,
    ``ada_adaptations``; a rollback shows in ``action``, and ``schedule_epoch`` repeats the
    epochs trained again.
    """
    opts = parse_options(AdaOptions, options, "darts-ada")
    return Method("darts-ada", _arch_step(opts.order), [AdaptiveRegularisation(opts)])


def rdarts_l2(options: dict[str, Any]) -> Method:
    """R-DARTS(L2) (Zela et al., ICLR 2020): DARTS with a larger L2 weight decay on the network
    weights, from the paper's grid {3e-4, 9e-4, 27e-4, 81e-4, 243e-4}.

    The paper runs the grid and keeps the best by validation; the default, 27e-4, is the grid's
    middle. Options: weight_decay, order. Column: ``weight_decay``.
    """
    opts = parse_options(L2Options, options, "rdarts-l2")
    return Method("rdarts-l2", _arch_step(opts.order), [WeightDecay(opts.weight_decay)])


def rdarts_dp(options: dict[str, Any]) -> Method:
    """R-DARTS(DP) (Zela et al., ICLR 2020): DARTS with ScheduledDropPath on every mixed-op
    output, p_t = p_max * t / (T - 1) for 0-based epoch t of T, p_max from the paper's grid
    {0.2, 0.4, 0.6} (default 0.2).

    Options: drop_prob (p_max), order. Column: ``drop_prob``.
    """
    opts = parse_options(DropPathOptions, options, "rdarts-dp")
    return Method("rdarts-dp", _arch_step(opts.order), [ScheduledDropPath(opts.drop_prob)])
