"""``nbh check-regularizer``: run a suite's baseline grid and the same grid with a user's
regularizer, compare them, write a report; the exit code is ``nbh compare``'s."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from nasbench_harness.cli.common import DataDirOption, console


def check_regularizer(
    regularizer: Annotated[str, typer.Argument(help="The regularizer: path/to/file.py:Class or package.module:Class.")],
    suite: Annotated[Path, typer.Option("--suite", help="The baseline grid.")] = Path(
        "benchmarks/suites/regularizer-check.yaml"
    ),
    baseline_method: Annotated[
        str, typer.Option("--baseline-method", help="The suite method the regularizer is added to (the candidate).")
    ] = "darts",
    weight: Annotated[
        str, typer.Option("--reg-weight", help="The regularizer's weight: a number, or START:END (a linear ramp).")
    ] = "1",
    params: Annotated[
        list[str] | None, typer.Option("--reg-param", help="key=value (repeatable).", show_default=False)
    ] = None,
    variant: Annotated[str, typer.Option("--variant", help="The suite variant (preset).")] = "cpu",
    root: Annotated[Path, typer.Option("--root", help="Results folder.")] = Path("results"),
    workers: Annotated[int, typer.Option("--workers", help="Runs trained at once.")] = 1,
    threshold: Annotated[float, typer.Option("--threshold", help="Largest tolerated drop (points).")] = -0.5,
    report: Annotated[
        Path | None, typer.Option("--report", help="HTML report (default: reports/<suite>-<reg>.html).")
    ] = None,
    data_dir: DataDirOption = None,
) -> None:
    """Check a regularizer against a suite's baselines; exit code 1 on a regression.

    Trains the suite (baselines, reused when already finished) and the candidate (the suite's
    --baseline-method runs plus the regularizer, in their own directories), compares the
    candidate with that baseline method on the final tabular test accuracy and writes a report."""
    from nasbench_harness.analysis.runs import load_runs
    from nasbench_harness.analysis.stats import compare_runs
    from nasbench_harness.config import parse_overrides, validate_config
    from nasbench_harness.errors import ConfigError
    from nasbench_harness.execution.local import run_sweep
    from nasbench_harness.execution.suite import PlannedRun, expand, load_suite
    from nasbench_harness.plugins import load_regularizer
    from nasbench_harness.report.build import write_report

    cls = load_regularizer(regularizer)
    spec = load_suite(suite)
    baselines = expand(spec, variant, root)
    chosen = [r for r in baselines if r.config.method == baseline_method]
    if not chosen:
        raise ConfigError(f"suite {spec.name!r} has no {baseline_method!r} runs to add the regularizer to")
    plugin = {"ref": regularizer, "weight": weight, "params": parse_overrides(params or [])}
    candidates = []
    for run in chosen:
        values = {**run.config.to_dict(), "plugins": [plugin]}
        label = f"{baseline_method}+{cls.__name__}"
        path = (
            Path(root)
            / spec.name
            / variant
            / "candidates"
            / run.config.space
            / run.config.dataset
            / label
            / run.path.name
        )
        candidates.append(PlannedRun(f"{run.run_id}+{cls.__name__}", validate_config(values), path))
    outcomes = run_sweep(
        [*baselines, *candidates], Path(root) / spec.name / variant, workers=workers, data_dir=data_dir
    )
    failed = [o for o in outcomes if o.status == "failed"]
    for outcome in failed:
        console.print(f"failed: {outcome.run_id}: {outcome.message}", markup=False, soft_wrap=True)
    base = load_runs([r.path for r in chosen])
    cand = load_runs([r.path for r in candidates])
    regressed = False
    for cell in compare_runs(base, cand, threshold=threshold):
        regressed |= cell.verdict == "regressed"
        console.print(
            f"{cell.space} / {cell.dataset}: {cell.verdict} ({cell.reason}); difference {cell.difference:+.2f} "
            f"points, 95% CI {cell.ci_low:+.2f} to {cell.ci_high:+.2f}, n {cell.n_baseline}/{cell.n_candidate}",
            markup=False,
            soft_wrap=True,
        )
    out = report or Path("reports") / f"{spec.name}-{cls.__name__}.html"
    write_report(
        [r.path for r in baselines] + [r.path for r in candidates],
        out,
        f"{cls.__name__} vs {spec.name}",
        baseline_method,
    )
    console.print(f"report: {out}", markup=False, soft_wrap=True)
    if regressed or failed:
        raise typer.Exit(1)
