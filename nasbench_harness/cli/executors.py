"""The options that say where a sweep's runs train (``nbh sweep``, ``nbh check-regularizer``):
the executor, the device and what each run is given, and the Ray and SLURM settings; and
:func:`placed`, which opens the executor, decides the placement and the default preset from its
machines, and closes it after."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

import typer

from nasbench_harness.cli.common import Executor, choice_parser, err_console

if TYPE_CHECKING:
    from nasbench_harness.execution.local import Backend
    from nasbench_harness.execution.resources import Placement

ExecutorOption = Annotated[
    Executor,
    typer.Option(
        "--executor",
        parser=choice_parser(Executor),
        help="local (a process pool here), ray (Ray tasks on a local instance or --ray-address) or slurm "
        "(one SLURM job array through submitit).",
    ),
]
RayAddressOption = Annotated[
    str | None,
    typer.Option("--ray-address", help="An existing Ray cluster (default: a local Ray instance).", show_default=False),
]
GpusPerRunOption = Annotated[
    float | None,
    typer.Option(
        "--gpus-per-run",
        metavar="GPUS",
        help="GPU share of each run: 1, or a fraction (0.25 packs 4 runs on a GPU; local and ray); 0: none. "
        "Default: 1 where the executor's machines have GPUs, else 0.",
        show_default=False,
    ),
]
CpusPerRunOption = Annotated[
    int | None,
    typer.Option(
        "--cpus-per-run",
        min=1,
        metavar="CPUS",
        help="CPUs (torch threads) of each run. Default: local, this machine's CPUs split between the "
        "workers; ray and slurm, 1.",
        show_default=False,
    ),
]
SlurmPartitionOption = Annotated[
    str | None,
    typer.Option("--slurm-partition", help="SLURM partition (default: the cluster's default).", show_default=False),
]
SlurmTimeOption = Annotated[
    int,
    typer.Option(
        "--slurm-time",
        min=1,
        metavar="MINUTES",
        help="Time limit of each SLURM job; a job that reaches it requeues and resumes.",
    ),
]
SlurmArrayOption = Annotated[
    int, typer.Option("--slurm-array-parallelism", min=1, help="SLURM array tasks running at once.")
]
SlurmExtraOption = Annotated[
    list[str] | None,
    typer.Option(
        "--slurm-option",
        metavar="KEY=VALUE",
        help="A further sbatch option, e.g. account=myproj or qos=high (repeatable).",
        show_default=False,
    ),
]
SlurmSetupOption = Annotated[
    list[str] | None,
    typer.Option(
        "--slurm-setup",
        metavar="LINE",
        help="A shell line each job runs first, e.g. 'module load cuda' (repeatable).",
        show_default=False,
    ),
]


@dataclass(frozen=True)
class Where:
    """The executor options of one command, as parsed."""

    executor: Executor = Executor.local
    device: str = "auto"
    workers: int | None = None
    gpus_per_run: float | None = None
    cpus_per_run: int | None = None
    ray_address: str | None = None
    slurm_partition: str | None = None
    slurm_time: int = 1440
    slurm_array_parallelism: int = 64
    slurm_option: tuple[str, ...] = ()
    slurm_setup: tuple[str, ...] = ()

    def slurm_options(self) -> Any:
        """The :class:`~nasbench_harness.execution.slurm.SlurmOptions` (None unless ``--executor slurm``)."""
        if self.executor != Executor.slurm:
            return None
        from nasbench_harness.execution.slurm import SlurmOptions

        extra = []
        for item in self.slurm_option:
            key, sep, value = item.partition("=")
            if not sep or not key.strip():
                hint = "--slurm-option"
                raise typer.BadParameter(f"{item!r} is not KEY=VALUE (e.g. account=myproj)", param_hint=hint)
            extra.append((key.strip().lstrip("-"), value.strip()))
        return SlurmOptions(
            partition=self.slurm_partition,
            time_min=self.slurm_time,
            array_parallelism=self.slurm_array_parallelism,
            extra=tuple(extra),
            setup=tuple(self.slurm_setup),
        )

    def check(self) -> None:
        """Options of another executor than the chosen one are usage errors (they would be ignored)."""
        if self.executor != Executor.ray and self.ray_address:
            raise typer.BadParameter("needs --executor ray", param_hint="--ray-address")
        slurm_given = self.slurm_partition or self.slurm_option or self.slurm_setup
        if self.executor != Executor.slurm and (slurm_given or self.slurm_time != 1440):
            raise typer.BadParameter("the --slurm-* options need --executor slurm", param_hint="--slurm-*")
        if self.executor == Executor.local and self.workers is not None:
            from nasbench_harness.threads import usable_cpus

            cpus = usable_cpus()
            if self.workers > cpus:
                raise typer.BadParameter(
                    f"{self.workers}: this machine allows at most {cpus} runs at once (the CPUs this process may "
                    f"use); use 1..{cpus}",
                    param_hint="--workers",
                )
        if self.executor != Executor.local and self.workers is not None:
            raise typer.BadParameter(
                f"is the local executor's; {self.executor.value} runs as many runs at once as its machines fit "
                "(size each with --cpus-per-run and --gpus-per-run)",
                param_hint="--workers",
            )


@contextmanager
def placed(
    where: Where, preset: str | None, variants: Iterable[str] | None
) -> Iterator[tuple[Backend, Placement, str]]:
    """Open the executor, place the runs on its machines and choose the preset (``preset``, else
    the first of ``variants`` that fits a run's device); the backend is closed after the block."""
    from nasbench_harness.execution.local import open_backend
    from nasbench_harness.execution.resources import place
    from nasbench_harness.presets import LAPTOP_PRESETS, preset_for

    where.check()
    backend = open_backend(where.executor.value, where.ray_address, where.slurm_options())
    try:
        capacity = backend.capacity()
        placement = place(capacity, where.device, where.gpus_per_run, where.cpus_per_run, where.workers)
        chosen = preset or preset_for(placement.uses_gpu, variants)
        if not placement.uses_gpu and chosen not in LAPTOP_PRESETS:
            err_console.print(
                f"warning: preset {chosen} is sized for a GPU, and these runs train on the CPU of {capacity.where}",
                markup=False,
                soft_wrap=True,
            )
        yield backend, placement, chosen
    finally:
        backend.close()
