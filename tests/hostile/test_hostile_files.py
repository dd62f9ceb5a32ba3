"""Hostile files: damaged copies of everything the harness reads from a data directory, a cache or
a run directory, built by the test in the official or the project's own format.

- NB201 tables (Parquet, CSV, gzipped CSV): bytes flipped mid-file, truncated, empty, foreign, and
  well-formed tables holding values no NB201 number can take (times of 1e104, negative losses,
  infinite parameter counts, an all-NaN column, fractional seed counts);
- NB101 tfrecords: a flipped payload or length byte, truncations, hostile values behind valid CRCs,
  a record filed under another cell's hash;
- caches: flipped or truncated arrays, an edited or truncated sidecar;
- run directories: ``trajectory.parquet`` / ``alphas.parquet`` bit-flipped, truncated or foreign,
  read by ``read_trajectory``, a resumed search and ``nbh report``;
- and the strings ``nbh query`` parses as cells: negative, huge or non-ASCII indices, 119 KB pastes.

Every case runs what a user runs (``nbh`` in-process, or the API) and checks the exit code, a
one-line message naming the file and the fix, and that nothing already written changed.
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from checks import error_line as one_line_error
from checks import snapshot
from nb101_files import S1, cell, runs, write_nb101
from nb201_files import mapping_yaml, table_rows, write_table
from test_cli import nbh
from tiny import tiny_search

from nasbench_harness.errors import RunDirError
from nasbench_harness.tabular.nb101_records import Evaluation, encode_record
from nasbench_harness.tabular.tfrecord import write_records
from nasbench_harness.tracking import read_alphas, read_trajectory

REDO_TABLE = "download the table again, or export it anew"
REDO_NB101 = "download it again"


# -- helpers --------------------------------------------------------------------------------------
def flip(path: Path, at: float, width: int = 256) -> None:
    """Invert ``width`` bytes starting at fraction ``at`` of the file (``width`` 0: one bit)."""
    data = bytearray(path.read_bytes())
    start = int(len(data) * at)
    if width == 0:
        data[start] ^= 0x10
    else:
        data[start : start + width] = bytes(b ^ 0xFF for b in data[start : start + width])
    path.write_bytes(bytes(data))


def truncate(path: Path, keep: float) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


@pytest.fixture
def good_cache(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Path:
    """A cache holding a good small NB201 import, which a failed import must leave untouched."""
    cache = tmp_path / "cache"
    source = write_table(tmp_path / "good.parquet", table_rows([0, 7, 1835]))
    code, _, err = nbh(capsys, monkeypatch, "data", "import", "nb201", str(source), "--mapping",
                       str(mapping_yaml(tmp_path / "m.yaml")), "--cache-dir", str(cache))  # fmt: skip
    assert code == 0, err
    return cache


# -- NB201 tables -----------------------------------------------------------------------------------
TABLE_DAMAGE: dict[str, tuple[str, Callable[[Path], None]]] = {
    "parquet-256-bytes-flipped-mid-file": (".parquet", lambda p: flip(p, 0.5)),
    "parquet-256-bytes-flipped-at-a-quarter": (".parquet", lambda p: flip(p, 0.25)),
    "parquet-256-bytes-flipped-at-three-quarters": (".parquet", lambda p: flip(p, 0.75)),
    "parquet-footer-bytes-flipped": (".parquet", lambda p: flip(p, 0.995, 16)),
    "parquet-truncated-to-half": (".parquet", lambda p: truncate(p, 0.5)),
    "parquet-footer-cut": (".parquet", lambda p: p.write_bytes(p.read_bytes()[:-100])),
    "parquet-empty": (".parquet", lambda p: p.write_bytes(b"")),
    "parquet-foreign-bytes": (".parquet", lambda p: p.write_bytes(np.random.default_rng(0).bytes(50_000))),
    "csv-truncated-mid-row": (".csv", lambda p: truncate(p, 0.5)),
    "csv-digits-become-letters": (".csv", lambda p: flip(p, 0.5, 8)),
    "csv-empty": (".csv", lambda p: p.write_bytes(b"")),
    "csv.gz-256-bytes-flipped": (".csv.gz", lambda p: flip(p, 0.5)),
    "csv.gz-one-bit-flipped": (".csv.gz", lambda p: flip(p, 0.5, 0)),
    "csv.gz-truncated": (".csv.gz", lambda p: truncate(p, 0.5)),
}


@pytest.mark.parametrize("case", sorted(TABLE_DAMAGE))
def test_a_damaged_nb201_table_is_refused_and_the_cache_kept(
    case: str, synthetic_data_dir: Path, good_cache: Path, tmp_path: Path,
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    suffix, damage = TABLE_DAMAGE[case]
    source = tmp_path / f"nb201_table{suffix}"
    table = synthetic_data_dir / "nb201" / "nb201_table.parquet"
    if suffix == ".parquet":
        shutil.copy(table, source)
    else:
        write_table(source, pq.read_table(table).to_pydict())
    damage(source)
    before = snapshot(good_cache)
    code, _, err = nbh(capsys, monkeypatch, "data", "import", "nb201", str(source), "--cache-dir", str(good_cache))
    one_line_error(code, err, str(source), REDO_TABLE)
    assert snapshot(good_cache) == before


def _set(column: str, row: int, value: float) -> Callable[[dict[str, Any]], None]:
    def change(columns: dict[str, Any]) -> None:
        values = np.array(columns[column], dtype=np.float64)
        values[row] = value
        columns[column] = values

    return change


def _all_nan(column: str) -> Callable[[dict[str, Any]], None]:
    return lambda columns: columns.__setitem__(column, np.full(len(columns[column]), np.nan))


BAD_VALUES: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "time-1e104": (_set("cifar10_valid_train_time_s", 6111, 1e104), "1e+104"),
    "time-negative": (_set("imagenet16_120_train_time_s", 3, -12.5), "-12.5"),
    "loss-negative": (_set("cifar10_valid_valid_loss", 11472, -0.25), "-0.25"),
    "loss-infinite": (_set("cifar10_valid_train_loss", 0, math.inf), "inf"),
    "params-infinite": (_set("cifar100_params_M", 42, -math.inf), "-inf"),
    "flops-negative": (_set("imagenet16_120_flops_M", 15624, -1.0), "-1.0"),
    "accuracy-above-100": (_set("cifar10_test_acc", 1835, 100.5), "100.5"),
    "accuracy-huge": (_set("hp12_cifar100_test_acc", 9930, 3.4e38), "3.4e+38"),
    "n-seeds-fractional": (_set("cifar100_n_seeds", 8, 2.5), "2.5"),
    "all-nan-column": (_all_nan("cifar10_valid_test_loss"), "holds no values"),
}


@pytest.mark.parametrize("case", sorted(BAD_VALUES))
@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_a_table_with_impossible_values_is_refused_naming_column_row_and_value(
    case: str, suffix: str, good_cache: Path, tmp_path: Path,
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    from synthetic_nb201 import table_columns

    columns = table_columns()
    change, shown = BAD_VALUES[case]
    change(columns)
    arrays = {k: pa.array(v, type=pa.large_string()) if v.dtype == object else pa.array(v) for k, v in columns.items()}
    source = write_table(tmp_path / f"table{suffix}", arrays)
    before = snapshot(good_cache)
    code, _, err = nbh(capsys, monkeypatch, "data", "import", "nb201", str(source), "--cache-dir", str(good_cache))
    line = one_line_error(code, err, str(source), shown)
    if case != "all-nan-column":
        assert " in row " in line and "(cell #" in line and REDO_TABLE in line, line
    assert snapshot(good_cache) == before


# -- NB101 tfrecords ------------------------------------------------------------------------------
def _records(tmp_path: Path) -> tuple[Path, list[int]]:
    """A small official-format file; the byte offset of every record."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "small.tfrecord"
    write_nb101(path, S1)
    data, offsets, at = path.read_bytes(), [], 0
    while at < len(data):
        offsets.append(at)
        at += 8 + 4 + int.from_bytes(data[at : at + 8], "little") + 4
    return path, offsets


