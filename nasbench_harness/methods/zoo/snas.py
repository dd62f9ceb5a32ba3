"""SNAS (Xie, Zheng, Liu & Lin, ICLR 2019): relaxed Gumbel-softmax samples, alphas trained on the
training loss; see :func:`snas`."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from nasbench_harness.methods.components.arch_steps import TrainLossStep
from nasbench_harness.methods.components.samplers import RelaxedSampler, TemperatureSchedule
from nasbench_harness.methods.engine.base import Method
from nasbench_harness.methods.engine.options import Options, parse_options


class SNASOptions(Options):
    """Options of SNAS."""

    ordered = (("tau_min", "tau_init"),)

    tau_init: float = Field(1.0, gt=0, description="temperature in the first epoch")
    tau_min: float = Field(0.03, gt=0, description="temperature in the last epoch (linear) or floor")
    schedule: Literal["linear", "exponential", "constant"] = "linear"
    decay: float = Field(0.97, gt=0, le=1, description="per-epoch factor of the exponential schedule")


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
    gradient norm to 10). On the tracked eigenvalue see :mod:`~nasbench_harness.methods.components.samplers`.

    Trajectory column: ``snas_tau``, the temperature of the epoch.
    """
    opts = parse_options(SNASOptions, options, "snas")
    schedule = TemperatureSchedule(opts.tau_init, opts.tau_min, opts.schedule, opts.decay)
    return Method(name="snas", arch_step=TrainLossStep(), components=[RelaxedSampler(schedule)])
