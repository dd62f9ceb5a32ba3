"""Non-finite values seen on the device and read by the host every few steps.

A search must stop when its loss, a gradient, the alphas or a component's extra term stop being
finite, but reading each of them per step would block a GPU every step. :class:`FiniteWatch`
keeps, per watched quantity and on its device, when in the epoch it first went non-finite (the
step, and its place among the step's watched values) and, for a single number, what it was; the
loop reads everything at once every ``tracking.sync_every`` steps, and the error still names the
step and the quantity that went first.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass, field

import torch

from nasbench_harness.errors import TrainingError

WatchError = Callable[[str, float | None], TrainingError]
"""Builds the error of a watched quantity from where it first went non-finite ("in epoch E,
step S") and its value then (None for a tensor of several numbers)."""
CALLS_PER_STEP = 1 << 16
"""More watch calls per step than any method makes (a place in a step beyond it is capped)."""


@dataclass
class FiniteWatch:
    """Per watched quantity: [first position (step x CALLS_PER_STEP + place; -1: not yet), value
    then] on the device, the error that names it, and whether it is a single number."""

    records: dict[Hashable, tuple[torch.Tensor, WatchError, bool]] = field(default_factory=dict)
    step: int = -1
    calls: int = 0

    def watch(self, step: int, key: Hashable, value: torch.Tensor, error: WatchError) -> None:
        """Note, without reading it, whether ``value`` is all finite at ``step``."""
        if self.step != step:
            self.step, self.calls = step, 0
        position = step * CALLS_PER_STEP + min(self.calls, CALLS_PER_STEP - 1)
        self.calls += 1
        v = value.detach()
        bad = ~torch.isfinite(v).all()
        shown = v.reshape(-1)[0].double() if v.numel() == 1 else torch.zeros((), dtype=torch.float64, device=v.device)
        record = torch.stack([torch.where(bad, position, -1).double(), shown])
        if key in self.records:
            old, error, _ = self.records[key]
            record = torch.where(old[0] >= 0, old, record)
        self.records[key] = (record, error, v.numel() == 1)

    def check(self, epoch: int, *also: torch.Tensor) -> list[float]:
        """Read every record and ``also`` (values the caller wants, e.g. the running loss) in one
        host read and forget the records; raise the error of the quantity that went non-finite
        first (in the same step: the one watched first). Returns ``also``'s values, flattened."""
        pending, self.records, self.step = list(self.records.values()), {}, -1
        parts = [record for record, _, _ in pending] + [value.detach().reshape(-1).double() for value in also]
        if not parts:
            return []
        values = torch.cat([p.to(parts[0].device) for p in parts]).tolist()  # the one host read
        records, rest = values[: 2 * len(pending)], values[2 * len(pending) :]
        bad = [(int(records[2 * i]), i) for i in range(len(pending)) if records[2 * i] >= 0]
        if bad:
            position, i = min(bad)
            _, error, scalar = pending[i]
            raise error(
                f"in epoch {epoch}, step {position // CALLS_PER_STEP + 1}", records[2 * i + 1] if scalar else None
            )
        return rest
