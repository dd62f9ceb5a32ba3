"""``nbh baseline``: the table-only baselines (random search, regularized evolution, REINFORCE),
for reference lines beside the weight-sharing searches. No training, no torch."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from nasbench_harness.cli.common import (
    CacheDirOption,
    DataDirOption,
    Dataset,
    DatasetOption,
    Space,
    SpaceOption,
    choice_parser,
    console,
    fmt,
    out_option,
)


class Baseline(StrEnum):
    """The table-only baselines."""

    random_search = "random-search"
    regularized_evolution = "regularized-evolution"
    reinforce = "reinforce"


BASELINES = tuple(b.value for b in Baseline)


def baseline(
    method: Annotated[
        Baseline,
        typer.Option(
            "--method",
            parser=choice_parser(Baseline),
            help="random-search, regularized-evolution (aging evolution), or reinforce (policy gradient, nb201 only).",
        ),
    ] = Baseline.random_search,
    space: SpaceOption = Space["nb201"],
    dataset: DatasetOption = Dataset["cifar10"],
    seed: Annotated[int, typer.Option("--seed", help="Seeds the sampling and mutations.")] = 0,
    n: Annotated[int, typer.Option("--n", help="Architectures evaluated (table queries with a number).")] = 100,
    population: Annotated[int, typer.Option("--population", help="Evolution: population size P.")] = 10,
    sample: Annotated[int, typer.Option("--sample", help="Evolution: tournament size S.")] = 3,
    learning_rate: Annotated[
        float, typer.Option("--learning-rate", help="REINFORCE: Adam's learning rate on the policy logits (> 0).")
    ] = 0.5,
    ema_momentum: Annotated[
        float, typer.Option("--ema-momentum", help="REINFORCE: momentum of the reward baseline, in [0, 1).")
    ] = 0.9,
    out: Annotated[
        Path | None, out_option("Run directory. Default: results/<space>/<dataset>/<method>/table/seed-<seed>.")
    ] = None,
    data_dir: DataDirOption = None,
    cache_dir: CacheDirOption = None,
) -> None:
    """Run a table-only baseline (random search, regularized evolution or REINFORCE).

    Every evaluation queries the benchmark's validation accuracy, the incumbent is the best so
    far, and its test accuracy and regret are recorded. REINFORCE (the NAS-Bench-201 paper's
    policy-gradient baseline) runs on nb201 only.

    Writes manifest.json and trajectory.parquet (one row per evaluation; see results/README.md).
    NB-1Shot1 cells missing from a partial NB101 table are skipped and counted.
    """
    from nasbench_harness.baselines import reinforce as rl
    from nasbench_harness.baselines import tabular as tb
    from nasbench_harness.spaces.catalog import open_benchmark
    from nasbench_harness.tracking.atomic import check_output_dir

    name, space_name, data_name = method.value, space.value, dataset.value
    run_dir = out or Path("results") / space_name / data_name / name / "table" / f"seed-{seed}"
    check_output_dir(run_dir, "--out")  # before any work: a file there is an error, not a traceback at the end
    tb.problem_metrics(space_name, data_name)  # a space/dataset mismatch is reported before any table is read
    evolution = method is Baseline.regularized_evolution
    tb.check_options(n, seed, population if evolution else None, sample if evolution else None)
    if method is Baseline.reinforce:
        rl.check_reinforce_options(space_name, learning_rate, ema_momentum)
    bench = open_benchmark(space_name, data_dir, cache_dir)
    if method is Baseline.random_search:
        trace = tb.random_search(bench, space_name, data_name, n, seed)
    elif method is Baseline.reinforce:
        trace = rl.reinforce(bench, space_name, data_name, n, seed, learning_rate, ema_momentum)
    else:
        trace = tb.regularized_evolution(bench, space_name, data_name, n, seed, population=population, sample=sample)
    path = tb.write_trace(trace, run_dir)
    last = trace.rows[-1]
    console.print(f"{name} on {space_name}/{data_name}, seed {seed}: {len(trace.rows)} evaluations -> {path}")
    console.print(
        f"incumbent {last['incumbent']}: valid {fmt(last['incumbent_valid_acc'])}%, "
        f"test {fmt(last['incumbent_test_acc'])}%, test regret {fmt(last['regret_test'])} points",
        soft_wrap=True,
        markup=False,
    )
    if trace.skipped_not_in_benchmark:
        console.print(f"skipped {trace.skipped_not_in_benchmark} cells not in the imported table")
