"""Shared look of the figures: Okabe-Ito colours, a fixed colour per method, panel grids sized for
a page, type sizes, integer epoch ticks, labels, and the check every figure makes of its frame.

Figures are built on ``matplotlib.figure.Figure`` with an Agg canvas, so nothing here touches
pyplot's global state or selects a backend. Type sizes are set on each artist (not through
rcParams), so a figure looks the same whatever style the caller has active. Panels are about
3 x 2.4 inches: an SVG of four panels in a row is about 1150 px wide, and a browser scales it to
the page with 9-10 pt (12-13 px) labels.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from nasbench_harness.errors import ConfigError
from nasbench_harness.spaces.catalog import SPACES

# Okabe & Ito (2008), colour-blind safe; yellow last because it is faint on white.
OKABE_ITO: tuple[str, ...] = (
    "#0072B2",  # blue
    "#D55E00",  # vermillion
    "#009E73",  # bluish green
    "#E69F00",  # orange
    "#CC79A7",  # reddish purple
    "#56B4E9",  # sky blue
    "#000000",  # black
    "#F0E442",  # yellow
)
# Markers tell methods apart once the eight colours are used up.
_MARKERS: tuple[str | None, ...] = (None, "o", "s", "^")

# The methods of the registry in a fixed order, so a method has the same colour in every figure
# whichever other methods are plotted with it (the baselines get the most distinct colours).
KNOWN_METHODS: tuple[str, ...] = (
    "darts",
    "darts-es",
    "rdarts-l2",
    "sdarts-rs",
    "sdarts-adv",
    "pc-darts",
    "drnas",
    "darts-2nd",
    "rdarts-dp",
    "darts-ada",
    "darts-minus",
    "beta-darts",
    "fair-darts",
    "gdas",
    "snas",
    "sp-darts",
    "single-stage",
    "rsws",
)

SPACE_LABELS: dict[str, str] = {name: info.title for name, info in SPACES.items()}
DATASET_LABELS: dict[str, str] = {
    "cifar10": "CIFAR-10",
    "cifar100": "CIFAR-100",
    "imagenet16_120": "ImageNet16-120",
    "imagenet16-120": "ImageNet16-120",
}


# Type sizes in points, for a panel about 3 inches wide shown at its natural size.
TITLE_SIZE = 10.0
LABEL_SIZE = 9.0
TICK_SIZE = 8.0
LEGEND_SIZE = 8.0
PANEL_WIDTH = 3.0  # inches
PANEL_HEIGHT = 2.4
PAGE_WIDTH = 12.0  # inches: 1150 CSS px, the report's content width; a grid of panels fits it

_ACTIVE: list[str] = []
_PINNED: list[bool] = []  # non-empty inside same_colours()


def activate(methods: Iterable[str]) -> None:
    """Give the methods of the data at hand the first colours, in the registry's order then by
    name: methods plotted together never share a colour (up to eight, then markers), and a
    method keeps its colour in every figure drawn from the same runs. Inside :func:`same_colours`
    a subset of the pinned methods keeps their colours."""
    found = sorted(set(map(str, methods)), key=lambda m: (KNOWN_METHODS.index(m) if m in KNOWN_METHODS else 99, m))
    if _PINNED and set(found) <= set(_ACTIVE):
        return
    _ACTIVE[:] = found


@contextmanager
def same_colours(methods: Iterable[str]) -> Iterator[None]:
    """Within the block, every figure gives each of ``methods`` the colour it has among all of them,
    also a figure of only some (a report's method whose runs have no epochs is in the box plot and
    the headline, not in the trajectories, and must not shift the others' colours there)."""
    activate(methods)
    _PINNED.append(True)
    try:
        yield
    finally:
        _PINNED.pop()


def _slot(method: str) -> int:
    if method in _ACTIVE:
        return _ACTIVE.index(method)
    if method in KNOWN_METHODS:
        return KNOWN_METHODS.index(method)
    # A user's method: a stable hash (not Python's salted hash()) so its colour never changes.
    return zlib.crc32(method.encode()) % (len(OKABE_ITO) * len(_MARKERS))


def method_color(method: str) -> str:
    """The colour of ``method`` in every figure (deterministic, independent of the other methods)."""
    return OKABE_ITO[_slot(method) % len(OKABE_ITO)]


def method_marker(method: str) -> str | None:
    """A marker that separates methods sharing a colour (None for the first eight)."""
    return _MARKERS[(_slot(method) // len(OKABE_ITO)) % len(_MARKERS)]


def method_style(method: str) -> dict[str, Any]:
    """Keyword arguments of ``Axes.plot`` giving ``method`` its colour (and marker, if any)."""
    style: dict[str, Any] = {"color": method_color(method)}
    marker = method_marker(method)
    if marker is not None:
        style.update(marker=marker, markersize=3.5, markevery=0.1)
    return style


def space_label(space: Any) -> str:
    """Readable name of a search space id (``nb201`` -> ``NAS-Bench-201``)."""
    return SPACE_LABELS.get(str(space), str(space))


def dataset_label(dataset: Any) -> str:
    """Readable name of a data set id (``cifar100`` -> ``CIFAR-100``)."""
    return DATASET_LABELS.get(str(dataset), str(dataset))


def panel_title(space: Any, dataset: Any = None) -> str:
    """``NAS-Bench-201 · CIFAR-10``; the data set is left out when unknown."""
    if dataset is None or (isinstance(dataset, float) and math.isnan(dataset)):
        return space_label(space)
    return f"{space_label(space)} · {dataset_label(dataset)}"


def new_figure(width: float, height: float) -> Figure:
    """An empty figure of ``width`` x ``height`` inches with constrained layout and an Agg canvas."""
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def panel_grid(
    n: int, *, ncols: int = 4, width: float = PANEL_WIDTH, height: float = PANEL_HEIGHT, sharey: bool = False
) -> tuple[Figure, list[Axes]]:
    """A figure with ``n`` panels (``width`` x ``height`` inches each) in rows of at most ``ncols``,
    constrained layout, Agg canvas."""
    cols = max(1, min(n, ncols))
    rows = max(1, math.ceil(n / cols))
    fig = new_figure(max(width * cols, 4.5), height * rows + 0.35)  # room for the suptitle
    grid = fig.subplots(rows, cols, squeeze=False, sharey=sharey).ravel()
    for ax in grid[n:]:
        fig.delaxes(ax)
    return fig, list(grid[:n])


def no_data(ax: Axes, what: str = "no data") -> None:
    """Mark a panel that has nothing to show (e.g. every value is NaN) instead of leaving it blank."""
    ax.text(0.5, 0.5, what, transform=ax.transAxes, ha="center", va="center", color="0.4", fontsize=LABEL_SIZE)
    ax.set_xticks([])
    ax.set_yticks([])


def style_axes(ax: Axes, *, epochs: bool = False) -> None:
    """Light grid, no top/right spines, the shared type sizes of ticks and axis labels (titles take
    ``fontsize=TITLE_SIZE``: ``set_title`` resets it); with ``epochs``, ticks on whole epochs only
    (a 5-epoch run gets 1, 2, 3, not 1.0, 1.5)."""
    ax.grid(True, color="0.9", linewidth=0.6)
    ax.set_axisbelow(True)
    ax.spines["top"].set_visible(False)
    ax.spines["right"].set_visible(False)
    ax.tick_params(labelsize=TICK_SIZE)
    ax.xaxis.label.set_fontsize(LABEL_SIZE)
    ax.yaxis.label.set_fontsize(LABEL_SIZE)
    if epochs:
        ax.xaxis.set_major_locator(MaxNLocator(nbins="auto", integer=True, min_n_ticks=2))


def require_columns(frame: Any, columns: Iterable[str], figure: str, what: str = "epochs") -> None:
    """Check a frame before drawing ``figure``: ``ConfigError`` naming the missing columns, or
    saying "no runs for this figure" when it has no rows; then :func:`activate` its methods."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ConfigError(
            f"{figure}: the {what} frame lacks the column(s) {', '.join(missing)}; "
            f"it has {', '.join(map(str, frame.columns)) or 'none'}"
        )
    if frame.empty:
        raise ConfigError(f"{figure}: no runs for this figure (the {what} frame has no rows)")
    if "method" in frame.columns:
        activate(frame["method"].dropna())
