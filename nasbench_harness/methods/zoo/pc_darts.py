"""PC-DARTS (Xu et al., ICLR 2020): partial channel connections and edge normalisation.

The method builds its own supernet (through the ``build_net`` hook) and otherwise searches as
first-order DARTS does. See :func:`pc_darts` for the formulas, defaults and columns.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from pydantic import Field
from torch import nn

from nasbench_harness.errors import ConfigError
from nasbench_harness.methods.engine.base import ArchStep, Batch, Method, SearchState
from nasbench_harness.methods.engine.options import Options, parse_options


class PCDartsOptions(Options):
    """PC-DARTS's options."""

    k: int = Field(4, ge=1, description="1/K of each edge's channels go through the mixed op (paper: K=4)")


class PartialChannelStep(ArchStep):
    """First-order DARTS arch step that also updates the edge-normalisation parameters ``beta``.

    ``alpha, beta <- Adam step on grad L_val(w, alpha, beta)``; beta lives in the network
    (``PCNB201SearchNet.beta``, checkpointed with it), is moved from the weight optimiser to the
    arch optimiser in :meth:`setup` (same learning rate, betas and weight decay as the alphas,
    as PC-DARTS's architect), and has gradients only inside this step.
    """

    name = "pc-darts"

    def __init__(self, k: int) -> None:
        self.k = k
        self.beta: nn.Parameter | None = None

    def build_net(self, space: Any, model: Any, num_classes: int) -> nn.Module | None:
        """The space's partial-channel supernet (NB201: with edge normalisation)."""
        return space.build_net(model, num_classes, partial_channels=self.k)

    def setup(self, state: SearchState) -> None:
        if getattr(state.net, "partial_channels", None) != self.k:
            raise ConfigError(
                f"PC-DARTS needs its partial-channel supernet (K={self.k}), but the search built "
                f"{type(state.net).__name__}; the loop must build the network through the method's build_net hook"
            )
        beta = getattr(state.net, "beta", None)
        if not isinstance(beta, nn.Parameter):
            return  # NB-1Shot1: no edge normalisation
        for group in state.w_optim.param_groups:
            group["params"] = [p for p in group["params"] if p is not beta]
        if not any(p is beta for group in state.a_optim.param_groups for p in group["params"]):
            state.a_optim.add_param_group({"params": [beta]})
        self.beta = beta

    def step(self, state: SearchState, train: Batch, valid: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        params: list[torch.Tensor] = [state.alphas] if self.beta is None else [state.alphas, self.beta]
        with _with_gradient(self.beta):
            loss, logits = state.loss(valid, state.mixing(), "arch")
            grads = torch.autograd.grad(loss, params)
        state.a_optim.zero_grad(set_to_none=True)
        for p, g in zip(params, grads, strict=True):
            p.grad = g.detach()
        state.a_optim.step()
        if self.beta is not None:
            self.beta.grad = None  # the weight step's gradient clipping must not see it
        return loss.detach(), logits.detach()

    def state_columns(self) -> dict[str, float | int | str | None]:
        columns: dict[str, float | int | str | None] = {"pc_k": self.k}
        if self.beta is not None:
            from nasbench_harness.supernets.nb201_pc import edge_weights

            with torch.no_grad():
                columns["pc_edge_weights"] = ",".join(f"{v:.6f}" for v in edge_weights(self.beta).tolist())
        return columns


@contextmanager
def _with_gradient(param: nn.Parameter | None) -> Iterator[None]:
    """``param`` requires grad inside the block (nothing when None)."""
    if param is None:
        yield
        return
    param.requires_grad_(True)
    try:
        yield
    finally:
        param.requires_grad_(False)


def pc_darts(options: dict[str, Any]) -> Method:
    """PC-DARTS: Xu, Xie, Zhang, Chen, Qi, Tian, Xiong (ICLR 2020), "PC-DARTS: Partial Channel
    Connections for Memory-Efficient Architecture Search".

    Partial channels: on every edge only 1/K of the channels (the first C/K) go through the
    mixed op; the rest bypass it; the edge output is
    ``channel_shuffle(cat([sum_o softmax(alpha_e)_o op_o(x[:, :C/K]), x[:, C/K:]]), K)``.
    Edge normalisation (NB201): a node j sums its incoming edges e weighted by
    ``softmax_{e -> j}(beta)_e``, beta one parameter per edge (shared by all cells, init
    1e-3 * N(0, 1)), trained with the alphas by first-order DARTS (Adam, the arch optimiser's
    lr, betas and weight decay). PC-DARTS scores edge e's op o by
    ``softmax(alpha_e)_o * softmax(beta)_e``; on NB201 every edge keeps exactly one op and the
    topology is fixed, so the beta factor (equal for all ops of an edge) changes nothing: the
    derived cell is the argmax of alpha per edge (``none`` allowed, as NB201's DARTS baselines).
    Beta scales the edges inside the supernet and so shapes training, evaluation and gradients.

    NB-1Shot1 (spaces 1-3): partial channels on each choice block's mixed op (ops of C/K
    channels, as NB-1Shot1's authors ran PC-DARTS, ``optimizers/pc_darts``); no beta, since a
    block's input weights already are a softmax over its candidate inputs; derivation as DARTS.

    Options: ``k`` (default 4, the paper's CIFAR setting, also used by the NB201 and NB-1Shot1
    ports); the model's ``channels`` must be a multiple of K. Other hyperparameters are the
    run config's. ``--preset paper`` takes them from ``protocols/pc-darts.yaml``: on NB201,
    which PC-DARTS's own code never ran, the paper's DARTS-space batch 256 / lr 0.1 / arch lr
    6e-4 (adapted); on NB-1Shot1 the NB-1Shot1 authors' port, which kept DARTS's settings. The
    15 weights-only warm-up epochs of the DARTS-space code have no key here (`nbh methods pc-darts` lists them).

    Trajectory columns: ``pc_k`` (K); on NB201 ``pc_edge_weights``: the six edge weights
    softmax(beta) per node after the epoch, comma-separated in edge order 0->1, 0->2, 1->2,
    0->3, 1->3, 2->3 (the 0->1 weight is always 1).
    """
    opts = parse_options(PCDartsOptions, options, "pc-darts")
    return Method(name="pc-darts", arch_step=PartialChannelStep(opts.k))
