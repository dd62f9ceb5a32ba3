"""GDAS (Dong & Yang, CVPR 2019): one op per edge by Gumbel-max sampling; see :func:`gdas`."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from nasbench_harness.methods.components.arch_steps import FirstOrderStep
from nasbench_harness.methods.components.samplers import GumbelSampler, TemperatureSchedule
from nasbench_harness.methods.engine.base import Method
from nasbench_harness.methods.engine.options import Options, parse_options


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
    skips their weight decay and momentum that step. On the tracked eigenvalue see
    :mod:`nasbench_harness.methods.components.samplers`.

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
