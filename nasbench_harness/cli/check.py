"""``nbh check-regularizer``: run a suite's baseline grid and the same grid with a user's
regularizer, compare them, write a report; the exit code is ``nbh compare``'s. The steps live in
:mod:`nasbench_harness.execution.regcheck`; this module parses the options and prints."""

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
    RegParamOption,
    RegWeightOption,
    RootOption,
    VariantOption,
    WorkersOption,
    console,
    parse_method,
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


def check_regularizer(
    regularizer: Annotated[str, typer.Argument(help="The regularizer: path/to/file.py:Class or package.module:Class.")],
    suite: Annotated[Path, typer.Option("--suite", help="The baseline grid.")] = Path(
        "benchmarks/suites/regularizer-check.yaml"
    ),
    baseline_method: Annotated[
        str,
        typer.Option(
            "--baseline-method",
            parser=parse_method,
            metavar="METHOD",
            help="The suite method the regularizer is added to (the candidate).",
        ),
    ] = "darts",
    weight: RegWeightOption = None,
    params: RegParamOption = None,
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
    threshold: Annotated[float, typer.Option("--threshold", help="Largest tolerated drop (points).")] = -0.5,
    report: Annotated[
        Path | None, typer.Option("--report", help="HTML report (default: reports/<suite>-<reg>.html).")
    ] = None,
    data_dir: DataDirOption = None,
    cache_dir: CacheDirOption = None,
) -> None:
    """Check a regularizer against a suite's baselines; exit code 1 on a regression.

    Trains the suite (baselines, reused when already finished) and the candidate (the suite's
    --baseline-method runs plus the regularizer, in their own directories) here, on Ray or on
    SLURM (the same executor options as `nbh sweep`), compares the candidate with that baseline
    method on the final tabular test accuracy and writes a report."""
    from nasbench_harness.cli.compare import check_threshold
    from nasbench_harness.config import parse_overrides
    from nasbench_harness.execution.regcheck import compare_check, plan_check, train_check, write_check_report

    check_threshold(threshold)  # before hours of training
    preset = preset_or_variant(preset, variant)
    where = Where(
        executor, device, workers, gpus_per_run, cpus_per_run, ray_address, slurm_partition, slurm_time,
        slurm_array_parallelism, tuple(slurm_option or ()), tuple(slurm_setup or ()),
    )  # fmt: skip
    from nasbench_harness.execution.local import INCOMPLETE
    from nasbench_harness.execution.suite import load_suite

    variants = load_suite(suite).variants
    with placed(where, preset.value if preset else None, variants) as (backend, placement, chosen):
        check = plan_check(
            regularizer,
            suite,
            preset=chosen,
            root=root,
            baseline_method=baseline_method,
            weight="1" if weight is None else weight,
            params=parse_overrides(params or []),
        )
        console.print(f"{backend.name}: {placement.describe()}", markup=False, soft_wrap=True)
        outcomes = train_check(check, data_dir=data_dir, cache_dir=cache_dir, backend=backend, placement=placement)
    failed = [o for o in outcomes if o.status == "failed" or o.status in INCOMPLETE]
    for outcome in failed:
        console.print(f"{outcome.status}: {outcome.run_id}: {outcome.message}", markup=False, soft_wrap=True)
    regressed = False
    for cell in compare_check(check, threshold):
        regressed |= cell.verdict == "regressed"
        console.print(
            f"{cell.space} / {cell.dataset}: {cell.verdict} ({cell.reason}); difference {cell.difference:+.2f} "
            f"points, 95% CI {cell.ci_low:+.2f} to {cell.ci_high:+.2f}, n {cell.n_baseline}/{cell.n_candidate}",
            markup=False,
            soft_wrap=True,
        )
    out = write_check_report(check, report)
    console.print(f"report: {out}", markup=False, soft_wrap=True)
    if regressed or failed:
        raise typer.Exit(1)
