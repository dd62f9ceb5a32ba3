"""Weighted sums of feature maps with a lean backward pass.

A supernet node is ``sum_i w_i * x_i`` over its incoming op outputs, some already weighted
(``w_i = None``). Autograd's mul/add chain allocates a product per term and, backward,
another product and a reduction per weight. This function writes the sum into one buffer and,
backward, computes each weight's gradient as a dot product over matching memory layouts.

A weight is 0-dim (the fast path), or per sample, shaped (B, 1, 1, 1): ScheduledDropPath folds
an edge's per-sample keep mask into the weights of the edge's terms.

PC-DARTS's partial channel connections end in a channel shuffle of the concatenated parts;
:func:`shuffle_cat` does both in one copy and keeps channels-last tensors channels-last.
"""

from __future__ import annotations

from typing import Any

import torch

from nasbench_harness.errors import ConfigError

Term = tuple[torch.Tensor, torch.Tensor | None]
"""A feature map and its weight, 0-dim or per sample (B, 1, 1, 1) (``None``: added as is)."""


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
            grads_w.append(_weight_grad(grad, xs[i], w) if ctx.needs_input_grad[1 + n + i] else None)
        return (None, *grads_x, *grads_w)


def _weight_grad(grad: torch.Tensor, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """d sum / d w for a term ``w * x``: one dot product for a scalar weight, else per sample."""
    if w.numel() == 1:
        return _dot(grad, x).reshape(w.shape)
    return (grad * x).sum_to_size(w.shape)


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
    """``sum_i w_i * x_i`` (``w_i=None`` adds ``x_i`` as is); zeros shaped like ``like`` if empty.

    Weights are 0-dim or (B, 1, 1, 1) (one per sample); the first term fixes the output's shape.
    """
    if not terms:
        return torch.zeros_like(like)
    xs = [x for x, _ in terms]
    ws = [w for _, w in terms]
    return _WeightedSum.apply(len(terms), *xs, *ws)


def shuffle_cat(mixed: torch.Tensor, rest: torch.Tensor, groups: int) -> torch.Tensor:
    """``channel_shuffle(cat([mixed, rest], dim=1), groups)``, PC-DARTS's end of a partial mixed op.

    ``mixed`` (B, C/groups, H, W) is the mixed op's output on the first C/groups channels and
    ``rest`` (B, C - C/groups, H, W) the channels that bypassed it. The shuffle (ShuffleNet's,
    as PC-DARTS uses it) views the concatenation as ``groups`` groups of C/groups channels and
    interleaves them: output channel ``j * groups + g`` is channel ``j`` of group ``g`` (group 0 is
    ``mixed``, group g >= 1 is ``rest``'s (g-1)-th block). Written as one stack of the groups, so
    the result is channels-last when ``mixed`` is.
    """
    part = mixed.shape[1]
    if rest.shape[1] != (groups - 1) * part:
        raise ConfigError(
            f"shuffle_cat needs rest with (groups - 1) * {part} = {(groups - 1) * part} channels, got {rest.shape[1]}"
        )
    parts = [mixed, *rest.split(part, dim=1)]
    if channels_last(mixed):
        stacked = torch.stack([p.permute(0, 2, 3, 1) for p in parts], dim=-1)  # (B, H, W, C/groups, groups)
        return stacked.flatten(3).permute(0, 3, 1, 2)
    return torch.stack(parts, dim=2).flatten(1, 2)


def drop_path_masks(x: torch.Tensor, n: int, drop_prob: float) -> torch.Tensor:
    """``n`` DARTS drop-path masks for the batch ``x``, (n, B, 1, 1, 1): Bernoulli(1 - p) / (1 - p).

    Drawn from torch's global RNG (on ``x``'s device), independently per mask and per sample.
    """
    keep_prob = 1.0 - drop_prob
    return x.new_empty(n, x.shape[0], 1, 1, 1).bernoulli_(keep_prob).div_(keep_prob)


def check_drop_prob(drop_prob: float) -> None:
    """ConfigError unless 0 <= ``drop_prob`` < 1."""
    if not 0.0 <= drop_prob < 1.0:
        raise ConfigError(f"drop_prob is a drop-path probability in [0, 1), got {drop_prob!r}")


def check_partial_channels(channels: int, partial_channels: int) -> None:
    """ConfigError unless PC-DARTS's K = ``partial_channels`` >= 1 divides ``channels``."""
    if partial_channels < 1 or channels % partial_channels:
        raise ConfigError(
            f"partial_channels K must divide the channels: C={channels} is not a multiple of K={partial_channels} "
            "(PC-DARTS's K=4 needs model.channels divisible by 4)"
        )
