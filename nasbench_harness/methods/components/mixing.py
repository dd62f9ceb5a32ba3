"""Mixing components: how alphas become the supernet's mixing weights, other than a softmax or a sample.

- :class:`AuxiliarySkip` (DARTS-): the softmax plus a decaying constant on NB201's ``skip_connect``;
- :class:`SigmoidMixing` (FairDARTS): an independent sigmoid per op.
"""

from __future__ import annotations

from typing import Any

import torch

from nasbench_harness.methods.components.schedules import LinearSchedule
from nasbench_harness.methods.engine.base import Component, Phase, SearchState
from nasbench_harness.spaces.nb201 import OPS as NB201_OPS

SKIP = NB201_OPS.index("skip_connect")


class AuxiliarySkip(Component):
    """DARTS-'s auxiliary skip connection, ``beta = beta0 * (1 - progress)``, on every NB201 edge.

    Each edge computes ``sum_o w_o * o(x) + beta * x``; since NB201's ``skip_connect`` is the
    identity, that equals the supernet under mixing weights ``w + beta * e_skip`` (beta added
    to the ``skip_connect`` column, outside the softmax). beta is a constant, so the alphas'
    gradients are those of the auxiliary-skip network. Applied in every phase ("arch",
    "weights", and "eval": the supernet as trained). Column ``aux_skip_beta``: beta of the epoch.
    """

    name = "auxiliary-skip"

    def __init__(self, beta0: float) -> None:
        self.schedule = LinearSchedule(beta0, 0.0)
        self._beta: float | None = None

    def check_space(self, space: str) -> str | None:
        from nasbench_harness.spaces.catalog import SPACES, get_space_info

        ops = get_space_info(space).ops
        if "skip_connect" not in ops:
            usable = [name for name, info in SPACES.items() if "skip_connect" in info.ops]
            return (
                f"DARTS- adds an auxiliary skip connection through the skip_connect op, and {space}'s "
                f"choices have none (only {', '.join(ops)}); use --space {' or '.join(usable)}"
            )
        return None

    def mixing(self, state: SearchState, alphas: torch.Tensor, phase: Phase) -> torch.Tensor | None:
        weights = state.space.softmax(alphas)
        beta = self.schedule.at(state.progress)
        if beta == 0.0:
            return weights
        weights = weights.clone()
        weights[..., SKIP] += beta  # a Python scalar: no tensor built from host data
        return weights

    def end_of_epoch(self, state: SearchState, row: dict[str, Any]) -> None:
        self._beta = self.schedule.at(state.progress)
        return None

    def state_columns(self) -> dict[str, float | int | str | None]:
        return {"aux_skip_beta": self._beta}


class SigmoidMixing(Component):
    """FairDARTS's mixing: ``sigmoid(alpha)`` for every op independently (no softmax), in all phases."""

    name = "sigmoid-mixing"

    def mixing(self, state: SearchState, alphas: torch.Tensor, phase: Phase) -> torch.Tensor | None:
        return torch.sigmoid(alphas)
