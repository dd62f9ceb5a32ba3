"""Weighted sums of feature maps with a lean backward pass.

A supernet node is ``sum_i w_i * x_i`` over its incoming op outputs, some already weighted
(``w_i = None``). Autograd's mul/add chain allocates a product per term and, backward,
another product and a reduction per weight. This function writes the sum into one buffer and,
backward, computes each weight's gradient as a dot product over matching memory layouts.
"""

from __future__ import annotations

from typing import Any

import torch

Term = tuple[torch.Tensor, torch.Tensor | None]
"""A feature map and its 0-dim weight (``None``: added as is)."""


class _WeightedSum(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, n: int, *flat: torch.Tensor | None) -> torch.Tensor:
        xs, ws = flat[:n], flat[n:]
        first, w0 = xs[0], ws[0]
        out = first * w0 if w0 is not None else first.clone()
        for x, w in zip(xs[1:], ws[1:], strict=True):
            if w is None:
                out.add_(x)
            else:
                out.addcmul_(x, w)
        ctx.n = n
        ctx.has_weight = tuple(w is not None for w in ws)
        ctx.save_for_backward(
            *(x if w is not None else None for x, w in zip(xs, ws, strict=True)), *(w for w in ws if w is not None)
        )
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        saved = ctx.saved_tensors
        n = ctx.n
        xs, weights = saved[:n], iter(saved[n:])
        grads_x: list[torch.Tensor | None] = []
        grads_w: list[torch.Tensor | None] = []
        for i, has_w in enumerate(ctx.has_weight):
            if not has_w:
                grads_x.append(grad if ctx.needs_input_grad[1 + i] else None)
                grads_w.append(None)
                continue
            w = next(weights)
            grads_x.append(grad * w if ctx.needs_input_grad[1 + i] else None)
            grads_w.append(_dot(grad, xs[i]).reshape(w.shape) if ctx.needs_input_grad[1 + n + i] else None)
        return (None, *grads_x, *grads_w)


def _dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """sum(a * b) without a temporary when both share one dense memory layout."""
    if a.stride() == b.stride():
        if a.is_contiguous():
            return torch.dot(a.view(-1), b.view(-1))
        if channels_last(a):
            return torch.dot(a.permute(0, 2, 3, 1).reshape(-1), b.permute(0, 2, 3, 1).reshape(-1))
    return (a * b).sum()


def channels_last(a: torch.Tensor) -> bool:
    try:
        return a.is_contiguous(memory_format=torch.channels_last)
    except RuntimeError:  # inside vmap (batched Hessian-vector products) the layout cannot be queried
        return False


def weighted_sum(terms: list[Term], like: torch.Tensor) -> torch.Tensor:
    """``sum_i w_i * x_i`` (``w_i=None`` adds ``x_i`` as is); zeros shaped like ``like`` if empty."""
    if not terms:
        return torch.zeros_like(like)
    xs = [x for x, _ in terms]
    ws = [w for _, w in terms]
    return _WeightedSum.apply(len(terms), *xs, *ws)
