"""Regularizers: penalties added to the loss of the arch step or the weight step, as one family.

A :class:`Regularizer` computes an unweighted ``penalty(state, weights, phase)`` (a finite 0-dim
tensor) for the phases it declares; the loop adds ``weight * penalty`` to that phase's loss.
The weight is a constant or a :class:`~nasbench_harness.methods.components.schedules.LinearSchedule`
over the search's progress ``(epoch - 1) / (epochs - 1)``, so a regularizer is a stateless
function of the epoch: a resumed run recomputes it exactly.

The built-ins (:data:`BUILTIN_REGULARIZERS`) and a user's plugin are the same kind of object:
the methods use them (beta-DARTS's :class:`BetaDecay` with lambda rising 0 -> 50, FairDARTS's
:class:`ZeroOneLoss` at 10), ``nbh search --regularizer NAME --reg-weight W`` adds any of them
to any method (``W`` a number, or ``START:END`` for a linear ramp), and
:func:`nasbench_harness.testing.check_regularizer` checks every one of them.

- :class:`BetaDecay` (beta-DARTS, Ye et al., CVPR 2022): ``L_beta``, the mean over softmax groups
  (edges) of ``logsumexp(alpha_group)`` (:func:`beta_decay_loss`);
- :class:`ZeroOneLoss` (FairDARTS, Chu et al., ECCV 2020): ``L01 = -(1/N) sum_i
  (sigmoid(alpha_i) - 0.5)^2`` over all N alphas (:func:`zero_one_loss`);
- :class:`Entropy`: ``sum_g H(softmax(alpha_g))`` over the softmax groups, in nats
  (:func:`group_entropy`): low when every group is decided.

Columns of a regularizer named ``NAME``: ``reg_NAME`` (the unweighted penalty at the epoch's
last step of a phase it applies to) and ``reg_NAME_weight`` (its weight in that epoch).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar

import torch

from nasbench_harness.errors import ConfigError, TrainingError
from nasbench_harness.methods.components.groups import groups_of
from nasbench_harness.methods.components.schedules import LinearSchedule, split_ramp
from nasbench_harness.methods.engine.base import Phase, Plugin, SearchState
from nasbench_harness.methods.engine.options import Options

Weight = float | LinearSchedule
"""A regularizer's weight: a constant, or a linear ramp from the first to the last epoch."""


def as_schedule(weight: Weight | str | dict[str, Any]) -> LinearSchedule:
    """``weight`` as a :class:`LinearSchedule`: a number (constant), ``"START:END"``, a
    ``{"start": .., "end": ..}`` mapping, or a schedule."""
    if isinstance(weight, LinearSchedule):
        return weight
    if isinstance(weight, dict):
        unknown = set(weight) - {"start", "end"}
        if unknown or "start" not in weight or "end" not in weight:
            raise ConfigError(f"a regularizer weight schedule is {{start: X, end: Y}}; got {weight!r:.80}")
        return LinearSchedule(float(weight["start"]), float(weight["end"]))
    ramp = split_ramp(weight) if isinstance(weight, str) else None
    if ramp is not None:
        start, end = ramp
        try:
            return LinearSchedule(float(start), float(end))
        except ValueError:
            raise ConfigError(f"a weight ramp is START:END (e.g. 0:50); got {weight!r:.80}") from None
    try:
        return LinearSchedule.constant(float(weight))
    except (TypeError, ValueError):
        raise ConfigError(f"a regularizer weight is a number or START:END (e.g. 0:50); got {weight!r:.80}") from None


