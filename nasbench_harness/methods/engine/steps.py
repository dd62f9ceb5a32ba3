"""One step of a search: the arch step and the weight step of a batch pair, and the errors of a
search whose numbers stopped being finite.

Nothing here reads a value back from the device: a non-finite loss, gradient or alpha is
:meth:`~nasbench_harness.methods.engine.base.SearchState.watch`ed, and the loop reads the
watched flags every ``tracking.sync_every`` steps.
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch

from nasbench_harness.errors import TrainingError
from nasbench_harness.methods.engine.base import Batch, Component, SearchState


def training_step(state: SearchState, train: Batch, valid: Batch) -> tuple[torch.Tensor, torch.Tensor]:
    """What the loop does for one batch pair (``state.step`` set by the caller): the arch step on
    (``train``, ``valid``) unless a component turns it off this epoch, then the weight step on
    ``train``; returns the weight step's (loss, logits), detached, on the device."""
    state.batch, state.arch_batch = train, valid
    if state.arch_step_on():
        state.method.arch_step.step(state, train, valid)
    return weight_step(state, train)


def weight_step(state: SearchState, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
    """One SGD step of the weights under the method's view of the architecture; (loss, logits),
    detached. A non-finite loss is :meth:`~SearchState.watch`ed, not read: the run stops at the
    next :meth:`~SearchState.check_finite`, naming the step. With ``speed.cuda_graph`` the step
    is replayed from a CUDA graph (:mod:`.graphs`)."""
    if state.weight_step_graph is None:
        return eager_weight_step(state, batch)
    loss, logits = state.weight_step_graph(state, batch, eager_weight_step)
    state.watch(
        ("loss", "weights"), loss, lambda where, value: diverged(state, f"the weight-step loss became {value}", where)
    )
    return loss, logits


def eager_weight_step(state: SearchState, batch: Batch, watch: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`weight_step` as Python runs it (``watch=False``: leave the loss unwatched, for a capture)."""
    weights = state.mixing(phase="weights").detach()
    for component in state.method.all_components:
        weights = component.weight_step_weights(state, weights)
    state.w_optim.zero_grad(set_to_none=True)
    with _weight_step_precision(state, batch[0].device):
        loss, logits = state.loss(batch, weights, "weights")
    if watch:
        state.watch(
            ("loss", "weights"),
            loss,
            lambda where, value: diverged(state, f"the weight-step loss became {value}", where),
        )
    loss.backward()
    if state.grad_clip:
        torch.nn.utils.clip_grad_norm_(state.net.parameters(), state.grad_clip)
    state.w_optim.step()
    return loss.detach(), logits.detach()


def _weight_step_precision(state: SearchState, device: torch.device) -> Any:
    """bfloat16 autocast when the run asked for it (``speed.amp_bf16``), else nothing."""
    if state.weight_step_dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=state.weight_step_dtype)


def diverged(state: SearchState, what: str, where: str | None = None, arch_step: bool = False) -> TrainingError:
    """The error of a search whose numbers stopped being finite: ``what`` happened ``where``
    (default: the current epoch and step), and what to change (:func:`divergence_advice`)."""
    # Read later than it happened (``where`` given), the alphas may have been spoilt since by
    # the diverged weights: only ``arch_step`` then says the alphas diverged first.
    advice = divergence_advice(state, arch_step, alphas_now=where is None)
    where = where or f"in epoch {state.epoch}, step {state.step + 1}"
    return TrainingError(f"{what} {where}; the run stops here and keeps the epochs already written. {advice}")


def divergence_advice(state: SearchState, arch_step: bool = False, alphas_now: bool = True) -> str:
    """What to change after a non-finite value, from the run's own settings: the alphas' learning
    rate when they diverged (``arch_step``: their own update did; ``alphas_now``: or they are
    non-finite now), else the weights' (gradient clipping only when it is off), and the weight of
    any extra loss term."""
    extra = sorted(
        {type(c).__name__ for c in state.method.all_components if type(c).extra_loss is not Component.extra_loss}
    )
    terms = f", or the weight of the extra loss terms ({', '.join(extra)[:80]})" if extra else ""
    if arch_step or (alphas_now and not bool(torch.isfinite(state.alphas.detach()).all())):
        lr = state.a_optim.param_groups[0]["lr"]
        return f"The alphas diverged: lower their learning rate (--set arch_optim.lr=..., now {lr:g}){terms}"
    lr = state.w_optim.param_groups[0]["lr"]
    clip = (
        f"Gradient clipping is already on (optim.grad_clip={state.grad_clip:g}): lower" if state.grad_clip else "Lower"
    )
    advice = f"{clip} the learning rate (--set optim.lr=..., now {lr:g})"
    return advice + ("" if state.grad_clip else " or enable gradient clipping (--set optim.grad_clip=5)") + terms
