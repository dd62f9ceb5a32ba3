"""``nbh sweep``: run every search of a suite (a YAML grid), skipping finished runs and resuming
interrupted ones, on this machine, a Ray cluster or SLURM."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from nasbench_harness.cli.common import (
    CacheDirOption,
    DataDirOption,
    DeviceOption,
    Executor,
    PresetOption,
    RootOption,
    VariantOption,
    WorkersOption,
    console,
    err_console,
    preset_or_variant,
)
from nasbench_harness.cli.executors import (
    CpusPerRunOption,
    ExecutorOption,
    GpusPerRunOption,
    RayAddressOption,
    SlurmArrayOption,
    SlurmExtraOption,
    SlurmPartitionOption,
    SlurmSetupOption,
    SlurmTimeOption,
    Where,
    placed,
)
from nasbench_harness.cli.search import LogOption

if TYPE_CHECKING:
    from nasbench_harness.execution.local import Backend, Outcome
    from nasbench_harness.execution.resources import Placement
    from nasbench_harness.execution.suite import PlannedRun


def sweep(
    suite: Annotated[Path, typer.Argument(help="A suite file, e.g. benchmarks/suites/nb201-robust.yaml.")],
    preset: PresetOption = None,
    variant: VariantOption = None,
    root: RootOption = Path("results"),
    executor: ExecutorOption = Executor.local,
    device: DeviceOption = "auto",
    workers: WorkersOption = None,
    gpus_per_run: GpusPerRunOption = None,
    cpus_per_run: CpusPerRunOption = None,
    ray_address: RayAddressOption = None,
    slurm_partition: SlurmPartitionOption = None,
    slurm_time: SlurmTimeOption = 1440,
    slurm_array_parallelism: SlurmArrayOption = 64,
    slurm_option: SlurmExtraOption = None,
    slurm_setup: SlurmSetupOption = None,
    retry_failed: Annotated[bool, typer.Option("--retry-failed", help="Run failed runs again.")] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List the runs, their state and what each is given; train nothing.")
    ] = False,
    report: Annotated[
        Path | None,
        typer.Option(
            "--report",
            help="Write an HTML report of the suite's runs here at the end (compared with the suite's first method, "
            "and with the published numbers of SUITE's .published.yaml where there is one).",
            show_default=False,
        ),
    ] = None,
    data_dir: DataDirOption = None,
    cache_dir: CacheDirOption = None,
    log: LogOption = None,
) -> None:
    """Run every search of a suite (a YAML grid) here, on Ray or on SLURM.

    Expands SUITE into runs (same config -> same directory) and trains the missing ones:
    finished runs are skipped, interrupted ones resume. The device and the default preset follow
    the machines the runs train on (the executor's), not this one. Prints one line per run (with
    the device, host and preset it trained with) and a summary; ROOT/<suite>/<preset>/sweep.json
    lists every run's status. Exit code 1 when a run failed or is left incomplete (busy: another
    sweep holds it; a failed run not retried)."""
    from nasbench_harness.execution.local import INCOMPLETE, run_status
    from nasbench_harness.execution.suite import expand, load_suite

    preset = preset_or_variant(preset, variant)
    where = Where(
        executor, device, workers, gpus_per_run, cpus_per_run, ray_address, slurm_partition, slurm_time,
        slurm_array_parallelism, tuple(slurm_option or ()), tuple(slurm_setup or ()),
    )  # fmt: skip
    spec = load_suite(suite)
    with placed(where, preset.value if preset else None, spec.variants) as (backend, placement, chosen):
        runs = expand(spec, chosen, root)
        console.print(f"{spec.name} ({chosen}): {len(runs)} runs. {spec.reproduces}", markup=False, soft_wrap=True)
        console.print(f"{backend.name}: {placement.describe()}", markup=False, soft_wrap=True)
        if dry_run:
            for run in runs:
                console.print(f"{run_status(run.path) or 'new':<9} {run.run_id}", markup=False, soft_wrap=True)
            return
        counts, outcomes = _run(runs, Path(root) / spec.name / chosen, backend, placement, data_dir, cache_dir,
                                retry_failed, log)  # fmt: skip
    console.print(f"{len(outcomes)} runs: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())), markup=False)
    incomplete = sum(n for status, n in counts.items() if status in INCOMPLETE)
    if incomplete:
        console.print(
            f"{incomplete} run(s) not trained: busy ones are held by another sweep (or a node whose lock has "
            "not gone stale yet); failed ones wait for --retry-failed. Run the sweep again to finish them.",
            markup=False,
            soft_wrap=True,
        )
    if report is not None:
        from nasbench_harness.analysis.published import published_for_suite
        from nasbench_harness.report.build import write_report

        baseline = spec.methods[0].name if len(spec.methods) > 1 else None
        paths, title = [r.path for r in runs if r.path.exists()], f"{spec.name} ({chosen})"
        path = write_report(paths, report, title, baseline, published=published_for_suite(suite))
        console.print(f"report: {path.resolve()}", markup=False, soft_wrap=True)
    if counts.get("failed") or incomplete:
        raise typer.Exit(1)


def _run(
    runs: list[PlannedRun],
    manifest_dir: Path,
    backend: Backend,
    placement: Placement,
    data_dir: Path | None,
    cache_dir: Path | None,
    retry_failed: bool,
    log: list[Any] | None,
) -> tuple[dict[str, int], list[Outcome]]:
    """Train ``runs`` under a progress bar, printing each outcome; (status counts, outcomes)."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from nasbench_harness.execution.local import run_sweep

    bar = Progress(
        TextColumn("sweep"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[counts]}"),
        TimeElapsedColumn(), TimeRemainingColumn(), console=err_console, disable=not err_console.is_terminal,
    )  # fmt: skip
    task = bar.add_task("sweep", total=len(runs), counts="")
    counts: dict[str, int] = {}

    def show(outcome: Outcome) -> None:
        counts[outcome.status] = counts.get(outcome.status, 0) + 1
        summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
        bar.update(task, advance=1, counts=summary)
        where = f"  [{outcome.where()}]" if outcome.where() else ""
        line = f"{outcome.status:<14} {outcome.run_id}  {outcome.message}{where}"
        bar.console.print(line, markup=False, soft_wrap=True)

    with bar:
        outcomes = run_sweep(
            runs,
            manifest_dir,
            data_dir=data_dir,
            cache_dir=cache_dir,
            retry_failed=retry_failed,
            on_outcome=show,
            log=[t.value for t in log or ()],
            backend=backend,
            placement=placement,
        )
    return counts, outcomes
