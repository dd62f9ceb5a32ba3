"""Perturbations of the mixing weights the weight step trains under (SDARTS, Chen & Hsieh, 2020).

SDARTS trains the supernet's weights under ``A + delta`` instead of ``A = softmax(alpha)``, with
``||delta||_inf <= eps``, so that the weights are good in a neighbourhood of the architecture
and the validation loss becomes smooth in alpha:

- :class:`RandomPerturbation` (SDARTS-RS): ``delta ~ U[-eps, eps]`` elementwise.
- :class:`AdversarialPerturbation` (SDARTS-ADV): ``delta`` from projected gradient ascent on
  the weight-step loss of the current train batch (:func:`pgd_perturbation`).

After sampling and after every ascent step, each softmax group of the perturbed weights is put
back on the simplex by :func:`clip_to_simplex` (clip to [0, 1], renormalise to sum 1; the
official code's ``clip``), so the supernet only ever sees convex mixtures. This assumes the
weight step's mixing weights are a softmax per group (DARTS's); do not combine these components
with a mixing that is not (e.g. FairDARTS's sigmoids). ``eps`` follows a
:class:`~nasbench_harness.methods.components.regularizers.LinearSchedule` over the search.

Both components are stateless across epochs (eps is a function of the epoch; the random numbers
come from torch's global generator, which the loop reseeds from (seed, epoch)), so resumed runs
continue exactly; their checkpoint state is empty.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from nasbench_harness.errors import TrainingError
from nasbench_harness.methods.components.hessian import eval_mode
from nasbench_harness.methods.components.regularizers import LinearSchedule, groups_of
from nasbench_harness.methods.engine.base import Batch, Component, Plugin, SearchState


def clip_to_simplex(weights: torch.Tensor, group_sizes: Sequence[int]) -> torch.Tensor:
    """``weights`` with every softmax group clipped to [0, 1] and renormalised to sum 1.

    A group whose entries all clip to 0 becomes one-hot on its largest entry before clipping
    (as SDARTS's ``clip``). Not differentiable by design: it is applied between ascent steps.
    Returns a new tensor of ``weights``'s shape; groups as in
    :func:`~nasbench_harness.methods.components.regularizers.groups_of`.
    """
    with torch.no_grad():
        out = []
        for group in groups_of(weights.detach(), group_sizes):
            clipped = group.clamp(0.0, 1.0)
            total = clipped.sum()
            one_hot = torch.zeros_like(group).scatter_(0, group.argmax().reshape(1), 1.0)
            # no host sync: both branches are computed, the empty group's quotient is discarded
            out.append(torch.where(total > 0, clipped / total.clamp_min(torch.finfo(group.dtype).tiny), one_hot))
        return torch.cat(out).reshape(weights.shape)


@dataclass(frozen=True)
class PGDResult:
    """The weights the weight step trains under, and the losses that decided them."""

    weights: torch.Tensor
    loss_before: torch.Tensor
    """Loss at the unperturbed weights (0-dim, on the device)."""
    loss_after: torch.Tensor
    """Loss at the final PGD iterate (0-dim, on the device)."""
    kept: torch.Tensor
    """True unless the final iterate lowered the loss (then ``weights`` is unperturbed), as SDARTS
    (a 0-dim bool on the device: choosing reads nothing on the host)."""


def pgd_perturbation(
    loss_fn: Callable[[torch.Tensor], torch.Tensor],
    weights: torch.Tensor,
    group_sizes: Sequence[int],
    eps: float,
    steps: int = 7,
    random_start: bool = True,
) -> PGDResult:
    """L-inf projected gradient ascent of ``loss_fn`` around ``weights`` (SDARTS-ADV).

    Start at ``weights + U[-eps, eps]`` (``random_start``), then ``steps`` times:
    ``w <- w + (2 eps / steps) * sign(grad_w loss)``, project onto the L-inf ball of radius
    ``eps`` around ``weights``, then :func:`clip_to_simplex`. The final iterate is kept unless
    its loss is below the unperturbed loss (then the unperturbed weights are returned: zero
    perturbation), as SDARTS's code (``xiangning-chen/SmoothDARTS``, ``attacker/perturb.py``,
    ``Linf_PGD_alpha`` lines 38-42: restore only ``if loss_before > loss_after``). Random numbers
    come from torch's global generator.
    """
    base = weights.detach()
    with torch.no_grad():
        before = loss_fn(base).detach()
    w = base.clone()
    if random_start and eps > 0:
        w = clip_to_simplex(base + torch.empty_like(base).uniform_(-eps, eps), group_sizes)
    step_size = 2.0 * eps / steps
    for _ in range(steps if eps > 0 else 0):
        w = w.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(loss_fn(w), [w])
        with torch.no_grad():
            w = base + (w + step_size * grad.sign() - base).clamp(-eps, eps)
            w = clip_to_simplex(w, group_sizes)
    w = w.detach()
    with torch.no_grad():
        after = loss_fn(w).detach()
    kept = ~(before > after)
    return PGDResult(torch.where(kept, w, base), before, after, kept)


class RandomPerturbation(Component):
    """SDARTS-RS: the weight step trains under ``clip_to_simplex(A + U[-eps, eps])``.

    Column ``sdarts_eps``: eps of the epoch just trained.
    """

    name = "random-perturbation"

    def __init__(self, eps: LinearSchedule) -> None:
        self.eps = eps
        self._eps: float | None = None

    def weight_step_weights(self, state: SearchState, weights: torch.Tensor) -> torch.Tensor:
        eps = self.eps.at(state.progress)
        noise = torch.empty_like(weights).uniform_(-eps, eps)
        return clip_to_simplex(weights + noise, state.space.group_sizes)

    def end_of_epoch(self, state: SearchState, row: dict[str, Any]) -> None:
        self._eps = self.eps.at(state.progress)
        return None

    def state_columns(self) -> dict[str, float | int | str | None]:
        return {"sdarts_eps": self._eps}


class AdversarialPerturbation(Component):
    """SDARTS-ADV: the weight step trains under the :func:`pgd_perturbation` of its mixing weights.

    The attack ascends ``state.loss(batch, weights, "weights")`` on the current search-train
    batch (``state.batch``, set by the loop before the weight step) with the network in eval
    mode, as SDARTS's code (``attacker/perturb.py``, ``Linf_PGD_alpha`` lines 12-14 and 43-44:
    ``model.eval()`` for the attack, ``model.train()`` after it): BN layers that keep running
    statistics normalise with them (NB201's stem, residual blocks and head; the search cells
    too with ``model.bn_track_running_stats=true``, SDARTS's NB201 setting; with the default
    ``false`` the cells normalise with batch statistics in both modes), and no statistic moves.

    Columns: ``sdarts_eps`` (eps of the epoch just trained) and ``sdarts_adv_kept`` (fraction
    of that epoch's weight steps whose perturbation did not lower the loss and was used).
    """

    name = "adversarial-perturbation"

    def __init__(self, eps: LinearSchedule, steps: int = 7) -> None:
        self.eps = eps
        self.steps = steps
        self._eps: float | None = None
        self._kept = self._seen = 0
        self._kept_fraction: float | None = None

    def weight_step_weights(self, state: SearchState, weights: torch.Tensor) -> torch.Tensor:
        batch: Batch | None = getattr(state, "batch", None)
        if batch is None:
            raise TrainingError(
                "SDARTS-ADV needs the current search-train batch as state.batch during the weight step, "
                "but the search loop did not set it; update nasbench_harness (methods/loop.py sets it)"
            )
        if state.step == 0:  # a new epoch (also after a rollback): count afresh
            self._kept, self._seen = torch.zeros((), dtype=torch.int64, device=weights.device), 0

        def loss_fn(w: torch.Tensor) -> torch.Tensor:
            return state.loss(batch, w, "weights")[0]

        with eval_mode(state.net):
            result = pgd_perturbation(
                loss_fn, weights, state.space.group_sizes, self.eps.at(state.progress), self.steps
            )
        self._kept = self._kept + result.kept  # on the device; read once, at the end of the epoch
        self._seen += 1
        return result.weights

    def end_of_epoch(self, state: SearchState, row: dict[str, Any]) -> None:
        self._eps = self.eps.at(state.progress)
        self._kept_fraction = int(self._kept) / self._seen if self._seen else None
        return None

    def state_columns(self) -> dict[str, float | int | str | None]:
        return {"sdarts_eps": self._eps, "sdarts_adv_kept": self._kept_fraction}


class Perturbation(Plugin):
    """Changes the mixing weights the weight step trains under (as SDARTS does)."""

    def perturb(self, state: SearchState, weights: torch.Tensor) -> torch.Tensor:
        """The weights to train under, same shape as ``weights``."""
        raise NotImplementedError(f"{type(self).__name__} must implement perturb(state, weights)")

    def weight_step_weights(self, state: SearchState, weights: torch.Tensor) -> torch.Tensor:
        out = self.perturb(state, weights)
        if out.shape != weights.shape:
            raise TrainingError(f"{type(self).__name__}.perturb changed the weights' shape {tuple(weights.shape)}")
        return out
