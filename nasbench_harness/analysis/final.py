"""Final test accuracy per method over seeds: the box-and-points figure and the results table.

Both read the ``runs`` frame (one row per run) with the final accuracies as ``test_acc`` and
``nb201_<d>_test`` (or the loader's ``final_<metric>`` names). The mean and sample standard
deviation over seeds come from :mod:`nasbench_harness.analysis.aggregate`, as in every other table.
Also importable from :mod:`nasbench_harness.analysis.figures`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from nasbench_harness.analysis.aggregate import mean_std_text, summarize
from nasbench_harness.analysis.hover import add_hover
from nasbench_harness.analysis.plotstyle import (
    PAGE_WIDTH,
    TITLE_SIZE,
    dataset_label,
    method_color,
    panel_grid,
    panel_title,
    require_columns,
    space_label,
    style_axes,
)
from nasbench_harness.errors import ConfigError
from nasbench_harness.tracking import schema

__all__ = ["NB201_TEST_COLUMNS", "final_accuracy_box", "results_table"]

NB201_TEST_COLUMNS: dict[str, str] = dict(zip(schema.NB201_TEST_COLUMNS, schema.NB201_DATASETS, strict=True))


def final_columns(runs: pd.DataFrame) -> pd.DataFrame:
    """Accept the loader's ``final_<metric>`` names for the final accuracies."""
    rename = {
        f"final_{c}": c
        for c in ("test_acc", *NB201_TEST_COLUMNS)
        if c not in runs.columns and f"final_{c}" in runs.columns
    }
    return runs.rename(columns=rename)


def _final_panels(runs: pd.DataFrame) -> list[tuple[str, pd.DataFrame, str]]:
    """(title, runs, accuracy column) of each panel of the final-accuracy figure."""
    panels = []
    nb201 = runs[runs["space"] == "nb201"]
    nb201_columns = [c for c in NB201_TEST_COLUMNS if c in runs.columns]
    has_dataset = "dataset" in runs.columns
    groups = nb201.groupby("dataset", sort=True) if has_dataset else [(None, nb201)]
    for searched, sub in groups:
        origin = "" if searched is None or nb201["dataset"].nunique() < 2 else f" (searched on {searched})"
        for column in nb201_columns:
            if sub[column].notna().any():
                title = f"{space_label('nb201')} · {dataset_label(NB201_TEST_COLUMNS[column])}{origin}"
                panels.append((title, sub, column))
        if not nb201_columns and "test_acc" in sub.columns:
            panels.append((panel_title("nb201", searched), sub, "test_acc"))
    if "test_acc" in runs.columns:
        others = runs[runs["space"] != "nb201"]
        keys = ["space", "dataset"] if has_dataset else ["space"]
        for key, sub in others.groupby(keys, sort=True):
            space, dataset = key[0], key[1] if has_dataset else None
            if sub["test_acc"].notna().any():
                panels.append((panel_title(space, dataset), sub, "test_acc"))
    return panels


