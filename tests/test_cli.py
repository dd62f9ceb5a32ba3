"""The nbh command: output, exit codes, and one clear message (no traceback) on bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from nb201_files import mapping_yaml, table_rows, write_table

from nasbench_harness.cli.main import main

INDICES = [0, 1835, 9930]


def nbh(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, *args: str) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["nbh", *args])
    with pytest.raises(SystemExit) as exit_info:
        main()
    out, err = capsys.readouterr()
    code = exit_info.value.code
    return (0 if code is None else int(code)), out, err


@pytest.fixture
def imported(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> dict[str, list]:
    rows = table_rows(INDICES, seed=3)
    source = write_table(tmp_path / "small.csv", rows)
    code, _, err = nbh(
        capsys, monkeypatch, "data", "import", "nb201", str(source), "--mapping", str(mapping_yaml(tmp_path / "m.yaml"))
    )
    assert code == 0, err
    assert "Imported small.csv" in err and "4 metrics, 3 of 15625 cells" in err
    return rows


def test_help_lists_the_commands(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    code, out, _ = nbh(capsys, monkeypatch, "--help")
    assert code == 0 and "data" in out and "query" in out
    code, out, _ = nbh(capsys, monkeypatch, "query", "nb201", "--help")
    assert code == 0 and "--dataset" in out and "--metric" in out and "--json" in out


def test_query_json(
    imported: dict[str, list], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, _ = nbh(capsys, monkeypatch, "query", "nb201", "9930", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["index"] == 9930 and data["op_counts"]["nor_conv_3x3"] == 5 and data["connected"] is True
    c10 = data["datasets"]["cifar10"]
    assert c10["test"] == imported["cifar10_test_acc"][2]
    assert c10["valid"] == imported["cifar10_valid_valid_acc"][2]
    assert c10["test_metric"] == "cifar10/ori-test/accuracy@200"
    assert c10["test_regret"] == pytest.approx(max(imported["cifar10_test_acc"]) - imported["cifar10_test_acc"][2])
    assert data["datasets"]["ImageNet16-120"]["test"] is None  # not in this small table


def test_query_exact_metrics_and_table(
    imported: dict[str, list], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    arch = "|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|skip_connect~2|"
    code, out, _ = nbh(capsys, monkeypatch, "query", "nb201", arch, "-m", "cifar100/x-test/accuracy@200", "--json")
    assert code == 0 and json.loads(out)["metrics"] == {
        "cifar100/x-test/accuracy@200": imported["cifar100_test_acc"][1]
    }
    code, out, _ = nbh(capsys, monkeypatch, "query", "nb201", "1835", "-d", "cifar10")
    assert code == 0
    assert "NB201 cell #1835" in out and f"{imported['cifar10_test_acc'][1]:.2f}" in out and "skip_connect 6" in out


def test_data_info(
    imported: dict[str, list], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, _ = nbh(capsys, monkeypatch, "data", "info", "--json")
    nb201 = json.loads(out)["benchmarks"]["nb201"]
    assert code == 0 and nb201["status"] == "imported" and nb201["cells"] == 3
    assert len(nb201["source"]["sha256"]) == 64 and nb201["source"]["name"] == "small.csv"
    code, out, _ = nbh(capsys, monkeypatch, "data", "info", "--metrics")
    assert code == 0 and "cifar10/ori-test/accuracy@200" in out and "sha256" in out


def test_data_info_before_any_import(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    code, out, _ = nbh(capsys, monkeypatch, "data", "info")
    assert code == 0 and "nb201: not imported" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["query", "nb201", "|nor_conv_3x3~0|+|x~0|"], "malformed NB201 arch string"),
        (["query", "nb201", "99999"], "0..15624"),
        (["query", "nb201", "1", "-m", "cifar10/x-valid/accuracy@200"], "cifar10 has no split 'x-valid'"),
        (["query", "nb201", "1", "-m", "cifar10-valid/latency@200"], "has no metric cifar10-valid/latency@200"),
        (["data", "import", "nb201", "/no/such/file.parquet"], "no such file"),
    ],
)
def test_bad_input_is_one_clear_message(
    imported: dict[str, list],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    message: str,
) -> None:
    code, out, err = nbh(capsys, monkeypatch, *args)
    assert code == 1
    assert message in " ".join(err.split())
    assert "Traceback" not in err + out


def test_missing_benchmark_says_how_to_import(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, _, err = nbh(capsys, monkeypatch, "query", "nb201", "1")
    assert code == 1 and "nbh data import nb201 PATH" in " ".join(err.split())


def test_bad_option_value_is_a_usage_error(
    imported: dict[str, list], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, _, err = nbh(capsys, monkeypatch, "query", "nb201", "1", "--hp", "100")
    assert code == 2 and "'100' is not one of '200', '12'" in err
    code, _, err = nbh(capsys, monkeypatch, "query", "nb201", "1", "-d", "svhn")
    message = " ".join(err.replace("│", " ").split())
    assert code == 2 and "'svhn' is not one of 'cifar10-valid', 'cifar10', 'cifar100', 'ImageNet16-120'" in message


def test_query_dataset_spellings(
    imported: dict[str, list], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, err = nbh(capsys, monkeypatch, "query", "nb201", "9930", "-d", "CIFAR-10", "-d", "imagenet16_120",
                         "-d", "cifar10-valid", "--json")  # fmt: skip
    assert code == 0, err
    datasets = json.loads(out)["datasets"]
    assert list(datasets) == ["cifar10", "ImageNet16-120", "cifar10-valid"]
    assert datasets["cifar10"]["test"] == imported["cifar10_test_acc"][2]


def test_console_script_runs_in_a_fresh_process(tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("nbh")
    result = subprocess.run(
        [str(script), "query", "nb201", "|bad|"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"NBH_CACHE_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 1
    assert result.stderr.startswith("error: malformed NB201 arch string") and "Traceback" not in result.stderr
