"""What a search method is: an architecture step plus components plugged into fixed hook points.

The loop (:mod:`nasbench_harness.methods.loop`) calls, for every batch pair:

1. ``method.arch_step.step(state, train_batch, valid_batch)``: update the alphas;
2. ``component.weight_step_weights(state, weights)``: how the weights see the architecture
   during the weight step (DARTS: the softmax as is; SDARTS: perturbed; GDAS: sampled);
3. ``component.extra_loss(state, phase, weights)``: regularisers added to the loss of the
   weight step (``phase="weights"``) or the arch step (``phase="arch"``);

and after each epoch ``component.end_of_epoch(state, row)`` (may stop the search, e.g.
early stopping on the Hessian eigenvalue) and ``state.derive()``. Components report
``state_columns()`` into the trajectory. No hook knows which method it belongs to.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from nasbench_harness.methods.spaces import SearchSpaceAdapter

Batch = tuple[torch.Tensor, torch.Tensor]


@dataclass
class SearchState:
    """The live objects of a search, handed to every hook."""

    net: torch.nn.Module
    alphas: torch.nn.Parameter
    w_optim: torch.optim.Optimizer
    a_optim: torch.optim.Optimizer
    grad_clip: float | None
    method: Method
    space: SearchSpaceAdapter
    epoch: int = 0
    step: int = 0

    def mixing(self, alphas: torch.Tensor | None = None) -> torch.Tensor:
        """The mixing weights the supernet sees for ``alphas`` (default: the current ones)."""
        alphas = self.alphas if alphas is None else alphas
        return self.method.mixing(alphas) if self.method.mixing is not None else self.space.softmax(alphas)

    def derive(self) -> Any:
        """The genotype the method returns for the current alphas."""
        return self.space.derive(self.alphas, self.method.include_none)

    def loss(self, batch: Batch, weights: torch.Tensor, phase: str) -> tuple[torch.Tensor, torch.Tensor]:
        """(cross-entropy + the components' extra terms for ``phase``, logits)."""
        x, y = batch
        logits = self.net(x, weights)
        loss = F.cross_entropy(logits, y)
        for component in self.method.all_components:
            extra = component.extra_loss(self, phase, weights)
            if extra is not None:
                loss = loss + extra
        return loss, logits

    @property
    def weight_lr(self) -> float:
        """The weight optimiser's current learning rate."""
        return float(self.w_optim.param_groups[0]["lr"])


class Component:
    """A piece of a method. Every hook is optional; the defaults change nothing."""

    name = "component"

    def setup(self, state: SearchState) -> None:
        """Called once the network, alphas and optimisers exist (also on resume)."""

    def weight_step_weights(self, state: SearchState, weights: torch.Tensor) -> torch.Tensor:
        """The mixing weights the weight step trains under."""
        return weights

    def extra_loss(self, state: SearchState, phase: str, weights: torch.Tensor) -> torch.Tensor | None:
        """A term added to the loss of ``phase`` ("weights" or "arch")."""
        return None

    def end_of_epoch(self, state: SearchState, row: dict[str, Any]) -> str | None:
        """Look at the finished epoch's trajectory row; return a reason to stop the search, or None."""
        return None

    def state_columns(self) -> dict[str, float | int | str | None]:
        """Method-state values for the trajectory (e.g. the current epsilon)."""
        return {}

    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint keeps of this component."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` on resume."""


class ArchStep(Component):
    """How the alphas are updated from a (train batch, valid batch) pair."""

    name = "arch-step"

    def step(self, state: SearchState, train: Batch, valid: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """Update ``state.alphas``; return (valid loss, valid logits) of the supernet, detached."""
        raise NotImplementedError


@dataclass
class Method:
    """A search method: an arch step, components, and how alphas become mixing weights.

    ``mixing=None`` uses the space's softmax per edge (or per group of alphas); the derived
    genotype is the space's argmax rule, with ``include_none`` deciding whether NB201's
    ``none`` may win an edge.
    """

    name: str
    arch_step: ArchStep
    components: Sequence[Component] = field(default_factory=list)
    mixing: Callable[[torch.Tensor], torch.Tensor] | None = None
    include_none: bool = True

    @property
    def all_components(self) -> list[Component]:
        """The arch step followed by the other components."""
        return [self.arch_step, *self.components]

    def state_columns(self) -> dict[str, Any]:
        """All components' method-state columns."""
        out: dict[str, Any] = {}
        for component in self.all_components:
            out.update(component.state_columns())
        return out
