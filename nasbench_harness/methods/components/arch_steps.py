"""Architecture steps: how the alphas move, given a (search-train, search-valid) batch pair.

- :class:`FirstOrderStep` (DARTS first order, and the base of most methods): Adam on
  ``grad_alpha L_val(w, alpha)`` at the current weights.
- :class:`SecondOrderStep` (DARTS second order, Liu et al. 2019): the validation loss at one
  virtual SGD step of the weights, ``w' = w - xi * (momentum * buf + grad_w L_train + wd * w)``
  with ``xi`` the current weight learning rate; the mixed second derivative in the alpha
  gradient by a central finite difference with ``epsilon = 0.01 / ||grad_w' L_val||``.
- :class:`TrainLossStep` (SNAS): the alphas descend the *training* loss.

A method that stops updating the alphas after some epoch says so through the component hook
``arch_step_on`` (single-stage after freezing, rsws always); the loop then skips the step.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from nasbench_harness.methods.engine.base import ArchStep, Batch, SearchState


class FirstOrderStep(ArchStep):
    """alpha <- Adam step on grad_alpha L_val(w, alpha)."""

    name = "darts-1st"

    def step(self, state: SearchState, train: Batch, valid: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        loss, logits = state.loss(valid, state.mixing(), "arch")
        (grad,) = torch.autograd.grad(loss, [state.alphas])
        _apply(state, grad)
        return loss.detach(), logits.detach()


class SecondOrderStep(ArchStep):
    """alpha <- Adam step on the unrolled gradient, the Hessian-vector product by finite differences."""

    name = "darts-2nd"

    def step(self, state: SearchState, train: Batch, valid: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        params = [p for p in state.net.parameters() if p.requires_grad]
        backup = [p.detach().clone() for p in params]
        xi = state.weight_lr
        try:
            _virtual_step(state, train, params, xi)
            loss, logits = state.loss(valid, state.mixing(), "arch")
            grads = torch.autograd.grad(loss, [state.alphas, *params], allow_unused=True)
            direct = grads[0]
            d_weights = [g if g is not None else torch.zeros_like(p) for g, p in zip(grads[1:], params, strict=True)]
        finally:
            _restore(params, backup)

        def train_loss() -> torch.Tensor:
            return state.loss(train, state.mixing(phase="weights"), "weights")[0]

        hvp = finite_difference_hvp(train_loss, params, state.alphas, d_weights)
        _apply(state, direct - xi * hvp)
        return loss.detach(), logits.detach()


def finite_difference_hvp(
    loss_fn: Callable[[], torch.Tensor],
    params: Sequence[torch.Tensor],
    alphas: torch.Tensor,
    vector: Sequence[torch.Tensor],
    scale: float = 0.01,
) -> torch.Tensor:
    """(grad_a L(w + eps v) - grad_a L(w - eps v)) / (2 eps), eps = scale / ||v||.

    Approximates the mixed second derivative (d^2 L / d alpha d w) v without second-order
    autograd. ``params`` are perturbed in place and restored before returning.
    """
    norm = torch.sqrt(sum((v.detach() ** 2).sum() for v in vector))  # type: ignore[arg-type]
    # Decided on the device (no host read): a zero or non-finite norm gives a zero product.
    usable = torch.isfinite(norm) & (norm > 0)
    eps = scale / torch.where(usable, norm, 1.0)
    _shift(params, vector, eps)
    (grad_plus,) = torch.autograd.grad(loss_fn(), [alphas])
    _shift(params, vector, -2 * eps)
    (grad_minus,) = torch.autograd.grad(loss_fn(), [alphas])
    _shift(params, vector, eps)
    return torch.where(usable, (grad_plus - grad_minus) / (2 * eps), 0.0)


def _shift(params: Sequence[torch.Tensor], vector: Sequence[torch.Tensor], amount: torch.Tensor) -> None:
    """``p += amount * v`` for every pair; ``amount`` a 0-dim device tensor (no host read)."""
    with torch.no_grad():
        for p, v in zip(params, vector, strict=True):
            p.add_(v * amount)


def _restore(params: Sequence[torch.Tensor], backup: Sequence[torch.Tensor]) -> None:
    with torch.no_grad():
        for p, b in zip(params, backup, strict=True):
            p.copy_(b)


def _virtual_step(state: SearchState, train: Batch, params: list[torch.Tensor], xi: float) -> None:
    """w <- w - xi * (momentum * buf + grad_w L_train + wd * w), in place (DARTS's unrolled model)."""
    loss, _ = state.loss(train, state.mixing(phase="weights").detach(), "weights")
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    group = state.w_optim.param_groups[0]
    momentum, wd = float(group.get("momentum", 0.0)), float(group.get("weight_decay", 0.0))
    with torch.no_grad():
        for p, g in zip(params, grads, strict=True):
            d = (g if g is not None else torch.zeros_like(p)) + wd * p
            buf = state.w_optim.state.get(p, {}).get("momentum_buffer")
            if buf is not None:
                d = d + momentum * buf
            p.sub_(xi * d)


def _apply(state: SearchState, grad: torch.Tensor) -> None:
    """One optimiser step of the alphas along ``grad``. Watched, not read (the loop reads them
    every few steps, :meth:`~SearchState.check_finite`): the gradient's finiteness (else the
    weights or the loss diverged before) and the alphas' after the step (else its learning rate)."""
    from nasbench_harness.methods.engine.steps import diverged

    state.watch(
        ("arch", "gradient"),
        grad,
        lambda where, _: diverged(state, "the architecture gradient became non-finite", where),
    )
    state.a_optim.zero_grad(set_to_none=True)
    state.alphas.grad = grad.detach()
    state.a_optim.step()
    state.watch(
        ("arch", "alphas"),
        state.alphas,
        lambda where, _: diverged(state, "the architecture step left the alphas non-finite", where, arch_step=True),
    )


class TrainLossStep(ArchStep):
    """alpha <- optimiser step on grad_alpha L_train(w, mixing(alpha)): the arch step of SNAS.

    Uses the *training* batch; the validation batch is ignored. Returns the (training) loss and
    logits of the step, detached.
    """

    name = "train-loss"

    def step(self, state: SearchState, train: Batch, valid: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        loss, logits = state.loss(train, state.mixing(), "arch")
        (grad,) = torch.autograd.grad(loss, [state.alphas])
        _apply(state, grad)
        return loss.detach(), logits.detach()
