"""SP-DARTS: a sparse (low-temperature) softmax with mixed-sparsity training; see :func:`sp_darts`."""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
from pydantic import Field, model_validator

from nasbench_harness.methods.components.arch_steps import FirstOrderStep
from nasbench_harness.methods.engine.base import Component, Method, Phase, SearchState
from nasbench_harness.methods.engine.options import Options, parse_options


class SPDartsOptions(Options):
    """SP-DARTS's temperature schedule, in epochs of a ``reference_epochs``-long search."""

    tau: float = Field(0.0013, gt=0, description="sparse temperature")
    tau_late: float = Field(0.0006, gt=0, description="sparse temperature after `late_after`")
    tau_eval: float = Field(1e-4, gt=0, description="temperature of the end-of-epoch supernet evaluation")
    dense_factor: float = Field(11.0, ge=1, description="dense temperature = dense_factor * sparse temperature")
    warmup_factor: float = Field(10.0, ge=1, description="warm-up temperature = warmup_factor * tau")
    warmup_epochs: int = Field(1, ge=0, description="reference epochs trained at the warm-up temperature only")
    late_after: int = Field(45, ge=0, description="reference epochs before the late temperature")
    c_start: float = Field(0.9 / 49, ge=0, le=1, description="C_t in the first epoch after warm-up")
    c_step: float = Field(0.9 / 49, ge=0, description="increase of C_t per reference epoch, up to `late_after`")
    reference_epochs: int | None = Field(50, ge=1, description="schedule length (None: run epochs as they are)")

    @model_validator(mode="after")
    def _ordered(self) -> SPDartsOptions:
        if self.late_after < self.warmup_epochs:
            raise ValueError(f"late_after ({self.late_after}) must be >= warmup_epochs ({self.warmup_epochs})")
        if self.reference_epochs is not None and self.late_after > self.reference_epochs:
            raise ValueError(f"late_after ({self.late_after}) must be <= reference_epochs ({self.reference_epochs})")
        return self


class SparseSchedule(NamedTuple):
    """The temperatures of one epoch: each step uses ``sparse_tau`` with probability ``sparse_prob``
    (C_t), else ``dense_tau``."""

    reference_epoch: int
    sparse_tau: float
    dense_tau: float
    sparse_prob: float


def sp_schedule(options: SPDartsOptions, epoch: int, epochs: int) -> SparseSchedule:
    """The SP-DARTS temperatures of run epoch ``epoch`` (1-based) of ``epochs``.

    The run is mapped onto the reference schedule: reference epoch
    ``r = 1 + floor((epoch - 1) * reference_epochs / epochs)`` (``r = epoch`` without a reference).
    ``r <= warmup_epochs``: every step at ``warmup_factor * tau``. Then C_t =
    ``c_start + c_step * (r - warmup_epochs - 1)`` (clipped to [0, 1]) with the sparse ``tau`` and
    dense ``dense_factor * tau``; after ``late_after``, ``tau_late`` and C_t kept at its last value.
    """
    o = options
    r = epoch if o.reference_epochs is None else 1 + (epoch - 1) * o.reference_epochs // max(epochs, 1)
    if r <= o.warmup_epochs:
        return SparseSchedule(r, o.tau, o.warmup_factor * o.tau, 0.0)
    ramp = min(r, max(o.late_after, o.warmup_epochs + 1)) - o.warmup_epochs - 1
    prob = min(1.0, max(0.0, o.c_start + o.c_step * ramp))
    tau = o.tau if r <= o.late_after else o.tau_late
    return SparseSchedule(r, tau, o.dense_factor * tau, prob)


