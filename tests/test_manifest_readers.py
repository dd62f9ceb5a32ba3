"""Every reader of a run's ``manifest.json`` goes through ``tracking.manifest.read_manifest_file``: a
damaged manifest gives the same ``RunDirError`` in the loader, the report and the sweep executor."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from analysis_runs import write_run

from nasbench_harness.analysis.runs import load_runs
from nasbench_harness.errors import RunDirError
from nasbench_harness.execution.local import SWEEP_FILE, run_one, run_status, run_sweep
from nasbench_harness.execution.suite import expand, load_suite
from nasbench_harness.report.build import _provenance, build_report

SUITES = Path(__file__).parents[1] / "benchmarks" / "suites"
DAMAGED = r"manifest\.json is not valid JSON \(.* at line 1 column \d+\); it is written atomically"
NOT_A_MANIFEST = r"manifest\.json is not a run manifest \(a JSON object with a status of running, finished, failed\)"


@pytest.fixture
def damaged(tmp_path: Path) -> Path:
    run = write_run(tmp_path / "runs" / "a", method="darts", seed=0, epochs=2)
    (run / "manifest.json").write_text('{"status": "finished", "config": {', encoding="utf-8")
    return run


def test_loader_and_report_say_the_same(damaged: Path) -> None:
    with pytest.raises(RunDirError, match=DAMAGED):
        load_runs([damaged.parent])
    with pytest.raises(RunDirError, match=DAMAGED):
        build_report([damaged.parent])
    with pytest.raises(RunDirError, match=DAMAGED):
        _provenance(damaged)


def test_report_provenance_reads_the_manifest(tmp_path: Path) -> None:
    run = write_run(tmp_path / "ok", method="darts", seed=0, epochs=2)
    assert _provenance(run)["versions"] == "nasbench_harness 0.1.0, python 3.11, git 0000000000"
    manifest = json.loads((run / "manifest.json").read_text())
    (run / "manifest.json").write_text(json.dumps({**manifest, "status": "paused"}))
    with pytest.raises(RunDirError, match=NOT_A_MANIFEST):
        _provenance(run)


def test_run_status_reads_through_the_one_reader(damaged: Path, tmp_path: Path) -> None:
    assert run_status(tmp_path / "nothing-here") is None
    assert run_status(write_run(tmp_path / "ok", epochs=1)) == "finished"
    with pytest.raises(RunDirError, match=DAMAGED):
        run_status(damaged)


def test_a_sweep_reports_a_damaged_run_and_goes_on(tmp_path: Path) -> None:
    from nasbench_harness.execution.job import JobArgs

    run = expand(load_suite(SUITES / "quickstart.yaml"), "collapse", tmp_path / "results")[0]
    run.path.mkdir(parents=True)
    (run.path / "manifest.json").write_text("[1, 2", encoding="utf-8")
    outcome = run_one(run, JobArgs("cpu", retry_failed=True))
    assert outcome.status == "failed" and outcome.message.startswith("RunDirError: ")
    assert "is not valid JSON" in outcome.message
    outcomes = run_sweep([run], tmp_path / "sweep")
    assert [o.status for o in outcomes] == ["failed"]
    recorded = json.loads((tmp_path / "sweep" / SWEEP_FILE).read_text())
    assert recorded["counts"] == {"failed": 1} and "is not valid JSON" in recorded["runs"][run.run_id]["message"]
    assert run.path.joinpath("manifest.json").read_text() == "[1, 2"  # left as it was, for the user to repair