def _poke(at: Callable[[list[int]], int], xor: int = 0x01) -> Callable[[Path, list[int]], None]:
    def damage(path: Path, offsets: list[int]) -> None:
        data = bytearray(path.read_bytes())
        data[at(offsets)] ^= xor
        path.write_bytes(bytes(data))

    return damage


TFRECORD_DAMAGE: dict[str, tuple[Callable[[Path, list[int]], None], str]] = {
    "payload-bit-flipped": (_poke(lambda o: o[2] + 12 + 40), "payload CRC mismatch"),
    "payload-last-byte-flipped": (_poke(lambda o: o[3] - 5, 0x80), "payload CRC mismatch"),
    "length-byte-flipped": (_poke(lambda o: o[1]), "length CRC mismatch"),
    "length-crc-flipped": (_poke(lambda o: o[4] + 9), "length CRC mismatch"),
    "truncated-mid-record": (lambda p, o: p.write_bytes(p.read_bytes()[: o[3] + 40]), "truncated"),
    "truncated-by-one-byte": (lambda p, o: p.write_bytes(p.read_bytes()[:-1]), "truncated"),
    "truncated-in-a-header": (lambda p, o: p.write_bytes(p.read_bytes()[: o[5] + 5]), "truncated header"),
    "empty": (lambda p, o: p.write_bytes(b""), "empty"),
}


