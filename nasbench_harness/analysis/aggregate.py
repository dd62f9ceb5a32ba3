"""Aggregates over seeds, computed once for the loader, the tables and the figures.

:func:`aggregate` gives mean, sample standard deviation, standard error and count per group (the
NAS-Bench-1Shot1 figures' mean ± standard error); :func:`summarize` and :func:`mean_std_text` the
same for one set of final values ("93.76 ± 0.21"); :func:`moving_average` the trailing average that
smooths the dominant Hessian eigenvalue as DARTS-ES does. Values keep their units (accuracy in %,
differences in points).
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
