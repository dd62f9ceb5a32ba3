"""`nbh search` on the real CIFAR-10 and NB201 table, and its errors (one line, exit 1)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_cli import nbh

TINY = [
    "--set",
    "model.channels=4",
    "--set",
    "data.train_size=64",
    "--set",
    "data.valid_size=64",
    "--set",
    "batch_size=32",
    "--set",
    "tracking.eigen_every=0",
    "--threads",
    "1",
    "--device",
    "cpu",
]


@pytest.mark.data
def test_search_on_real_cifar10(
    tmp_path: Path, real_data_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    out_dir = tmp_path / "run"
    code, out, err = nbh(
        capsys, monkeypatch, "search", "--epochs", "2", "--out", str(out_dir), "--data-dir", str(real_data_dir), *TINY
    )
    assert code == 0, err
    assert "epoch 2/2" in err and "NB201 test" in err
    assert "finished, 2 epochs" in out and "derived genotype" in out
    manifest = json.loads((out_dir / "manifest.json").read_text())
    assert manifest["config"]["preset"] == "cpu" and manifest["data"]["counts"] == {"train": 64, "valid": 64}
    assert manifest["data"]["sources"] and all(len(s["sha256"]) == 64 for s in manifest["data"]["sources"])
    # the same command again continues (here: finds the run finished); --resume says so explicitly
    code, out, err = nbh(
        capsys,
        monkeypatch,
        "search",
        "--epochs",
        "2",
        "--out",
        str(out_dir),
        "--data-dir",
        str(real_data_dir),
        "--resume",
        *TINY,
    )
    assert code == 0, err
    assert "finished, 2 epochs" in out


def _error(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, *args: str) -> str:
    code, _, err = nbh(capsys, monkeypatch, *args)
    assert code == 1
    assert err.startswith("error:") and "Traceback" not in err
    return " ".join(err.split())


def test_cli_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    out = str(tmp_path / "r")
    assert "write key=value" in _error(capsys, monkeypatch, "search", "--set", "epochs", "--out", out)
    assert "holds no run to continue" in _error(capsys, monkeypatch, "search", "--resume", "--out", out)


def test_cuda_without_a_cuda_device_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """When torch sees no CUDA device (as here, and pinned so on a GPU machine too), ``--device cuda`` fails."""
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    message = _error(capsys, monkeypatch, "search", "--device", "cuda", "--out", str(tmp_path / "r"))
    assert "--device cuda was asked for, but torch sees no CUDA device; use --device cpu or auto" in message


def test_bad_choices_are_usage_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    out = str(tmp_path / "r")
    for args, message in (
        (["--method", "x"], "registered methods: beta-darts, darts"),
        (["--preset", "fast"], "'fast' is not one of 'paper', 'cpu'"),
        (["--space", "nb301"], "'nb301' is not one of 'nb201', 'nb1shot1-1'"),
        (["--device", "tpu"], "use auto, cpu, cuda or cuda:N"),
    ):
        code, _, err = nbh(capsys, monkeypatch, "search", *args, "--out", out)
        assert code == 2 and message in " ".join(err.replace("│", " ").split()), err
        assert "Traceback" not in err


def test_missing_data_is_explained(
    tmp_path: Path, synthetic_data_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    message = _error(capsys, monkeypatch, "search", "--out", str(tmp_path / "r"), "--data-dir", str(empty), *TINY)
    assert "NB201" in message and str(empty) in message
    # the table is there, the images are not
    only_table = tmp_path / "table"
    (only_table / "nb201").mkdir(parents=True)
    (only_table / "nb201" / "nb201_table.parquet").symlink_to(synthetic_data_dir / "nb201" / "nb201_table.parquet")
    message = _error(capsys, monkeypatch, "search", "--out", str(tmp_path / "r2"), "--data-dir", str(only_table), *TINY)
    assert "cifar-10-batches-py" in message
    assert not (tmp_path / "r2" / "manifest.json").exists()
