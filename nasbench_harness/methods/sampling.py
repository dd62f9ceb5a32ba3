"""Sampling-based differentiable NAS: GDAS, SNAS and DrNAS.

Each replaces DARTS's softmax mixing by a sample (the samplers live in
:mod:`nasbench_harness.methods.components.samplers`) and derives the genotype by the space's
argmax rule on the alphas. They run on NB201 and on the NB-1Shot1 spaces (softmax groups from
``state.space.group_sizes``).

The Hessian eigenvalue the loop tracks differentiates the ``arch`` mixing twice, which here is
one random draw: for GDAS the straight-through surrogate of one one-hot sample (its curvature
scales with 1 / tau^2, so it follows the temperature schedule), for SNAS one relaxed sample,
and for DrNAS no Hessian of the loss at all (torch's ``Dirichlet.rsample`` is only once
differentiable, so the second derivative never reaches the network). The deterministic,
twice-differentiable mixing of each method is its ``eval`` mixing (``softmax(alpha)`` for
GDAS and SNAS, the Dirichlet mean for DrNAS).
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from pydantic import Field

from nasbench_harness.methods.base import ArchStep, Batch, Method, SearchState
from nasbench_harness.methods.components.samplers import (
    DirichletSampler,
    GumbelSampler,
    RelaxedSampler,
    TemperatureSchedule,
)
from nasbench_harness.methods.darts import FirstOrderStep
from nasbench_harness.methods.options import Options, parse_options


class TrainLossStep(ArchStep):
    """alpha <- optimiser step on grad_alpha L_train(w, mixing(alpha)): the arch step of SNAS.

    Uses the *training* batch; the validation batch is ignored. Returns the (training) loss and
    logits of the step, detached.
    """

    name = "train-loss"

    def step(self, state: SearchState, train: Batch, valid: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        loss, logits = state.loss(train, state.mixing(), "arch")
        (grad,) = torch.autograd.grad(loss, [state.alphas])
        state.a_optim.zero_grad(set_to_none=True)
        state.alphas.grad = grad.detach()
        state.a_optim.step()
        return loss.detach(), logits.detach()


class GDASOptions(Options):
    """Options of GDAS."""

    ordered = (("tau_min", "tau_max"),)

    tau_max: float = Field(10.0, gt=0, description="Gumbel temperature in the first epoch")
    tau_min: float = Field(0.1, gt=0, description="Gumbel temperature in the last epoch")
    soft: Literal["gumbel", "softmax"] = Field(
        "gumbel", description="NB-1Shot1 input/output groups: relaxed Gumbel sample or plain softmax"
    )
    eval_mixing: Literal["softmax", "argmax"] = Field(
        "softmax", description="end-of-epoch supernet: softmax(alpha) or one-hot argmax"
    )
    gradient: Literal["reference", "straight-through"] = Field(
        "reference",
        description="reference: compute only the sampled ops, as GDAS's code; straight-through: every op",
    )


class SNASOptions(Options):
    """Options of SNAS."""

    ordered = (("tau_min", "tau_init"),)

    tau_init: float = Field(1.0, gt=0, description="temperature in the first epoch")
    tau_min: float = Field(0.03, gt=0, description="temperature in the last epoch (linear) or floor")
    schedule: Literal["linear", "exponential", "constant"] = "linear"
    decay: float = Field(0.97, gt=0, le=1, description="per-epoch factor of the exponential schedule")


class DrNASOptions(Options):
    """Options of DrNAS."""

    reg: Literal["l2", "kl"] = Field("l2", description="anchor regulariser of the concentrations")
    reg_scale: float = Field(1e-3, ge=0, description="its factor in the arch loss")
    replace_arch_weight_decay: bool = Field(True, description="set arch_optim.weight_decay to 0, as DrNAS")


def gdas(options: dict[str, Any]) -> Method:
    """GDAS: one op per edge by Gumbel-max sampling, straight-through gradient, tau 10 -> 0.1.

    Dong & Yang, 2019, "Searching for A Robust Neural Architecture in Four GPU Hours" (CVPR).
    Per softmax group and per call (every arch step and every weight step draws anew, one draw
    shared by all cells): ``y = softmax((log_softmax(alpha) + g) / tau)``, ``g`` standard
    Gumbel; the supernet sees ``h = one_hot(argmax y)`` forward and backpropagates into ``y``
    (``h = one_hot + y - stop_grad(y)``). Both the arch step (first order, on the validation
    batch) and the weight step train under such samples. The genotype is ``argmax alpha``.

    ``tau`` falls linearly from ``tau_max`` (first epoch) to ``tau_min`` (last epoch),
    ``tau = tau_max - (tau_max - tau_min) * (epoch - 1) / (epochs - 1)``; 10 and 0.1 as NB201's
    GDAS runs (``D-X-Y/AutoDL-Projects``, ``scripts-search/NAS-Bench-201-algos/GDAS.sh``:
    ``--tau_max 10 --tau_min 0.1``; ``exps/NAS-Bench-201-algos/GDAS.py`` sets
    ``tau_max - (tau_max - tau_min) * epoch / (total_epoch - 1)`` with 0-based epochs).

    NB-1Shot1: only the op groups (``ops*``) are sampled hard; the output and input groups get
    the relaxed sample ``y`` itself (``soft="gumbel"``, as the NB-1Shot1 authors' GDAS,
    ``automl/nasbench-1shot1``, ``optimizers/gdas/model_search.py``: ``gumbel_softmax(hard=False)``
    "because [hard] very quickly gave exploding gradients") or ``softmax(alpha)``
    (``soft="softmax"``). The authors draw per cell and anneal tau from 10 to 1 by
    ``9 / epochs`` per epoch (``--tau_min 1``); here one draw serves every cell and the default
    schedule is NB201's (set ``tau_min=1`` for theirs, up to the last step).

    End-of-epoch supernet (phase ``eval``): ``softmax(alpha)``, the expected one-hot
    (``eval_mixing="softmax"``, default; deterministic, and the supernet-to-final-net gap stays
    informative), or ``one_hot(argmax alpha)`` (``"argmax"``, the final net's weights).

    Forward (``gradient="reference"``, default): as GDAS's code, the supernet computes only the
    sampled op in both steps. On NB201 the other ops' (zero) hard weights are added to their
    edge as constants (``D-X-Y/AutoDL-Projects``, ``xautodl/models/cell_searchs/search_cells.py``,
    ``forward_gdas``), so an unsampled op's hard weight gets the sum of its node's gradient, not
    ``<grad, op(x)>``; on NB-1Shot1 the authors' ``MixedOpGDAS`` computes the nonzero-weight ops
    only, so an unsampled op's hard weight gets no gradient (its alpha still moves, through the
    relaxed sample's softmax, with the sampled op's). The step computes one op per edge instead of
    four: 3.7x the straight-through option's images/s on NB201's paper config on 2 CPU cores, and
    1.35x xautodl's own GDAS (``benchmarks/perf/gdas_step.py``). ``gradient="straight-through"``
    computes every op, giving the exact straight-through gradient ``<grad, op(x)>`` of every
    weight (not what the paper ran). Either way, ops not computed get no weight gradient, so SGD
    skips their weight decay and momentum that step. On the tracked eigenvalue see the module
    notes.

    Trajectory column: ``gdas_tau``, the temperature of the epoch.
    """
    opts = parse_options(GDASOptions, options, "gdas")
    sampler = GumbelSampler(
        TemperatureSchedule(opts.tau_max, opts.tau_min, "linear"),
        only_ops=True,
        soft=opts.soft,
        eval_mixing=opts.eval_mixing,
        gradient=opts.gradient,
    )
    return Method(name="gdas", arch_step=FirstOrderStep(), components=[sampler])


def snas(options: dict[str, Any]) -> Method:
    """SNAS: relaxed Gumbel-softmax samples; alphas trained on the training loss.

    Xie, Zheng, Liu & Lin, 2019, "SNAS: Stochastic Neural Architecture Search" (ICLR). Per
    softmax group and batch, ``Z = softmax((log_softmax(alpha) + g) / tau)`` (``g`` Gumbel);
    SNAS trains weights *and* alphas on the training loss of the network under ``Z`` in one
    backward pass. Here the arch step (:class:`TrainLossStep`) descends ``L_train(w, Z)`` in
    alpha on the training batch (the validation batch is unused) and keeps ``Z``; the weight
    step then trains ``w`` on the same batch under the same ``Z``, so the pair is SNAS's joint
    update (both gradients at the same ``w`` and ``Z``). The genotype is ``argmax alpha``;
    the end-of-epoch supernet sees ``softmax(alpha)``.

    ``tau``: linear from ``tau_init`` = 1 (first epoch) to ``tau_min`` = 0.03 (last epoch), as
    the official search command (``SNAS-Series/SNAS-Series``, ``SNAS/README.md``: ``--temp 1
    --temp_min 0.03 --temp_annealing``; ``utils.Temp_Scheduler`` is linear over its 150
    epochs); ``schedule="exponential"`` gives ``max(tau_min, tau_init * decay ** (epoch - 1))``
    (``decay`` 0.97 by default, a common choice not checked against the paper);
    ``schedule="constant"`` keeps ``tau_init``.

    Not implemented: SNAS's resource constraint (the FLOPs/parameters/MAC penalty). The arch
    optimiser is the config's Adam (SNAS's single-GPU code uses plain SGD and clips the alpha
    gradient norm to 10). On the tracked eigenvalue see the module notes.

    Trajectory column: ``snas_tau``, the temperature of the epoch.
    """
    opts = parse_options(SNASOptions, options, "snas")
    schedule = TemperatureSchedule(opts.tau_init, opts.tau_min, opts.schedule, opts.decay)
    return Method(name="snas", arch_step=TrainLossStep(), components=[RelaxedSampler(schedule)])


def drnas(options: dict[str, Any]) -> Method:
    """DrNAS: Dirichlet-distributed mixing weights with an anchor regulariser.

    Chen, Wang, Cheng, Tang & Hsieh, 2021, "DrNAS: Dirichlet Neural Architecture Search" (ICLR).
    Per softmax group, concentration ``beta = ELU(alpha) + 1``; the arch step (first order, on
    the validation batch) and the weight step train under reparameterised draws
    ``A ~ Dir(beta)`` (pathwise gradient, ``Dirichlet(beta).rsample()``), a fresh draw per
    call shared by all cells; the end-of-epoch supernet sees the mean ``beta / sum(beta)``.
    The genotype is ``argmax alpha``, which is the argmax of the mean: ``ELU + 1`` is
    increasing, so the space's argmax on alpha picks the same op.

    Regulariser added to the arch loss, ``reg_scale * R`` (default ``reg="l2"``,
    ``reg_scale=1e-3``, as DrNAS's code: ``201-space/train_search.py``, ``--reg_type l2
    --reg_scale 1e-3``): ``"kl"``: ``R = sum_groups KL(Dir(beta) || Dir(1))`` (its
    ``_get_kl_reg``, anchor concentration 1; 1e-3 is the code's only default, its help says it
    may need adjusting for KL); ``"l2"``: ``R = ||alpha||^2 / 2``, whose gradient is the Adam
    weight decay ``reg_scale * alpha`` DrNAS's code uses for L2 (it equals
    ``||beta - 1||^2 / 2`` where alpha >= 0, the distance to the anchor ``beta = 1``). DrNAS's
    arch optimiser has no other weight decay, so ``replace_arch_weight_decay`` (default True)
    sets the config's ``arch_optim.weight_decay`` to 0 for this run.

    Not part of this method: DrNAS's progressive learning (partial channels and pruning) and
    its unrolled (second-order) step. On the tracked eigenvalue see the module notes.

    Trajectory column: ``drnas_reg``, ``R`` of the alphas at the end of the epoch, unscaled
    (KL in nats, or ``||alpha||^2 / 2``).
    """
    opts = parse_options(DrNASOptions, options, "drnas")
    sampler = DirichletSampler(opts.reg, opts.reg_scale, opts.replace_arch_weight_decay)
    return Method(name="drnas", arch_step=FirstOrderStep(), components=[sampler])
