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
    assert page.count("<svg") == len(FIGURES) + 1  # and the final-accuracy box
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
