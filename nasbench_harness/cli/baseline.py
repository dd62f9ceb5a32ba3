"""``nbh baseline``: the table-only baselines (random search, regularized evolution), for
reference lines beside the weight-sharing searches. No training, no torch."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from nasbench_harness.cli.common import CacheDirOption, DataDirOption, console, fmt

BASELINES = ("random-search", "regularized-evolution")


def baseline(
    method: Annotated[
        str, typer.Option("--method", help="random-search, or regularized-evolution (aging evolution).")
    ] = "random-search",
    space: Annotated[str, typer.Option("--space", help="nb201, nb1shot1-1, nb1shot1-2 or nb1shot1-3.")] = "nb201",
    dataset: Annotated[
        str, typer.Option("--dataset", help="cifar10, cifar100 or ImageNet16-120 (NB-1Shot1: cifar10).")
    ] = "cifar10",
    seed: Annotated[int, typer.Option("--seed", help="Seeds the sampling and mutations.")] = 0,
    n: Annotated[int, typer.Option("--n", help="Architectures evaluated (table queries with a number).")] = 100,
    population: Annotated[int, typer.Option("--population", help="Evolution: population size P.")] = 10,
    sample: Annotated[int, typer.Option("--sample", help="Evolution: tournament size S.")] = 3,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Run directory. Default: results/<space>/<dataset>/<method>/table/seed-<seed>.",
            show_default=False,
        ),
    ] = None,
    data_dir: DataDirOption = None,
    cache_dir: CacheDirOption = None,
) -> None:
    """Run a table-only baseline (random search or regularized evolution).

    Every evaluation queries the benchmark's validation accuracy, the incumbent is the best so
    far, and its test accuracy and regret are recorded.

    Writes manifest.json and trajectory.parquet (one row per evaluation; see results/README.md).
    NB-1Shot1 cells missing from a partial NB101 table are skipped and counted.
    """
    from nasbench_harness.baselines import tabular as tb
    from nasbench_harness.errors import ConfigError
    from nasbench_harness.spaces.catalog import open_benchmark

    if cache_dir:
        os.environ["NBH_CACHE_DIR"] = str(cache_dir)
    if method not in BASELINES:
        raise ConfigError(f"unknown baseline {method!r}; choose {' or '.join(BASELINES)}")
    bench = open_benchmark(space, data_dir)
    if method == "random-search":
        trace = tb.random_search(bench, space, dataset, n, seed)
    else:
        trace = tb.regularized_evolution(bench, space, dataset, n, seed, population=population, sample=sample)
    run_dir = out or Path("results") / space / dataset / method / "table" / f"seed-{seed}"
    path = tb.write_trace(trace, run_dir)
    last = trace.rows[-1]
    console.print(f"{method} on {space}/{dataset}, seed {seed}: {len(trace.rows)} evaluations -> {path}")
    console.print(
        f"incumbent {last['incumbent']}: valid {fmt(last['incumbent_valid_acc'])}%, "
        f"test {fmt(last['incumbent_test_acc'])}%, test regret {fmt(last['regret_test'])} points",
        soft_wrap=True,
        markup=False,
    )
    if trace.skipped_not_in_benchmark:
        console.print(f"skipped {trace.skipped_not_in_benchmark} cells not in the imported table")
