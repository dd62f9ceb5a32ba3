"""Baseline vs candidate: per (space, dataset) cell, an effect with a bootstrap CI, a rank test, a verdict.

Each run contributes the value of ``metric`` on its answer row (see
:mod:`nasbench_harness.analysis.runs`); only finished runs with a value count, the others are
reported as ``excluded``.

Pairing
    Paired when, in every cell present on both sides, the two sides have the same seeds, each seed
    once; runs are then paired by (space, dataset, seed). Otherwise every cell is unpaired.
Effect ``difference`` (in the metric's units, candidate minus baseline)
    Paired: the mean of the paired differences. Unpaired: median(candidate) - median(baseline).
Confidence interval
    Percentile bootstrap of that effect (``confidence`` 95%, ``n_resamples`` 10,000, seeded):
    paired resamples the pairs, unpaired resamples each side on its own.
Test
    Paired: Wilcoxon signed-rank; unpaired: Mann-Whitney U; two-sided, ``scipy.stats``. ``min_p``
    is the smallest p-value the exact test can give with these n: Wilcoxon ``2 / 2**m`` (m nonzero
    differences), Mann-Whitney ``2 / C(n1 + n2, n1)`` (both capped at 1). 5 pairs give 0.0625, so
    Wilcoxon needs 6 seeds for alpha = 0.05; Mann-Whitney needs 4 + 4 (3 + 3 gives 0.1).
Verdict
    For a metric where lower is better (:func:`lower_is_better`) the difference and CI are negated
    first, so "improved" always means better. With ``t = threshold`` (<= 0, the largest tolerated
    drop, e.g. -0.5 points), CI ``[lo, hi]``, p-value ``p`` and ``alpha`` (0.05), in this order:

    1. ``inconclusive`` when a side has fewer than 2 values (or fewer than 2 pairs);
    2. ``improved`` when ``min_p <= alpha``, ``p <= alpha`` and ``lo > 0``;
    3. ``regressed`` when ``min_p <= alpha``, ``p <= alpha`` and ``hi < t``;
    4. ``no change`` when ``min_p <= alpha``, ``t <= lo`` and ``hi <= -t`` (the CI lies within the
       tolerance band, and the n at hand could have shown a significant effect: with fewer runs a
       bootstrap interval is too narrow to trust, so "no change" is never said where significance
       is unattainable), or when the CI is exactly [0, 0] (no value differs at all);
    5. ``inconclusive`` otherwise; ``reason`` says whether significance was unattainable with these
       n (``min_p > alpha``), not reached, or the CI crosses the band's edge.

    With ``t = 0`` (the collapse indicators) "no change" needs a CI of exactly [0, 0].
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from nasbench_harness.analysis.runs import Runs
from nasbench_harness.errors import ConfigError, UnknownMetricError

ALPHA = 0.05
CONFIDENCE = 0.95
N_RESAMPLES = 10_000
INDICATORS = ("n_param_free", "gap_final")
"""Collapse indicators compared beside the metric (lower is better); reported, not in the exit code."""
VERDICTS = ("improved", "regressed", "no change", "inconclusive")
_LOWER_IS_BETTER = {"n_param_free", "n_parameter_free", "n_skip_connect", "n_maxpool", "n_none", "gap"}


def lower_is_better(metric: str) -> bool:
    """True for regrets, losses, gaps, parameter-free op counts and eigenvalues; False otherwise."""
    return metric in _LOWER_IS_BETTER or any(w in metric for w in ("regret", "loss", "gap_", "eigenvalue"))


@dataclass(frozen=True)
class Comparison:
    """One metric of one (space, dataset) cell; values in the metric's units (accuracies in %)."""

    space: str
    dataset: str
    metric: str
    paired: bool
    test: str
    n_baseline: int
    n_candidate: int
    median_baseline: float
    median_candidate: float
    difference: float
    ci_low: float
    ci_high: float
    p_value: float
    min_p: float
    verdict: str
    reason: str
    lower_is_better: bool
    threshold: float
    seeds: list[int] = field(default_factory=list)
    excluded_baseline: int = 0
    excluded_candidate: int = 0

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values (NaN stays NaN; the CLI's JSON printer makes it null)."""
        return asdict(self)


def compare_values(
    baseline: np.ndarray | list[float],
    candidate: np.ndarray | list[float],
    paired: bool,
    threshold: float = -0.5,
    higher_is_better: bool = True,
    alpha: float = ALPHA,
    confidence: float = CONFIDENCE,
    n_resamples: int = N_RESAMPLES,
    seed: int = 0,
) -> dict[str, Any]:
    """Effect, bootstrap CI, p-value, min attainable p and verdict of two samples (module docstring).

    Paired samples are aligned (``baseline[i]`` with ``candidate[i]``). Returns a dict with
    ``test, n_baseline, n_candidate, median_baseline, median_candidate, difference, ci_low, ci_high,
    p_value, min_p, verdict, reason``.
    """
    from scipy import stats

    if not (math.isfinite(threshold) and threshold <= 0):  # nan would pass a "> 0" test
        raise ConfigError(f"the threshold (the largest tolerated drop) must be <= 0 and finite, got {threshold}")
    b, c = np.asarray(baseline, dtype=float), np.asarray(candidate, dtype=float)
    if paired and len(b) != len(c):
        raise ConfigError(f"paired samples need equal lengths, got {len(b)} baseline and {len(c)} candidate values")
    rng = np.random.default_rng(seed)
    out: dict[str, Any] = {
        "test": "wilcoxon" if paired else "mann-whitney",
        "n_baseline": len(b),
        "n_candidate": len(c),
        "median_baseline": float(np.median(b)) if len(b) else math.nan,
        "median_candidate": float(np.median(c)) if len(c) else math.nan,
    }
    if min(len(b), len(c)) < 2:
        missing = dict.fromkeys(("difference", "ci_low", "ci_high", "p_value", "min_p"), math.nan)
        return out | missing | {"verdict": "inconclusive", "reason": "fewer than 2 runs on a side"}
    if paired:
        d = c - b
        difference = float(d.mean())
        boot = d[rng.integers(0, len(d), (n_resamples, len(d)))].mean(axis=1)
        nonzero = int(np.count_nonzero(d))
        p = 1.0 if nonzero == 0 else float(stats.wilcoxon(c, b, alternative="two-sided").pvalue)
        min_p = min(1.0, 2.0 / 2.0**nonzero)
    else:
        difference = out["median_candidate"] - out["median_baseline"]
        boot_c = np.median(c[rng.integers(0, len(c), (n_resamples, len(c)))], axis=1)
        boot_b = np.median(b[rng.integers(0, len(b), (n_resamples, len(b)))], axis=1)
        boot = boot_c - boot_b
        p = float(stats.mannwhitneyu(c, b, alternative="two-sided").pvalue)
        min_p = min(1.0, 2.0 / math.comb(len(b) + len(c), len(b)))
    tail = (1 - confidence) / 2
    lo, hi = (float(v) for v in np.quantile(boot, [tail, 1 - tail]))
    verdict, reason = _verdict(difference, lo, hi, p, min_p, threshold, higher_is_better, alpha)
    return out | {
        "difference": difference,
        "ci_low": lo,
        "ci_high": hi,
        "p_value": p,
        "min_p": min_p,
        "verdict": verdict,
        "reason": reason,
    }


def compare_runs(
    baseline: Runs,
    candidate: Runs,
    metric: str = "test_acc",
    threshold: float = -0.5,
    alpha: float = ALPHA,
    n_resamples: int = N_RESAMPLES,
    seed: int = 0,
) -> list[Comparison]:
    """Compare ``metric`` at the answer epoch, per (space, dataset) cell present on either side.

    ``UnknownMetricError`` (naming the metrics that exist) when no run on a side has ``metric``.
    Cells are sorted by (space, dataset); see the module docstring for pairing and verdicts.
    """
    finals = {side: _finals(runs, metric, side) for side, runs in (("baseline", baseline), ("candidate", candidate))}
    paired = _can_pair(finals["baseline"], finals["candidate"])
    cells = sorted(
        set(finals["baseline"].groupby(["space", "dataset"]).groups)
        | set(finals["candidate"].groupby(["space", "dataset"]).groups)
    )
    results = []
    for space, dataset in cells:
        sides = {}
        for side, frame in finals.items():
            cell = frame[(frame["space"] == space) & (frame["dataset"] == dataset)]
            usable = cell[(cell["status"] == "finished") & cell["value"].notna()]
            sides[side] = (usable.sort_values("seed"), len(cell) - len(usable))
        (b, b_out), (c, c_out) = sides["baseline"], sides["candidate"]
        higher = not lower_is_better(metric)
        cell_paired = paired and len(b) > 0 and len(c) > 0  # a cell on one side only has nothing to pair
        row = compare_values(
            b["value"].to_numpy(),
            c["value"].to_numpy(),
            cell_paired,
            threshold,
            higher,
            alpha,
            n_resamples=n_resamples,
            seed=seed,
        )
        results.append(
            Comparison(
                space=str(space),
                dataset=str(dataset),
                metric=metric,
                paired=cell_paired,
                lower_is_better=not higher,
                threshold=threshold,
                seeds=[int(s) for s in (b["seed"] if cell_paired else [])],
                excluded_baseline=b_out,
                excluded_candidate=c_out,
                **row,
            )
        )
    return results


# -- internals --------------------------------------------------------------------------------
def _verdict(
    difference: float, lo: float, hi: float, p: float, min_p: float, t: float, higher: bool, alpha: float
) -> tuple[str, str]:
    if not higher:
        lo, hi = -hi, -lo
    attainable, significant = min_p <= alpha, p <= alpha
    if attainable and significant and lo > 0:
        return "improved", f"p = {p:.3g} <= {alpha} and the CI lies above 0"
    if attainable and significant and hi < t:
        return "regressed", f"p = {p:.3g} <= {alpha} and the CI lies below {t:g}"
    band = f"[{t:g}, {-t + 0.0:g}]"  # + 0.0: print 0, not -0
    if lo == 0.0 and hi == 0.0:
        return "no change", "the values do not differ at all"
    if attainable and t <= lo and hi <= -t:
        return "no change", f"the CI lies within {band}"
    if not attainable:
        return "inconclusive", f"too few runs: the smallest attainable p is {min_p:.3g} > {alpha}"
    if not significant:
        return "inconclusive", f"p = {p:.3g} > {alpha} and the CI reaches beyond {band}"
    return "inconclusive", f"significant (p = {p:.3g}) but the CI crosses {0 if lo <= 0 < hi else t:g}"


def _finals(runs: Runs, metric: str, side: str) -> pd.DataFrame:
    """One row per run: space, dataset, seed, status and the metric's answer value (NaN when absent)."""
    if not len(runs):
        raise ConfigError(f"the {side} side has no runs; give run directories or folders holding them")
    answers = runs.answers()
    if metric not in answers.columns or pd.to_numeric(answers[metric], errors="coerce").isna().all():
        numeric = [
            col
            for col in answers.columns
            if col not in ("seed", "epoch", "evaluation") and pd.to_numeric(answers[col], errors="coerce").notna().any()
        ]
        raise UnknownMetricError(
            f"no {side} run has a value of {metric!r}; metrics present: {', '.join(sorted(numeric)) or 'none'}"
        )
    values = answers.set_index("path")[metric]
    frame = runs.runs[["path", "space", "dataset", "seed", "status"]].copy()
    frame["value"] = pd.to_numeric(frame["path"].map(values), errors="coerce")
    return frame


def _can_pair(baseline: pd.DataFrame, candidate: pd.DataFrame) -> bool:
    """Same seeds, each once, on both sides of every cell present on both sides (usable runs only)."""
    shared = 0
    for key, b in baseline.groupby(["space", "dataset"]):
        c = candidate[(candidate["space"] == key[0]) & (candidate["dataset"] == key[1])]
        b_seeds = b.loc[(b["status"] == "finished") & b["value"].notna(), "seed"]
        c_seeds = c.loc[(c["status"] == "finished") & c["value"].notna(), "seed"]
        if not len(c_seeds):
            continue
        if b_seeds.duplicated().any() or c_seeds.duplicated().any() or set(b_seeds) != set(c_seeds):
            return False
        shared += 1
    return shared > 0
