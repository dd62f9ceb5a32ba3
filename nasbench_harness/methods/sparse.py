"""Two answers to the supernet-to-finalnet discretisation gap: SP-DARTS and the single-stage protocol.

SP-DARTS keeps DARTS's first-order search but mixes the ops with a softmax at a very low
temperature, so the supernet the alphas are trained in is nearly the discretised final net.
The single-stage protocol trains the supernet on hard (straight-through Gumbel) samples, then
freezes the architecture and keeps training its path only: the final net is the supernet,
with its own trained weights, and is never decoded from continuous weights or retrained.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import torch
from pydantic import Field, model_validator

from nasbench_harness.errors import ConfigError
from nasbench_harness.methods.base import ArchStep, Batch, Component, Method, Phase, SearchState
from nasbench_harness.methods.darts import FirstOrderStep
from nasbench_harness.methods.options import Options, parse_options

# -- SP-DARTS --------------------------------------------------------------------------------


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
        self._columns: dict[str, float | int | str | None] = {}

    def step_tau(self, state: SearchState) -> float:
        """The temperature of the current (epoch, step); drawn once per step from torch's global RNG."""
        key = (state.epoch, state.step)
        if key != self._key:
            schedule = sp_schedule(self.options, state.epoch, state.epochs)
            sparse = bool(torch.rand(()) < schedule.sparse_prob)
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


# -- single-stage ----------------------------------------------------------------------------


class SingleStageOptions(Options):
    """Hard-sample search, then a frozen architecture whose path keeps training."""

    tau_max: float = Field(10.0, gt=0, description="Gumbel-softmax temperature in epoch 1")
    tau_min: float = Field(0.1, gt=0, description="Gumbel-softmax temperature in the freeze epoch")
    entropy_weight: float = Field(0.0, ge=0, description="lambda of the entropy penalty on the arch loss")
    freeze_epoch: int | None = Field(None, ge=1, description="last epoch that trains the alphas (None: ceil(epochs/2))")

    @model_validator(mode="after")
    def _ordered(self) -> SingleStageOptions:
        if self.tau_min > self.tau_max:
            raise ValueError(f"tau_min ({self.tau_min}) must be <= tau_max ({self.tau_max})")
        return self


def group_entropy(alphas: torch.Tensor, group_sizes: tuple[int, ...]) -> torch.Tensor:
    """sum over softmax groups of H(softmax(alpha_g)) = -sum_i p_i log p_i, in nats."""
    total = alphas.new_zeros(())
    for part in alphas.reshape(-1).split(list(group_sizes)):
        log_p = torch.log_softmax(part, dim=0)
        total = total - (log_p.exp() * log_p).sum()
    return total


