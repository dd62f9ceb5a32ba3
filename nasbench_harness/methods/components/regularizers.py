"""Regularisers of the architecture parameters, as components a method (or a user) can combine.

- :class:`BetaDecay` (beta-DARTS, Ye et al., 2022): ``lambda(t) * L_beta`` added to the arch
  loss, with ``L_beta`` the mean over softmax groups (edges) of ``logsumexp(alpha_group)``
  (:func:`beta_decay_loss`).
- :class:`ZeroOneLoss` (FairDARTS, Chu et al., 2020): ``w01(t) * L01`` added to the arch loss,
  ``L01 = -(1/N) sum_i (sigmoid(alpha_i) - 0.5)^2`` over all N alphas (:func:`zero_one_loss`).

Their weights follow a :class:`LinearSchedule` in the search's progress
(``(epoch - 1) / (epochs - 1)``), so both are stateless functions of the epoch: a resumed run
recomputes them exactly and their checkpoint state is empty.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from nasbench_harness.methods.base import Component, Phase, SearchState


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


def groups_of(tensor: torch.Tensor, group_sizes: Sequence[int]) -> list[torch.Tensor]:
    """``tensor`` flattened and split into consecutive softmax groups of ``group_sizes``.

    NB201's (6, 5) alphas or weights give its six rows (edges); a (num_cells, 6, 5) tensor gives
    every cell's rows (the sizes repeat); an NB-1Shot1 flat vector gives its layout's groups.
    """
    flat = tensor.reshape(-1)
    total = sum(group_sizes)
    if total == 0 or flat.numel() % total:
        from nasbench_harness.errors import ConfigError

        raise ConfigError(
            f"a tensor of {flat.numel()} values cannot be split into softmax groups {tuple(group_sizes)} "
            f"(it must hold a multiple of {total} values)"
        )
    return list(flat.split(list(group_sizes) * (flat.numel() // total)))


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


class BetaDecay(Component):
    """``weight.at(progress) * beta_decay_loss(alphas)`` added to the arch-step loss.

    Columns: ``beta_weight`` (lambda of the epoch just trained) and ``beta_reg`` (``L_beta`` of
    the alphas at the end of that epoch, unweighted).
    """

    name = "beta-decay"

    def __init__(self, weight: LinearSchedule) -> None:
        self.weight = weight
        self._columns: dict[str, float | None] = {"beta_weight": None, "beta_reg": None}

    def extra_loss(self, state: SearchState, phase: Phase, weights: torch.Tensor) -> torch.Tensor | None:
        if phase != "arch":
            return None
        lam = self.weight.at(state.progress)
        if lam == 0.0:
            return None
        return lam * beta_decay_loss(state.alphas, state.space.group_sizes)

    def end_of_epoch(self, state: SearchState, row: dict[str, Any]) -> None:
        with torch.no_grad():
            value = float(beta_decay_loss(state.alphas, state.space.group_sizes))
        self._columns = {"beta_weight": self.weight.at(state.progress), "beta_reg": value}
        return None

    def state_columns(self) -> dict[str, float | int | str | None]:
        return dict(self._columns)


class ZeroOneLoss(Component):
    """``weight.at(progress) * zero_one_loss(alphas)`` added to the arch-step loss.

    Column: ``zero_one_loss`` (``L01`` of the alphas at the end of the epoch, unweighted).
    """

    name = "zero-one-loss"

    def __init__(self, weight: LinearSchedule) -> None:
        self.weight = weight
        self._value: float | None = None

    def extra_loss(self, state: SearchState, phase: Phase, weights: torch.Tensor) -> torch.Tensor | None:
        if phase != "arch":
            return None
        w = self.weight.at(state.progress)
        return None if w == 0.0 else w * zero_one_loss(state.alphas)

    def end_of_epoch(self, state: SearchState, row: dict[str, Any]) -> None:
        with torch.no_grad():
            self._value = float(zero_one_loss(state.alphas))
        return None

    def state_columns(self) -> dict[str, float | int | str | None]:
        return {"zero_one_loss": self._value}
