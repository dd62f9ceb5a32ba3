"""Stochastic mixing weights: samplers that replace the per-group softmax (GDAS, SNAS, DrNAS).

Every sampler treats the alphas group by group (a softmax group of the space: NB201's six
edges of 5 ops, NB-1Shot1's op, output and input groups, ``state.space.group_sizes``):

- :func:`relaxed_sample` (Gumbel-softmax, Jang et al. 2017; Maddison et al. 2017):
  ``softmax((log_softmax(alpha) + g) / tau)`` with ``g = -log(E)``, ``E ~ Exp(1)`` i.i.d.;
- :func:`straight_through`: the one-hot of the sample's argmax (a Gumbel-max draw from
  ``softmax(alpha)``) whose gradient is the relaxed sample's: ``one_hot + (y - stop_grad(y))``,
  so the forward value is exactly one-hot and the backward that of ``y``;
- :func:`dirichlet_sample`: a reparameterised draw from ``Dir(ELU(alpha) + 1)``.

Samples are drawn anew at every call, from torch's global generator, which the search loop
reseeds from (seed, epoch) at the start of every epoch: runs are reproducible, and a run resumed
after epoch k draws exactly the samples the uninterrupted run drew. No sampler keeps state
across steps in its checkpoint.

The Hessian eigenvalue the loop tracks differentiates the ``arch`` mixing twice, which here is
one random draw: for GDAS the straight-through surrogate of one one-hot sample (its curvature
scales with 1 / tau^2, so it follows the temperature schedule), for SNAS one relaxed sample,
and for DrNAS no Hessian of the loss at all (torch's ``Dirichlet.rsample`` is only once
differentiable, so the second derivative never reaches the network). The deterministic,
twice-differentiable mixing of each method is its ``eval`` mixing (``softmax(alpha)`` for
GDAS and SNAS, the Dirichlet mean for DrNAS).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch.distributions import Dirichlet, kl_divergence

from nasbench_harness.errors import ConfigError
from nasbench_harness.methods.components.groups import group_rows, map_groups
from nasbench_harness.methods.components.schedules import TemperatureSchedule
from nasbench_harness.methods.engine.base import Component, Phase, Plugin, SearchState

RowFn = Callable[[torch.Tensor], torch.Tensor]


def gumbel_noise(like: torch.Tensor) -> torch.Tensor:
    """Standard Gumbel noise shaped like ``like``: ``-log(E)``, ``E ~ Exp(1)`` from the global generator.

    ``E`` is clamped away from 0 (where ``-log`` would be infinite), so every call draws the same
    number of random values and the noise is always finite.
    """
    e = torch.empty_like(like).exponential_()
    return -e.clamp_min(torch.finfo(e.dtype).tiny).log()


def relaxed_sample(alphas: torch.Tensor, group_sizes: Sequence[int], tau: float) -> torch.Tensor:
    """Gumbel-softmax sample per group: ``softmax((log_softmax(alpha) + g) / tau)`` (differentiable)."""
    if tau <= 0:
        raise ConfigError(f"the Gumbel-softmax temperature must be > 0, got {tau}")
    return map_groups(alphas, group_sizes, lambda a: torch.softmax((a.log_softmax(-1) + gumbel_noise(a)) / tau, -1))


def straight_through(soft: torch.Tensor) -> torch.Tensor:
    """Rows of ``soft`` (k, n) made one-hot at their argmax, with the gradient of ``soft``.

    The value is exactly one-hot (``soft - soft.detach()`` is exactly 0); the backward pass is
    the identity onto ``soft`` (GDAS's straight-through estimator).
    """
    one_hot = torch.zeros_like(soft).scatter_(-1, soft.detach().argmax(-1, keepdim=True), 1.0)
    return one_hot + (soft - soft.detach())


def dirichlet_concentration(alphas: torch.Tensor) -> torch.Tensor:
    """DrNAS's concentration ``beta = ELU(alpha) + 1`` (> 0, increasing in alpha, 1 at alpha = 0)."""
    return F.elu(alphas) + 1.0


def dirichlet_sample(alphas: torch.Tensor, group_sizes: Sequence[int]) -> torch.Tensor:
    """A reparameterised draw from ``Dir(ELU(alpha) + 1)`` per group (rows on the simplex).

    Unvalidated: ELU + 1 is positive by construction, and torch's check would read the
    concentration on the host at every call."""
    return map_groups(
        dirichlet_concentration(alphas), group_sizes, lambda b: Dirichlet(b, validate_args=False).rsample()
    )


def dirichlet_mean(alphas: torch.Tensor, group_sizes: Sequence[int]) -> torch.Tensor:
    """The mean ``beta / sum(beta)`` of ``Dir(ELU(alpha) + 1)`` per group."""
    return map_groups(dirichlet_concentration(alphas), group_sizes, lambda b: b / b.sum(-1, keepdim=True))


def dirichlet_kl(alphas: torch.Tensor, group_sizes: Sequence[int], prior: float = 1.0) -> torch.Tensor:
    """``sum_groups KL(Dir(ELU(alpha) + 1) || Dir(prior * 1))`` in nats (a scalar, differentiable)."""
    blocks = group_rows(dirichlet_concentration(alphas), group_sizes)
    return sum(
        (
            kl_divergence(
                Dirichlet(b, validate_args=False), Dirichlet(torch.full_like(b, prior), validate_args=False)
            ).sum()
            for b in blocks
        ),
        torch.zeros((), dtype=alphas.dtype, device=alphas.device),
    )


def sampled_groups(space: Any, only_ops: bool) -> tuple[bool, ...]:
    """Which softmax groups of ``space`` a hard sampler samples: all, or (``only_ops``) NB-1Shot1's
    ``ops*`` groups only (its ``output`` and ``inputs*`` groups stay soft). NB201: all six edges."""
    return tuple(space.op_groups) if only_ops else (True,) * len(space.group_sizes)


class TemperedSampler(Component):
    """A sampler whose relaxation temperature follows a schedule over the epochs; reports it in
    the column ``tau_column`` and forgets its per-step sample after every epoch."""

    tau_column: ClassVar[str] = "tau"

    def __init__(self, tau: TemperatureSchedule) -> None:
        self.tau = tau
        self._tau_now: float | None = None

    def temperature(self, state: SearchState) -> float:
        """Tau of the current epoch."""
        self._tau_now = self.tau.at(state.epoch, state.epochs)
        return self._tau_now

    def forget(self) -> None:
        """Drop what was kept of the last step (a sample, forward options)."""

    def end_of_epoch(self, state: SearchState, row: dict[str, Any]) -> None:
        self.temperature(state)
        self.forget()
        return None

    def state_columns(self) -> dict[str, float | int | str | None]:
        return {self.tau_column: self._tau_now}


class GumbelSampler(TemperedSampler):
    """GDAS's mixing: one op per group by Gumbel-max, straight-through gradient.

    Phases ``arch``/``weights``: a fresh sample per call; sampled groups are exactly one-hot
    (straight-through gradient of the relaxed sample at temperature tau), the other groups
    (NB-1Shot1's inputs/outputs, see :func:`sampled_groups`) are the relaxed sample itself
    (``soft="gumbel"``) or ``softmax(alpha)`` (``soft="softmax"``). Phase ``eval``:
    ``softmax(alpha)`` (``eval_mixing="softmax"``: the probabilities the one-hot is drawn
    with, its mean) or the one-hot of ``argmax(alpha)`` in the sampled groups (``"argmax"``).

    ``gradient="reference"``: in both phases the supernet computes a sample as the space's GDAS
    code does (the adapter's ``sampled_ops_forward``: NB201, only the sampled op per edge and the
    others' weights added as constants; NB-1Shot1, only the sampled ops). The arch step's
    gradient is then the published method's (an unsampled op's hard weight gets the sum of its
    node's gradient on NB201, nothing on NB-1Shot1), and ops not computed get no weight gradient, so SGD
    skips their weight decay and momentum that step, as in GDAS's code. ``"straight-through"``:
    every op is computed; an unsampled weight gets the exact straight-through ``<grad, op(x)>``.

    Column ``gdas_tau``: the temperature of the epoch.
    """

    name = "gdas-sampler"
    tau_column = "gdas_tau"

    def __init__(
        self,
        tau: TemperatureSchedule,
        only_ops: bool = True,
        soft: str = "gumbel",
        eval_mixing: str = "softmax",
        gradient: str = "reference",
    ) -> None:
        super().__init__(tau)
        self.only_ops, self.soft = only_ops, soft
        self.eval_mixing, self.gradient = eval_mixing, gradient
        self._hard: tuple[bool, ...] = ()
        self._options: tuple[tuple[str, int, int], dict[str, Any]] | None = None

    def setup(self, state: SearchState) -> None:
        self._hard = sampled_groups(state.space, self.only_ops)

    def mixing(self, state: SearchState, alphas: torch.Tensor, phase: Phase) -> torch.Tensor:
        sizes = state.space.group_sizes
        hard = self._hard or sampled_groups(state.space, self.only_ops)
        if phase == "eval":
            if self.eval_mixing == "softmax":
                return state.space.softmax(alphas)
            return _per_group(state.space.softmax(alphas), sizes, hard, straight_through, None)
        soft = relaxed_sample(alphas, sizes, self.temperature(state))
        other = state.space.softmax(alphas) if self.soft == "softmax" else soft
        weights = _per_group(soft, sizes, hard, straight_through, other)
        if self.gradient == "reference":
            self._options = ((phase, state.epoch, state.step), state.space.sampled_ops_forward(weights))
        return weights

    def forward_options(self, state: SearchState, phase: Phase) -> dict[str, Any]:
        if self._options is None or self._options[0] != (phase, state.epoch, state.step):
            return {}
        return self._options[1]

    def forget(self) -> None:
        self._options = None


class RelaxedSampler(TemperedSampler):
    """SNAS's mixing: a relaxed Gumbel-softmax sample in every group.

    Phase ``arch``: a fresh sample (differentiable in alpha), kept for the weight step of the
    same batch; phase ``weights``: that kept sample (so the arch step and the weight step of a
    batch together make SNAS's single update of alphas and weights from one sample and one
    training loss), or a fresh one when none was kept; phase ``eval``: ``softmax(alpha)`` (the
    probabilities of the categorical the sample relaxes).

    Column ``snas_tau``: the temperature of the epoch.
    """

    name = "snas-sampler"
    tau_column = "snas_tau"

    def __init__(self, tau: TemperatureSchedule) -> None:
        super().__init__(tau)
        self._kept: tuple[tuple[int, int], torch.Tensor] | None = None

    def mixing(self, state: SearchState, alphas: torch.Tensor, phase: Phase) -> torch.Tensor:
        if phase == "eval":
            return state.space.softmax(alphas)
        key = (state.epoch, state.step)
        if phase == "weights" and self._kept is not None and self._kept[0] == key:
            weights, self._kept = self._kept[1], None
            return weights
        weights = relaxed_sample(alphas, state.space.group_sizes, self.temperature(state))
        if phase == "arch" and alphas is state.alphas:
            self._kept = (key, weights.detach())
        return weights

    def forget(self) -> None:
        self._kept = None


class DirichletSampler(Component):
    """DrNAS's mixing and regulariser.

    Phases ``arch``/``weights``: a fresh draw from ``Dir(beta)``, ``beta = ELU(alpha) + 1``, per
    group (pathwise gradient); ``eval``: the mean ``beta / sum(beta)``. The arch loss gets
    ``reg_scale * R`` with ``R = sum_groups KL(Dir(beta) || Dir(1))`` (``reg="kl"``) or
    ``R = ||alpha||^2 / 2`` (``reg="l2"``: the gradient ``reg_scale * alpha`` of Adam's weight
    decay on alpha, as DrNAS's code; it equals ``||beta - 1||^2 / 2`` where alpha >= 0).
    ``replace_arch_weight_decay`` sets the arch optimiser's own weight decay to 0 at setup, as
    DrNAS's code, whose regulariser replaces it.

    Column ``drnas_reg``: ``R`` (unscaled; nats for KL) of the alphas at the end of the epoch.
    """

    name = "dirichlet-sampler"

    def __init__(self, reg: str = "l2", reg_scale: float = 1e-3, replace_arch_weight_decay: bool = True) -> None:
        self.reg, self.reg_scale, self.replace = reg, reg_scale, replace_arch_weight_decay
        self._reg_now: float | None = None

    def setup(self, state: SearchState) -> None:
        if self.replace:
            for group in state.a_optim.param_groups:
                group["weight_decay"] = 0.0

    def regulariser(self, state: SearchState, alphas: torch.Tensor) -> torch.Tensor:
        """``R`` of ``alphas`` (unscaled)."""
        if self.reg == "kl":
            return dirichlet_kl(alphas, state.space.group_sizes)
        return 0.5 * (alphas**2).sum()

    def mixing(self, state: SearchState, alphas: torch.Tensor, phase: Phase) -> torch.Tensor:
        if phase == "eval":
            return dirichlet_mean(alphas, state.space.group_sizes)
        return dirichlet_sample(alphas, state.space.group_sizes)

    def extra_loss(self, state: SearchState, phase: Phase, weights: torch.Tensor) -> torch.Tensor | None:
        if phase != "arch" or self.reg_scale == 0.0:
            return None
        return self.reg_scale * self.regulariser(state, state.alphas)

    def end_of_epoch(self, state: SearchState, row: dict[str, Any]) -> None:
        with torch.no_grad():
            self._reg_now = float(self.regulariser(state, state.alphas))
        return None

    def state_columns(self) -> dict[str, float | int | str | None]:
        return {"drnas_reg": self._reg_now}


def _per_group(
    values: torch.Tensor, sizes: Sequence[int], hard: Sequence[bool], fn: RowFn, other: torch.Tensor | None
) -> torch.Tensor:
    """``fn`` on the groups flagged ``hard``; the others from ``other`` (None: ``values``)."""
    if all(hard):
        return map_groups(values, sizes, fn)
    other = values if other is None else other
    parts = values.reshape(-1).split(list(sizes))
    rest = other.reshape(-1).split(list(sizes))
    out = [fn(p.unsqueeze(0)).squeeze(0) if h else r for p, r, h in zip(parts, rest, hard, strict=True)]
    return torch.cat(out).reshape(values.shape)


class Sampler(Plugin):
    """Turns alphas into mixing weights for a phase (None: leave it to the default softmax)."""

    def sample(self, state: SearchState, alphas: torch.Tensor, phase: Phase) -> torch.Tensor | None:
        """Mixing weights for ``alphas`` in ``phase``."""
        raise NotImplementedError(f"{type(self).__name__} must implement sample(state, alphas, phase)")

    def mixing(self, state: SearchState, alphas: torch.Tensor, phase: Phase) -> torch.Tensor | None:
        return self.sample(state, alphas, phase)
