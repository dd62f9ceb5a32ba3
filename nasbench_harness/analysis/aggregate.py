"""Aggregates over seeds, computed once for the loader, the tables and the figures.

:func:`aggregate` gives mean, sample standard deviation, standard error and count per group (the
NAS-Bench-1Shot1 figures' mean ± standard error); :func:`summarize` and :func:`mean_std_text` the
same for one set of final values ("93.76 ± 0.21"); :func:`moving_average` the trailing average that
smooths the dominant Hessian eigenvalue as DARTS-ES does; :func:`headline` the final values per
method that head the report. Values keep their units (accuracy in %, differences in points).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from nasbench_harness.errors import UnknownMetricError

EIGEN_WINDOW = 5
"""Points in the trailing moving average of the eigenvalue (DARTS-ES's local average)."""


@dataclass(frozen=True)
class SeedSummary:
    """Mean and sample standard deviation (ddof 1) of ``n`` non-missing values; NaN when undefined."""

    mean: float
    std: float
    n: int


def aggregate(
    epochs: pd.DataFrame, value: str, by: Sequence[str] = ("space", "dataset", "method", "epoch")
) -> pd.DataFrame:
    """Mean, std (ddof 1), sem and n of ``value`` per group of ``by`` (in the value's units).

    ``n`` counts the non-missing values of the group (0 when all are missing); ``std`` and ``sem``
    are NaN when n < 2. Rows with a missing key (e.g. a baseline's NA ``epoch``) form no group.
    Groups come sorted by their keys.
    """
    missing = [c for c in (value, *by) if c not in epochs.columns]
    if missing:
        raise UnknownMetricError(
            f"aggregate() needs column(s) {', '.join(missing)}, which the frame lacks; "
            f"it has {', '.join(map(str, epochs.columns))}"
        )
    values = pd.to_numeric(epochs[value], errors="coerce")
    grouped = values.groupby([epochs[c] for c in by], dropna=True)
    out = grouped.agg(["mean", "std", "count"]).rename(columns={"count": "n"})
    out["n"] = out["n"].astype(int)
    out.loc[out["n"] < 2, "std"] = np.nan
    out["sem"] = out["std"] / np.sqrt(out["n"].where(out["n"] > 0))
    return out[["mean", "std", "sem", "n"]].reset_index()


def summarize(values: Any) -> SeedSummary:
    """Mean and sample std of the non-missing numbers in ``values`` (one per seed, say)."""
    numbers = pd.to_numeric(pd.Series(values), errors="coerce").dropna()
    n = len(numbers)
    mean = float(numbers.mean()) if n else math.nan
    std = float(numbers.std(ddof=1)) if n > 1 else math.nan
    return SeedSummary(mean, std, n)


def mean_std_text(summary: SeedSummary, *, with_n: bool = False, missing: str = "n/a") -> str:
    """``"93.76 ± 0.21"`` (two decimals; the mean alone for one value), ``" (n)"`` appended when
    ``with_n``; ``missing`` when there is no value."""
    if summary.n == 0:
        return missing
    text = f"{summary.mean:.2f}" if summary.n < 2 else f"{summary.mean:.2f} ± {summary.std:.2f}"
    return f"{text} ({summary.n})" if with_n else text


def moving_average(values: pd.Series, window: int = EIGEN_WINDOW) -> pd.Series:
    """Trailing mean of the last ``window`` measured (non-missing) values, fewer at the start, on
    the index of ``values``; NaN where ``values`` is missing. ``values`` is one run, in epoch order."""
    measured = pd.to_numeric(values, errors="coerce").dropna()
    return measured.rolling(window, min_periods=1).mean().reindex(values.index)


HEADLINE_METRICS = ("test_acc", "n_param_free", "eigenvalue", "gap_final")
"""The final values of the report's headline: tabular test accuracy (%), parameter-free ops in the
derived cell, dominant Hessian eigenvalue (5-point moving average) and supernet − final-net gap
(points; ``gap_table`` where a run has no ``gap_final``)."""


def final_eigenvalues(runs: pd.DataFrame, epochs: pd.DataFrame) -> pd.Series:
    """Per run (indexed by ``path``): the last ``eigenvalue_smooth`` at or before its answer epoch
    (NaN when it was never measured)."""
    needed = {"path", "epoch", "eigenvalue_smooth"}
    if not needed <= set(epochs.columns) or "answer_epoch" not in runs.columns:
        return pd.Series(np.nan, index=runs["path"], dtype=float)
    measured = epochs.loc[epochs["eigenvalue_smooth"].notna(), ["path", "epoch", "eigenvalue_smooth"]]
    answer = runs.set_index("path")["answer_epoch"]
    measured = measured[pd.to_numeric(measured["epoch"]) <= pd.to_numeric(measured["path"].map(answer))]
    last = measured.sort_values("epoch").groupby("path")["eigenvalue_smooth"].last()
    return last.reindex(runs["path"]).astype(float)


def headline(runs: pd.DataFrame, epochs: pd.DataFrame) -> list[dict[str, Any]]:
    """Per (space, dataset, method) of the search runs (the loader's frames): ``runs`` and
    ``finished`` counts and a :class:`SeedSummary` over the finished runs of each
    :data:`HEADLINE_METRICS` value at the answer epoch. Sorted by space (NB201 first), dataset, method."""
    searches = runs[runs["kind"] == "search"] if "kind" in runs.columns else runs
    eigen = final_eigenvalues(searches, epochs)
    rows = []
    for (space, dataset, method), group in searches.groupby(["space", "dataset", "method"], sort=True):
        done = group[group["status"] == "finished"]
        has_final = "final_gap_final" in done.columns and done["final_gap_final"].notna().any()
        gap = "final_gap_final" if has_final else "final_gap_table"
        columns = {"test_acc": "final_test_acc", "n_param_free": "final_n_param_free", "gap_final": gap}
        row: dict[str, Any] = {"space": space, "dataset": dataset, "method": method}
        row |= {"runs": len(group), "finished": len(done), "gap_column": gap.removeprefix("final_")}
        for metric, column in columns.items():
            row[metric] = summarize(done[column] if column in done.columns else [])
        row["eigenvalue"] = summarize(eigen.reindex(done["path"]).to_numpy())
        rows.append(row)
    return sorted(rows, key=lambda r: (r["space"] != "nb201", str(r["space"]), str(r["dataset"]), str(r["method"])))
