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
    PresetOption,
    RegParamOption,
    RegWeightOption,
    RootOption,
    VariantOption,
    WorkersOption,
    concrete_device,
    console,
    default_preset,
    parse_method,
    preset_or_variant,
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
    workers: WorkersOption = 1,
    device: DeviceOption = "auto",
    threshold: Annotated[float, typer.Option("--threshold", help="Largest tolerated drop (points).")] = -0.5,
    report: Annotated[
        Path | None, typer.Option("--report", help="HTML report (default: reports/<suite>-<reg>.html).")
    ] = None,
    data_dir: DataDirOption = None,
    cache_dir: CacheDirOption = None,
) -> None:
    """Check a regularizer against a suite's baselines; exit code 1 on a regression.

    Trains the suite (baselines, reused when already finished) and the candidate (the suite's
    --baseline-method runs plus the regularizer, in their own directories), compares the
    candidate with that baseline method on the final tabular test accuracy and writes a report."""
    from nasbench_harness.cli.compare import check_threshold
    from nasbench_harness.config import parse_overrides
    from nasbench_harness.execution.regcheck import compare_check, plan_check, train_check, write_check_report

    check_threshold(threshold)  # before hours of training
    preset = preset_or_variant(preset, variant)
    device = concrete_device(device)
    from nasbench_harness.execution.suite import load_suite

    check = plan_check(
        regularizer,
        suite,
        preset=preset.value if preset else default_preset(device, load_suite(suite).variants),
        root=root,
        baseline_method=baseline_method,
        weight="1" if weight is None else weight,
        params=parse_overrides(params or []),
    )
    outcomes = train_check(check, workers=workers, device=device, data_dir=data_dir, cache_dir=cache_dir)
    failed = [o for o in outcomes if o.status == "failed"]
    for outcome in failed:
        console.print(f"failed: {outcome.run_id}: {outcome.message}", markup=False, soft_wrap=True)
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
