"""Suites: the shipped files validate and expand to their documented sizes; bad files are errors
naming the line; a tiny suite runs with the local executor (1 and 2 workers give identical
trajectories), finished runs are skipped, and a run another sweep holds is left alone."""

from __future__ import annotations

import json
import socket
import textwrap
from pathlib import Path

import pytest
from filelock import FileLock
from test_cli import nbh

from nasbench_harness.errors import ConfigError
from nasbench_harness.execution.local import SWEEP_FILE, run_status, run_sweep
from nasbench_harness.execution.suite import expand, load_suite
from nasbench_harness.tracking import read_trajectory

SUITES = Path(__file__).parents[1] / "benchmarks" / "suites"
SIZES = {
    "nb201-robust": 45,
    "nb1shot1-regret": 45,
    "rdarts-eigenvalue": 27,
    "regularizer-check": 8,
    "quickstart": 4,
    "nb201-paper": 18,
}
VARIANTS = {  # a laptop variant (cpu, or collapse where the suite is about the collapse), and paper;
    # the comparison suites list common (one protocol for every method) first, their GPU default
    "nb201-robust": ["cpu", "collapse", "common", "paper"],
    "nb1shot1-regret": ["cpu", "collapse", "common", "paper"],
    "rdarts-eigenvalue": ["cpu", "collapse", "common", "paper"],
    "regularizer-check": ["collapse", "paper"],
    "quickstart": ["collapse", "paper"],
    "nb201-paper": ["cpu", "paper"],
}
TINY = """\
    name: tiny
    reproduces: a two-method smoke test
    command: nbh sweep tiny.yaml
    spaces: [nb201]
    datasets: [cifar10]
    seeds: [0, 1]
    methods:
      - darts
      - name: rdarts-l2
        options: {weight_decay: [0.0027]}
    overrides:
      epochs: 2
      batch_size: 32
      model: {channels: 4}
      data: {train_size: 64, valid_size: 64}
      tracking: {eigen_every: 0}
    variants:
      cpu: {}
"""
VOLATILE = {"epoch_time_s", "tracking_time_s", "wall_time_s"}


def _suite(tmp_path: Path, text: str = TINY) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


@pytest.mark.parametrize("name", sorted(SIZES))
def test_shipped_suites_validate_and_expand(name: str) -> None:
    suite = load_suite(SUITES / f"{name}.yaml")
    assert suite.name == name and list(suite.variants) == VARIANTS[name]
    for variant in VARIANTS[name]:
        runs = expand(suite, variant)
        assert len(runs) == SIZES[name]
        assert len({r.path for r in runs}) == len(runs)  # stable, distinct directories
        assert all(r.config.preset == variant for r in runs)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("seeds: [0, 1]", "seeds: [0, 1]\ncolour: red"), r"line 7: colour: unknown key"),
        (("  - darts\n", "  - dartz\n"), r"line 8: methods\.0\.name: unknown method .dartz."),
        (("weight_decay: [0.0027]", "weight_decay: []"), r"line 10: methods\.1\.options: .*empty"),
        (("seeds: [0, 1]", "seeds: []"), r"line 6: seeds: List should have at least 1 item"),
        (("  cpu: {}", "  gpu: {}"), r"variants: .*unknown variant\(s\) gpu"),
        (("seeds: [0, 1]\n", "seeds: [0, 1]\nseeds: [2]\n"), r"line 7: key 'seeds' appears twice"),
    ],
)
def test_bad_suites_name_the_line(tmp_path: Path, change: tuple[str, str], message: str) -> None:
    text = textwrap.dedent(TINY)
    assert change[0] in text
    with pytest.raises(ConfigError, match=message):
        load_suite(_suite(tmp_path, text.replace(*change)))


def test_a_method_that_cannot_run_on_a_space_is_refused(tmp_path: Path) -> None:
    text = TINY.replace("spaces: [nb201]", "spaces: [nb1shot1-1]").replace("  - darts\n", "  - darts-minus\n")
    with pytest.raises(ConfigError, match="darts-minus' cannot run on nb1shot1-1"):
        expand(load_suite(_suite(tmp_path, text)), "cpu")