class SparseTemperature(Component):
    """Mixing weights softmax(alpha / tau) per softmax group, tau drawn per step (see :func:`sp_darts`)."""

    name = "sp-temperature"

    def __init__(self, options: SPDartsOptions) -> None:
        self.options = options
        self._key: tuple[int, int] | None = None
        self._tau = options.tau
        self._drawn = self._sparse = 0
        self._draws: list[bool] = []
        self._columns: dict[str, float | int | str | None] = {}

    def step_tau(self, state: SearchState) -> float:
        """The temperature of the current (epoch, step): sparse with the epoch's probability.

        The draws come from torch's global RNG (reseeded every epoch), all of an epoch's steps in
        one draw at its first step, so that the host reads random numbers once per epoch, not
        once per step."""
        key = (state.epoch, state.step)
        if key != self._key:
            schedule = sp_schedule(self.options, state.epoch, state.epochs)
            if state.step == 0 or self._key is None or self._key[0] != state.epoch:
                self._draws = []
            if state.step >= len(self._draws):
                more = max(state.steps, state.step + 1) - len(self._draws)
                self._draws += (torch.rand(more) < schedule.sparse_prob).tolist()
            sparse = self._draws[state.step]
            self._key, self._tau = key, schedule.sparse_tau if sparse else schedule.dense_tau
            self._drawn += 1
            self._sparse += sparse
        return self._tau

    def mixing(self, state: SearchState, alphas: torch.Tensor, phase: Phase) -> torch.Tensor | None:
        tau = self.options.tau_eval if phase == "eval" else self.step_tau(state)
        # the softmax subtracts the maximum, so alpha / 1e-4 cannot overflow; its gradient is
        # scaled by 1 / tau, which Adam's normalisation absorbs
        return state.space.softmax(alphas / tau)

    def end_of_epoch(self, state: SearchState, row: dict[str, Any]) -> None:
        schedule = sp_schedule(self.options, state.epoch, state.epochs)
        self._columns = {
            "sp_tau": schedule.sparse_tau,
            "sp_dense_tau": schedule.dense_tau,
            "sp_sparse_prob": schedule.sparse_prob,
            "sp_sparse_fraction": self._sparse / self._drawn if self._drawn else None,
        }
        self._key, self._drawn, self._sparse = None, 0, 0
        return None

    def state_columns(self) -> dict[str, float | int | str | None]:
        return dict(self._columns)


def sp_darts(options: dict[str, Any]) -> Method:
    """SP-DARTS (Zhang & Ding, 2023, "Robustifying DARTS by Eliminating Information Bypass Leakage
    via Explicit Sparse Regularization", arXiv:2306.06858, IEEE Xplore 9679117): first-order DARTS whose
    mixing weights are a low-temperature softmax, so little information bypasses the op the final
    net keeps.

    Formulas: mixing weights ``softmax(alpha / tau)`` per softmax group (NB201: per edge;
    NB-1Shot1: per group of ``space.group_sizes``). Each step (arch step and weight step alike)
    uses the sparse ``tau`` with probability C_t, else the dense ``dense_factor * tau``
    ("mixed-sparsity training"); the draw comes from torch's global RNG, which the loop reseeds
    every epoch, so a resumed run draws the same. The end-of-epoch supernet evaluation uses
    ``tau_eval`` (the paper's finalnet proxy). See :func:`sp_schedule` for the epochs.

    Defaults (official code, github.com/chaoji90/SP-DARTS, NB201 script ``DARTS-V1-100.py``):
    one warm-up epoch at 10 tau; tau = 0.0013, tau_late = 0.0006 from 0-based epoch 45
    (``late_after=45``); C starts at 0 and grows by 0.9/49 in every epoch after the warm-up
    before epoch 45, so C_t = 0.9/49, 2*0.9/49, ..., 44*0.9/49 = 0.81 and stays there (it never
    reaches 1); dense temperature 11 tau; validation at tau = 1e-4. The scripts also set the arch
    weight decay to 0 (``--set arch_optim.weight_decay=0``); the published script leaves the
    warm-up temperature unset, we take 10 * tau. The schedule is defined on a 50-epoch search
    and stretched onto the run's epochs (``reference_epochs=None`` applies it literally).
    Low-temperature alphas react to the number of arch steps: the ``cpu`` preset takes about 5x
    fewer steps per epoch than NB201's setting, so its softmax is less sparse at the same tau.

    NB-1Shot1: the paper gives no temperatures; the NB201 values are used as they are. Caveat:
    a group that keeps k > 1 parents (output, inputs) gets a near one-hot softmax, so there the
    supernet approximates a one-parent cell, not the final net.

    Trajectory columns: ``sp_tau`` (the epoch's sparse temperature), ``sp_dense_tau``,
    ``sp_sparse_prob`` (C_t, probability of the sparse temperature per step; 0 in warm-up) and
    ``sp_sparse_fraction`` (share of the epoch's steps that used the sparse temperature).
    """
    opts = parse_options(SPDartsOptions, options, "sp-darts")
    return Method(name="sp-darts", arch_step=FirstOrderStep(), components=[SparseTemperature(opts)])