def final_accuracy_box(runs: pd.DataFrame) -> Figure:
    """Final test accuracy (%) per method: each seed a point (deterministic jitter) over a box;
    one panel per NB201 data set (``nb201_*_test``) and per NB-1Shot1 space (``test_acc``)."""
    runs = final_columns(runs)
    require_columns(runs, ["space", "method"], "final-accuracy figure", what="runs")
    if "test_acc" not in runs.columns and not any(c in runs.columns for c in NB201_TEST_COLUMNS):
        raise ConfigError(
            f"final-accuracy figure: the runs frame lacks the column(s) test_acc (and {', '.join(NB201_TEST_COLUMNS)})"
        )
    panels = _final_panels(runs)
    if not panels:
        raise ConfigError("final-accuracy figure: no runs for this figure (every final accuracy is NaN)")
    width = max(2.6, 0.6 * runs["method"].nunique() + 1.2)
    fig, axes = panel_grid(len(panels), ncols=max(1, int(PAGE_WIDTH // width)), width=width)  # rows fit a page
    for ax, (title, sub, column) in zip(axes, panels, strict=True):
        style_axes(ax)
        ax.set_title(title, fontsize=TITLE_SIZE)
        _box(ax, sub, column)
        ax.set_ylabel("test accuracy (%)")
    fig.suptitle("Final test accuracy per method", fontsize=TITLE_SIZE + 1)
    return fig


def _box(ax: Axes, runs: pd.DataFrame, column: str) -> None:
    order = "seed" if "seed" in runs.columns else "method"
    groups = [(str(m), g.sort_values(order)[column].dropna()) for m, g in runs.groupby("method", sort=True)]
    groups = [(m, v) for m, v in groups if len(v)]
    positions = np.arange(1, len(groups) + 1)
    boxes = ax.boxplot(
        [v.to_numpy(float) for _, v in groups], positions=positions, widths=0.55, showfliers=False, patch_artist=True
    )
    for patch, (method, _) in zip(boxes["boxes"], groups, strict=True):
        patch.set(facecolor=method_color(method), alpha=0.2, edgecolor="0.3")
    for median in boxes["medians"]:
        median.set(color="0.2")
    seeds = {m: g.sort_values(order)["seed" if "seed" in g.columns else "method"] for m, g in runs.groupby("method")}
    for pos, (method, values) in zip(positions, groups, strict=True):
        jitter = np.linspace(-0.16, 0.16, len(values)) if len(values) > 1 else np.zeros(1)
        dots = ax.scatter(pos + jitter, values, s=22, color=method_color(method), edgecolors="white", lw=0.5, zorder=3)
        who = seeds[method].loc[values.index]
        add_hover(
            dots, points=[f"{method} · seed {s} · test accuracy {v:.4g} %" for s, v in zip(who, values, strict=True)]
        )
    ax.set_xticks(positions, [f"{m}\n(n={len(v)})" for m, v in groups])


def _cell(values: pd.Series) -> str:
    return mean_std_text(summarize(values), with_n=True, missing="—")


def results_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Final test accuracy as "mean ± std (n)" strings (%, sample std over seeds), a row per method
    and a column per data set, as in the NAS-Bench-201 paper (NB201: CIFAR-10, CIFAR-100,
    ImageNet16-120 from ``nb201_*_test``; NB-1Shot1: ``test_acc`` per space). When NB201 runs were
    searched on several data sets the row says which (``darts [cifar100]``). Every run given
    counts, whatever its status (``analysis.runs.final_table`` counts finished runs only).
    Ready for ``to_html``."""
    runs = final_columns(runs)
    require_columns(runs, ["space", "method"], "results table", what="runs")
    cells: dict[str, dict[str, str]] = {}
    nb201 = runs[runs["space"] == "nb201"]
    several = "dataset" in runs.columns and nb201["dataset"].nunique() > 1
    for key, sub in nb201.groupby(["method", "dataset"] if several else ["method"], sort=True):
        row = f"{key[0]} [{key[1]}]" if several else str(key[0])
        for column, dataset in NB201_TEST_COLUMNS.items():
            if column in sub.columns and runs[column].notna().any():
                cells.setdefault(row, {})[dataset_label(dataset)] = _cell(sub[column])
        if not any(c in runs.columns for c in NB201_TEST_COLUMNS) and "test_acc" in runs.columns:
            cells.setdefault(row, {})[space_label("nb201")] = _cell(sub["test_acc"])
    others = runs[runs["space"] != "nb201"]
    if "test_acc" in runs.columns:
        for (method, space), sub in others.groupby(["method", "space"], sort=True):
            cells.setdefault(str(method), {})[space_label(space)] = _cell(sub["test_acc"])
    if not cells:
        raise ConfigError("results table: no runs for this table")
    table = pd.DataFrame.from_dict(cells, orient="index").sort_index().fillna("—")
    table.index.name = "method"
    return table