def test_local_executor_one_and_two_workers_agree_and_skip_finished(tmp_path: Path, synthetic_data_dir: Path) -> None:
    runs_a = expand(load_suite(_suite(tmp_path)), "cpu", tmp_path / "a")
    runs_b = expand(load_suite(_suite(tmp_path)), "cpu", tmp_path / "b")
    # the same threads per run (results depend on the thread count, not on the number of workers)
    first = run_sweep(runs_a, tmp_path / "a", workers=1, threads=1, data_dir=synthetic_data_dir)
    second = run_sweep(runs_b, tmp_path / "b", workers=2, threads=1, data_dir=synthetic_data_dir)
    assert [o.status for o in first] == ["finished"] * 4 and sorted(o.status for o in second) == ["finished"] * 4
    for a, b in zip(runs_a, runs_b, strict=True):
        rows_a = [{k: v for k, v in r.items() if k not in VOLATILE} for r in read_trajectory(a.path).to_pylist()]
        rows_b = [{k: v for k, v in r.items() if k not in VOLATILE} for r in read_trajectory(b.path).to_pylist()]
        assert rows_a == rows_b and len(rows_a) == 2
    again = run_sweep(runs_a, tmp_path / "a", workers=1, data_dir=synthetic_data_dir)
    assert {o.message for o in again} == {"already finished"}
    manifest = json.loads((tmp_path / "a" / SWEEP_FILE).read_text())
    assert manifest["counts"] == {"finished": 4} and len(manifest["runs"]) == 4


def test_a_run_held_by_another_sweep_is_left_alone(tmp_path: Path, synthetic_data_dir: Path) -> None:
    runs = expand(load_suite(_suite(tmp_path)), "cpu", tmp_path)[:1]
    runs[0].path.parent.mkdir(parents=True)
    with FileLock(str(runs[0].path) + ".lock"):
        (outcome,) = run_sweep(runs, tmp_path, workers=1, data_dir=synthetic_data_dir)
    assert outcome.status == "busy" and not (runs[0].path / "manifest.json").exists()


def no_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """Torch sees no CUDA device (as on this machine), so ``--device auto`` means the CPU and the
    ``cpu`` preset; pinned, so that a test means the same on a GPU machine."""
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


