"""Importing NB201 tables into the cache, the query API on them, and every bad input."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from nb201_files import mapping_yaml, table_rows, write_table

from nasbench_harness.errors import (
    BenchmarkNotFoundError,
    CacheError,
    ConfigError,
    GenotypeError,
    NotInBenchmarkError,
    OutOfDomainError,
    SourceFileError,
    UnknownMetricError,
)
from nasbench_harness.spaces.nb201 import NUM_CELLS, NB201Genotype, all_genotypes
from nasbench_harness.tabular import cache as cache_mod
from nasbench_harness.tabular.nb201 import NB201Benchmark
from nasbench_harness.tabular.nb201_import import import_nb201

INDICES = [0, 7, 1835, 6111, 9930, 15624]
C10_VALID = "cifar10-valid/x-valid/accuracy@200"
C10_TEST = "cifar10/ori-test/accuracy@200"


@pytest.fixture
def rows() -> dict[str, list]:
    return table_rows(INDICES)


def _import(tmp_path: Path, rows: dict[str, list], name: str = "t.parquet") -> NB201Benchmark:
    source = write_table(tmp_path / name, rows)
    return NB201Benchmark.load(import_nb201(source, tmp_path / "cache", mapping=mapping_yaml(tmp_path / "m.yaml")))


@pytest.mark.parametrize("name", ["t.parquet", "t.csv", "t.csv.gz"])
def test_import_reproduces_the_table(tmp_path: Path, rows: dict[str, list], name: str) -> None:
    bench = _import(tmp_path, rows, name)
    for i, index in enumerate(INDICES):
        assert bench.query(index, C10_VALID) == rows["cifar10_valid_valid_acc"][i]
        assert bench.query(rows["arch_str"][i], C10_TEST) == rows["cifar10_test_acc"][i]
        assert (
            bench.query(NB201Genotype.from_index(index), "cifar10-valid/n_seeds@200")
            == rows["cifar10_valid_n_seeds"][i]
        )
    assert bench.coverage(C10_VALID) == len(INDICES)
    assert set(bench.metrics) == {C10_VALID, C10_TEST, "cifar100/x-test/accuracy@200", "cifar10-valid/n_seeds@200"}


def test_sidecar_records_source_and_meanings(tmp_path: Path, rows: dict[str, list]) -> None:
    bench = _import(tmp_path, rows)
    info = json.loads((bench.path / cache_mod.SIDECAR_FILE).read_text())
    assert info["schema_version"] == cache_mod.SCHEMA_VERSION
    assert info["source"]["sha256"] == cache_mod.sha256_file(tmp_path / "t.parquet")
    assert info["importer"] == {"name": "nb201-table", "version": 1}
    assert info["rows"]["count"] == NUM_CELLS
    meanings = {m["key"]: m["meaning"] for m in info["metrics"]}
    assert "10k CIFAR-10 test set" in meanings[C10_TEST] and "all 50k" in meanings[C10_TEST]
    assert "200-epoch" in meanings[C10_VALID]
    assert info["extra"]["source_columns"][C10_TEST] == "cifar10_test_acc"


def test_parquet_view_matches_query_view(tmp_path: Path, rows: dict[str, list]) -> None:
    import pyarrow.parquet as pq

    bench = _import(tmp_path, rows)
    table = pq.read_table(bench.path / cache_mod.TABLE_FILE)
    assert table.num_rows == NUM_CELLS
    assert table.column("arch_str").to_pylist()[9930] == NB201Genotype.from_index(9930).to_string()
    np.testing.assert_array_equal(table.column(C10_TEST).to_numpy(), bench.values(C10_TEST))


def test_query_api(tmp_path: Path, rows: dict[str, list]) -> None:
    bench = _import(tmp_path, rows)
    best = int(np.argmax(rows["cifar10_test_acc"]))
    optimum = bench.optimum(C10_TEST)
    assert optimum.index == INDICES[best] and optimum.value == max(rows["cifar10_test_acc"])
    assert optimum.genotype.index == optimum.index
    assert bench.regret(optimum.index, C10_TEST) == 0.0
    assert bench.regret(INDICES[0], C10_TEST) == pytest.approx(optimum.value - rows["cifar10_test_acc"][0])

    many = bench.query_many(all_genotypes(), C10_TEST)
    assert many.shape == (NUM_CELLS,) and np.count_nonzero(~np.isnan(many)) == len(INDICES)
    np.testing.assert_array_equal(bench.query_many(np.array(INDICES), C10_TEST), rows["cifar10_test_acc"])
    np.testing.assert_array_equal(bench.query_many(rows["arch_str"], C10_TEST), rows["cifar10_test_acc"])
    np.testing.assert_array_equal(bench.regrets(np.array(INDICES), C10_TEST), optimum.value - many[INDICES])

    record = bench.record(9930)
    assert record[C10_TEST] == rows["cifar10_test_acc"][4] and len(record) == len(bench.metrics)
    assert bench.record(1)[C10_TEST] is None
    assert not bench.values(C10_TEST).flags.writeable


def test_query_errors(tmp_path: Path, rows: dict[str, list]) -> None:
    bench = _import(tmp_path, rows)
    with pytest.raises(NotInBenchmarkError, match=r"cell #1 .*\(6 of 15625 cells"):
        bench.query(1, C10_TEST)
    with pytest.raises(UnknownMetricError, match="has no metric cifar100/x-valid/accuracy@200"):
        bench.query(0, "cifar100/x-valid/accuracy@200")
    with pytest.raises(UnknownMetricError, match="malformed"):
        bench.query(0, "cifar10 test")
    with pytest.raises(OutOfDomainError, match="accuracy metrics"):
        bench.optimum("cifar10-valid/n_seeds@200")
    with pytest.raises(GenotypeError, match=r"0\.\.15624"):
        bench.query(NUM_CELLS, C10_TEST)
    with pytest.raises(GenotypeError, match="malformed"):
        bench.query("|none~0|", C10_TEST)
    with pytest.raises(GenotypeError):
        bench.query(1.5, C10_TEST)  # type: ignore[arg-type]
    with pytest.raises(GenotypeError, match=r"0\.\.15624"):
        bench.query_many(np.array([0, -1]), C10_TEST)


def test_default_mapping_fits_the_shared_layout(tmp_path: Path) -> None:
    """A table with every column of the built-in mapping imports without --mapping."""
    from nasbench_harness.tabular.nb201_import import TableMapping

    mapping = TableMapping.default()
    rng = np.random.default_rng(1)
    columns: dict[str, list] = {
        "index": INDICES,
        "arch_str": [NB201Genotype.from_index(i).to_string() for i in INDICES],
    }
    for key, column in mapping.columns.items():
        columns[column] = (
            rng.uniform(2, 90, len(INDICES)).tolist() if key.quantity == "accuracy" else [3] * len(INDICES)
        )
    bench = NB201Benchmark.load(import_nb201(write_table(tmp_path / "full.csv.gz", columns), tmp_path / "c"))
    assert len(bench.metrics) == len(mapping.columns) == 40
    assert "derived" in bench.describe("cifar100/x-valid/accuracy@200")


def test_open_imports_a_table_from_the_data_dir_once(tmp_path: Path, rows: dict[str, list]) -> None:
    data = tmp_path / "data"
    (data / "nb201").mkdir(parents=True)
    # the default mapping needs every column: rename ours to the shared layout's names
    from nasbench_harness.tabular.nb201_import import TableMapping

    full = {"index": rows["index"], "arch_str": rows["arch_str"]}
    for column in TableMapping.default().columns.values():
        full[column] = rows["cifar10_test_acc"] if "acc" in column else [2] * len(INDICES)
    write_table(data / "nb201" / "nb201_table.parquet", full)
    calls: list[str] = []
    bench = NB201Benchmark.open(progress=lambda phase, done, total: calls.append(phase))
    assert bench.query(9930, C10_TEST) == rows["cifar10_test_acc"][4]
    assert "hash" in calls
    (data / "nb201" / "nb201_table.parquet").unlink()  # a second open reads the cache only
    assert NB201Benchmark.open().query(9930, C10_TEST) == rows["cifar10_test_acc"][4]


def test_open_without_anything_says_how_to_import(tmp_path: Path) -> None:
    with pytest.raises(BenchmarkNotFoundError, match="nbh data import nb201 PATH"):
        NB201Benchmark.open()
    official = tmp_path / "data" / "NAS-Bench-201-v1_1-096897.pth"
    official.parent.mkdir(parents=True, exist_ok=True)
    official.write_bytes(b"x")
    with pytest.raises(BenchmarkNotFoundError, match="found the official file"):
        NB201Benchmark.open()


# -- bad input ------------------------------------------------------------------------------
def _assert_cache_untouched(cache: Path, before: bytes | None) -> None:
    sidecar = cache / "nb201" / cache_mod.SIDECAR_FILE
    assert (sidecar.read_bytes() if sidecar.exists() else None) == before
    assert not list(cache.glob(".nb201.tmp-*")), "a failed import left temporary files"


@pytest.fixture
def cache_with_import(tmp_path: Path, rows: dict[str, list]) -> tuple[Path, bytes]:
    bench = _import(tmp_path, rows)
    return bench.path.parent, (bench.path / cache_mod.SIDECAR_FILE).read_bytes()


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda r: r.pop("cifar10_test_acc"), "lacks column.*cifar10_test_acc"),
        (lambda r: r.__setitem__("index", [1, *INDICES[1:]]), "not in NAS-Bench-201's official order"),
        (lambda r: r.__setitem__("arch_str", ["|none~0|", *r["arch_str"][1:]]), "row 0, column arch_str: malformed"),
        (lambda r: r.__setitem__("index", [0, 0, *INDICES[2:]]), "index"),
        (lambda r: r.__setitem__("cifar10_test_acc", [v / 100 for v in r["cifar10_test_acc"]]), "looks like fractions"),
        (lambda r: r.__setitem__("cifar10_test_acc", [101.0] * len(INDICES)), "outside 0..100"),
        (lambda r: r.__setitem__("cifar10_test_acc", ["x"] * len(INDICES)), "not numeric"),
    ],
)
def test_bad_tables_are_refused_and_leave_the_cache(
    tmp_path: Path,
    rows: dict[str, list],
    cache_with_import: tuple[Path, bytes],
    mutate,
    match: str,  # type: ignore[no-untyped-def]
) -> None:
    cache, before = cache_with_import
    mutate(rows)
    source = write_table(tmp_path / "bad.parquet", rows)
    with pytest.raises(SourceFileError, match=match):
        import_nb201(source, cache, mapping=mapping_yaml(tmp_path / "m.yaml"))
    _assert_cache_untouched(cache, before)


def test_duplicate_cells_are_refused(tmp_path: Path, rows: dict[str, list]) -> None:
    rows = {k: [*v, v[0]] for k, v in rows.items()}
    with pytest.raises(SourceFileError, match="more than one row"):
        import_nb201(write_table(tmp_path / "d.csv", rows), tmp_path / "c", mapping=mapping_yaml(tmp_path / "m.yaml"))


@pytest.mark.parametrize("name", ["t.parquet", "t.csv.gz"])
def test_truncated_and_foreign_files(
    tmp_path: Path, rows: dict[str, list], cache_with_import: tuple[Path, bytes], name: str
) -> None:
    cache, before = cache_with_import
    good = write_table(tmp_path / name, rows).read_bytes()
    truncated = tmp_path / f"cut-{name}"
    truncated.write_bytes(good[: len(good) // 2])
    with pytest.raises(SourceFileError, match="truncated, damaged or of another format"):
        import_nb201(truncated, cache, mapping=mapping_yaml(tmp_path / "m.yaml"))
    foreign = tmp_path / f"foreign-{name}"
    foreign.write_bytes(b"\x00\x01 this is not a table \xff" * 50)
    with pytest.raises(SourceFileError):
        import_nb201(foreign, cache, mapping=mapping_yaml(tmp_path / "m.yaml"))
    _assert_cache_untouched(cache, before)


def test_missing_file_unknown_type_and_mapping_misuse(tmp_path: Path) -> None:
    with pytest.raises(SourceFileError, match="no such file"):
        import_nb201(tmp_path / "nope.parquet", tmp_path / "c")
    (tmp_path / "x.json").write_text("{}")
    with pytest.raises(SourceFileError, match="unknown file type"):
        import_nb201(tmp_path / "x.json", tmp_path / "c")
    (tmp_path / "x.pth").write_bytes(b"")
    with pytest.raises(ConfigError, match="--mapping applies to tables"):
        import_nb201(tmp_path / "x.pth", tmp_path / "c", mapping=tmp_path / "m.yaml")


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("name: a\nname: b\ncolumns: {}\n", "line 2: key 'name' appears twice"),
        (
            "index_column: index\ncolumns:\n  cifar10/ori-test/accuracy@200: a\nextra: 1\n",
            r"unknown key\(s\) \['extra'\]",
        ),
        ("index_column: index\ncolumns:\n  cifar10/x-valid/accuracy@200: a\n", "cifar10 has no split 'x-valid'"),
        ("columns:\n  cifar10/ori-test/accuracy@200: a\n", "index_column, arch_column or both"),
        ("index_column: index\ncolumns: {}\n", "at least one metric"),
        ("index_column: index\ncolumns: [1, 2\n", "not valid YAML"),
        ("- a\n- b\n", "expected a mapping"),
    ],
)
def test_bad_mappings(tmp_path: Path, rows: dict[str, list], text: str, match: str) -> None:
    (tmp_path / "bad.yaml").write_text(text)
    source = write_table(tmp_path / "t.parquet", rows)
    with pytest.raises(ConfigError, match=match):
        import_nb201(source, tmp_path / "c", mapping=tmp_path / "bad.yaml")


def test_cache_of_another_schema_version_is_refused(cache_with_import: tuple[Path, bytes]) -> None:
    cache, _ = cache_with_import
    sidecar = cache / "nb201" / cache_mod.SIDECAR_FILE
    info = json.loads(sidecar.read_text())
    info["schema_version"] = cache_mod.SCHEMA_VERSION + 1
    sidecar.write_text(json.dumps(info))
    with pytest.raises(CacheError, match=r"schema version 2.*rebuild it with `nbh data import nb201 .*t\.parquet`"):
        NB201Benchmark.open(cache)


@pytest.mark.parametrize("damage", ["truncate", "delete", "garbage-sidecar", "delete-sidecar"])
def test_damaged_cache_is_refused(cache_with_import: tuple[Path, bytes], damage: str) -> None:
    cache, _ = cache_with_import
    matrix, sidecar = cache / "nb201" / cache_mod.MATRIX_FILE, cache / "nb201" / cache_mod.SIDECAR_FILE
    if damage == "truncate":
        matrix.write_bytes(matrix.read_bytes()[:1000])
    elif damage == "delete":
        matrix.unlink()
    elif damage == "garbage-sidecar":
        sidecar.write_text("{not json")
    else:
        sidecar.unlink()
    with pytest.raises(CacheError, match="rebuild it with `nbh data import nb201"):
        NB201Benchmark.open(cache)


def test_interrupted_write_keeps_the_previous_cache(
    tmp_path: Path, rows: dict[str, list], cache_with_import: tuple[Path, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    cache, before = cache_with_import

    def crash(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(cache_mod, "_swap_in", crash)
    rows["cifar10_test_acc"] = [50.0] * len(INDICES)
    with pytest.raises(KeyboardInterrupt):
        import_nb201(write_table(tmp_path / "new.parquet", rows), cache, mapping=mapping_yaml(tmp_path / "m.yaml"))
    _assert_cache_untouched(cache, before)
    assert not math.isclose(NB201Benchmark.open(cache).query(0, C10_TEST), 50.0)
