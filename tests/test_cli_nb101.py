"""nbh data import nb101, nbh query nb101 / nb1shot1, and per-space coverage in nbh data info."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from nb101_files import ABSENT, S1, write_nb101
from test_cli import nbh

from nasbench_harness.spaces.nb1shot1 import SPACES, NB1Shot1Genotype


@pytest.fixture
def imported(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> dict:
    truth = write_nb101(tmp_path / "small.tfrecord", S1)
    code, _, err = nbh(capsys, monkeypatch, "data", "import", "nb101", str(tmp_path / "small.tfrecord"))
    assert code == 0, err
    assert "Imported small.tfrecord" in err
    return truth


def test_query_nb101_by_hash(
    imported: dict, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    h = NB1Shot1Genotype.from_string(1, S1[0]).module_hash()
    code, out, _ = nbh(capsys, monkeypatch, "query", "nb101", h, "--json")
    data = json.loads(out)
    assert code == 0 and data["status"] == "in benchmark"
    assert data["final/test_accuracy@108#1"] == imported[h][108][1][2].test_accuracy
    code, out, _ = nbh(capsys, monkeypatch, "query", "nb101", h)
    assert code == 0 and "in benchmark" in out and "valid acc" in out
    absent = NB1Shot1Genotype.from_string(1, ABSENT).module_hash()
    code, out, _ = nbh(capsys, monkeypatch, "query", "nb101", absent, "--json")
    assert code == 0 and json.loads(out)["status"] == "not in benchmark"


def test_query_nb1shot1(imported: dict, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    code, out, _ = nbh(capsys, monkeypatch, "query", "nb1shot1", "--space", "nb1shot1-1", S1[0], "--json")
    data = json.loads(out)
    h = NB1Shot1Genotype.from_string(1, S1[0]).module_hash()
    test = sum(r[2].test_accuracy for r in imported[h][108]) / 3
    assert code == 0 and data["module_hash"] == h and data["in_benchmark"] is True
    assert data["test_regret"] == pytest.approx((1 - test) - SPACES[1].test_min_error)
    assert len(data["nb101_matrix"]) == 6  # the padding vertex is pruned
    code, out, err = nbh(capsys, monkeypatch, "query", "nb1shot1", "-s", "1", ABSENT)  # the old spelling
    assert code == 0 and "not in benchmark" in out and "NB-1Shot1 space 1" in out
    assert "--space 1 is deprecated" in err and "--space nb1shot1-1" in err


def test_data_info_reports_space_coverage(
    imported: dict, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, _ = nbh(capsys, monkeypatch, "data", "info")
    assert code == 0 and "nb101: imported" in out
    assert "NB-1Shot1 space 1: 2 of its 2,685 reachable cells" in " ".join(out.split())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["query", "nb1shot1", "--space", "nb1shot1-2", S1[0]], "space 2: node 2 takes 1 parent(s)"),
        (["query", "nb101", "xyz"], "32 lowercase hex characters"),
        (["query", "nb101", "0" * 32, "--json"], None),
        (["data", "import", "nb101", "/no/such.tfrecord"], "no such file"),
        (["data", "import", "nb101", "x.tfrecord", "--trust-pickle"], "apply to nb201 imports only"),
    ],
)
def test_bad_input(
    imported: dict,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    message: str | None,
) -> None:
    code, out, err = nbh(capsys, monkeypatch, *args)
    if message is None:  # a well-formed hash the table lacks is an answer, not an error
        assert code == 0 and json.loads(out)["status"] == "not in benchmark"
        return
    assert code == 1 and message in " ".join(err.split()) and "Traceback" not in err


def test_bad_space_is_a_usage_error(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    for space in ("7", "nb1shot1-7", "nb201"):
        code, _, err = nbh(capsys, monkeypatch, "query", "nb1shot1", "--space", space, S1[0])
        message = " ".join(err.replace("│", " ").split())
        assert code == 2 and "'nb1shot1-1', 'nb1shot1-2', 'nb1shot1-3'" in message and "Traceback" not in err


def test_missing_nb101_says_how_to_import(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    code, _, err = nbh(capsys, monkeypatch, "query", "nb101", "0" * 32)
    assert code == 1 and "nbh data import nb101 PATH" in " ".join(err.split())
