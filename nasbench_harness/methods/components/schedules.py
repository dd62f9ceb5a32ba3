"""Schedules over a search: values that follow the epoch (regulariser weights, temperatures, drop rates).

Every schedule is a pure function of the epoch (or of ``progress = (epoch - 1) / (epochs - 1)``),
so a resumed run recomputes it exactly and no checkpoint holds schedule state.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LinearSchedule:
    """A value going linearly from ``start`` (first epoch) to ``end`` (last epoch).

    ``at(progress)`` with ``progress = (epoch - 1) / (epochs - 1)`` in [0, 1]
    (:attr:`SearchState.progress`); ``LinearSchedule(v, v)`` is the constant ``v``.
    """

    start: float
    end: float

    def at(self, progress: float) -> float:
        """The value at ``progress`` in [0, 1] (clipped to that range)."""
        p = min(1.0, max(0.0, float(progress)))
        return self.start * (1.0 - p) + self.end * p  # exact at both ends

    @classmethod
    def constant(cls, value: float) -> LinearSchedule:
        """The schedule that is ``value`` at every epoch."""
        return cls(value, value)


@dataclass(frozen=True)
class TemperatureSchedule:
    """A temperature per epoch of the schedule.

    ``linear``: ``start + (end - start) * (epoch - 1) / (epochs - 1)`` (``start`` in the first
    epoch, ``end`` in the last); ``exponential``: ``max(end, start * decay ** (epoch - 1))``;
    ``constant``: ``start``.
    """

    start: float
    end: float
    kind: str = "linear"
    decay: float = 1.0

    def at(self, epoch: int, epochs: int) -> float:
        """The temperature of 1-based ``epoch`` of ``epochs``."""
        if self.kind == "constant":
            return self.start
        if self.kind == "exponential":
            return max(self.end, self.start * self.decay ** max(0, epoch - 1))
        progress = 0.0 if epochs <= 1 else min(1.0, max(0.0, (epoch - 1) / (epochs - 1)))
        return self.start + (self.end - self.start) * progress


def split_ramp(text: str) -> tuple[str, str] | None:
    """The two halves of a ``"START:END"`` ramp (unparsed), or None when ``text`` is not one.

    The one reader of the ramp syntax, for ``--reg-weight 0:50`` and the config's plugin weights."""
    if ":" not in text:
        return None
    start, _, end = text.partition(":")
    return start, end
