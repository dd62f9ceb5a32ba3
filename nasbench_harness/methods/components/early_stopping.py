"""Early stopping on the growth of the dominant Hessian eigenvalue (R-DARTS, Zela et al., ICLR 2020).

The rule decides on R-DARTS's own measurement (``automl/RobustDARTS``, ``src/search/train_search.py``
lines 373-425 and ``src/search/analyze.py``): the largest eigenvalue of the Hessian, in the
alphas, of the architecture loss on the epoch's *last architecture batch* (augmented, as the
arch step saw it; the network in training mode) plus the arch optimiser's L2 term
(``analyze.py`` line 174: ``grad + weight_decay * alpha``), measured after the epochs whose
0-based number is a multiple of ``every`` (1-based epochs 1, 3, 5, ... for ``every=2``) and
after the last epoch. Its local average over ``window`` measurements is centred: the mean of
the last ``window`` values belongs to the epoch ``every * (window // 2)`` before the newest one
(before the window fills, the mean of all values so far; ``src/utils.py``, ``EVLocalAvg``). The
search stops when the newest local average exceeds the one ``delta`` measurements earlier by
more than ``factor``, once that earlier average's epoch is at least ``start_epoch``; the answer
is the genotype of that earlier epoch. The last epoch is measured (column ``es_eigenvalue``)
but never decides: the reference skips ``early_stop`` there (line 423).

This measurement is noisy by design (one random augmented batch); the loop's ``eigenvalue``
column (a fixed unaugmented batch, no L2 term) is the one to compare methods by.

The authors' flags: ``--report_freq_hessian 2 --window 5 --delta 4 --factor 1.3
--es_start_epoch 10`` (``src/search/args.py`` lines 61-64, ``scripts/DARTS-ADA_search.sh``);
their epochs count from 0, so ``es_start_epoch=10`` is ``start_epoch=11`` here. The paper's
wording, "stop when lambda(t-k)/lambda(t) < 0.75 with k=5", is every=1, delta=5, factor=1/0.75
(``rule="paper"``).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import Field

from nasbench_harness.errors import TrainingError
from nasbench_harness.methods.engine.base import Component, Plugin, Rollback, SearchState, Stop
from nasbench_harness.methods.engine.options import Options

RULES = {
    "code": {"every": 2, "window": 5, "delta": 4, "factor": 1.3, "start_epoch": 11},
    "paper": {"every": 1, "window": 5, "delta": 5, "factor": 1 / 0.75, "start_epoch": 11},
}


class EarlyStopOptions(Options):
    """The stopping rule; unset values come from ``rule``. Epochs count from 1."""

    rule: Literal["code", "paper"] = "code"
    every: int | None = None
    window: int | None = None
    delta: int | None = None
    factor: float | None = None
    start_epoch: int | None = None

    def resolved(self) -> dict[str, Any]:
        """Every parameter, explicit values over the rule's."""
        out = dict(RULES[self.rule])
        out.update({k: v for k, v in self.model_dump().items() if k != "rule" and v is not None})
        return out


