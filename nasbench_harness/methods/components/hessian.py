"""The dominant eigenvalue of the Hessian of the validation loss with respect to the alphas.

R-DARTS (Zela et al., 2020) tracks it because it grows when DARTS drifts towards parameter-free
cells. For NB201's 30 alphas the Hessian is built exactly (one Hessian-vector product per
alpha, by double backward); larger spaces use power iteration on Hessian-vector products.
The network runs in training mode, as the arch step sees it; BN running statistics are left
untouched.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

EXACT_LIMIT = 64
"""Up to this many alphas the Hessian is built exactly."""


@dataclass(frozen=True)
class Eigen:
    """The dominant eigenvalue (largest algebraic) and how it was computed."""

    value: float
    method: str  # "exact" | "power"


def alpha_hessian(
    loss_fn: Callable[[torch.Tensor], torch.Tensor], alphas: torch.Tensor, basis: torch.Tensor | None = None
) -> torch.Tensor:
    """The exact Hessian d^2 loss / d alpha^2, symmetrised, in float64.

    Without ``basis``: (n, n) for n = alphas.numel(), one Hessian-vector product per alpha.
    With an orthonormal ``basis`` (n, k): the (k, k) matrix B^T H B, from k products.
    """
    a = alphas.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(loss_fn(a), [a], create_graph=True, allow_unused=True)
    if grad is None or not grad.requires_grad:  # the loss is flat (or linear) in the alphas
        k = a.numel() if basis is None else basis.shape[1]
        return torch.zeros(k, k, dtype=torch.float64, device=a.device)
    n = grad.numel()
    directions = torch.eye(n, dtype=grad.dtype, device=grad.device) if basis is None else basis.to(grad).T
    rows = [
        torch.autograd.grad(grad, [a], grad_outputs=d.reshape(grad.shape), retain_graph=i < len(directions) - 1)[0]
        for i, d in enumerate(directions)
    ]
    products = torch.stack([r.reshape(-1) for r in rows]).double()  # row i = H d_i
    hessian = products if basis is None else products @ basis.double().to(products.device)
    return (hessian + hessian.T) / 2


def softmax_basis(sizes: Sequence[int]) -> torch.Tensor:
    """Orthonormal basis (sum(sizes), sum(sizes) - len(sizes)) of the alphas that change a grouped softmax.

    Adding a constant to one group of alphas leaves its softmax unchanged, so a loss of
    softmax(alphas) has zero curvature along one direction per group; the Hessian's other
    eigenvalues live in this complement, which takes ``size - 1`` products per group instead of ``size``.
    """
    blocks = []
    for size in sizes:
        ones = torch.ones(size, 1, dtype=torch.float64) / size**0.5
        q, _ = torch.linalg.qr(torch.cat([ones, torch.eye(size, dtype=torch.float64)[:, : size - 1]], dim=1))
        blocks.append(q[:, 1:])  # (size, size-1), orthogonal to the all-ones direction
    return torch.block_diag(*blocks)


def power_iteration(
    hvp: Callable[[torch.Tensor], torch.Tensor], dim: int, iters: int = 50, tol: float = 1e-4, seed: int = 0
) -> float:
    """The largest-magnitude eigenvalue of the operator ``hvp`` (Rayleigh quotient at convergence)."""
    generator = torch.Generator().manual_seed(seed)
    v = torch.randn(dim, generator=generator, dtype=torch.float64)
    v /= v.norm()
    value = 0.0
    for _ in range(iters):
        w = hvp(v)
        new_value = float(torch.dot(v, w))
        norm = w.norm()
        if float(norm) == 0.0:
            return 0.0
        v = w / norm
        if abs(new_value - value) <= tol * max(1.0, abs(new_value)):
            return new_value
        value = new_value
    return value


def dominant_eigenvalue(
    loss_fn: Callable[[torch.Tensor], torch.Tensor],
    alphas: torch.Tensor,
    softmax_groups: Sequence[int] | None = None,
) -> Eigen:
    """The dominant eigenvalue of the loss Hessian in the alphas (exact when small).

    ``softmax_groups``: the loss sees the flattened alphas only through a softmax within each
    group of these sizes, so the Hessian is built in :func:`softmax_basis` (the eigenvalues
    left out are exactly 0).
    """
    if alphas.numel() <= EXACT_LIMIT:
        basis = softmax_basis(softmax_groups) if softmax_groups else None
        values = torch.linalg.eigvalsh(alpha_hessian(loss_fn, alphas, basis))
        top = float(values[-1])
        return Eigen(max(top, 0.0) if softmax_groups else top, "exact")
    a = alphas.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(loss_fn(a), [a], create_graph=True, allow_unused=True)
    if grad is None or not grad.requires_grad:
        return Eigen(0.0, "power")

    def hvp(v: torch.Tensor) -> torch.Tensor:
        vec = v.to(grad.dtype).reshape(grad.shape)
        (out,) = torch.autograd.grad(grad, [a], grad_outputs=vec, retain_graph=True)
        return out.reshape(-1).double()

    return Eigen(power_iteration(hvp, a.numel()), "power")


@contextmanager
def frozen_bn_stats(net: nn.Module) -> Iterator[None]:
    """Run ``net`` in training mode without moving any BN running statistics."""
    saved = {name: buf.detach().clone() for name, buf in net.named_buffers()}
    was_training = net.training
    net.train()
    try:
        yield
    finally:
        net.train(was_training)
        with torch.no_grad():
            for name, buf in net.named_buffers():
                buf.copy_(saved[name])