def _hostile_record(kind: str) -> bytes:
    h, adjacency, ops = cell(S1[0])
    rng = np.random.default_rng(1)
    evaluations = runs(rng, 108)
    final = evaluations[2]
    params = 1_000_000
    if kind == "accuracy-above-1":
        evaluations[2] = Evaluation(final.current_epoch, final.training_time, 1.5, final.validation_accuracy, 0.9)
    elif kind == "time-negative":
        evaluations[1] = Evaluation(54.0, -3.0, 0.5, 0.5, 0.5)
    elif kind == "time-infinite":
        evaluations[2] = Evaluation(108.0, math.inf, 0.9, 0.9, 0.9)
    elif kind == "params-negative":
        params = -5
    elif kind == "another-cells-hash":
        h = cell(S1[1])[0]
    return encode_record(h, 108, adjacency, ops, evaluations, params)


HOSTILE_RECORDS = {
    "accuracy-above-1": "train_accuracy is 1.5",
    "time-negative": "training_time is -3.0",
    "time-infinite": "training_time is inf",
    "params-negative": "trainable_parameters is -5",
    "another-cells-hash": "is not the hash of its graph",
}


@pytest.fixture
def fast_nb101(monkeypatch: pytest.MonkeyPatch) -> None:
    """The import's space flags without enumerating the NB-1Shot1 spaces (about 15 s)."""
    import nasbench_harness.tabular.nb101_import as nb101_import

    monkeypatch.setattr(nb101_import, "reachable_hashes", lambda space: frozenset(cell(t)[0] for t in S1))