def test_cli_dry_run(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    no_gpu(monkeypatch)  # the default preset follows the device: cpu without a GPU
    code, out, err = nbh(capsys, monkeypatch, "sweep", str(SUITES / "rdarts-eigenvalue.yaml"), "--dry-run",
                         "--root", str(tmp_path))  # fmt: skip
    assert code == 0, err
    assert "rdarts-eigenvalue (cpu): 27 runs." in out
    assert "new       rdarts-eigenvalue/cpu/nb201/cifar10/rdarts-dp-drop_prob=0.6/seed-2" in out


def test_check_regularizer_end_to_end(
    tmp_path: Path, synthetic_data_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    suite = _suite(
        tmp_path, textwrap.dedent(TINY).replace("  - name: rdarts-l2\n    options: {weight_decay: [0.0027]}\n", "")
    )
    example = Path(__file__).parents[1] / "examples" / "skip_penalty.py"
    report = tmp_path / "check.html"
    no_gpu(monkeypatch)  # --device auto: the CPU and the cpu preset, also on a GPU machine
    code, out, err = nbh(
        capsys, monkeypatch, "check-regularizer", f"{example}:SkipPenalty", "--suite", str(suite),
        "--root", str(tmp_path / "results"), "--report", str(report), "--data-dir", str(synthetic_data_dir),
    )  # fmt: skip
    assert code == 0, err + out
    assert "nb201 / cifar10: inconclusive (too few runs" in out  # 2 seeds cannot reach p < 0.05
    page = report.read_text()
    assert "darts+SkipPenalty" in page and 'id="comparison"' in page
    candidates = sorted((tmp_path / "results" / "tiny" / "cpu" / "candidates").rglob("manifest.json"))
    assert len(candidates) == 2 and all(json.loads(m.read_text())["plugins"] for m in candidates)


def test_ray_executor_gives_the_local_trajectories(tmp_path: Path, synthetic_data_dir: Path) -> None:
    local = expand(load_suite(_suite(tmp_path)), "cpu", tmp_path / "local")[:2]
    remote = expand(load_suite(_suite(tmp_path)), "cpu", tmp_path / "ray")[:2]
    run_sweep(local, tmp_path / "local", workers=1, threads=1, data_dir=synthetic_data_dir)
    outcomes = run_sweep(remote, tmp_path / "ray", executor="ray", threads=1, data_dir=synthetic_data_dir)
    assert [o.status for o in outcomes] == ["finished", "finished"]
    for a, b in zip(local, remote, strict=True):
        rows_a = [{k: v for k, v in r.items() if k not in VOLATILE} for r in read_trajectory(a.path).to_pylist()]
        rows_b = [{k: v for k, v in r.items() if k not in VOLATILE} for r in read_trajectory(b.path).to_pylist()]
        assert rows_a == rows_b


def test_a_sweep_killed_mid_run_completes_only_what_is_missing(tmp_path: Path, synthetic_data_dir: Path) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    text = textwrap.dedent(TINY).replace("epochs: 2", "epochs: 4")
    suite = _suite(tmp_path, text)
    root = tmp_path / "results"
    # --device cpu: the cpu preset's runs, and resumed below on the CPU, on a GPU machine too
    command = [sys.executable, "-m", "nasbench_harness.cli.main", "sweep", str(suite), "--root", str(root),
               "--data-dir", str(synthetic_data_dir), "--workers", "2", "--device", "cpu"]  # fmt: skip
    runs = expand(load_suite(suite), "cpu", root)
    proc = subprocess.Popen(command, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # kill once some run has committed an epoch but not all of them
        done = [r for r in runs if (r.path / "trajectory.parquet").exists()]
        if done:
            break
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    for _ in range(100):  # the workers die (and drop their run locks) a moment after the parent
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    before = {r.run_id: len(read_trajectory(r.path)) if (r.path / "trajectory.parquet").exists() else 0 for r in runs}
    assert any(0 < n < 4 for n in before.values()), before  # killed mid-run
    finished_before = {r.run_id: run_status(r.path) == "finished" for r in runs}
    outcomes = run_sweep(runs, root / "tiny" / "cpu", workers=1, data_dir=synthetic_data_dir)
    assert [o.status for o in outcomes] == ["finished"] * 4
    for outcome in outcomes:  # what had finished is not trained again
        assert (outcome.message == "already finished") == finished_before[outcome.run_id]
    for run in runs:
        rows = read_trajectory(run.path).to_pylist()
        assert [r["epoch"] for r in rows] == [1, 2, 3, 4]
        manifest = json.loads((run.path / "manifest.json").read_text())
        if 0 < before[run.run_id] < 4:
            assert manifest["resumed_at"]  # continued from its last complete epoch, not restarted


def test_cli_sweep_with_a_report_says_where_each_run_trained(
    tmp_path: Path, synthetic_data_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    suite = _suite(tmp_path, textwrap.dedent(TINY).replace("seeds: [0, 1]", "seeds: [0]"))
    report = tmp_path / "tiny.html"
    code, out, err = nbh(
        capsys, monkeypatch, "sweep", str(suite), "--root", str(tmp_path / "results"), "--device", "cpu",
        "--cpus-per-run", "1", "--report", str(report), "--data-dir", str(synthetic_data_dir),
    )  # fmt: skip
    assert code == 0, err
    assert "2 runs: 2 finished" in out and f"report: {report.resolve()}" in out
    page = report.read_text()
    assert "Comparison with darts" in page and "rdarts-l2" in page
    manifest = json.loads((tmp_path / "results" / "tiny" / "cpu" / SWEEP_FILE).read_text())
    assert manifest["counts"] == {"finished": 2}
    # where each run trained: the plan, each run's line, sweep.json and the report's column
    host = socket.gethostname()
    assert "local: each run: cpu, 1 CPU" in out
    assert f"[cpu on {host}, preset cpu]" in err
    assert {(e["device"], e["preset"], e["host"]) for e in manifest["runs"].values()} == {("cpu", "cpu", host)}
    assert "<th>preset, device</th>" in page and "<td>cpu, cpu</td>" in page


def test_an_interrupted_run_resumes_but_a_failed_one_waits_for_retry(tmp_path: Path) -> None:
    from nasbench_harness.execution.job import JobArgs
    from nasbench_harness.execution.local import run_one

    runs = expand(load_suite(_suite(tmp_path)), "cpu", tmp_path)
    for run, error in ((runs[0], "interrupted by the user; continue with ..."), (runs[1], "TrainingError: nan")):
        run.path.mkdir(parents=True)
        (run.path / "manifest.json").write_text(json.dumps({"schema_version": 1, "status": "failed", "error": error}))
    assert run_status(runs[0].path) == "interrupted" and run_status(runs[1].path) == "failed"
    skipped = run_one(runs[1], JobArgs("cpu", retry_failed=False))
    assert skipped.status == "skipped-failed" and "--retry-failed" in skipped.message


@pytest.mark.parametrize(
    ("suite", "gpu", "cpu"),
    [
        ("nb201-robust", "common", "cpu"),
        ("nb1shot1-regret", "common", "cpu"),
        ("rdarts-eigenvalue", "common", "cpu"),
        ("quickstart", "paper", "collapse"),
        ("regularizer-check", "paper", "collapse"),
    ],
)
def test_the_default_preset_is_the_suites_first_variant_that_fits_the_device(
    suite: str, gpu: str, cpu: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a GPU the comparison suites compare under one protocol (common, listed before paper);
    on the CPU, the first CPU-sized variant; a single search: paper on a GPU, cpu on the CPU."""
    import torch

    from nasbench_harness.cli.common import default_preset

    variants = load_suite(SUITES / f"{suite}.yaml").variants
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert default_preset("auto", variants) == gpu and default_preset("cuda:0") == "paper"
    assert default_preset("cpu", variants) == cpu and default_preset("cpu") == "cpu"
    assert default_preset("cuda", ["cpu"]) == "paper"  # no GPU-sized variant: the search default (expand names it)
    no_gpu(monkeypatch)
    assert default_preset("auto", variants) == cpu and default_preset("auto") == "cpu"
