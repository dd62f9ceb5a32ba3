"""Figures as a reader sees them: small multiples sized for a page, whole-epoch ticks, hover text in
the SVG, one colour per method in every figure, and vector PDF for LaTeX (``nbh figures``)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from analysis_runs import write_sweep

from nasbench_harness.analysis import figures as F
from nasbench_harness.analysis.hover import SVG_NS, svg_text
from nasbench_harness.analysis.panels import HOVER_LABEL, METRICS
from nasbench_harness.analysis.plotstyle import PAGE_WIDTH, method_color
from nasbench_harness.analysis.runs import load_runs

METHODS = ("darts", "sdarts-rs")


@pytest.fixture
def loaded(tmp_path: Path):
    """2 methods x 2 seeds on NB201 and NB-1Shot1 space 2, 5 epochs (short: fractional ticks would show)."""
    write_sweep(tmp_path, METHODS, [0, 1], epochs=5)
    write_sweep(tmp_path, ["darts"], [0, 1], space="nb1shot1-2", epochs=5)
    return load_runs([tmp_path])


def _titles(svg: str) -> list[str]:
    root = ET.fromstring(svg)  # our own output
    return [t.text or "" for t in root.iter(f"{{{SVG_NS}}}title")]


MEASURED = [m for name, m in METRICS.items() if name != "selection"]
"""The metrics of these runs: none ran the perturbation-based selection (its column is left out)."""


def test_trajectories_are_small_multiples_a_row_per_space(loaded) -> None:
    fig = F.trajectories(loaded.epochs)
    rows = fig.subfigs
    assert [r._suptitle.get_text() for r in rows] == ["NAS-Bench-201 · CIFAR-10", "NB-1Shot1 space 2 · CIFAR-10"]
    for row in rows:
        axes = [ax for ax in row.axes if ax.get_title()]  # the regret panel's twin axis has no title
        assert [ax.get_title() for ax in axes] == [m.title for m in MEASURED]
        assert [ax.get_ylabel() for ax in axes] == [m.ylabel for m in MEASURED]
    width, height = fig.get_size_inches()
    assert width <= PAGE_WIDTH + 1e-9 and height < 6  # five panels a row, on a page
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend[:2] == ["darts (n=2)", "sdarts-rs (n=2)"]
    assert any(t.startswith("dashed: supernet valid error") for t in legend)


def test_a_figure_without_a_metric_leaves_its_column_out(loaded) -> None:
    fig = F.trajectories(loaded.epochs.drop(columns=["eigenvalue"]))
    titles = [ax.get_title() for ax in fig.subfigs[0].axes if ax.get_title()]
    assert titles == [m.title for m in MEASURED if m.name != "eigenvalue"]
    with pytest.raises(Exception, match="unknown metric"):
        F.trajectories(loaded.epochs, metrics=["loss"])


def test_titles_and_axis_labels_say_the_same(loaded) -> None:
    """Each metric's title and y-axis label name the same quantity (the title's key words are in the label)."""
    for metric in METRICS.values():
        key = metric.ylabel.split(" (")[0].lower()
        assert key.split()[0] in metric.title.lower(), (metric.title, metric.ylabel)


@pytest.mark.parametrize("function", [F.trajectories, F.test_acc_vs_epoch, F.regret_vs_epoch, F.eigenvalue_vs_epoch])
def test_epoch_ticks_are_whole_epochs(loaded, function) -> None:
    fig = function(loaded.epochs)
    fig.canvas.draw()
    for ax in fig.axes:
        if ax.get_xlabel() != "epoch":
            continue
        ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
        assert len(ticks) >= 2 and all(float(t).is_integer() for t in ticks), ticks


def test_svg_has_hover_text_with_method_seed_epoch_and_value(loaded, tmp_path: Path) -> None:
    svg = F.save(F.trajectories(loaded.epochs), tmp_path / "trajectories", formats=("svg",))[0].read_text()
    assert "<script" not in svg
    titles = _titles(svg)
    # test accuracy of darts at epoch 3, seeds 0 and 1: 80 + 3 + seed / 10
    point = next(t for t in titles if t.startswith("darts · epoch 3 · test accuracy (%)"))
    assert "83.05 ± 0.05 (mean ± s.e., n=2)" in point and "seed 0: 83" in point and "seed 1: 83.1" in point
    # a point per drawn epoch, and a title on each mean line
    n_points = sum(t.startswith("sdarts-rs · epoch") and "test accuracy" in t for t in titles)
    assert n_points == 5
    assert "darts: test accuracy (%), mean over seeds (n=2)" in titles
    # the raw eigenvalue measurements and the final-accuracy dots, each seed by name
    assert any(re.match(r"darts · seed 1 · epoch 4 · λ_max measured: 0\.4$", t) for t in titles)
    box = svg_text(F.final_accuracy_box(loaded.runs))
    assert "sdarts-rs · seed 1 · test accuracy 85.1 %" in _titles(box)


def test_hover_points_are_invisible_and_on_the_mean(loaded) -> None:
    ax = F.test_acc_vs_epoch(loaded.epochs).axes[0]
    hover = [line for line in ax.get_lines() if line.get_label() == HOVER_LABEL]
    means = [line for line in ax.get_lines() if not line.get_label().startswith("_")]
    assert len(hover) == len(means) == 2
    for h, m in zip(hover, means, strict=True):
        assert h.get_alpha() == 0.0 and h.get_linestyle() == "None"
        np.testing.assert_array_equal(h.get_ydata(), m.get_ydata())


def test_one_colour_per_method_in_every_figure(loaded) -> None:
    """Drawn from the same runs, a method has the same colour in the grid, each metric figure and the box plot."""
    seen: dict[str, set[str]] = {m: set() for m in METHODS}
    for function in (F.trajectories, F.test_acc_vs_epoch, F.gap_vs_epoch, F.param_free_vs_epoch):
        for ax in function(loaded.epochs).axes:
            for line in ax.get_lines():
                method = line.get_label().split(" (")[0]
                if method in seen:
                    seen[method].add(line.get_color())
    box = F.final_accuracy_box(loaded.runs)
    for ax in box.axes:
        for collection, method in zip(ax.collections, sorted(METHODS), strict=False):
            seen[method].add(_hex(collection.get_facecolor()[0]))
    assert all(len(colours) == 1 for colours in seen.values()), seen
    assert {next(iter(c)) for c in seen.values()} == {method_color(m) for m in METHODS}


def _hex(rgba) -> str:
    return "#" + "".join(f"{round(v * 255):02X}" for v in rgba[:3])


def test_pdf_is_vector_with_embedded_truetype_fonts(loaded, tmp_path: Path) -> None:
    (pdf,) = F.save(F.trajectories(loaded.epochs), tmp_path / "grid", formats=("pdf",))
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF-")
    assert b"/Subtype /Image" not in data  # no raster: lines, bands and text are paths and fonts
    assert b"/FontFile2" in data and b"/Type3" not in data  # TrueType (Type 42), as journals ask


def test_cli_writes_pdf(tmp_path: Path, loaded, monkeypatch: pytest.MonkeyPatch) -> None:
    from types import SimpleNamespace

    import typer
    from typer.testing import CliRunner

    from nasbench_harness.cli import figures as cli_figures

    monkeypatch.setattr(cli_figures, "load_runs", lambda paths: SimpleNamespace(runs=loaded.runs, epochs=loaded.epochs))
    app = typer.Typer()
    app.command("figures")(cli_figures.figures)
    app.command("other")(lambda: None)
    result = CliRunner().invoke(app, ["figures", "trajectories", "r", "-o", str(tmp_path), "--formats", "pdf,svg"])
    assert result.exit_code == 0, result.output
    assert result.output.split() == [str(tmp_path / "trajectories.pdf"), str(tmp_path / "trajectories.svg")]
    assert (tmp_path / "trajectories.pdf").read_bytes().startswith(b"%PDF-")


def test_seed_values_fall_back_to_run_ids() -> None:
    frame = pd.DataFrame(
        {"run": ["a", "b"], "space": "nb201", "method": "darts", "epoch": [1, 1], "test_acc": [90.0, 92.0]}
    )
    svg = svg_text(F.test_acc_vs_epoch(frame))
    assert any("a: 90, b: 92" in t for t in _titles(svg))


def test_a_report_pins_its_colours_for_figures_of_some_methods(loaded) -> None:
    """Inside ``same_colours`` a figure of a subset keeps the full set's colours; outside, the methods
    drawn take the first colours again."""
    from nasbench_harness.analysis.plotstyle import OKABE_ITO, same_colours

    def sdarts_colour() -> str:
        ax = F.test_acc_vs_epoch(loaded.epochs).axes[0]
        return next(line.get_color() for line in ax.get_lines() if line.get_label().startswith("sdarts-rs"))

    with same_colours(["darts", "rdarts-l2", "sdarts-rs"]):
        assert sdarts_colour() == OKABE_ITO[2]
    assert sdarts_colour() == OKABE_ITO[1]
