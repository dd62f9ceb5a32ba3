"""Early stopping on the growth of the dominant Hessian eigenvalue (R-DARTS, Zela et al., ICLR 2020).

The eigenvalue of the validation loss Hessian w.r.t. the alphas is measured every ``every``
epochs. Its local average over ``window`` measurements is centred: the mean of the last
``window`` values belongs to the epoch ``every * (window // 2)`` before the newest one (before
the window fills, the mean of all values so far). The search stops when the newest local average
exceeds the one ``delta`` measurements earlier by more than ``factor``, once that earlier
average's epoch is at least ``start_epoch``; the answer is the genotype of that earlier epoch.

The authors' code: every=2, window=5, delta=4 (8 epochs), factor=1.3, start_epoch=10. The
paper's wording, "stop when lambda(t-k)/lambda(t) < 0.75 with k=5", is every=1, delta=5,
factor=1/0.75 (``rule="paper"``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from nasbench_harness.methods.base import Component, SearchState, Stop
from nasbench_harness.methods.options import Options

RULES = {
    "code": {"every": 2, "window": 5, "delta": 4, "factor": 1.3, "start_epoch": 10},
    "paper": {"every": 1, "window": 5, "delta": 5, "factor": 1 / 0.75, "start_epoch": 10},
}


class EarlyStopOptions(Options):
    """The stopping rule; unset values come from ``rule``."""

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

    def reset(self) -> None:
        """Forget everything (after a rollback)."""
        self.values.clear()
        self.averages.clear()


class EigenvalueEarlyStop(Component):
    """Stops the search (:class:`Stop` with the earlier epoch as the answer) when the eigenvalue grows.

    Subclasses change :meth:`on_trigger` (DARTS-ADA rolls back instead). Trajectory columns:
    ``es_local_avg`` (newest local average), ``es_growth`` (its ratio to the one ``delta`` back).
    """

    name = "eigenvalue-early-stop"

    def __init__(self, options: EarlyStopOptions) -> None:
        p = options.resolved()
        self.every, self.window, self.delta = int(p["every"]), int(p["window"]), int(p["delta"])
        self.factor, self.start_epoch = float(p["factor"]), int(p["start_epoch"])
        self.tracker = EigenvalueTracker(self.every, self.window)
        self._growth: float | None = None

    def wants_eigenvalue(self, epoch: int) -> bool:
        return epoch % self.every == 0

    def end_of_epoch(self, state: SearchState, row: dict[str, Any]) -> Any:
        self._growth = None
        value = row.get("eigenvalue")
        if not self.wants_eigenvalue(state.epoch) or value is None:
            return None
        self.tracker.add(state.epoch, float(value))
        growth = self.tracker.growth(self.delta)
        if growth is None:
            return None
        earlier_epoch, self._growth = growth
        if earlier_epoch >= self.start_epoch and self._growth > self.factor:
            return self.on_trigger(state, earlier_epoch)
        return None

    def on_trigger(self, state: SearchState, earlier_epoch: int) -> Any:
        """What happens when the rule fires; the answer is the genotype of ``earlier_epoch``."""
        reason = (
            f"dominant eigenvalue grew {self._growth:.2f}x (> {self.factor:g}) over "
            f"{self.every * self.delta} epochs; the answer is epoch {earlier_epoch}'s genotype"
        )
        return Stop(reason, result_epoch=earlier_epoch)

    def state_columns(self) -> dict[str, float | int | str | None]:
        averages = self.tracker.averages
        return {"es_local_avg": averages[-1][1] if averages else None, "es_growth": self._growth}

    def state_dict(self) -> dict[str, Any]:
        return {"values": list(self.tracker.values), "averages": list(self.tracker.averages), "growth": self._growth}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.tracker.values[:] = state["values"]
        self.tracker.averages[:] = [tuple(a) for a in state["averages"]]
        self._growth = state["growth"]
