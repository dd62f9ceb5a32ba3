"""Contract tests for plugins: call them from your own test on your class.

    from nasbench_harness.testing import check_regularizer

    def test_my_regularizer():
        check_regularizer(MyReg, params={"strength": 2.0})

:func:`check_regularizer` builds the tiny supernet of every space the class declares and checks
that the penalty is a finite scalar, differentiable w.r.t. the alphas (arch penalties) or the
network weights (weight penalties), that weight 0 changes nothing, and that a full loss with the
regularizer runs backward with finite gradients. A broken contract raises :class:`ContractError`
naming the space, the phase and what was wrong.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from nasbench_harness.plugins import Regularizer
from nasbench_harness.spaces.catalog import SPACE_NAMES

TINY_MODEL = {"channels": 4, "cells_per_stage": 1, "num_cells": 3}


class ContractError(AssertionError):
    """A plugin broke its contract."""


def tiny_state(space: str, seed: int = 0) -> Any:
    """A :class:`~nasbench_harness.methods.engine.base.SearchState` of DARTS on the tiny supernet of ``space``
    (4 channels, one cell per stage / three cells), on the CPU."""
    from nasbench_harness.config import build_config
    from nasbench_harness.methods.engine.loop import build_state
    from nasbench_harness.registry import make_method

    config = build_config("cpu", {"space": space, "model": TINY_MODEL, "seed": seed, "threads": 1})
    state, _ = build_state(config, make_method("darts"), 10, torch.device("cpu"))
    generator = torch.Generator().manual_seed(seed)
    state.batch = (torch.randn(4, 3, 16, 16, generator=generator), torch.randint(0, 10, (4,), generator=generator))
    with torch.no_grad():  # alphas away from their near-uniform start, so penalties are not at a stationary point
        state.alphas.copy_(torch.randn(state.alphas.shape, generator=generator))
    return state


def check_regularizer(
    cls: type[Regularizer],
    params: dict[str, Any] | None = None,
    spaces: Iterable[str] | None = None,
    weight: float = 0.5,
) -> None:
    """Check ``cls`` on the tiny supernet of each of ``spaces`` (default: all it declares; a class
    that declares none runs on every space of :mod:`nasbench_harness.spaces.catalog`)."""
    if not (isinstance(cls, type) and issubclass(cls, Regularizer)):
        raise ContractError(f"{cls!r} is not a subclass of nasbench_harness.plugins.Regularizer")
    if not cls.phases or set(cls.phases) - {"arch", "weights"}:
        raise ContractError(
            f"{cls.__name__}.phases must be a non-empty subset of ('arch', 'weights'), got {cls.phases}"
        )
    declared = cls.spaces or SPACE_NAMES
    for space in spaces or declared:
        if space not in declared:
            raise ContractError(f"{cls.__name__} was checked on {space}, which it does not declare in `spaces`")
        for phase in cls.phases:
            _check_phase(cls, params, space, phase, weight)


def _check_phase(cls: type[Regularizer], params: dict[str, Any] | None, space: str, phase: str, weight: float) -> None:
    where = f"{cls.__name__} on {space}, phase {phase!r}"
    state = tiny_state(space)
    reg = cls(weight, params)
    reg.setup(state)
    weights = state.mixing(phase=phase)
    try:
        value = reg.penalty(state, weights, phase)
    except Exception as exc:  # the plugin's own code: say so instead of a traceback from deep inside it
        raise ContractError(f"{where}: penalty raised {type(exc).__name__}: {str(exc)[:160]}") from exc
    if not isinstance(value, torch.Tensor) or value.dim() != 0:
        raise ContractError(f"{where}: penalty must be a 0-dim tensor, got {value!r:.80}")
    if not torch.isfinite(value):
        raise ContractError(f"{where}: penalty is not finite ({float(value.detach())})")
    targets = [state.alphas] if phase == "arch" else [p for p in state.net.parameters() if p.requires_grad]
    if not value.requires_grad:
        raise ContractError(f"{where}: penalty does not depend on {'the alphas' if phase == 'arch' else 'the weights'}")
    grads = torch.autograd.grad(value, targets, allow_unused=True)
    if all(g is None for g in grads):
        raise ContractError(
            f"{where}: penalty has no gradient w.r.t. {'the alphas' if phase == 'arch' else 'the weights'}"
        )
    if any(g is not None and not torch.isfinite(g).all() for g in grads):
        raise ContractError(f"{where}: the penalty's gradient is not finite")

    state.method.components = []
    plain, _ = state.loss(state.batch, state.mixing(phase=phase), phase)
    state.method.components = [cls(0.0, params)]
    zero, _ = state.loss(state.batch, state.mixing(phase=phase), phase)
    if not torch.equal(plain, zero):
        raise ContractError(f"{where}: weight 0 changed the loss ({float(plain)} -> {float(zero)})")

    state.method.components = [reg]
    loss, _ = state.loss(state.batch, state.mixing(phase=phase), phase)
    if not torch.isclose(loss, plain + weight * value.detach(), rtol=1e-5, atol=1e-6):
        raise ContractError(f"{where}: the loss is not the plain loss + weight * penalty")
    loss.backward()
    for p in [state.alphas, *state.net.parameters()]:
        if p.grad is not None and not torch.isfinite(p.grad).all():
            raise ContractError(f"{where}: the loss with the regularizer has non-finite gradients")
