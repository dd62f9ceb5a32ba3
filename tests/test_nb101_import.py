"""NB101 tfrecord -> cache -> query returns the numbers in the file; bad records are named."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from nb101_files import ABSENT, S1, cell, runs, write_nb101

from nasbench_harness.errors import NotInBenchmarkError, SourceFileError
from nasbench_harness.spaces.nb1shot1 import SPACES, NB1Shot1Genotype
from nasbench_harness.tabular import cache as cache_mod
from nasbench_harness.tabular.nb1shot1 import score
from nasbench_harness.tabular.nb101 import NB101Benchmark
from nasbench_harness.tabular.nb101_import import import_nb101
from nasbench_harness.tabular.nb101_records import encode_record
from nasbench_harness.tabular.tfrecord import write_records


@pytest.fixture
def small(tmp_path: Path) -> tuple[NB101Benchmark, dict]:
    truth = write_nb101(tmp_path / "small.tfrecord", S1)
    return NB101Benchmark.load(import_nb101(tmp_path / "small.tfrecord", tmp_path / "cache")), truth


def test_round_trip_returns_the_numbers_in_the_file(small: tuple[NB101Benchmark, dict]) -> None:
    bench, truth = small
    for text in S1:
        h = NB1Shot1Genotype.from_string(1, text).module_hash()
        assert bench.query(h, "params") == truth["params"][h]
        assert bench.query(h, "n_repeats@108") == 3
        for point, position in (("halfway", 1), ("final", 2)):
            for quantity in ("train_accuracy", "validation_accuracy", "test_accuracy", "training_time"):
                runs = [getattr(r[position], quantity) for r in truth[h][108]]
                for k, value in enumerate(runs):
                    assert bench.query(h, f"{point}/{quantity}@108#{k}") == value
                assert bench.query(h, f"{point}/{quantity}@108") == pytest.approx(np.mean(runs), rel=1e-15)


def test_cells_are_found_by_hash_spec_matrix_or_genotype(small: tuple[NB101Benchmark, dict]) -> None:
    bench, _ = small
    g = NB1Shot1Genotype.from_string(1, S1[0])
    spec = g.to_spec()
    expected = bench.query(g.module_hash(), "final/test_accuracy@108")
    assert bench.query(g, "final/test_accuracy@108") == expected
    assert bench.query(spec, "final/test_accuracy@108") == expected
    assert bench.query((np.array(spec.matrix), spec.ops), "final/test_accuracy@108") == expected
    many = bench.query_many([g, ABSENT_GENOTYPE], "final/test_accuracy@108")
    assert many[0] == expected and math.isnan(many[1])


ABSENT_GENOTYPE = NB1Shot1Genotype.from_string(1, ABSENT)


def test_absent_cells_get_an_explicit_answer(small: tuple[NB101Benchmark, dict]) -> None:
    bench, _ = small
    answer = bench.lookup(ABSENT_GENOTYPE)
    assert not answer.in_benchmark and answer.values == {} and "not in benchmark" in str(answer)
    with pytest.raises(NotInBenchmarkError, match="not in benchmark") as info:
        bench.query(ABSENT_GENOTYPE, "final/test_accuracy@108")
    assert not isinstance(info.value, KeyError)
    with pytest.raises(NotInBenchmarkError):
        answer.value("final/test_accuracy@108")
    present = bench.lookup(S1_GENOTYPE)
    assert present.in_benchmark and present.value("params") > 0


S1_GENOTYPE = NB1Shot1Genotype.from_string(1, S1[0])


def test_nb1shot1_score_and_regret(small: tuple[NB101Benchmark, dict]) -> None:
    bench, truth = small
    result = score(bench, S1_GENOTYPE)
    runs = truth[S1_GENOTYPE.module_hash()][108]
    test = np.mean([r[2].test_accuracy for r in runs])
    assert result.in_benchmark and result.status == "in benchmark"
    assert result.test_accuracy == pytest.approx(test)
    assert result.test_regret == pytest.approx((1 - test) - SPACES[1].test_min_error)
    valid = np.mean([r[2].validation_accuracy for r in runs])
    assert result.validation_regret == pytest.approx((1 - valid) - SPACES[1].valid_min_error)
    missing = score(bench, ABSENT_GENOTYPE)
    assert not missing.in_benchmark and missing.status == "not in benchmark"
    assert math.isnan(missing.test_regret) and missing.as_dict()["status"] == "not in benchmark"


def test_every_budget_of_a_full_file_is_kept(tmp_path: Path) -> None:
    truth = write_nb101(tmp_path / "full.tfrecord", S1[:1], budgets=(4, 12, 36, 108), repeats=2)
    bench = NB101Benchmark.load(import_nb101(tmp_path / "full.tfrecord", tmp_path / "cache"))
    h = S1_GENOTYPE.module_hash()
    for epochs in (4, 12, 36, 108):
        assert bench.query(h, f"n_repeats@{epochs}") == 2
        assert bench.query(h, f"halfway/validation_accuracy@{epochs}#1") == truth[h][epochs][1][1].validation_accuracy
    assert bench.info["extra"]["epochs"] == [4, 12, 36, 108]
    assert bench.info["extra"]["records"] == 8


def test_space_coverage_is_recorded(small: tuple[NB101Benchmark, dict]) -> None:
    bench, _ = small
    coverage = bench.info["extra"]["nb1shot1_coverage"]
    assert coverage["1"] == {"reachable": 2_685, "covered": 2}
    assert coverage["3"]["reachable"] == 55_854


# -- bad input ------------------------------------------------------------------------------
def _payloads(cells: list[str]) -> list[bytes]:
    rng = np.random.default_rng(1)
    out = []
    for text in cells:
        h, adjacency, ops = cell(text)
        out += [encode_record(h, 108, adjacency, ops, runs(rng, 108), 1000) for _ in range(3)]
    return out


def _edit_payload(payload: bytes, index: int, value: object) -> bytes:
    data = json.loads(payload)
    data[index] = value
    return json.dumps(data).encode()


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda p: _edit_payload(p, 3, "input,conv5x5-bn-relu,output"), r"record 4 \(byte offset \d+\).*"),
        (lambda p: _edit_payload(p, 1, 50), r"record 4 .*50 epochs"),
        (lambda p: b"not json at all", r"record 4 \(byte offset \d+\)"),
        (lambda p: _edit_payload(p, 2, "0" * 36), r"record 4 .*no path"),
    ],
)
def test_bad_records_are_named_and_leave_the_cache(tmp_path: Path, edit, match: str) -> None:  # type: ignore[no-untyped-def]
    cache = tmp_path / "cache"
    write_nb101(tmp_path / "good.tfrecord", S1)
    import_nb101(tmp_path / "good.tfrecord", cache)
    before = (cache / "nb101" / cache_mod.SIDECAR_FILE).read_bytes()
    payloads = _payloads(S1)
    payloads[4] = edit(payloads[4])
    write_records(tmp_path / "bad.tfrecord", payloads)
    with pytest.raises(SourceFileError, match=match):
        import_nb101(tmp_path / "bad.tfrecord", cache)
    assert (cache / "nb101" / cache_mod.SIDECAR_FILE).read_bytes() == before
    assert not list(cache.glob(".nb101.tmp-*"))


def test_wrong_crc_and_truncation(tmp_path: Path) -> None:
    write_records(tmp_path / "x.tfrecord", _payloads(S1))
    data = bytearray((tmp_path / "x.tfrecord").read_bytes())
    data[-2] ^= 0xFF  # the last record's payload CRC
    (tmp_path / "crc.tfrecord").write_bytes(bytes(data))
    with pytest.raises(SourceFileError, match=r"record 5 \(byte offset \d+\): payload CRC mismatch"):
        import_nb101(tmp_path / "crc.tfrecord", tmp_path / "cache")
    (tmp_path / "cut.tfrecord").write_bytes(bytes(data[: len(data) // 2 + 5]))  # mid-record, not on a boundary
    with pytest.raises(SourceFileError, match="truncated"):
        import_nb101(tmp_path / "cut.tfrecord", tmp_path / "cache")
    with pytest.raises(SourceFileError, match="no such file"):
        import_nb101(tmp_path / "none.tfrecord", tmp_path / "cache")
    assert not (tmp_path / "cache" / "nb101").exists()


def test_fewer_than_three_evaluations(tmp_path: Path) -> None:
    h, adjacency, ops = cell(S1[0])
    rng = np.random.default_rng(0)
    write_records(tmp_path / "e.tfrecord", [encode_record(h, 108, adjacency, ops, runs(rng, 108)[:2], 10)])
    with pytest.raises(SourceFileError, match=r"record 0 .*2 evaluations"):
        import_nb101(tmp_path / "e.tfrecord", tmp_path / "cache")
