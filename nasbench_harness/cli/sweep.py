"""``nbh sweep``: run every search of a suite (a YAML grid), skipping finished runs and resuming
interrupted ones."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

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
    choice_parser,
    concrete_device,
    console,
    default_preset,
    err_console,
    preset_or_variant,
)
from nasbench_harness.cli.search import LogOption


def sweep(
    suite: Annotated[Path, typer.Argument(help="A suite file, e.g. benchmarks/suites/nb201-robust.yaml.")],
    preset: PresetOption = None,
    variant: VariantOption = None,
    root: RootOption = Path("results"),
    workers: WorkersOption = 1,
    executor: Annotated[
        Executor,
        typer.Option(
            "--executor", parser=choice_parser(Executor), help="local (a process pool here) or ray (Ray tasks)."
        ),
    ] = Executor.local,
    ray_address: Annotated[
        str | None,
        typer.Option(
            "--ray-address", help="An existing Ray cluster (default: a local Ray instance).", show_default=False
        ),
    ] = None,
    device: DeviceOption = "auto",
    retry_failed: Annotated[bool, typer.Option("--retry-failed", help="Run failed runs again.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List the runs and their state; train nothing.")] = False,
    report: Annotated[
        Path | None,
        typer.Option(
            "--report",
            help="Write an HTML report of the suite's runs here at the end (compared with the suite's first method).",
            show_default=False,
        ),
    ] = None,
    data_dir: DataDirOption = None,
    cache_dir: CacheDirOption = None,
    log: LogOption = None,
) -> None:
    """Run every search of a suite (a YAML grid), locally or on Ray.

    Expands SUITE into runs (same config -> same directory) and trains the missing ones:
    finished runs are skipped, interrupted ones resume. Prints one line per run and a summary;
    ROOT/<suite>/<preset>/sweep.json lists every run's status. Exit code 1 when a run failed."""
    from nasbench_harness.execution.local import run_status, run_sweep
    from nasbench_harness.execution.suite import expand, load_suite

    preset = preset_or_variant(preset, variant)
    if executor == Executor.local:
        _check_workers(workers)
    spec = load_suite(suite)
    device = concrete_device(device)
    chosen = preset.value if preset else default_preset(device, spec.variants)
    runs = expand(spec, chosen, root)
    console.print(f"{spec.name} ({chosen}): {len(runs)} runs. {spec.reproduces}", markup=False, soft_wrap=True)
    if dry_run:
        for run in runs:
            console.print(f"{run_status(run.path) or 'new':<9} {run.run_id}", markup=False, soft_wrap=True)
        return

    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    bar = Progress(
        TextColumn("sweep"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[counts]}"),
        TimeElapsedColumn(), TimeRemainingColumn(), console=err_console, disable=not err_console.is_terminal,
    )  # fmt: skip
    task = bar.add_task("sweep", total=len(runs), counts="")
    counts: dict[str, int] = {}

    def show(outcome) -> None:  # type: ignore[no-untyped-def]
        counts[outcome.status] = counts.get(outcome.status, 0) + 1
        summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
        bar.update(task, advance=1, counts=summary)
        bar.console.print(f"{outcome.status:<14} {outcome.run_id}  {outcome.message}", markup=False, soft_wrap=True)

    with bar:
        outcomes = run_sweep(
            runs,
            Path(root) / spec.name / chosen,
            workers=workers,
            device=device,
            data_dir=data_dir,
            cache_dir=cache_dir,
            retry_failed=retry_failed,
            on_outcome=show,
            executor=executor.value,
            ray_address=ray_address,
            log=[t.value for t in log or ()],
        )
    console.print(f"{len(outcomes)} runs: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())), markup=False)
    if report is not None:
        from nasbench_harness.report.build import write_report

        baseline = spec.methods[0].name if len(spec.methods) > 1 else None
        path = write_report([r.path for r in runs if r.path.exists()], report, f"{spec.name} ({chosen})", baseline)
        console.print(f"report: {path.resolve()}", markup=False, soft_wrap=True)
    if counts.get("failed"):
        raise typer.Exit(1)


def _check_workers(workers: int) -> None:
    """``--workers``: at most the CPUs this process may use (each run needs a thread at least)."""
    from nasbench_harness.threads import usable_cpus

    cpus = usable_cpus()
    if workers > cpus:
        raise typer.BadParameter(
            f"{workers}: this machine allows at most {cpus} runs at once (the CPUs this process may use); "
            f"use 1..{cpus}",
            param_hint="--workers",
        )
