"""``nbh figures FIGURE RUNS... -o DIR``: the trajectory figures and the results table of many runs."""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from nasbench_harness.cli.common import console, err_console
from nasbench_harness.cli.report import SkipDamagedOption, warn
from nasbench_harness.errors import ConfigError, NbhError

if TYPE_CHECKING:
    import pandas as pd

# figure name -> (function in analysis.figures, which frame it draws)
FIGURES: dict[str, tuple[str, str]] = {
    "trajectories": ("trajectories", "epochs"),
    "regret": ("regret_vs_epoch", "epochs"),
    "test-acc": ("test_acc_vs_epoch", "epochs"),
    "param-free": ("param_free_vs_epoch", "epochs"),
    "gap": ("gap_vs_epoch", "epochs"),
    "eigenvalue": ("eigenvalue_vs_epoch", "epochs"),
    "selection": ("selection_vs_epoch", "epochs"),
    "final-box": ("final_accuracy_box", "runs"),
    "alphas": ("alphas_over_epochs", "alphas"),
    "table": ("results_table", "runs"),
}
CHOICES = (*FIGURES, "all")
Figure = Enum("Figure", {name.replace("-", "_"): name for name in CHOICES}, type=str)
"""The figure names, validated by typer (a usage error, exit 2, names the choices)."""


def figures(
    choice: Annotated[Figure, typer.Argument(metavar="FIGURE", help="Which figure.", show_default=False)],
    runs: Annotated[
        list[Path],
        typer.Argument(
            help="Run directories, or folders holding runs (alphas: one run directory).", show_default=False
        ),
    ],
    out: Annotated[Path, typer.Option("-o", "--out", help="Directory to write the figures to.", show_default=False)],
    formats: Annotated[
        str,
        typer.Option(
            "--formats",
            help="Comma-separated formats: svg (hover text on lines and points), png (150 dpi), "
            "pdf (vector, fonts embedded, for LaTeX).",
        ),
    ] = "svg,png",
    skip_damaged: SkipDamagedOption = False,
) -> None:
    """Draw one paper-style figure (or all) of the runs found under RUNS.

    trajectories: every metric as small multiples (a row of panels per space and data set); the
    other figures one metric each. Writes DIR/<figure>.svg and .png, or the --formats given (table:
    .html and .csv), and prints the paths; DIR is created when missing and must not be a file."""
    from nasbench_harness.tracking.atomic import check_output_dir

    figure = choice.value
    check_output_dir(out, "-o/--out")
    fmts = tuple(f.strip().lower() for f in formats.split(",") if f.strip())
    if figure == "alphas":
        _print(_make("alphas", _Frames(runs), out, fmts))
        return
    frames = _Frames(runs, skip_damaged)
    if figure != "all":
        _print(_make(figure, frames, out, fmts))
        return
    written: list[Path] = []
    for name in FIGURES:
        if name == "alphas" and len(runs) != 1:
            err_console.print(f"skipped alphas: it is drawn for one run, and {len(runs)} were given", markup=False)
            continue
        try:
            written += _make(name, frames, out, fmts)
        except NbhError as exc:
            err_console.print(f"skipped {name}: {exc}", markup=False, soft_wrap=True)
    if not written:
        raise ConfigError("no figure could be drawn from these runs (see the reasons above)")
    _print(written)


class _Frames:
    """The frames of the runs, loaded on first use (alphas needs no run loader)."""

    def __init__(self, paths: list[Path], skip_damaged: bool = False) -> None:
        self.paths = paths
        self.skip_damaged = skip_damaged
        self._loaded: Any = None

    def get(self, which: str) -> pd.DataFrame:
        if which == "alphas":
            if len(self.paths) != 1:
                raise ConfigError(f"the alphas figure is drawn for one run; {len(self.paths)} were given")
            return read_alphas_frame(self.paths[0])
        if self._loaded is None:
            self._loaded = load_runs(self.paths, skip_damaged=True) if self.skip_damaged else load_runs(self.paths)
        return getattr(self._loaded, which)


def load_runs(paths: list[Path], skip_damaged: bool = False) -> Any:
    """The runs' ``.runs``/``.epochs`` frames (imported lazily: pandas and pyarrow only when drawing);
    with ``skip_damaged``, damaged runs are left out, each named in a warning on stderr."""
    from nasbench_harness.analysis.runs import load_runs as load

    return load(paths, skip_damaged=skip_damaged, warn=warn)


def read_alphas_frame(path: Path) -> pd.DataFrame:
    """One run's ``alphas.parquet`` as a pandas frame."""
    from nasbench_harness.tracking import read_alphas

    return read_alphas(path).to_pandas()


def _make(name: str, frames: _Frames, out: Path, formats: tuple[str, ...]) -> list[Path]:
    from nasbench_harness.analysis import figures as fig_mod

    function_name, which = FIGURES[name]
    draw: Callable[..., Any] = getattr(fig_mod, function_name)
    frame = frames.get(which)
    if name == "table":
        table = draw(frame)
        out.mkdir(parents=True, exist_ok=True)
        html, csv = out / "table.html", out / "table.csv"
        html.write_text(table.to_html(escape=True, classes="results"), encoding="utf-8")
        table.to_csv(csv, encoding="utf-8")
        return [html, csv]
    if name == "alphas":
        fig = draw(frame, title=f"Architecture weights over epochs: {frames.paths[0].name}")
    else:
        fig = draw(frame)
    return fig_mod.save(fig, out / name, formats=formats)


def _print(paths: list[Path]) -> None:
    for path in paths:
        console.print(str(path), markup=False, soft_wrap=True)