@pytest.mark.parametrize("case", [*sorted(TFRECORD_DAMAGE), *sorted(HOSTILE_RECORDS)])
def test_a_damaged_nb101_tfrecord_is_refused_and_the_cache_kept(
    case: str, fast_nb101: None, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    good, _ = _records(tmp_path)
    assert nbh(capsys, monkeypatch, "data", "import", "nb101", str(good), "--cache-dir", str(cache))[0] == 0
    before = snapshot(cache)
    source = tmp_path / "bad.tfrecord"
    if case in TFRECORD_DAMAGE:
        damage, needle = TFRECORD_DAMAGE[case]
        path, offsets = _records(tmp_path / "w")
        damage(path, offsets)
        shutil.copy(path, source)
    else:
        needle = HOSTILE_RECORDS[case]
        write_records(source, [_hostile_record(case)])
    code, _, err = nbh(capsys, monkeypatch, "data", "import", "nb101", str(source), "--cache-dir", str(cache))
    one_line_error(code, err, str(source), needle, REDO_NB101)
    assert snapshot(cache) == before


# -- caches ---------------------------------------------------------------------------------------
def _edit_sidecar(change: Callable[[dict[str, Any]], None]) -> Callable[[Path], None]:
    def damage(cache: Path) -> None:
        file = cache / "nb201" / "meta.json"
        sidecar = json.loads(file.read_text())
        change(sidecar)
        file.write_text(json.dumps(sidecar))

    return damage


def _old_style_broken(sidecar: dict[str, Any]) -> None:
    del sidecar["checksum"]  # as a cache written before the checksum existed
    sidecar["metrics"] = "cifar10"


CACHE_DAMAGE: dict[str, tuple[Callable[[Path], None], str]] = {
    "matrix-bytes-flipped": (lambda c: flip(c / "nb201" / "metrics.npy", 0.6, 8), "metrics.npy"),
    "matrix-one-bit-flipped": (lambda c: flip(c / "nb201" / "metrics.npy", 0.9, 0), "metrics.npy"),
    "matrix-truncated": (lambda c: truncate(c / "nb201" / "metrics.npy", 0.5), "metrics.npy"),
    "matrix-deleted": (lambda c: (c / "nb201" / "metrics.npy").unlink(), "metrics.npy"),
    "sidecar-metric-renamed": (
        _edit_sidecar(lambda s: s["metrics"][0].update(key="cifar10/ori-test/accuracy@12")),
        "meta.json",
    ),
    "sidecar-row-count-changed": (_edit_sidecar(lambda s: s["rows"].update(count=15624)), "meta.json"),
    "sidecar-truncated": (lambda c: truncate(c / "nb201" / "meta.json", 0.5), "meta.json"),
    "sidecar-old-style-broken": (_edit_sidecar(_old_style_broken), "meta.json"),
}


@pytest.mark.parametrize("case", sorted(CACHE_DAMAGE))
def test_a_damaged_cache_is_refused_with_the_command_that_rebuilds_it(
    case: str, good_cache: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    damage, name = CACHE_DAMAGE[case]
    damage(good_cache)
    before = snapshot(good_cache)
    code, _, err = nbh(capsys, monkeypatch, "query", "nb201", "7", "--cache-dir", str(good_cache))
    one_line_error(code, err, name, "rebuild it with `nbh data import nb201 ")
    assert snapshot(good_cache) == before


def test_a_damaged_nb101_key_file_is_refused(
    fast_nb101: None, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    good, _ = _records(tmp_path)
    assert nbh(capsys, monkeypatch, "data", "import", "nb101", str(good), "--cache-dir", str(cache))[0] == 0
    flip(cache / "nb101" / "keys.npy", 0.9, 1)
    before = snapshot(cache)
    code, _, err = nbh(capsys, monkeypatch, "query", "nb101", cell(S1[0])[0], "--cache-dir", str(cache))
    one_line_error(code, err, "keys.npy", "rebuild it with `nbh data import nb101 ")
    assert snapshot(cache) == before


# -- run directories ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def finished_run(synthetic_nb201: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished two-epoch tiny search, copied by each test before it is damaged."""
    return tiny_search(tmp_path_factory.mktemp("runs"), synthetic_nb201, "run", tracking={"eigen_every": 0}).path


def _old_writer(path: Path) -> None:
    """The file as versions before page checksums wrote it, then 256 bytes flipped mid-file."""
    pq.write_table(pq.read_table(path), path)
    flip(path, 0.5)


def flip_in_column(path: Path, column: str = "valid_acc") -> None:
    """Flip one bit in the middle of ``column``'s compressed page data (not its page header)."""
    chunk = next(c for c in _chunks(path) if c.path_in_schema == column)
    end = chunk.data_page_offset + chunk.total_compressed_size
    data = bytearray(path.read_bytes())
    data[end - 6] ^= 0x04
    path.write_bytes(bytes(data))


def _chunks(path: Path) -> list[Any]:
    group = pq.ParquetFile(path).metadata.row_group(0)
    return [group.column(j) for j in range(group.num_columns)]


RUN_DAMAGE: dict[str, Callable[[Path], None]] = {
    "one-bit-flipped-in-a-data-page": lambda p: flip_in_column(p, "epoch"),
    "bytes-flipped-mid-file": lambda p: flip(p, 0.5, 16),
    "bytes-flipped-in-the-footer": lambda p: flip(p, 0.9, 4),
    "old-file-256-bytes-flipped": _old_writer,
    "truncated": lambda p: truncate(p, 0.6),
    "empty": lambda p: p.write_bytes(b""),
    "foreign-bytes": lambda p: p.write_bytes(b"PAR1" + bytes(200) + b"PAR1"),
}


@pytest.mark.parametrize("file", ["trajectory.parquet", "alphas.parquet"])
@pytest.mark.parametrize("case", sorted(RUN_DAMAGE))
def test_a_damaged_run_table_is_reported_by_name_and_nothing_is_rewritten(
    case: str, file: str, finished_run: Path, synthetic_nb201: Any, tmp_path: Path
) -> None:
    run = shutil.copytree(finished_run, tmp_path / "run")
    RUN_DAMAGE[case](run / file)
    before = snapshot(run)
    reader = read_trajectory if file == "trajectory.parquet" else read_alphas
    with pytest.raises(RunDirError) as info:
        reader(run)
    message = str(info.value)
    assert str(run / file) in message and "restore it" in message and "\n" not in message, message
    with pytest.raises(RunDirError, match=str(run / file).replace(".", r"\.")):
        tiny_search(tmp_path, synthetic_nb201, "run", tracking={"eigen_every": 0})  # resume
    assert snapshot(run) == before


@pytest.mark.parametrize("file", ["trajectory.parquet", "alphas.parquet"])
def test_any_single_bit_flip_in_a_run_table_is_an_error_or_changes_nothing(
    file: str, finished_run: Path, tmp_path: Path
) -> None:
    original = pq.read_table(finished_run / file)
    data = (finished_run / file).read_bytes()
    reader = read_trajectory if file == "trajectory.parquet" else read_alphas
    problems = []
    for at in range(0, len(data), 23):
        damaged = bytearray(data)
        damaged[at] ^= 1 << (at % 8)
        (tmp_path / file).write_bytes(bytes(damaged))
        try:
            table = reader(tmp_path / file)
        except RunDirError as exc:
            problems.append(str(exc))
        else:
            assert table.equals(original), f"a bit flipped at byte {at} changed the values read"
    assert len(problems) > len(data) // 23 // 2 and all(str(tmp_path / file) in p for p in problems)


def test_a_resumed_run_with_a_string_epoch_column_is_refused(
    finished_run: Path, synthetic_nb201: Any, tmp_path: Path
) -> None:
    run = shutil.copytree(finished_run, tmp_path / "run")
    table = pq.read_table(run / "trajectory.parquet")
    pq.write_table(table.set_column(0, "epoch", pa.array(["one"] * table.num_rows)), run / "trajectory.parquet")
    before = snapshot(run)
    with pytest.raises(RunDirError, match=r"trajectory\.parquet has an 'epoch' column of str values.*restore it"):
        tiny_search(tmp_path, synthetic_nb201, "run", tracking={"eigen_every": 0})
    assert snapshot(run) == before


@pytest.mark.parametrize("case", ["one-bit-flipped-in-a-data-page", "truncated", "foreign-bytes"])
def test_nbh_report_names_a_damaged_trajectory(
    case: str, finished_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    run = shutil.copytree(finished_run, tmp_path / "results" / "run")
    RUN_DAMAGE[case](run / "trajectory.parquet")
    before = snapshot(run)
    code, _, err = nbh(capsys, monkeypatch, "report", str(tmp_path / "results"), "-o", str(tmp_path / "r.html"))
    one_line_error(code, err, str(run / "trajectory.parquet"))
    assert snapshot(run) == before and not (tmp_path / "r.html").exists()


# -- strings where a cell is expected ---------------------------------------------------------------
NB1SHOT1 = "|conv3x3-bn-relu~0|conv3x3-bn-relu~0~1|maxpool3x3~0~2|conv1x1-bn-relu~1~3|output~2~4|"
HUGE = "|" + "none~0|" * 17_000  # 119 KB
QUERIES = {
    "nb201-minus-one": (["nb201", "--", "-1"], "NB201 index -1 is out of range 0..15624"),
    "nb201-1e9": (["nb201", "1e9"], "NB201 index 1e9 is out of range 0..15624"),
    "nb201-past-the-end": (["nb201", "15625"], "NB201 index 15625 is out of range 0..15624"),
    "nb201-huge-number": (["nb201", "9" * 5000], "out of range 0..15624"),
    "nb201-float": (["nb201", "3.0"], "a whole number 0..15624 in digits, got 3.0; did you mean 3?"),
    "nb201-arabic-indic-digit": (
        ["nb201", "\u0663"],
        "holds non-ASCII digits; write an NB201 index with the digits 0-9",
    ),
    "nb201-fullwidth-digit": (["nb201", "\uff13"], "holds non-ASCII digits"),
    "nb201-119-kb": (["nb201", HUGE], f"({len(HUGE)} characters)"),
    "nb1shot1-arabic-indic-parent": (
        ["nb1shot1", "-s", "nb1shot1-1", NB1SHOT1.replace("~0|", "~\u0660|", 1)],
        "written with the digits 0-9",
    ),
    "nb1shot1-fullwidth-parent": (
        ["nb1shot1", "-s", "nb1shot1-1", NB1SHOT1.replace("~1~3", "~\uff11~3")],
        "written with the digits 0-9",
    ),
    "nb1shot1-119-kb": (["nb1shot1", "-s", "nb1shot1-1", HUGE], f"({len(HUGE)} characters)"),
    "nb101-119-kb": (["nb101", HUGE], "32 lowercase hex characters, got '|none~0|"),
}


@pytest.mark.parametrize("case", sorted(QUERIES))
def test_a_bad_cell_string_gets_a_short_message_saying_what_is_wrong(
    case: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    args, needle = QUERIES[case]
    code, _, err = nbh(capsys, monkeypatch, "query", *args)
    line = one_line_error(code, err, needle)
    assert len(line) < 500, len(line)


def test_a_non_ascii_space_number_is_not_read_as_a_number(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, _, err = nbh(capsys, monkeypatch, "query", "nb1shot1", "-s", "\u0662", NB1SHOT1)
    assert code == 2 and "deprecated" not in err and "Traceback" not in err, err
