"""DARTS (Liu, Simonyan & Yang, ICLR 2019): first order and second order (unrolled).

The arch steps themselves are :mod:`nasbench_harness.methods.components.arch_steps`.
"""

from __future__ import annotations

from typing import Any, Literal

from nasbench_harness.methods.components.arch_steps import FirstOrderStep, SecondOrderStep
from nasbench_harness.methods.engine.base import Method
from nasbench_harness.methods.engine.options import Options, parse_options


class DartsOptions(Options):
    """DARTS's order: 1 (first order) or 2 (unrolled second order)."""

    order: Literal[1, 2] = 1


def darts(options: dict[str, Any]) -> Method:
    """DARTS (Liu, Simonyan & Yang, ICLR 2019, "DARTS: Differentiable Architecture Search").

    Mixing weights softmax(alpha) per edge; the arch step descends the validation loss in the
    alphas (Adam), the weight step the training loss in the weights (SGD). ``order=1`` (default)
    uses the gradient at the current weights; ``order=2`` the unrolled gradient at one virtual
    SGD step, its second-order term by a central finite difference (epsilon = 0.01 / ||grad||).
    No method-state columns.
    """
    opts = parse_options(DartsOptions, options, "darts" if options.get("order", 1) == 1 else "darts-2nd")
    step = FirstOrderStep() if opts.order == 1 else SecondOrderStep()
    return Method(name="darts" if opts.order == 1 else "darts-2nd", arch_step=step)


def darts_second_order(options: dict[str, Any]) -> Method:
    """DARTS with the unrolled second-order arch step."""
    return darts({"order": 2, **options})