class Regularizer(Plugin):
    """A penalty added to the loss of ``phases`` ("arch": the arch step, "weights": the weight step).

    ``penalty`` returns a finite 0-dim tensor, differentiable in what it regularises (for an
    arch penalty: ``state.alphas``); the loop adds ``weight * penalty``, ``weight`` constant or a
    linear ramp over the epochs (:func:`as_schedule`). See the module doc for the columns.
    """

    phases: ClassVar[tuple[str, ...]] = ("arch",)

    def __init__(
        self, weight: Weight | str | dict[str, Any] = 1.0, params: Options | dict[str, Any] | None = None
    ) -> None:
        super().__init__(params)
        self.schedule = as_schedule(weight)
        for value in (self.schedule.start, self.schedule.end):
            if not math.isfinite(value):
                raise ConfigError(f"{type(self).__name__}: the weight must be finite, got {value}")
        self._last: torch.Tensor | None = None
        self._weight: float | None = None

    @property
    def weight(self) -> float:
        """The weight in the first epoch (the constant weight of an unscheduled regularizer)."""
        return self.schedule.start

    def weight_at(self, state: SearchState) -> float:
        """The weight in the current epoch of ``state``."""
        return self.schedule.at(state.progress)

    def penalty(self, state: SearchState, weights: torch.Tensor, phase: Phase) -> torch.Tensor:
        """The unweighted penalty (0-dim tensor)."""
        raise NotImplementedError(f"{type(self).__name__} must implement penalty(state, weights, phase)")

    def extra_loss(self, state: SearchState, phase: Phase, weights: torch.Tensor) -> torch.Tensor | None:
        self._weight = weight = self.weight_at(state)
        if phase not in self.phases or weight == 0.0:
            return None
        value = self.penalty(state, weights, phase)
        if not isinstance(value, torch.Tensor) or value.dim() != 0:
            raise TrainingError(f"{type(self).__name__}.penalty must return a 0-dim tensor, got {value!r:.80}")
        self._last = value.detach()  # read once per epoch, in state_columns
        return weight * value  # SearchState.loss checks that the term is finite, without a device sync per call

    def state_columns(self) -> dict[str, float | int | str | None]:
        last = None if self._last is None else float(self._last)
        return {f"reg_{self.column}": last, f"reg_{self.column}_weight": self._weight}


def beta_decay_loss(alphas: torch.Tensor, group_sizes: Sequence[int]) -> torch.Tensor:
    """beta-DARTS's regulariser: mean over softmax groups of ``logsumexp(alpha_group)`` (a scalar).

    For NB201 this is the mean over the 6 edges of ``log sum_o exp(alpha_{e,o})``; for NB-1Shot1
    the mean over its op, output and input groups (each group counts once, whatever its size).
    """
    return torch.stack([g.logsumexp(dim=0) for g in groups_of(alphas, group_sizes)]).mean()


def zero_one_loss(alphas: torch.Tensor) -> torch.Tensor:
    """FairDARTS's zero-one loss ``-(1/N) sum_i (sigmoid(alpha_i) - 0.5)^2`` over all N alphas.

    In [-0.25, 0]; it is lowest when every sigmoid is 0 or 1, so minimising it pushes each
    architecture weight away from 0.5.
    """
    return -((torch.sigmoid(alphas) - 0.5) ** 2).mean()


def group_entropy(alphas: torch.Tensor, group_sizes: Sequence[int]) -> torch.Tensor:
    """sum over softmax groups of H(softmax(alpha_g)) = -sum_i p_i log p_i, in nats."""
    total = alphas.new_zeros(())
    for part in groups_of(alphas, group_sizes):
        log_p = torch.log_softmax(part, dim=0)
        total = total - (log_p.exp() * log_p).sum()
    return total


class BetaDecay(Regularizer):
    """beta-DARTS's ``L_beta`` (:func:`beta_decay_loss`) on the arch loss."""

    name = "beta_decay"

    def penalty(self, state: SearchState, weights: torch.Tensor, phase: Phase) -> torch.Tensor:
        return beta_decay_loss(state.alphas, state.space.group_sizes)


class ZeroOneLoss(Regularizer):
    """FairDARTS's ``L01`` (:func:`zero_one_loss`) on the arch loss."""

    name = "zero_one"

    def penalty(self, state: SearchState, weights: torch.Tensor, phase: Phase) -> torch.Tensor:
        return zero_one_loss(state.alphas)


class Entropy(Regularizer):
    """``sum_g H(softmax(alpha_g))`` (:func:`group_entropy`) on the arch loss."""

    name = "entropy"

    def penalty(self, state: SearchState, weights: torch.Tensor, phase: Phase) -> torch.Tensor:
        return group_entropy(state.alphas, state.space.group_sizes)


BUILTIN_REGULARIZERS: dict[str, type[Regularizer]] = {
    "entropy": Entropy,
    "beta-decay": BetaDecay,
    "zero-one": ZeroOneLoss,
}
"""The regularizers ``--regularizer NAME`` knows by name."""
