"""Components that change how the weights train: the weight optimiser's settings and drop path.

- :class:`WeightDecay` (R-DARTS(L2)): the weight optimiser's weight decay;
- :class:`ScheduledDropPath` (R-DARTS(DP)): drop path on every mixed op, rising over the epochs.
"""

from __future__ import annotations

from typing import Any

from nasbench_harness.methods.engine.base import Component, SearchState


class WeightDecay(Component):
    """Sets the weight optimiser's weight decay (R-DARTS(L2)). Trajectory column ``weight_decay``."""

    name = "weight-decay"

    def __init__(self, value: float) -> None:
        self.value = value

    def setup(self, state: SearchState) -> None:
        for group in state.w_optim.param_groups:
            group["weight_decay"] = self.value

    def state_columns(self) -> dict[str, float | int | str | None]:
        return {"weight_decay": self.value}


class ScheduledDropPath(Component):
    """Drop path on every mixed-op output with p_t = p_max * (t - 1) / (T - 1) in epoch t of T
    (0 in the first epoch, p_max in the last), in the arch and weight steps (the supernet in
    training mode), never in evaluations. Trajectory column ``drop_prob``."""

    name = "scheduled-drop-path"

    def __init__(self, p_max: float) -> None:
        self.p_max = p_max
        self._p = 0.0

    def forward_options(self, state: SearchState, phase: str) -> dict[str, Any]:
        self._p = self.p_max * state.progress
        return {"drop_prob": self._p} if phase in ("arch", "weights") and self._p > 0 else {}

    def state_columns(self) -> dict[str, float | int | str | None]:
        return {"drop_prob": self._p}
