"""``nbh compare``: does a candidate method beat, match or fall behind a baseline? No torch."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from nasbench_harness.cli.common import JsonOption, console, fmt, print_json
from nasbench_harness.cli.report import SkipDamagedOption, warn

if TYPE_CHECKING:
    from nasbench_harness.analysis.runs import Runs
    from nasbench_harness.analysis.stats import Comparison


def compare(
    baseline: Annotated[
        list[Path],
        typer.Option("--baseline", "-b", help="Baseline run directory or folder of runs (repeat the option)."),
    ],
    candidate: Annotated[
        list[Path],
        typer.Option("--candidate", "-c", help="Candidate run directory or folder of runs (repeat the option)."),
    ],
    metric: Annotated[
        str, typer.Option("--metric", "-m", help="Trajectory column compared at the answer epoch, e.g. test_regret.")
    ] = "test_acc",
    threshold: Annotated[
        float,
        typer.Option("--threshold", help="Largest tolerated drop of the metric (<= 0, in its units: points for %)."),
    ] = -0.5,
    alpha: Annotated[float, typer.Option("--alpha", help="Significance level of the two-sided test.")] = 0.05,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Seed of the bootstrap resampling.")] = 0,
    as_json: JsonOption = False,
    skip_damaged: SkipDamagedOption = False,
) -> None:
    """Compare a candidate's runs with a baseline's, per (space, dataset) cell.

    A run counts with its answer epoch's value (the last epoch; DARTS-ES:
    its result epoch); only finished runs with a value count.
    Effect = candidate minus baseline, with a 95% bootstrap CI.
    Paired by (space, dataset, seed) when every cell has the same seeds on
    both sides: Wilcoxon signed-rank, effect = mean paired difference.
    Else unpaired: Mann-Whitney U, effect = difference of the medians.
    Lower-is-better metrics (regret, gaps, op counts) are negated first.

    Verdict: the first rule that holds, with t = --threshold (<= 0),
    CI (lo, hi), p-value p, and min_p = the smallest p the exact test can
    reach with these n (Wilcoxon 2/2^n, Mann-Whitney 2/C(n1+n2, n1)):
    1. fewer than 2 runs on a side: inconclusive;
    2. min_p <= alpha and p <= alpha and lo > 0: improved;
    3. min_p <= alpha and p <= alpha and hi < t: regressed;
    4. min_p <= alpha and t <= lo and hi <= -t, or CI exactly [0, 0]: no change;
    5. otherwise inconclusive (the reason is printed).

    The collapse indicators n_param_free and gap_final (lower is better,
    t = 0) are shown beside the metric, outside the exit code:
    1 when any cell's metric regressed, else 0.
    """
    from nasbench_harness.analysis.runs import load_runs
    from nasbench_harness.analysis.stats import INDICATORS, compare_runs
    from nasbench_harness.errors import ConfigError

    if not 0 < alpha < 1:
        raise ConfigError(f"--alpha must lie between 0 and 1 (e.g. 0.05), got {alpha}")
    check_threshold(threshold)
    base_runs, cand_runs = (load_runs(paths, skip_damaged=skip_damaged, warn=warn) for paths in (baseline, candidate))
    main = compare_runs(base_runs, cand_runs, metric, threshold, alpha, seed=seed)
    indicators = {}
    for name in INDICATORS:
        if name == metric or not _has(base_runs, name) or not _has(cand_runs, name):
            continue
        indicators[name] = {
            (c.space, c.dataset): c for c in compare_runs(base_runs, cand_runs, name, 0.0, alpha, seed=seed)
        }
    regressed = any(c.verdict == "regressed" for c in main)
    if as_json:
        cells = []
        for c in main:
            extra = {
                n: found[(c.space, c.dataset)].to_dict()
                for n, found in indicators.items()
                if (c.space, c.dataset) in found
            }
            cells.append({**c.to_dict(), "indicators": extra})
        print_json({"metric": metric, "threshold": threshold, "alpha": alpha, "regressed": regressed, "cells": cells})
    else:
        for c in main:
            rows = [c] + [found[(c.space, c.dataset)] for found in indicators.values() if (c.space, c.dataset) in found]
            _print_cell(rows)
    if regressed:
        raise typer.Exit(1)


def check_threshold(threshold: float) -> float:
    """``--threshold`` unchanged when it is a finite number <= 0; else a ``ConfigError`` saying so."""
    import math

    from nasbench_harness.errors import ConfigError

    if not (math.isfinite(threshold) and threshold <= 0):
        raise ConfigError(f"--threshold {threshold}: the largest tolerated drop must be <= 0 and finite (e.g. -0.5)")
    return threshold


def _has(runs: Runs, metric: str) -> bool:
    answers = runs.answers()
    return metric in answers.columns and answers[metric].notna().any()


def _print_cell(rows: list[Comparison]) -> None:
    from rich.table import Table

    first = rows[0]
    how = f"paired Wilcoxon, seeds {first.seeds}" if first.paired else "unpaired Mann-Whitney U"
    excluded = first.excluded_baseline + first.excluded_candidate
    title = f"{first.space} / {first.dataset}: {how}" + (
        f", {excluded} unfinished or valueless runs left out" if excluded else ""
    )
    table = Table(title=title, title_justify="left")
    table.add_column("", no_wrap=True)
    for r in rows:
        table.add_column(f"{r.metric} ({'lower' if r.lower_is_better else 'higher'} is better)", justify="right")
    lines = {
        "runs base/cand": [f"{r.n_baseline}/{r.n_candidate}" for r in rows],
        "median baseline": [fmt(r.median_baseline) for r in rows],
        "median candidate": [fmt(r.median_candidate) for r in rows],
        "difference": [fmt(r.difference) for r in rows],
        "95% CI": [f"{fmt(r.ci_low)} to {fmt(r.ci_high)}" for r in rows],
        "p": [fmt(r.p_value, 4) for r in rows],
        "min attainable p": [fmt(r.min_p, 4) for r in rows],
        "verdict": [f"[bold]{r.verdict}[/]" for r in rows],
    }
    for label, cells in lines.items():
        table.add_row(label, *cells)
    console.print(table)
    for r in rows:
        console.print(f"  {r.metric}: {r.verdict}: {r.reason}", markup=False, soft_wrap=True)
