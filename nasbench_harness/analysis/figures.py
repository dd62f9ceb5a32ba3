"""The trajectory figures of the robust-DARTS papers, drawn from the tidy ``epochs`` frame.

The final-accuracy box plot and the results table (from the ``runs`` frame) are in
:mod:`nasbench_harness.analysis.final` and importable from here too; the mean and standard error
over seeds, and the eigenvalue's moving average, come from :mod:`nasbench_harness.analysis.aggregate`.

Every function returns a ``matplotlib.figure.Figure`` (Agg canvas, no pyplot state); ``save``
writes it as SVG and PNG. Curves are the mean over seeds with a band of one standard error; the
legend says how many seeds contributed (``darts (n=3)``, or ``darts (n=2–3)`` when some epochs
have fewer values, e.g. derived cells missing from the benchmark, whose NaN accuracy is left
out of the mean). Methods drawn together get distinct colours, the same in every figure of the
same runs (``plotstyle.activate``).

Trajectory figures have one panel per (space, data set). Missing or empty data follow one rule:
a frame that lacks a required column, or has no rows, raises ``ConfigError`` naming the
column(s) or saying "no runs for this figure"; a panel whose values are all NaN says "no data".
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from nasbench_harness.analysis.aggregate import aggregate, moving_average
from nasbench_harness.analysis.final import NB201_TEST_COLUMNS, final_accuracy_box, results_table
from nasbench_harness.analysis.plotstyle import (
    OKABE_ITO,
    method_color,
    method_style,
    no_data,
    panel_grid,
    panel_title,
    require_columns,
    style_axes,
)
from nasbench_harness.errors import ConfigError

__all__ = [  # final_accuracy_box, results_table and NB201_TEST_COLUMNS live in analysis.final
    "NB201_TEST_COLUMNS",
    "alphas_over_epochs",
    "eigenvalue_vs_epoch",
    "final_accuracy_box",
    "gap_vs_epoch",
    "param_free_vs_epoch",
    "regret_vs_epoch",
    "results_table",
    "save",
    "test_acc_vs_epoch",
]

REGRET_FLOOR = 1e-2  # points; a zero regret cannot be drawn on a log axis, so it is drawn here
SAVE_FORMATS = ("svg", "png", "pdf")
_PANEL_KEYS = ["space", "dataset"]


# --- data checks and drawing ----------------------------------------------------------------


def _epoch_rows(epochs: pd.DataFrame, columns: Sequence[str], figure: str) -> pd.DataFrame:
    """The rows with an epoch (table-only baselines have none), with a ``run`` id column
    (the loader's ``path`` when there is no ``run``)."""
    if "run" not in epochs.columns and "path" in epochs.columns:
        epochs = epochs.assign(run=epochs["path"].astype(str))
    require_columns(epochs, ["space", "method", "run", "epoch", *columns], figure)
    epochs = epochs[epochs["epoch"].notna()]
    if epochs.empty:
        raise ConfigError(f"{figure}: no runs for this figure (no row has an epoch; baselines have none)")
    return epochs.assign(epoch=epochs["epoch"].astype(float))


def _n_label(method: str, counts: pd.Series) -> str:
    counts = counts[counts > 0]
    lo, hi = int(counts.min()), int(counts.max())
    return f"{method} (n={hi})" if lo == hi else f"{method} (n={lo}–{hi})"


def _panels(epochs: pd.DataFrame) -> list[tuple[str, object, pd.DataFrame]]:
    """(space, data set, rows) of each panel: NB201 first, then the NB-1Shot1 spaces in order."""
    if "dataset" not in epochs.columns:
        epochs = epochs.assign(dataset=None)
    panels = [(str(space), dataset, sub) for (space, dataset), sub in epochs.groupby(_PANEL_KEYS, dropna=False)]
    return sorted(panels, key=lambda p: (p[0] != "nb201", p[0], str(p[1])))


def _draw_mean(
    ax: Axes,
    frame: pd.DataFrame,
    value: str,
    method: str,
    *,
    linestyle: str = "-",
    label: bool = True,
    band: bool = True,
    floor: float | None = None,
) -> Line2D | None:
    """One method's mean line (+ standard-error band); None when every value is NaN."""
    agg = aggregate(frame, value, by=("epoch",))
    agg = agg[agg["n"] > 0]
    if agg.empty:
        return None
    x, mean = agg["epoch"].to_numpy(float), agg["mean"].to_numpy(float)
    sem = agg["sem"].fillna(0.0).to_numpy(float)
    lower, upper = mean - sem, mean + sem
    if floor is not None:
        mean, lower, upper = (np.maximum(a, floor) for a in (mean, lower, upper))
    name = _n_label(method, agg["n"]) if label else "_nolegend_"
    (line,) = ax.plot(x, mean, linestyle=linestyle, linewidth=1.6, label=name, **method_style(method))
    if band:
        ax.fill_between(x, lower, upper, color=method_color(method), alpha=0.18, linewidth=0)
    return line


def _trajectory_figure(
    epochs: pd.DataFrame, value: str, ylabel: str, title: str, *, floor: float | None = None
) -> tuple[Figure, list[Axes]]:
    panels = list(_panels(epochs))
    fig, axes = panel_grid(len(panels))
    for ax, (space, dataset, sub) in zip(axes, panels, strict=True):
        style_axes(ax)
        ax.set_title(panel_title(space, dataset))
        _draw_methods(ax, sub, value, ylabel, floor=floor)
    fig.suptitle(title)
    return fig, axes


def _draw_methods(ax: Axes, sub: pd.DataFrame, value: str, ylabel: str, *, floor: float | None = None) -> None:
    """One panel: the mean of ``value`` per epoch for each method, or a no-data note."""
    drawn = [_draw_mean(ax, g, value, str(m), floor=floor) for m, g in sub.groupby("method", sort=True)]
    if not any(d is not None for d in drawn):
        no_data(ax)
        return
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.legend(fontsize="small", frameon=False)


# --- figures ---------------------------------------------------------------------------------


def _legend_with_line_styles(ax: Any, solid: str, dashed: str) -> None:
    """The methods' legend plus two grey entries saying what solid and dashed lines show."""
    handles, _ = ax.get_legend_handles_labels()
    handles += [
        Line2D([], [], color="0.3", linestyle="-", label=solid),
        Line2D([], [], color="0.3", linestyle="--", label=dashed),
    ]
    ax.legend(handles=handles, fontsize="small", frameon=False)


def regret_vs_epoch(epochs: pd.DataFrame) -> Figure:
    """Anytime test regret (points, log scale) of the derived cell per method and epoch, with the
    supernet's validation error (100 - valid_acc, %, dashed) on a twin axis when ``valid_acc`` is
    present. Regret below ``REGRET_FLOOR`` is drawn at the floor."""
    epochs = _epoch_rows(epochs, ["test_regret"], "regret figure")
    fig, axes = _trajectory_figure(
        epochs, "test_regret", "test regret (points, log)", "Test regret vs epoch", floor=REGRET_FLOOR
    )
    for ax, (_, _, sub) in zip(axes, _panels(epochs), strict=True):
        if not ax.get_lines():
            continue
        ax.set_yscale("log")
        if "valid_acc" not in sub.columns or sub["valid_acc"].isna().all():
            continue
        twin = ax.twinx()
        err = sub.assign(valid_error=100.0 - sub["valid_acc"])
        for method, g in err.groupby("method", sort=True):
            _draw_mean(twin, g, "valid_error", str(method), linestyle="--", label=False, band=False)
        twin.set_ylabel("supernet valid error (%, dashed)")
        _legend_with_line_styles(ax, "test regret", "supernet valid error")
    return fig


def test_acc_vs_epoch(epochs: pd.DataFrame) -> Figure:
    """Tabular test accuracy (%) of the cell derived at each epoch; cells not in the benchmark
    (NaN) are left out of the mean and of n."""
    epochs = _epoch_rows(epochs, ["test_acc"], "test-accuracy figure")
    fig, _ = _trajectory_figure(
        epochs, "test_acc", "test accuracy of derived cell (%)", "Test accuracy of the derived cell vs epoch"
    )
    return fig


test_acc_vs_epoch.__test__ = False  # type: ignore[attr-defined]  # not a pytest test despite its name


def param_free_vs_epoch(epochs: pd.DataFrame) -> Figure:
    """Parameter-free operations in the derived cell per epoch: skip connections on NB201
    (``n_skip_connect``, else ``n_param_free``), max-pool blocks on NB-1Shot1 (``n_param_free``)."""
    epochs = _epoch_rows(epochs, [], "parameter-free-op figure")
    if "n_param_free" not in epochs.columns and "n_skip_connect" not in epochs.columns:
        raise ConfigError(
            "parameter-free-op figure: the epochs frame lacks the column(s) n_param_free (and n_skip_connect)"
        )
    panels = list(_panels(epochs))
    fig, axes = panel_grid(len(panels))
    for ax, (space, dataset, sub) in zip(axes, panels, strict=True):
        style_axes(ax)
        ax.set_title(panel_title(space, dataset))
        column, ylabel = _param_free_column(space, sub)
        if column is None:
            no_data(ax)
        else:
            _draw_methods(ax, sub, column, ylabel)
    fig.suptitle("Parameter-free operations in the derived cell vs epoch")
    return fig


def _param_free_column(space: str, sub: pd.DataFrame) -> tuple[str | None, str]:
    if space == "nb201" and "n_skip_connect" in sub.columns and sub["n_skip_connect"].notna().any():
        return "n_skip_connect", "skip connections in derived cell (count)"
    if "n_param_free" not in sub.columns:
        return None, ""
    if space.startswith("nb1shot1"):
        return "n_param_free", "max-pool blocks in derived cell (count)"
    return "n_param_free", "parameter-free ops in derived cell (count)"


def gap_vs_epoch(epochs: pd.DataFrame) -> Figure:
    """Supernet-to-final-net gap (points) per epoch: ``gap_final`` (supernet valid accuracy minus
    the discretised net's with inherited weights, solid) and ``gap_table`` (minus the tabular
    accuracy of the derived cell, dashed)."""
    epochs = _epoch_rows(epochs, ["gap_final", "gap_table"], "gap figure")
    panels = list(_panels(epochs))
    fig, axes = panel_grid(len(panels))
    for ax, (space, dataset, sub) in zip(axes, panels, strict=True):
        style_axes(ax)
        ax.set_title(panel_title(space, dataset))
        drawn = []
        for method, g in sub.groupby("method", sort=True):
            drawn.append(_draw_mean(ax, g, "gap_final", str(method)))
            has_final = drawn[-1] is not None
            drawn.append(_draw_mean(ax, g, "gap_table", str(method), linestyle="--", label=not has_final))
        if not any(d is not None for d in drawn):
            no_data(ax)
            continue
        ax.axhline(0.0, color="0.6", linewidth=0.8)
        ax.set_xlabel("epoch")
        ax.set_ylabel("supernet − final-net gap (points)")
        _legend_with_line_styles(ax, "gap_final (inherited weights)", "gap_table (tabular)")
    fig.suptitle("Supernet-to-final-net gap vs epoch")
    return fig


def eigenvalue_vs_epoch(epochs: pd.DataFrame) -> Figure:
    """Dominant Hessian eigenvalue of the validation loss w.r.t. the architecture: mean over seeds
    of the 5-point moving average (``eigenvalue_smooth``; computed, trailing, when absent), raw
    measurements as faint points, an X where a run stopped early (``early_stop_epoch``)."""
    epochs = _epoch_rows(epochs, ["eigenvalue"], "eigenvalue figure")
    if "eigenvalue_smooth" not in epochs.columns:
        epochs = epochs.assign(eigenvalue_smooth=_smooth(epochs))
    panels = list(_panels(epochs))
    fig, axes = panel_grid(len(panels))
    for ax, (space, dataset, sub) in zip(axes, panels, strict=True):
        style_axes(ax)
        ax.set_title(panel_title(space, dataset))
        drawn = stopped = False
        for method, g in sub.groupby("method", sort=True):
            measured = g[g["eigenvalue_smooth"].notna()]
            if _draw_mean(ax, measured, "eigenvalue_smooth", str(method)) is None:
                continue
            drawn = True
            raw = g[g["eigenvalue"].notna()]
            ax.scatter(raw["epoch"], raw["eigenvalue"], s=8, alpha=0.3, color=method_color(str(method)), lw=0)
            stops = _early_stops(measured)
            if stops:
                stopped = True
                xs, ys = zip(*stops, strict=True)
                ax.scatter(xs, ys, marker="X", s=50, color=method_color(str(method)), edgecolors="black", zorder=3)
        if not drawn:
            no_data(ax)
            continue
        ax.set_xlabel("epoch")
        ax.set_ylabel("dominant Hessian eigenvalue λ_max")
        handles, _ = ax.get_legend_handles_labels()
        if stopped:
            handles.append(
                Line2D([], [], marker="X", color="0.3", markeredgecolor="black", linestyle="", label="early stop")
            )
        ax.legend(handles=handles, fontsize="small", frameon=False)
    fig.suptitle("Dominant Hessian eigenvalue vs epoch (5-point moving average)")
    return fig


def _smooth(epochs: pd.DataFrame) -> pd.Series:
    """The loader's ``eigenvalue_smooth``, for frames built without it: per run, in epoch order."""
    ordered = epochs.sort_values(["run", "epoch"])
    return ordered.groupby("run")["eigenvalue"].transform(moving_average).reindex(epochs.index)


def _early_stops(measured: pd.DataFrame) -> list[tuple[float, float]]:
    """(epoch, smoothed eigenvalue at or just before it) for each run that stopped early."""
    if "early_stop_epoch" not in measured.columns:
        return []
    out = []
    for _, run in measured.groupby("run", sort=True):
        stop = run["early_stop_epoch"].dropna()
        if stop.empty:
            continue
        before = run[run["epoch"] <= stop.iloc[0]].sort_values("epoch")
        if not before.empty:
            out.append((float(stop.iloc[0]), float(before["eigenvalue_smooth"].iloc[-1])))
    return out


def alphas_over_epochs(alphas: pd.DataFrame, title: str | None = None) -> Figure:
    """Softmax weight of each operation on each edge over the epochs of one run (a panel per edge,
    a line per operation)."""
    require_columns(alphas, ["epoch", "edge", "op", "weight"], "alphas figure", what="alphas")
    if "run" in alphas.columns and alphas["run"].nunique() > 1:
        raise ConfigError(f"alphas figure: give the alphas of one run, not {alphas['run'].nunique()} runs")
    edges = list(dict.fromkeys(alphas["edge"]))
    ops = list(dict.fromkeys(alphas["op"]))
    colors = {op: OKABE_ITO[i % len(OKABE_ITO)] for i, op in enumerate(ops)}
    styles = {op: "-" if i < len(OKABE_ITO) else "--" for i, op in enumerate(ops)}
    fig, axes = panel_grid(len(edges), ncols=4, width=2.8, height=2.2, sharey=True)
    for ax, edge in zip(axes, edges, strict=True):
        style_axes(ax)
        sub = alphas[alphas["edge"] == edge]
        for op, g in sub.groupby("op", sort=False):
            g = g.sort_values("epoch")
            ax.plot(g["epoch"], g["weight"], color=colors[op], linestyle=styles[op], linewidth=1.4, label=str(op))
        ax.set_title(f"edge {edge}", fontsize="medium")
        ax.set_xlabel("epoch")
        if ax.get_subplotspec().is_first_col():
            ax.set_ylabel("weight (softmax)")
    handles = [Line2D([], [], color=colors[op], linestyle=styles[op], label=str(op)) for op in ops]
    fig.legend(handles=handles, loc="outside right upper", frameon=False, fontsize="small")
    fig.suptitle(title or "Architecture weights over epochs")
    return fig


# --- saving ------------------------------------------------------------------------


def save(
    fig: Figure, path_without_suffix: str | os.PathLike[str], formats: Sequence[str] = ("svg", "png")
) -> list[Path]:
    """Write ``fig`` as ``<path>.svg``, ``<path>.png`` (150 dpi), ... creating the folder; returns the paths."""
    bad = [f for f in formats if f not in SAVE_FORMATS]
    if bad or not formats:
        raise ConfigError(f"unknown figure format(s) {bad or formats!r}; choose from {', '.join(SAVE_FORMATS)}")
    base = Path(path_without_suffix)
    base.parent.mkdir(parents=True, exist_ok=True)
    written = []
    for fmt in formats:
        path = base.with_name(f"{base.name}.{fmt}")
        # No creation date in SVG/PDF, so the same data gives the same file.
        metadata = {"Date": None} if fmt in ("svg", "pdf") else None
        fig.savefig(path, format=fmt, dpi=150, metadata=metadata)
        written.append(path)
    return written
