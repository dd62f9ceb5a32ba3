"""`nbh methods` (listing and one method's documentation) and `nbh baseline` on the real NB201 table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_cli import nbh

from nasbench_harness.registry import METHODS
from nasbench_harness.tracking import read_trajectory


def test_methods_lists_every_registered_method(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, _ = nbh(capsys, monkeypatch, "methods")
    assert code == 0
    listed = [line.split()[0] for line in out.splitlines() if line and not line.startswith("`")]
    assert listed == list(METHODS)


def test_methods_describes_one(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    code, out, _ = nbh(capsys, monkeypatch, "methods", "darts-es")
    assert code == 0 and "Zela et al." in out and "1.3" in out
    code, _, err = nbh(capsys, monkeypatch, "methods", "dartz")
    assert code == 1 and "unknown method 'dartz'" in err


def test_baseline_writes_a_trace(
    tmp_path: Path, synthetic_data_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    out_dir = tmp_path / "rs"
    args = ["baseline", "--n", "20", "--seed", "3", "--out", str(out_dir), "--data-dir", str(synthetic_data_dir)]
    code, out, err = nbh(capsys, monkeypatch, *args)
    assert code == 0, err
    assert "20 evaluations" in out and "test regret" in out
    rows = read_trajectory(out_dir).to_pylist()
    assert len(rows) == 20 and rows[-1]["regret_test"] >= 0
    assert json.loads((out_dir / "manifest.json").read_text())["method"] == "random-search"
    code, _, err = nbh(capsys, monkeypatch, *args)  # the directory holds a trace already
    assert code == 1 and str(out_dir) in err


def test_baseline_errors_are_one_line(
    tmp_path: Path, synthetic_data_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, _, err = nbh(capsys, monkeypatch, "baseline", "--method", "bayesopt", "--data-dir", str(synthetic_data_dir))
    message = " ".join(err.replace("│", " ").split())
    assert code == 2 and "'bayesopt' is not one of 'random-search', 'regularized-evolution'" in message
    code, _, err = nbh(
        capsys,
        monkeypatch,
        "baseline",
        "--space",
        "nb1shot1-1",
        "--dataset",
        "cifar100",
        "--data-dir",
        str(synthetic_data_dir),
    )
    assert code == 1 and "cifar10" in err


def test_methods_describes_the_options(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    code, out, _ = nbh(capsys, monkeypatch, "methods", "sdarts-adv")
    assert code == 0 and "Options (--set method_options.NAME=VALUE):" in out
    assert "eps_max: float = 0.3" in out and "steps: int = 7" in out