@dataclass
class EigenvalueTracker:
    """Measured eigenvalues and their centred local averages (epochs are schedule epochs)."""

    every: int
    window: int
    values: list[float] = field(default_factory=list)
    averages: list[tuple[int, float]] = field(default_factory=list)  # (epoch it belongs to, average)

    def add(self, epoch: int, value: float) -> None:
        """Record the eigenvalue measured after ``epoch``."""
        self.values.append(value)
        if len(self.values) >= -(-self.window // 2):  # ceil(window / 2) values before the first average
            recent = self.values[-self.window :]
            self.averages.append((epoch - self.every * (self.window // 2), sum(recent) / len(recent)))

    def growth(self, delta: int) -> tuple[int, float] | None:
        """(epoch of the average ``delta`` back, newest / that average), when both exist and it is > 0."""
        if len(self.averages) <= delta:
            return None
        earlier_epoch, earlier = self.averages[-1 - delta]
        if earlier <= 0:
            return None
        return earlier_epoch, self.averages[-1][1] / earlier

    def state(self) -> dict[str, Any]:
        """A copy of what was recorded (for checkpoints and rollback snapshots)."""
        return {"values": list(self.values), "averages": [list(a) for a in self.averages]}

    def load(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state`."""
        self.values[:] = [float(v) for v in state["values"]]
        self.averages[:] = [(int(e), float(v)) for e, v in state["averages"]]


class EigenvalueEarlyStop(Component):
    """Stops the search (:class:`Stop` with the earlier epoch as the answer) when the eigenvalue grows.

    Subclasses change :meth:`on_trigger` (DARTS-ADA rolls back instead) and :meth:`recorded`.
    Trajectory columns: ``es_eigenvalue`` (the measurement the rule decides on, null in epochs
    without one), ``es_local_avg`` (newest local average), ``es_growth`` (its ratio to the one
    ``delta`` back).
    """

    name = "eigenvalue-early-stop"

    def __init__(self, options: EarlyStopOptions) -> None:
        p = options.resolved()
        self.every, self.window, self.delta = int(p["every"]), int(p["window"]), int(p["delta"])
        self.factor, self.start_epoch = float(p["factor"]), int(p["start_epoch"])
        self.tracker = EigenvalueTracker(self.every, self.window)
        self._growth: float | None = None
        self._value: float | None = None

    def measures(self, state: SearchState) -> bool:
        """True after the epochs R-DARTS measures: 0-based multiples of ``every``, and the last."""
        return (state.epoch - 1) % self.every == 0 or state.epoch == state.epochs

    def measure(self, state: SearchState) -> float:
        """The eigenvalue on the epoch's last arch batch, with the arch optimiser's weight decay."""
        if state.eigenvalue is None or state.arch_batch is None:
            raise TrainingError(
                "eigenvalue early stopping needs the loop's eigenvalue function and the epoch's last "
                "architecture batch (SearchState.eigenvalue, SearchState.arch_batch); run it in nbh's search loop"
            )
        weight_decay = float(state.a_optim.param_groups[0]["weight_decay"])
        return state.eigenvalue(state.arch_batch, weight_decay)

    def end_of_epoch(self, state: SearchState, row: dict[str, Any]) -> Any:
        self._growth = self._value = None
        if not self.measures(state):
            return None
        self._value = self.measure(state)
        if state.epoch == state.epochs:
            return None
        self.tracker.add(state.epoch, self._value)
        self.recorded(state)
        growth = self.tracker.growth(self.delta)
        if growth is None:
            return None
        earlier_epoch, self._growth = growth
        if earlier_epoch >= self.start_epoch and self._growth > self.factor:
            return self.on_trigger(state, earlier_epoch)
        return None

    def recorded(self, state: SearchState) -> None:
        """Called after a measurement entered the tracker (before the rule looks at it)."""

    def on_trigger(self, state: SearchState, earlier_epoch: int) -> Any:
        """What happens when the rule fires; the answer is the genotype of ``earlier_epoch``."""
        reason = (
            f"dominant eigenvalue grew {self._growth:.2f}x (> {self.factor:g}) over "
            f"{self.every * self.delta} epochs; the answer is epoch {earlier_epoch}'s genotype"
        )
        return Stop(reason, result_epoch=earlier_epoch)

    def state_columns(self) -> dict[str, float | int | str | None]:
        averages = self.tracker.averages
        return {
            "es_eigenvalue": self._value,
            "es_local_avg": averages[-1][1] if averages else None,
            "es_growth": self._growth,
        }

    def state_dict(self) -> dict[str, Any]:
        return {**self.tracker.state(), "growth": self._growth, "value": self._value}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.tracker.load(state)
        self._growth = state["growth"]
        self._value = state.get("value")


class AdaptiveOptions(EarlyStopOptions):
    """DARTS-ADA's adaptation: how the weight decay grows on each trigger, and up to where."""

    wd_factor: float = Field(10.0, gt=1, description="weight decay multiplier at each rollback (--mul_factor)")
    max_weight_decay: float = Field(
        0.03, gt=0, description="no adaptation past this weight decay (--max_weight_decay): 3e-4 -> 3e-3 -> 3e-2"
    )


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

    def __init__(self, options: AdaptiveOptions) -> None:
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


class EarlyStopper(Plugin):
    """Looks at every epoch's trajectory row; a returned reason stops the search."""

    def should_stop(self, state: SearchState, row: dict[str, Any]) -> str | None:
        """A reason to stop after this epoch, or None."""
        raise NotImplementedError(f"{type(self).__name__} must implement should_stop(state, row)")

    def end_of_epoch(self, state: SearchState, row: dict[str, Any]) -> Any:
        reason = self.should_stop(state, row)
        return Stop(reason) if reason else None
