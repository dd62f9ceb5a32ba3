"""One panel of each trajectory metric: the mean over seeds per method and epoch with a band of one
standard error, drawn on a given ``Axes`` for the rows of one (space, data set).

The per-metric figures and the small-multiples grid of :mod:`nasbench_harness.analysis.figures`
both draw through :data:`METRICS`, so a metric looks, and is labelled, the same everywhere. The
means and standard errors come from :func:`nasbench_harness.analysis.aggregate.aggregate`, the
function the tables use. Every mean line carries hover text (method, epoch, mean ± s.e., n and each
seed's value; see :mod:`nasbench_harness.analysis.hover`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.lines import Line2D

from nasbench_harness.analysis.aggregate import aggregate, moving_average
from nasbench_harness.analysis.hover import add_hover
from nasbench_harness.analysis.plotstyle import LABEL_SIZE, LEGEND_SIZE, TICK_SIZE, method_color, method_style

REGRET_FLOOR = 1e-2  # points; a zero regret cannot be drawn on a log axis, so it is drawn here
HOVER_LABEL = "_hover"  # label of the invisible per-epoch points that carry the hover text


def n_label(method: str, counts: pd.Series) -> str:
    """``darts (n=3)``, or ``darts (n=2–3)`` when some epochs have fewer values."""
    counts = counts[counts > 0]
    lo, hi = int(counts.min()), int(counts.max())
    return f"{method} (n={hi})" if lo == hi else f"{method} (n={lo}–{hi})"


def _seed_values(frame: pd.DataFrame, value: str) -> dict[float, str]:
    """Per epoch, ``seed 0: 93.30, seed 1: 93.52`` (the run id where there is no seed column)."""
    key = "seed" if "seed" in frame.columns and frame["seed"].notna().all() else "run"
    rows = frame[["epoch", key, value]].dropna(subset=[value]).sort_values([key])
    out: dict[float, list[str]] = {}
    for epoch, who, v in rows.itertuples(index=False):
        name = f"seed {who}" if key == "seed" else str(who)
        out.setdefault(float(epoch), []).append(f"{name}: {float(v):.4g}")
    return {epoch: ", ".join(parts) for epoch, parts in out.items()}


def draw_mean(
    ax: Axes,
    frame: pd.DataFrame,
    value: str,
    method: str,
    quantity: str,
    *,
    linestyle: str = "-",
    label: bool = True,
    band: bool = True,
    floor: float | None = None,
) -> Line2D | None:
    """One method's mean line (+ standard-error band) of ``value`` per epoch, with hover text that
    names ``quantity``; None when every value is NaN."""
    agg = aggregate(frame, value, by=("epoch",))
    agg = agg[agg["n"] > 0]
    if agg.empty:
        return None
    x, mean = agg["epoch"].to_numpy(float), agg["mean"].to_numpy(float)
    sem = agg["sem"].fillna(0.0).to_numpy(float)
    lower, upper = mean - sem, mean + sem
    if floor is not None:
        mean, lower, upper = (np.maximum(a, floor) for a in (mean, lower, upper))
    name = n_label(method, agg["n"]) if label else "_nolegend_"
    (line,) = ax.plot(x, mean, linestyle=linestyle, linewidth=1.6, label=name, **method_style(method))
    if band:
        ax.fill_between(x, lower, upper, color=method_color(method), alpha=0.18, linewidth=0)
    seeds = _seed_values(frame, value)
    texts = [
        f"{method} · epoch {e:g} · {quantity}: {m:.4g} ± {s:.2g} (mean ± s.e., n={n}) · {seeds.get(e, '')}"
        for e, m, s, n in zip(x, agg["mean"], sem, agg["n"], strict=True)
    ]
    (points,) = ax.plot(x, mean, linestyle="none", marker="o", markersize=6, alpha=0.0, label=HOVER_LABEL)
    add_hover(points, points=texts)
    add_hover(line, f"{method}: {quantity}, mean over seeds (n={int(agg['n'].max())})")
    return line


def by_method(sub: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    return [(str(m), g) for m, g in sub.groupby("method", sort=True)]


def legend(ax: Axes, styles: Sequence[tuple[str, str]] = (), extra: Sequence[Line2D] = ()) -> None:
    """The methods' legend, plus a grey entry per (linestyle, meaning) and any ``extra`` handles."""
    handles = [h for h in ax.get_legend_handles_labels()[0] if not str(h.get_label()).startswith("_")]
    handles += [Line2D([], [], color="0.3", linestyle=ls, label=meaning) for ls, meaning in styles]
    ax.legend(handles=[*handles, *extra], fontsize=LEGEND_SIZE, frameon=False)


# --- the metrics -------------------------------------------------------------------------------


def _test_acc(ax: Axes, sub: pd.DataFrame, with_legend: bool) -> bool:
    drawn = [draw_mean(ax, g, "test_acc", m, "test accuracy (%)") for m, g in by_method(sub)]
    if with_legend and any(drawn):
        legend(ax)
    return any(d is not None for d in drawn)


def _param_free(ax: Axes, sub: pd.DataFrame, with_legend: bool) -> bool:
    drawn = [draw_mean(ax, g, "n_param_free", m, "parameter-free ops") for m, g in by_method(sub)]
    if with_legend and any(drawn):
        legend(ax)
    return any(d is not None for d in drawn)


REGRET_STYLES = (("-", "test regret"), ("--", "supernet valid error"))
GAP_STYLES = (("-", "gap_final (inherited weights)"), ("--", "gap_table (tabular)"))


