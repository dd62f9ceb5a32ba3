"""Shared fixtures. Every test gets its own empty cache and data directory; tests that need the
real data read the directory NBH_DATA_DIR named when pytest started, and fail without it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from nasbench_harness.tabular.nb201 import NB201Benchmark
from nasbench_harness.tabular.nb201_import import import_nb201

REAL_DATA_DIR = os.environ.get("NBH_DATA_DIR")
NB201_TABLE = "nb201/nb201_table.parquet"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip the tests marked ``cuda`` when torch sees no CUDA device (they run on GPU machines)."""
    marked = [item for item in items if item.get_closest_marker("cuda")]
    if not marked:
        return
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device (marked cuda)")
    for item in marked:
        item.add_marker(skip)


@pytest.fixture(autouse=True)
def _isolated_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Point the cache and data directories at empty per-test folders."""
    monkeypatch.setenv("NBH_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("NBH_DATA_DIR", str(tmp_path / "data"))


@pytest.fixture(scope="session")
def real_data_dir() -> Path:
    """The real data directory; a test needing it fails (not skips) when it is missing."""
    if not REAL_DATA_DIR or not (Path(REAL_DATA_DIR) / NB201_TABLE).is_file():
        pytest.fail(
            f"this test needs the real data: set NBH_DATA_DIR to a directory holding {NB201_TABLE} "
            f"(NBH_DATA_DIR={REAL_DATA_DIR!r}); deselect such tests with -m 'not data'"
        )
    return Path(REAL_DATA_DIR)


@pytest.fixture(scope="session")
def real_nb201(real_data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> NB201Benchmark:
    """The real NB201 table imported into a session cache."""
    cache = tmp_path_factory.mktemp("real-cache")
    return NB201Benchmark.load(import_nb201(real_data_dir / NB201_TABLE, cache))


NB101_FILE = "nasbench/nasbench_only108_nb1shot1.tfrecord"


@pytest.fixture(scope="session")
def real_nb101(real_data_dir: Path, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """The shared NB101 tfrecord imported into a session cache."""
    from nasbench_harness.tabular.nb101 import NB101Benchmark
    from nasbench_harness.tabular.nb101_import import import_nb101

    if not (real_data_dir / NB101_FILE).is_file():
        pytest.fail(f"this test needs {NB101_FILE} in NBH_DATA_DIR={real_data_dir}")
    return NB101Benchmark.load(import_nb101(real_data_dir / NB101_FILE, tmp_path_factory.mktemp("real-nb101")))


@pytest.fixture
def small_nb101(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """A two-cell NB101 table in the official format, for NB-1Shot1 searches that need a table but
    not real numbers. The import's space-coverage flags (every reachable cell of all three spaces
    hashed, about 15 s) are replaced by the cells' own hashes: scoring looks cells up by hash and
    never reads those flags."""
    from nb101_files import S1, cell, write_nb101

    import nasbench_harness.tabular.nb101_import as nb101_import
    from nasbench_harness.tabular.nb101 import NB101Benchmark

    write_nb101(tmp_path / "small.tfrecord", S1)
    monkeypatch.setattr(nb101_import, "reachable_hashes", lambda space: frozenset(cell(t)[0] for t in S1))
    return NB101Benchmark.load(nb101_import.import_nb101(tmp_path / "small.tfrecord", tmp_path / "nb101-cache"))


@pytest.fixture
def one_thread():  # type: ignore[no-untyped-def]
    """One torch thread, as the tiny searches run best on this machine's two shared cores (two
    threads make tiny ops slower); restored afterwards."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
