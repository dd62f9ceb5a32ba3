"""`nbh report`: one self-contained HTML file with every section and figure, built from run
directories with known numbers (NB201 and NB-1Shot1, a failed run, a table-only baseline)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from analysis_runs import write_baseline, write_run, write_sweep
from test_cli import nbh

from nasbench_harness.report.build import FIGURES, ReportError, build_report


@pytest.fixture
def sweep(tmp_path: Path) -> Path:
    root = tmp_path / "runs"
    write_sweep(root, ["darts", "sdarts-rs"], [0, 1, 2])
    write_sweep(root, ["darts"], [0, 1], space="nb1shot1-2", in_benchmark=[True, False, True, False, True])
    write_run(
        root / "failed", method="darts", seed=7, epochs=2, status="failed", error="TrainingError: the loss became nan"
    )
    write_baseline(root / "rs")
    return root


def test_every_section_and_figure(sweep: Path) -> None:
    page = build_report([sweep], title="Sweep <1>")
    for anchor in ("summary", "figures", "results", "coverage", "runs"):
        assert f'id="{anchor}"' in page
    for name, _, _ in FIGURES:
        assert f'id="figure-{name}"' in page
    assert page.count("<svg") == len(FIGURES)  # the trajectories grid and the final-accuracy box
    assert "Sweep &lt;1&gt;" in page  # the title is escaped
    assert "sdarts-rs" in page and "TrainingError: the loss became nan" in page
    assert re.search(r"derived cell was in the imported NB101 table in 60% of 10 run-epochs", page)
    assert "1 run(s) did not finish" in page
    assert "nasbench_harness 0.1.0, python 3.11" in page  # per-run provenance from the manifests
    assert "The runs used 2 different code versions" in page  # the baseline trace's manifest differs
    # self-contained: nothing fetched from elsewhere
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)


def test_no_runs_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(Exception, match="no run"):
        build_report([tmp_path / "empty"])
    assert issubclass(ReportError, Exception)


def test_cli_writes_the_file(
    sweep: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "reports" / "sweep.html"
    code, stdout, err = nbh(capsys, monkeypatch, "report", str(sweep), "-o", str(out))
    assert code == 0, err
    assert str(out) in stdout and out.read_text().startswith("<!DOCTYPE html>")


def test_comparison_section_with_a_baseline(sweep: Path) -> None:
    page = build_report([sweep], baseline="darts")
    assert 'id="comparison"' in page and "Comparison with darts" in page
    section = page[page.index('id="comparison"') : page.index('id="coverage"')]
    assert "sdarts-rs" in section and "inconclusive" in section  # 3 seeds: significance unattainable
    with pytest.raises(ReportError, match="--baseline 'gdas' has no runs here; methods found: darts, sdarts-rs"):
        build_report([sweep], baseline="gdas")
    assert 'id="comparison"' not in build_report([sweep])


def _headline(page: str) -> str:
    return page[page.index('id="summary"') : page.index('id="figures"')]


def test_headline_gives_final_values_per_method(sweep: Path) -> None:
    """Known numbers of ``analysis_runs.default_columns`` at the last of 5 epochs, seeds 0-2: test
    accuracy 85 + seed / 10, 5 % 4 = 1 parameter-free op, eigenvalue average of 0.2 and 0.4, gap 20 - 5."""
    headline = _headline(build_report([sweep]))
    row = re.search(r"</span>sdarts-rs</td>(.*?)</tr>", headline, re.S)
    assert row is not None
    cells = re.findall(r'<td class="num"[^>]*>([^<]*)</td>', row.group(1))
    assert cells == ["3", "85.10 ± 0.10 (3)", "1.00 ± 0.00 (3)", "0.30 ± 0.00 (3)", "15.00 ± 0.00 (3)"]
    assert "NAS-Bench-201 · CIFAR-10" in headline and "NB-1Shot1 space 2 · CIFAR-10" in headline
    assert "vs darts" not in headline and "random-search" not in headline  # baselines have no trajectory values
    darts = re.search(r"</span>darts</td><td class=\"num\">([^<]*)</td>", headline)
    assert darts is not None and darts.group(1) == "3 of 4"  # the failed run counts as a run, not in the values


def test_headline_verdicts_are_colour_coded(sweep: Path) -> None:
    headline = _headline(build_report([sweep], baseline="darts"))
    assert '<span class="verdict baseline">baseline</span>' in headline
    # the default columns give both methods the same accuracies: no value differs at all
    assert '<span class="verdict same">no change +0.00</span>' in headline
    assert "vs darts" in headline


def test_method_colours_match_between_headline_and_figures(sweep: Path) -> None:
    """rdarts-l2, whose only run failed before its first epoch, is in the headline but not in the
    trajectories; it must not shift sdarts-rs to another colour there."""
    from nasbench_harness.analysis.plotstyle import method_color

    write_run(sweep / "early-failure", method="rdarts-l2", epochs=0, status="failed", error="OOM")
    page = build_report([sweep])
    swatches = dict(re.findall(r'<span class="swatch" style="background: (#[0-9A-Fa-f]{6})"></span>([\w-]+)<', page))
    assert set(swatches.values()) == {"darts", "rdarts-l2", "sdarts-rs"} and len(swatches) == 3
    grid = page[page.index('id="figure-trajectories"') : page.index('id="figure-final-box"')]
    for colour, method in swatches.items():
        assert colour == method_color(method)
        drawn = f"stroke: {colour.lower()}" in grid.lower()
        assert drawn == (method != "rdarts-l2"), method


def test_runs_table_folds_long_fields(sweep: Path) -> None:
    page = build_report([sweep])
    runs = page[page.index('id="runs"') :]
    assert runs.count("<details>") == 10  # 9 search runs and the baseline
    first = runs[runs.index("<tr><td") :]
    first_row = first[: first.index("</tr>")]
    visible = re.sub(r"<details>.*?</details>", "", first_row, flags=re.S)
    assert "nasbench_harness 0.1.0" not in visible and "nasbench_harness 0.1.0" in first_row
    assert 'title="' in visible and str(sweep) not in re.sub(r'title="[^"]*"', "", visible)  # a short name shown