def _regret(ax: Axes, sub: pd.DataFrame, with_legend: bool) -> bool:
    drawn = [draw_mean(ax, g, "test_regret", m, "test regret (points)", floor=REGRET_FLOOR) for m, g in by_method(sub)]
    if not any(d is not None for d in drawn):
        return False
    ax.set_yscale("log")
    if "valid_acc" in sub.columns and sub["valid_acc"].notna().any():
        twin = ax.twinx()
        err = sub.assign(valid_error=100.0 - sub["valid_acc"])
        for method, g in by_method(err):
            draw_mean(
                twin, g, "valid_error", method, "supernet valid error (%)", linestyle="--", label=False, band=False
            )
        twin.set_ylabel("supernet valid error (%)")
        twin.tick_params(labelsize=TICK_SIZE)
        twin.yaxis.label.set_fontsize(LABEL_SIZE)
        twin.spines["top"].set_visible(False)
        if with_legend:
            legend(ax, REGRET_STYLES)
    elif with_legend:
        legend(ax)
    return True


def _gap(ax: Axes, sub: pd.DataFrame, with_legend: bool) -> bool:
    drawn = []
    for method, g in by_method(sub):
        drawn.append(draw_mean(ax, g, "gap_final", method, "gap_final (points)"))
        has_final = drawn[-1] is not None
        drawn.append(draw_mean(ax, g, "gap_table", method, "gap_table (points)", linestyle="--", label=not has_final))
    if not any(d is not None for d in drawn):
        return False
    ax.axhline(0.0, color="0.6", linewidth=0.8)
    if with_legend:
        legend(ax, GAP_STYLES)
    return True


SELECTION_STYLES = (("-", "magnitude selection (the method's own)"), ("--", "perturbation selection (DARTS-PT)"))


def _selection(ax: Axes, sub: pd.DataFrame, with_legend: bool) -> bool:
    """Test regret of the method's own cell (solid) and of DARTS-PT's (dashed, where measured)."""
    drawn = False
    for method, g in by_method(sub):
        measured = g[g["pt_test_regret"].notna()]
        if measured.empty:
            continue
        drawn = True
        draw_mean(ax, g, "test_regret", method, "test regret, magnitude selection (points)", floor=REGRET_FLOOR)
        quantity = "test regret, perturbation selection (points)"
        draw_mean(ax, measured, "pt_test_regret", method, quantity, linestyle="--", label=False, floor=REGRET_FLOOR)
    if not drawn:
        return False
    ax.set_yscale("log")
    if with_legend:
        legend(ax, SELECTION_STYLES)
    return True


EARLY_STOP = {"marker": "X", "color": "0.3", "markeredgecolor": "black", "linestyle": "", "label": "early stop"}


def _eigenvalue(ax: Axes, sub: pd.DataFrame, with_legend: bool) -> bool:
    drawn = stopped = False
    for method, g in by_method(sub):
        measured = g[g["eigenvalue_smooth"].notna()]
        if draw_mean(ax, measured, "eigenvalue_smooth", method, "λ_max (5-point moving average)") is None:
            continue
        drawn = True
        raw = g[g["eigenvalue"].notna()]
        dots = ax.scatter(raw["epoch"], raw["eigenvalue"], s=8, alpha=0.3, color=method_color(method), lw=0)
        who = raw["seed"] if "seed" in raw.columns else raw["run"]
        add_hover(
            dots,
            points=[
                f"{method} · seed {s} · epoch {e:g} · λ_max measured: {v:.4g}"
                for s, e, v in zip(who, raw["epoch"], raw["eigenvalue"], strict=True)
            ],
        )
        stops = early_stops(measured)
        if stops:
            stopped = True
            xs, ys = zip(*stops, strict=True)
            ax.scatter(xs, ys, marker="X", s=50, color=method_color(method), edgecolors="black", zorder=3)
    if drawn and with_legend:
        legend(ax, extra=[Line2D([], [], **EARLY_STOP)] if stopped else [])  # type: ignore[arg-type]
    return drawn


def smooth_eigenvalues(epochs: pd.DataFrame) -> pd.DataFrame:
    """``epochs`` with ``eigenvalue_smooth`` (the loader's; computed per run, trailing, when absent)."""
    if "eigenvalue_smooth" in epochs.columns:
        return epochs
    ordered = epochs.sort_values(["run", "epoch"])
    smooth = ordered.groupby("run")["eigenvalue"].transform(moving_average).reindex(epochs.index)
    return epochs.assign(eigenvalue_smooth=smooth)


def early_stops(measured: pd.DataFrame) -> list[tuple[float, float]]:
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


@dataclass(frozen=True)
class Metric:
    """A trajectory metric: its figure name, title, y-axis label (the same words), the columns it
    needs, how to draw one panel (returns False when there was nothing to draw) and its line styles."""

    name: str
    title: str
    ylabel: str
    columns: tuple[str, ...]
    draw: Callable[[Axes, pd.DataFrame, bool], bool]
    styles: tuple[tuple[str, str], ...] = ()


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("test-acc", "Test accuracy of derived cell", "test accuracy (%)", ("test_acc",), _test_acc),
        Metric(
            "regret", "Test regret · valid error", "test regret (points, log)", ("test_regret",), _regret, REGRET_STYLES
        ),
        Metric("param-free", "Parameter-free ops", "parameter-free ops (count)", ("n_param_free",), _param_free),
        Metric("gap", "Supernet − final-net gap", "gap (points)", ("gap_final", "gap_table"), _gap, GAP_STYLES),
        Metric("eigenvalue", "Hessian eigenvalue λ_max", "λ_max (5-point average)", ("eigenvalue",), _eigenvalue),
        Metric(
            "selection",
            "Test regret · magnitude vs perturbation selection",
            "test regret (points, log)",
            ("pt_test_regret",),
            _selection,
            SELECTION_STYLES,
        ),
    )
}
"""The trajectory metrics in the order of the small-multiples grid's columns."""
