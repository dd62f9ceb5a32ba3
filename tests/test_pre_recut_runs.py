"""Run directories written before the re-cut of ``methods/`` (commit d04332e) still load, report
and resume.

``tests/fixtures/pre_recut/<method>/`` holds a 3-epoch tiny search (channels 4, one cell per
stage, 32 synthetic images, seed 0) interrupted after epoch 2 by the old code, and, in
``expected_epoch_3.json``, what the old code computed in epoch 3 of the uninterrupted run. The
resumed run must reproduce those numbers: training does not depend on the table, so the
synthetic one serves.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from nasbench_harness.analysis.runs import load_runs
from nasbench_harness.config import validate_config
from nasbench_harness.data import synthetic_search_data
from nasbench_harness.methods.engine.run import run_search
from nasbench_harness.tracking import read_alphas, read_trajectory
from nasbench_harness.tracking.manifest import read_manifest_file

FIXTURES = Path(__file__).parent / "fixtures" / "pre_recut"
METHODS = ("darts", "beta-darts")


def _copy(method: str, tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    run = tmp_path / method
    shutil.copytree(FIXTURES / method, run)
    expected = json.loads((run / "expected_epoch_3.json").read_text())
    (run / "expected_epoch_3.json").unlink()
    return run, expected


@pytest.mark.parametrize("method", METHODS)
def test_an_old_run_loads_for_analysis_and_reports(method: str, tmp_path: Path) -> None:
    from nasbench_harness.report.build import build_report

    run, _ = _copy(method, tmp_path)
    runs = load_runs([run])
    assert len(runs) == 1 and runs.runs.loc[0, "method"] == method
    assert list(runs.epochs["epoch"]) == [1, 2]
    html = build_report([run], title="old runs")
    assert "old runs" in html and method in html


@pytest.mark.usefixtures("one_thread")
@pytest.mark.parametrize("method", METHODS)
def test_an_old_run_resumes_to_the_numbers_the_old_code_computed(
    method: str, tmp_path: Path, synthetic_nb201: Any
) -> None:
    run, expected = _copy(method, tmp_path)
    config = validate_config(read_manifest_file(run / "manifest.json")["config"])
    data = synthetic_search_data(n_train=32, n_valid=32, image_size=16, seed=0)

    result = run_search(config, run, device="cpu", data=data, bench=synthetic_nb201)

    assert (result.status, result.epochs_completed, result.resumed_from) == ("finished", 3, 2)
    row = read_trajectory(run).to_pylist()[2]
    for key, value in expected["epoch_3"].items():
        assert row[key] == (value if isinstance(value, str) else pytest.approx(value, rel=1e-6, abs=1e-9)), key
    alphas = [a["alpha"] for a in read_alphas(run).to_pylist() if a["epoch"] == 3]
    assert alphas == pytest.approx(expected["alphas_3"], rel=1e-6, abs=1e-12)
    if method == "beta-darts":  # epochs 1-2 wrote beta_reg/beta_weight, epoch 3 the new names
        written = read_trajectory(run).column_names
        assert {"beta_reg", "beta_weight", "reg_beta_decay", "reg_beta_decay_weight"} <= set(written)
        epochs = load_runs([run]).epochs
        assert "beta_reg" not in epochs.columns and "beta_weight" not in epochs.columns
        assert epochs["reg_beta_decay"].notna().all() and epochs["reg_beta_decay_weight"].notna().all()