class SingleStage(ArchStep):
    """Arch step, mixing, forward options, penalty and derivation of :func:`single_stage`."""

    name = "single-stage"

    def __init__(self, options: SingleStageOptions) -> None:
        self.options = options
        self._darts = FirstOrderStep()
        self.frozen_epoch: int | None = None
        self._frozen: tuple[Any, torch.Tensor, Any] | None = None  # genotype, one-hot weights, mask
        self._sample: tuple[tuple[int, int], Any] | None = None  # (epoch, step), mask of the weight step
        self._columns: dict[str, float | int | str | None] = {}
        self._space: Any = None
        self._device = torch.device("cpu")
        self._freeze_at = 1

    @property
    def frozen(self) -> bool:
        """True once the architecture is frozen."""
        return self._frozen is not None

    def setup(self, state: SearchState) -> None:
        self._space, self._device = state.space, state.alphas.device
        wanted = self.options.freeze_epoch
        if wanted is not None and wanted > state.epochs:
            raise ConfigError(
                f"single-stage: freeze_epoch={wanted} is after the last epoch ({state.epochs}); "
                f"choose 1..{state.epochs}, or leave it unset for ceil(epochs / 2)"
            )
        self._freeze_at = wanted if wanted is not None else max(1, math.ceil(state.epochs / 2))

    def tau(self, epoch: int) -> float:
        """Gumbel temperature of ``epoch``: linear from tau_max (epoch 1) to tau_min (freeze epoch)."""
        o = self.options
        progress = min(1.0, (epoch - 1) / (self._freeze_at - 1)) if self._freeze_at > 1 else 0.0
        return o.tau_max - (o.tau_max - o.tau_min) * progress

    def step(self, state: SearchState, train: Batch, valid: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        if self.frozen:  # the architecture is fixed: nothing to learn, nothing to compute
            return torch.zeros(()), torch.zeros(0)
        return self._darts.step(state, train, valid)

    def mixing(self, state: SearchState, alphas: torch.Tensor, phase: Phase) -> torch.Tensor | None:
        if self._frozen is not None:
            weights = self._frozen[1]
            # keeps the graph to the alphas (zero gradient) for the Hessian eigenvalue
            return weights + 0.0 * alphas if phase == "arch" and alphas.requires_grad else weights
        if phase == "eval":
            return None  # the supernet as DARTS evaluates it: softmax(alpha)
        noise = -torch.empty_like(alphas).exponential_().log()  # Gumbel(0, 1), torch's global RNG
        genotype = state.space.derive(alphas.detach() + noise, state.method.include_none)
        hard, mask = state.space.final_net(genotype, alphas.device)
        hard = hard.to(alphas.dtype).reshape(alphas.shape)
        if phase == "weights":
            self._sample = ((state.epoch, state.step), mask)
            return hard
        soft = state.space.softmax((alphas + noise) / self.tau(state.epoch))
        return hard - soft.detach() + soft  # straight-through: forward hard, gradient of soft

    def forward_options(self, state: SearchState, phase: Phase) -> dict[str, Any]:
        if self._frozen is not None and phase in ("weights", "eval"):
            return {"mask": self._frozen[2]}
        if self._frozen is None and phase == "weights" and self._sample is not None:
            key, mask = self._sample
            if key == (state.epoch, state.step):
                return {"mask": mask}
        return {}

    def extra_loss(self, state: SearchState, phase: Phase, weights: torch.Tensor) -> torch.Tensor | None:
        if phase != "arch" or self.frozen or self.options.entropy_weight == 0:
            return None
        return self.options.entropy_weight * group_entropy(state.alphas, state.space.group_sizes)

    def end_of_epoch(self, state: SearchState, row: dict[str, Any]) -> None:
        if not self.frozen and state.epoch >= self._freeze_at:
            self._freeze(state.derive(), state.epoch)
        with torch.no_grad():
            entropy = float(group_entropy(state.alphas, state.space.group_sizes))
        self._columns = {
            "single_stage_frozen": self.frozen,
            "single_stage_tau": self.tau(min(state.epoch, self._freeze_at)),
            "single_stage_entropy": entropy,
        }
        self._sample = None
        return None

    def _freeze(self, genotype: Any, epoch: int) -> None:
        weights, mask = self._space.final_net(genotype, self._device)
        self._frozen, self.frozen_epoch = (genotype, weights, mask), epoch

    def derive(self, state: SearchState) -> Any:
        return self._frozen[0] if self._frozen is not None else None

    def final_net_batch_stats(self, state: SearchState) -> bool | None:
        """False once frozen: the final net is trained, its BN running statistics are its own.
        (For a loop hook proposed to the lead; the loop does not ask yet.)"""
        return False if self.frozen else None

    def state_columns(self) -> dict[str, float | int | str | None]:
        return dict(self._columns)

    def state_dict(self) -> dict[str, Any]:
        if self._frozen is None:
            return {"frozen_weights": None, "frozen_epoch": None}
        return {"frozen_weights": self._frozen[1].detach().cpu().clone(), "frozen_epoch": self.frozen_epoch}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        weights = state.get("frozen_weights")
        if weights is None:
            self._frozen = self.frozen_epoch = None
            return
        # one-hot weights derive back to exactly their genotype (every op may win, `none` included)
        self._freeze(self._space.derive(weights, True), int(state["frozen_epoch"]))


def single_stage(options: dict[str, Any]) -> Method:
    """Single-stage search (Subbotko, Jablonski & Bilinski, 2024, "The devil is in discretization
    discrepancy. Robustifying Differentiable NAS with Single-Stage Searching Protocol",
    arXiv:2405.16610): no decoding of continuous weights and no retraining; the architecture is
    frozen during the search and its path keeps training, so the supernet becomes the final net.

    Before the freeze: every forward uses a hard sample. The weight step trains the sampled path
    (one-hot weights and the path's mask); the arch step is a first-order DARTS step on the
    straight-through Gumbel-softmax ``hard - sg(soft) + soft``, ``soft = softmax((alpha + g) / tau)``,
    ``hard`` = the genotype the space derives from ``alpha + g`` (NB201: Gumbel-max per edge;
    NB-1Shot1: Gumbel-top-k per group, i.e. k parents drawn without replacement), with an optional
    penalty ``entropy_weight * sum_groups H(softmax(alpha_g))`` on the arch loss. tau falls
    linearly from ``tau_max`` (epoch 1) to ``tau_min`` (freeze epoch). The derived genotype is the
    argmax; the supernet evaluation uses softmax(alpha).

    At the end of epoch ``freeze_epoch`` the argmax genotype is frozen (checkpointed): from then on
    the arch step does nothing, every phase mixes with its one-hot weights and the weight step runs
    its path only (``mask``). The supernet evaluation (``valid_acc``) is then the final net with its
    own trained weights in eval mode; ``final_valid_acc`` is the same network evaluated by the loop
    with batch statistics in every BN (its rule for inherited weights), so the two differ by the BN
    statistics of the stem, reduction blocks and head, not by the architecture.

    Defaults: the paper's own temperatures and freeze point could not be checked (its text was not
    reachable); tau 10 -> 0.1 is GDAS's NB201 setting (Dong & Yang, 2019), the freeze at half of
    the run splits the budget between search and training the final net, and the entropy penalty
    is off because the paper reports that penalising entropy hinders the supernet.

    Trajectory columns: ``single_stage_frozen`` (the architecture is frozen after this epoch),
    ``single_stage_tau`` (Gumbel temperature of the epoch; tau_min once frozen) and
    ``single_stage_entropy`` (sum over groups of H(softmax(alpha)), nats, the penalty's H).
    """
    opts = parse_options(SingleStageOptions, options, "single-stage")
    return Method(name="single-stage", arch_step=SingleStage(opts))
