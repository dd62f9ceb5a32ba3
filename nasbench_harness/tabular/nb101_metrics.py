"""Every NAS-Bench-101 metric by name.

    <point>/<quantity>@<epochs>[#repeat]   e.g. final/validation_accuracy@108, halfway/test_accuracy@36#2
    n_repeats@<epochs>                      training runs behind the mean
    params                                  trainable parameters

``epochs`` is the training budget (4, 12, 36 or 108; the only-108 file has 108 only),
``point`` is ``halfway`` (after epochs/2) or ``final``; no ``#repeat`` = mean over the training
repeats, ``#k`` = the k-th repeat in file order. Accuracies are fractions in 0..1, as NB101 and
NB-1Shot1 report them; times are seconds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from nasbench_harness.errors import UnknownMetricError

EPOCHS = (4, 12, 36, 108)
POINTS = {"halfway": "after half of the epochs", "final": "after the last epoch"}
QUANTITIES = {
    "train_accuracy": "training accuracy (fraction 0..1)",
    "validation_accuracy": "validation accuracy (fraction 0..1; NB101's 10k held-out training images)",
    "test_accuracy": "test accuracy (fraction 0..1; the CIFAR-10 test set)",
    "training_time": "training time in s up to that point",
}
CELL_QUANTITIES = {"params": "trainable parameters", "n_repeats": "number of training repeats behind the mean"}
_KEY_RE = re.compile(
    r"(?:(?P<point>[a-z]+)/(?P<quantity>[a-z_]+)|(?P<cell>n_repeats))@(?P<epochs>\d+)(?:#(?P<rep>\d+))?"
)


@dataclass(frozen=True, slots=True)
class NB101Metric:
    """One NB101 number per cell. ``point`` and ``quantity`` are None for params / n_repeats."""

    quantity: str
    epochs: int | None = None
    point: str | None = None
    repeat: int | None = None

    def __post_init__(self) -> None:
        if self.quantity in CELL_QUANTITIES:
            if (
                self.point is not None
                or self.repeat is not None
                or (self.quantity == "params") != (self.epochs is None)
            ):
                raise UnknownMetricError(f"malformed NB101 metric {self.quantity}: {_FORM}")
        elif self.quantity not in QUANTITIES:
            raise UnknownMetricError(f"unknown NB101 quantity {self.quantity!r}; use one of {', '.join(QUANTITIES)}")
        elif self.point not in POINTS:
            raise UnknownMetricError(f"unknown NB101 point {self.point!r}; use halfway or final")
        if self.epochs is not None and self.epochs not in EPOCHS:
            raise UnknownMetricError(f"NB101 budgets are {', '.join(map(str, EPOCHS))} epochs, not {self.epochs}")

    @classmethod
    def parse(cls, text: str) -> NB101Metric:
        """Parse ``point/quantity@epochs[#repeat]``, ``n_repeats@epochs`` or ``params``."""
        if text == "params":
            return cls("params")
        match = _KEY_RE.fullmatch(text) if isinstance(text, str) else None
        if match is None:
            raise UnknownMetricError(f"malformed NB101 metric {text!r}; {_FORM}")
        rep = None if match["rep"] is None else int(match["rep"])
        if match["cell"]:
            if rep is not None:
                raise UnknownMetricError(f"malformed NB101 metric {text!r}; {_FORM}")
            return cls("n_repeats", int(match["epochs"]))
        return cls(match["quantity"], int(match["epochs"]), match["point"], rep)

    def __str__(self) -> str:
        if self.quantity == "params":
            return "params"
        if self.quantity == "n_repeats":
            return f"n_repeats@{self.epochs}"
        return f"{self.point}/{self.quantity}@{self.epochs}" + ("" if self.repeat is None else f"#{self.repeat}")

    def with_repeat(self, repeat: int | None) -> NB101Metric:
        return NB101Metric(self.quantity, self.epochs, self.point, repeat)

    def meaning(self) -> str:
        if self.quantity in CELL_QUANTITIES:
            budget = "" if self.epochs is None else f"; {self.epochs}-epoch budget"
            return CELL_QUANTITIES[self.quantity] + budget
        which = "mean over training repeats" if self.repeat is None else f"repeat #{self.repeat} (file order)"
        return f"{QUANTITIES[self.quantity]}, {POINTS[self.point]} of the {self.epochs}-epoch budget; {which}"

    def sort_key(self) -> tuple[int, int, int, int]:
        order = [*QUANTITIES, *CELL_QUANTITIES]
        return (
            -(self.epochs or 0),
            0 if self.point is None else 1 + list(POINTS).index(self.point),
            order.index(self.quantity),
            -1 if self.repeat is None else self.repeat,
        )


_FORM = (
    "expected <halfway|final>/<quantity>@<epochs>[#repeat] such as final/validation_accuracy@108, "
    "n_repeats@108, or params"
)
