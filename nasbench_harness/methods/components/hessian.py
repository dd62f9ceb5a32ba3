"""The dominant eigenvalue of the Hessian of the validation loss with respect to the alphas.

R-DARTS (Zela et al., 2020) tracks it because it grows when DARTS drifts towards parameter-free
cells. For NB201's 30 alphas the Hessian is built exactly (one Hessian-vector product per
alpha, by double backward), and so for NB-1Shot1's 24-35; more alphas than
:data:`EXACT_LIMIT` use Lanczos iteration on Hessian-vector products computed on the alphas'
device. "Dominant" is the largest eigenvalue (algebraic), as R-DARTS's ``max(eigvals(H))``.
The network runs in training mode, as the arch step sees it; BN running statistics are left
untouched.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

from nasbench_harness.numerics import full_fp32

EXACT_LIMIT = 64
"""Up to this many alphas the Hessian is built exactly."""


@dataclass(frozen=True)
class Eigen:
    """The dominant eigenvalue (largest algebraic) and how it was computed."""

    value: float
    method: str  # "exact" | "lanczos"


def hvp_chunk(device: torch.device) -> int:
    """Hessian-vector products computed together (one vmapped double backward): on a GPU, where a
    product of the small supernet costs its kernel launches more than its arithmetic, 8 at a
    time (8x one product's memory); on the CPU one at a time (batching saves no arithmetic)."""
    return 8 if device.type == "cuda" else 1


def alpha_hessian(
    loss_fn: Callable[[torch.Tensor], torch.Tensor],
    alphas: torch.Tensor,
    basis: torch.Tensor | None = None,
    chunk: int | None = None,
) -> torch.Tensor:
    """The exact Hessian d^2 loss / d alpha^2, symmetrised, in float64.

    Without ``basis``: (n, n) for n = alphas.numel(), one Hessian-vector product per alpha.
    With an orthonormal ``basis`` (n, k): the (k, k) matrix B^T H B, from k products, computed
    ``chunk`` at a time (default :func:`hvp_chunk`).
    """
    a = alphas.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(loss_fn(a), [a], create_graph=True, allow_unused=True)
    if grad is None or not grad.requires_grad:  # the loss is flat (or linear) in the alphas
        k = a.numel() if basis is None else basis.shape[1]
        return torch.zeros(k, k, dtype=torch.float64, device=a.device)
    n = grad.numel()
    directions = torch.eye(n, dtype=grad.dtype, device=grad.device) if basis is None else basis.to(grad).T
    chunk = hvp_chunk(a.device) if chunk is None else chunk
    rows, batching = [], chunk > 1
    for start in range(0, len(directions), chunk):
        block = directions[start : start + chunk]
        keep = start + chunk < len(directions)
        batched = None
        if batching and len(block) > 1:  # one vmapped double backward: one launch per op, not per direction
            try:
                (batched,) = torch.autograd.grad(
                    grad,
                    [a],
                    grad_outputs=block.reshape(len(block), *grad.shape),
                    retain_graph=True,
                    is_grads_batched=True,
                )
            except RuntimeError:  # an op whose backward vmap cannot batch (NB-1Shot1's layout-keeping split)
                batching = False
        if batched is None:
            batched = torch.stack(
                [
                    torch.autograd.grad(
                        grad, [a], grad_outputs=d.reshape(grad.shape), retain_graph=keep or i < len(block) - 1
                    )[0]
                    for i, d in enumerate(block)
                ]
            )
        rows.append(batched.reshape(len(block), -1))
    products = torch.cat(rows).double()  # row i = H d_i
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


def largest_eigenvalue(
    hvp: Callable[[torch.Tensor], torch.Tensor], dim: int, device: torch.device | str = "cpu", seed: int = 0
) -> float:
    """The largest (algebraic) eigenvalue of the symmetric operator ``hvp``, by Lanczos iteration.

    ``hvp`` takes and returns float64 vectors of length ``dim`` on ``device``; the Lanczos
    recurrence (``scipy.sparse.linalg.eigsh``, ``which="LA"``) runs on the host, from a start
    vector drawn from ``seed``. The largest algebraic eigenvalue is what the exact path's
    ``eigvalsh(...)[-1]`` and R-DARTS's ``max(eigvals(H))`` report (power iteration would find the
    eigenvalue of largest magnitude, which can be a negative one).
    """
    import numpy as np
    from scipy.sparse.linalg import LinearOperator, eigsh

    def matvec(v: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(v, dtype=np.float64).reshape(-1)).to(device)
        return hvp(x).detach().cpu().numpy()

    start = np.random.default_rng(seed).standard_normal(dim)
    operator = LinearOperator((dim, dim), matvec=matvec, dtype=np.float64)
    values = eigsh(operator, k=1, which="LA", v0=start, tol=1e-10, return_eigenvectors=False)
    return float(values[0])


def dominant_eigenvalue(
    loss_fn: Callable[[torch.Tensor], torch.Tensor],
    alphas: torch.Tensor,
    softmax_groups: Sequence[int] | None = None,
    weight_decay: float = 0.0,
) -> Eigen:
    """The largest eigenvalue of the Hessian of ``loss_fn(a) + weight_decay / 2 * ||a||^2`` in the alphas.

    Exact up to :data:`EXACT_LIMIT` alphas, else by Lanczos iteration (:func:`largest_eigenvalue`)
    on Hessian-vector products on the alphas' device. ``softmax_groups``: the loss sees the
    flattened alphas only through a softmax within each group of these sizes, so the loss
    Hessian is built in :func:`softmax_basis`; the directions left out have curvature exactly ``weight_decay``.
    ``weight_decay`` is the arch optimiser's L2 term (Adam's ``weight_decay`` adds
    ``weight_decay * a`` to the gradient), which R-DARTS adds to the Hessian it decides on
    (``automl/RobustDARTS``, ``src/search/analyze.py``, ``_hessian``: ``grad + self.weight_decay * inp``).

    Computed in full fp32 (:func:`~nasbench_harness.numerics.full_fp32`: no TF32, no autocast),
    whatever the run allows its training steps: TF32's 10-bit mantissa would blur the curvature.
    """
    with full_fp32():
        return _dominant_eigenvalue(loss_fn, alphas, softmax_groups, weight_decay)


def _dominant_eigenvalue(
    loss_fn: Callable[[torch.Tensor], torch.Tensor],
    alphas: torch.Tensor,
    softmax_groups: Sequence[int] | None,
    weight_decay: float,
) -> Eigen:
    if alphas.numel() <= EXACT_LIMIT:
        basis = softmax_basis(softmax_groups) if softmax_groups else None
        values = torch.linalg.eigvalsh(alpha_hessian(loss_fn, alphas, basis))
        top = float(values[-1])
        return Eigen((max(top, 0.0) if softmax_groups else top) + weight_decay, "exact")
    a = alphas.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(loss_fn(a), [a], create_graph=True, allow_unused=True)
    if grad is None or not grad.requires_grad:
        return Eigen(weight_decay, "lanczos")

    def hvp(v: torch.Tensor) -> torch.Tensor:
        vec = v.to(grad.dtype).reshape(grad.shape)
        (out,) = torch.autograd.grad(grad, [a], grad_outputs=vec, retain_graph=True)
        return out.reshape(-1).double() + weight_decay * v

    return Eigen(largest_eigenvalue(hvp, a.numel(), device=a.device), "lanczos")


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


@contextmanager
def eval_mode(net: nn.Module) -> Iterator[None]:
    """Run ``net`` in eval mode (BN with running statistics where it keeps them, no drop path)."""
    was_training = net.training
    net.eval()
    try:
        yield
    finally:
        net.train(was_training)
