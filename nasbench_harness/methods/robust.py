"""The robustified DARTS variants of Zela et al., "Understanding and Robustifying Differentiable
Architecture Search" (ICLR 2020): DARTS-ES, DARTS-ADA, R-DARTS(L2) and R-DARTS(DP).

All four are DARTS (first order by default, ``order=2`` for the paper's unrolled step) plus one
component: early stopping on the Hessian eigenvalue, adaptive regularisation by rollback, a
larger weight decay, or ScheduledDropPath.
"""

from __future__ import annotations

import copy
from typing import Any, Literal

from pydantic import Field

from nasbench_harness.errors import TrainingError
from nasbench_harness.methods.base import Component, Method, Rollback, SearchState
from nasbench_harness.methods.components.early_stopping import EarlyStopOptions, EigenvalueEarlyStop
from nasbench_harness.methods.darts import FirstOrderStep, SecondOrderStep
from nasbench_harness.methods.options import Options, parse_options


class EsOptions(EarlyStopOptions):
    """DARTS-ES: the early-stopping rule and DARTS's order."""

    order: Literal[1, 2] = 1


class AdaOptions(EsOptions):
    """DARTS-ADA: the early-stopping rule, plus how the weight decay grows on each trigger."""

    wd_factor: float = Field(10.0, gt=1, description="weight decay multiplier at each rollback (--mul_factor)")
    max_weight_decay: float = Field(
        0.03, gt=0, description="no adaptation past this weight decay (--max_weight_decay): 3e-4 -> 3e-3 -> 3e-2"
    )


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


class AdaptiveRegularisation(EigenvalueEarlyStop):
    """DARTS-ADA: when the early-stopping rule fires, roll the search back to the answer's epoch
    (network, alphas, optimisers, schedule *and the eigenvalue history* as they were after that
    epoch, as RobustDARTS's ``load_checkpoint(..., la_tracker, ...)``), multiply the weight decay
    by ``wd_factor``, and go on to the last epoch. Once a further adaptation would take the
    weight decay past ``max_weight_decay``, the rule still measures but no longer acts.

    Keeps snapshots of the search state of the measured epochs that can become a rollback
    target (at most ``every * (window // 2 + delta)`` epochs back); they are part of the
    checkpoint, so a resumed run rolls back exactly as an uninterrupted one.
    Trajectory columns: ``weight_decay``, ``ada_adaptations``.
    """

    name = "adaptive-regularisation"

    def __init__(self, options: AdaOptions) -> None:
        super().__init__(options)
        self.wd_factor, self.max_weight_decay = options.wd_factor, options.max_weight_decay
        self.adaptations = 0
        self.snapshots: dict[int, dict[str, Any]] = {}
        self._weight_decay: float | None = None

    @property
    def lookback(self) -> int:
        """How far back (epochs) a rollback target can lie."""
        return self.every * (self.window // 2 + self.delta)

    def can_adapt(self, weight_decay: float) -> bool:
        """Whether ``weight_decay * wd_factor`` stays within ``max_weight_decay`` (relative slack 1e-9).

        RobustDARTS stops adapting once ``round(log(max) / log(wd), 1) == 1``
        (``train_search.py`` lines 175-178), i.e. once wd has reached the maximum; on its
        script's values (3e-4, x10, max 0.03) both rules allow exactly the steps 3e-4 -> 3e-3 -> 3e-2,
        and this one also ends for values whose powers never land on the maximum.
        """
        return weight_decay * self.wd_factor <= self.max_weight_decay * (1 + 1e-9)

    def end_of_epoch(self, state: SearchState, row: dict[str, Any]) -> Any:
        self._weight_decay = float(state.w_optim.param_groups[0]["weight_decay"])
        return super().end_of_epoch(state, row)

    def recorded(self, state: SearchState) -> None:
        if not self.can_adapt(float(state.w_optim.param_groups[0]["weight_decay"])):
            self.snapshots.clear()  # no rollback can follow
            return
        if state.snapshot is None:
            raise TrainingError("DARTS-ADA needs the loop's snapshots (SearchState.snapshot)")
        self.snapshots[state.epoch] = {"search": state.snapshot(), "tracker": self.tracker.state()}
        for epoch in [e for e in self.snapshots if e < state.epoch - self.lookback]:
            del self.snapshots[epoch]

    def on_trigger(self, state: SearchState, earlier_epoch: int) -> Any:
        old = float(state.w_optim.param_groups[0]["weight_decay"])
        if not self.can_adapt(old):
            return None
        stored = self.snapshots.get(earlier_epoch)
        if stored is None:  # only when the rule's epochs are not multiples of `every`
            return super().on_trigger(state, earlier_epoch)
        new = old * self.wd_factor
        snapshot = copy.deepcopy(stored["search"])
        for group in snapshot["w_optim"]["param_groups"]:
            group["weight_decay"] = new
        self.tracker.load(stored["tracker"])
        self.adaptations += 1
        # the target epoch's snapshot stays: a later trigger may roll back to it again
        self.snapshots = {e: s for e, s in self.snapshots.items() if e <= earlier_epoch}
        reason = (
            f"dominant eigenvalue grew {self._growth:.2f}x (> {self.factor:g}); rolled back to epoch "
            f"{earlier_epoch} with weight decay {old:g} -> {new:g} (adaptation {self.adaptations})"
        )
        return Rollback(earlier_epoch, snapshot, reason)

    def state_columns(self) -> dict[str, float | int | str | None]:
        return {**super().state_columns(), "weight_decay": self._weight_decay, "ada_adaptations": self.adaptations}

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "adaptations": self.adaptations, "snapshots": self.snapshots}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.adaptations = int(state["adaptations"])
        self.snapshots = dict(state["snapshots"])


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
    their start; this harness's presets start from ``optim.weight_decay``, 5e-4 on NB201, which
    allows one adaptation to 5e-3 unless ``max_weight_decay`` is raised).

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
