"""The trajectory figures of the robust-DARTS papers, drawn from the tidy ``epochs`` frame.

:func:`trajectories` is the small-multiples view: a row of panels per (space, data set), a column
per metric (test accuracy, regret, parameter-free ops, gap, eigenvalue), methods as colours, one
legend; the per-metric figures (:func:`test_acc_vs_epoch`, ...) show one metric with a panel per
(space, data set). Both draw each panel through :data:`nasbench_harness.analysis.panels.METRICS`.
The final-accuracy box plot and the results table (from the ``runs`` frame) are in
:mod:`nasbench_harness.analysis.final` and importable from here too.

Every function returns a ``matplotlib.figure.Figure`` (Agg canvas, no pyplot state); ``save``
writes it as SVG (with hover text on every line and point), PNG and PDF (vector, TrueType fonts,
for LaTeX). Curves are the mean over seeds with a band of one standard error; the legend says how
many seeds contributed (``darts (n=3)``, or ``darts (n=2–3)`` when some epochs have fewer values,
e.g. derived cells missing from the benchmark, whose NaN accuracy is left out of the mean).
Methods drawn together get distinct colours, the same in every figure of the same runs
(``plotstyle.activate``). Epoch axes have whole-epoch ticks.

Missing or empty data follow one rule: a frame that lacks a required column, or has no rows,
raises ``ConfigError`` naming the column(s) or saying "no runs for this figure"; a panel whose
values are all NaN says "no data".
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from nasbench_harness.analysis.final import NB201_TEST_COLUMNS, final_accuracy_box, results_table
from nasbench_harness.analysis.hover import svg_text
from nasbench_harness.analysis.panels import (
    EARLY_STOP,
    METRICS,
    REGRET_FLOOR,
    Metric,
    early_stops,
    n_label,
    smooth_eigenvalues,
)
from nasbench_harness.analysis.plotstyle import (
    LEGEND_SIZE,
    OKABE_ITO,
    PAGE_WIDTH,
    PANEL_HEIGHT,
    PANEL_WIDTH,
    TITLE_SIZE,
    method_color,
    new_figure,
    no_data,
    panel_grid,
    panel_title,
    require_columns,
    style_axes,
)
from nasbench_harness.errors import ConfigError

__all__ = [  # final_accuracy_box, results_table and NB201_TEST_COLUMNS live in analysis.final
    "NB201_TEST_COLUMNS",
    "REGRET_FLOOR",
    "alphas_over_epochs",
    "eigenvalue_vs_epoch",
    "final_accuracy_box",
    "gap_vs_epoch",
    "param_free_vs_epoch",
    "regret_vs_epoch",
    "results_table",
    "save",
    "selection_vs_epoch",
    "test_acc_vs_epoch",
    "trajectories",
]

SAVE_FORMATS = ("svg", "png", "pdf")
_PANEL_KEYS = ["space", "dataset"]


# --- data checks -------------------------------------------------------------------------------


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


def _panels(epochs: pd.DataFrame) -> list[tuple[str, object, pd.DataFrame]]:
    """(space, data set, rows) of each panel: NB201 first, then the NB-1Shot1 spaces in order."""
    if "dataset" not in epochs.columns:
        epochs = epochs.assign(dataset=None)
    panels = [(str(space), dataset, sub) for (space, dataset), sub in epochs.groupby(_PANEL_KEYS, dropna=False)]
    return sorted(panels, key=lambda p: (p[0] != "nb201", p[0], str(p[1])))


# --- one metric, a panel per (space, data set) ---------------------------------------------------

_FIGURE_NAMES = {
    "regret": "regret figure",
    "test-acc": "test-accuracy figure",
    "param-free": "parameter-free-op figure",
    "gap": "gap figure",
    "eigenvalue": "eigenvalue figure",
    "selection": "selection figure",
}


def _metric_figure(epochs: pd.DataFrame, metric: Metric, suptitle: str) -> Figure:
    epochs = _epoch_rows(epochs, metric.columns, _FIGURE_NAMES[metric.name])
    if metric.name == "eigenvalue":
        epochs = smooth_eigenvalues(epochs)
    panels = _panels(epochs)
    fig, axes = panel_grid(len(panels))
    for ax, (space, dataset, sub) in zip(axes, panels, strict=True):
        style_axes(ax, epochs=True)
        ax.set_title(panel_title(space, dataset), fontsize=TITLE_SIZE)
        if metric.draw(ax, sub, True):
            ax.set_xlabel("epoch")
            ax.set_ylabel(metric.ylabel)
        else:
            no_data(ax)
    fig.suptitle(suptitle, fontsize=TITLE_SIZE + 1)
    return fig


def regret_vs_epoch(epochs: pd.DataFrame) -> Figure:
    """Anytime test regret (points, log scale) of the derived cell per method and epoch, with the
    supernet's validation error (100 - valid_acc, %, dashed) on a twin axis when ``valid_acc`` is
    present. Regret below ``REGRET_FLOOR`` is drawn at the floor."""
    return _metric_figure(epochs, METRICS["regret"], "Test regret and supernet valid error vs epoch")


def test_acc_vs_epoch(epochs: pd.DataFrame) -> Figure:
    """Tabular test accuracy (%) of the cell derived at each epoch; cells not in the benchmark
    (NaN) are left out of the mean and of n."""
    return _metric_figure(epochs, METRICS["test-acc"], "Test accuracy of the derived cell vs epoch")


test_acc_vs_epoch.__test__ = False  # type: ignore[attr-defined]  # not a pytest test despite its name


def param_free_vs_epoch(epochs: pd.DataFrame) -> Figure:
    """Parameter-free ops in the derived cell per epoch (``n_param_free``): NB201 edges with
    skip_connect or avg_pool_3x3, NB-1Shot1 choice blocks with max-pool."""
    return _metric_figure(epochs, METRICS["param-free"], "Parameter-free ops in the derived cell vs epoch")


def gap_vs_epoch(epochs: pd.DataFrame) -> Figure:
    """Supernet-to-final-net gap (points) per epoch: ``gap_final`` (supernet valid accuracy minus
    the discretised net's with inherited weights, solid) and ``gap_table`` (minus the tabular
    accuracy of the derived cell, dashed)."""
    return _metric_figure(epochs, METRICS["gap"], "Supernet − final-net gap vs epoch")


def eigenvalue_vs_epoch(epochs: pd.DataFrame) -> Figure:
    """Dominant Hessian eigenvalue of the validation loss w.r.t. the architecture: mean over seeds
    of the 5-point moving average (``eigenvalue_smooth``; computed, trailing, when absent), raw
    measurements as faint points, an X where a run stopped early (``early_stop_epoch``)."""
    return _metric_figure(
        epochs, METRICS["eigenvalue"], "Dominant Hessian eigenvalue vs epoch (5-point moving average)"
    )


def selection_vs_epoch(epochs: pd.DataFrame) -> Figure:
    """Test regret (points, log scale) of the method's own cell (magnitude selection, solid) and of
    DARTS-PT's perturbation-based selection (``pt_regret_test``, dashed) at the epochs where the
    runs measured it (``selection.perturbation``), per method."""
    return _metric_figure(epochs, METRICS["selection"], "Test regret: magnitude vs perturbation selection")


# --- small multiples ---------------------------------------------------------------------------


def trajectories(epochs: pd.DataFrame, metrics: Sequence[str] = tuple(METRICS)) -> Figure:
    """Small multiples: a row of panels per (space, data set), a column per metric of ``metrics``
    (names of :data:`METRICS`) whose columns the frame has, methods as colours, one legend on top
    (methods with their seed counts, what solid and dashed lines show, early stops)."""
    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise ConfigError(
            f"trajectory figure: unknown metric(s) {', '.join(unknown)}; choose from {', '.join(METRICS)}"
        )
    epochs = _epoch_rows(epochs, [], "trajectory figure")
    chosen = [METRICS[m] for m in metrics if all(c in epochs.columns for c in METRICS[m].columns)]
    if not chosen:
        wanted = ", ".join(c for m in metrics for c in METRICS[m].columns)
        raise ConfigError(f"trajectory figure: the epochs frame lacks every metric's column(s) ({wanted})")
    if any(m.name == "eigenvalue" for m in chosen):
        epochs = smooth_eigenvalues(epochs)
    panels = _panels(epochs)
    width = min(PANEL_WIDTH, PAGE_WIDTH / len(chosen))  # five metrics still fit the page at full size
    fig = new_figure(width * len(chosen), PANEL_HEIGHT * len(panels) + 0.5)
    rows = fig.subfigures(len(panels), 1, squeeze=False).ravel()
    for row, (space, dataset, sub) in zip(rows, panels, strict=True):
        row.suptitle(f"{panel_title(space, dataset)}", fontsize=TITLE_SIZE + 1, fontweight="bold")
        for ax, metric in zip(row.subplots(1, len(chosen), squeeze=False).ravel(), chosen, strict=True):
            style_axes(ax, epochs=True)
            ax.set_title(metric.title, fontsize=TITLE_SIZE)
            if metric.draw(ax, sub, False):
                ax.set_xlabel("epoch")
                ax.set_ylabel(metric.ylabel)
            else:
                no_data(ax)
    handles = _grid_legend(epochs, panels, chosen)
    fig.legend(
        handles=handles, loc="outside upper center", ncols=min(len(handles), 6), fontsize=LEGEND_SIZE, frameon=False
    )
    return fig


def _grid_legend(
    epochs: pd.DataFrame, panels: list[tuple[str, object, pd.DataFrame]], chosen: list[Metric]
) -> list[Line2D]:
    """Methods (n = runs per panel) in the grid's colours, then what the line styles mean."""
    handles = []
    for method in sorted(set(map(str, epochs["method"]))):
        counts = pd.Series([sub.loc[sub["method"] == method, "run"].nunique() for _, _, sub in panels])
        handles.append(Line2D([], [], color=method_color(method), linewidth=2, label=n_label(method, counts)))
    for style, word in (("-", "solid"), ("--", "dashed")):
        meanings = [meaning for m in chosen for ls, meaning in m.styles if ls == style]
        if meanings:
            handles.append(Line2D([], [], color="0.3", linestyle=style, label=f"{word}: {', '.join(meanings)}"))
    eigen = any(m.name == "eigenvalue" for m in chosen)
    if eigen and early_stops(epochs[epochs["eigenvalue_smooth"].notna()]):
        handles.append(Line2D([], [], **EARLY_STOP))  # type: ignore[arg-type]
    return handles


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
        style_axes(ax, epochs=True)
        sub = alphas[alphas["edge"] == edge]
        for op, g in sub.groupby("op", sort=False):
            g = g.sort_values("epoch")
            ax.plot(g["epoch"], g["weight"], color=colors[op], linestyle=styles[op], linewidth=1.4, label=str(op))
        ax.set_title(f"edge {edge}", fontsize=TITLE_SIZE)
        ax.set_xlabel("epoch")
        if ax.get_subplotspec().is_first_col():
            ax.set_ylabel("weight (softmax)")
    handles = [Line2D([], [], color=colors[op], linestyle=styles[op], label=str(op)) for op in ops]
    fig.legend(handles=handles, loc="outside right upper", frameon=False, fontsize=LEGEND_SIZE)
    fig.suptitle(title or "Architecture weights over epochs", fontsize=TITLE_SIZE + 1)
    return fig


# --- saving ------------------------------------------------------------------------


def save(
    fig: Figure, path_without_suffix: str | os.PathLike[str], formats: Sequence[str] = ("svg", "png")
) -> list[Path]:
    """Write ``fig`` as ``<path>.svg`` (hover text on lines and points), ``<path>.png`` (150 dpi)
    and/or ``<path>.pdf`` (vector, TrueType fonts embedded, for LaTeX), creating the folder;
    returns the paths."""
    import matplotlib

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
        if fmt == "svg":
            path.write_text(svg_text(fig, metadata=metadata), encoding="utf-8")
        else:
            # Type 42 (TrueType) rather than Type 3 fonts: what journals and LaTeX toolchains expect.
            with matplotlib.rc_context({"pdf.fonttype": 42}):
                fig.savefig(path, format=fmt, dpi=150, metadata=metadata)
        written.append(path)
    return written
