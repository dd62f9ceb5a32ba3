"""DrNAS (Chen, Wang, Cheng, Tang & Hsieh, ICLR 2021): Dirichlet mixing weights; see :func:`drnas`."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from nasbench_harness.methods.components.arch_steps import FirstOrderStep
from nasbench_harness.methods.components.samplers import DirichletSampler
from nasbench_harness.methods.engine.base import Method
from nasbench_harness.methods.engine.options import Options, parse_options


class DrNASOptions(Options):
    """Options of DrNAS."""

    reg: Literal["l2", "kl"] = Field("l2", description="anchor regulariser of the concentrations")
    reg_scale: float = Field(1e-3, ge=0, description="its factor in the arch loss")
    replace_arch_weight_decay: bool = Field(True, description="set arch_optim.weight_decay to 0, as DrNAS")


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
    its unrolled (second-order) step. On the tracked eigenvalue see
    :mod:`~nasbench_harness.methods.components.samplers`.

    Trajectory column: ``drnas_reg``, ``R`` of the alphas at the end of the epoch, unscaled
    (KL in nats, or ``||alpha||^2 / 2``).
    """
    opts = parse_options(DrNASOptions, options, "drnas")
    sampler = DirichletSampler(opts.reg, opts.reg_scale, opts.replace_arch_weight_decay)
    return Method(name="drnas", arch_step=FirstOrderStep(), components=[sampler])
