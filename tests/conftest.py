"""Shared fixtures. Every test gets its own empty cache and data directory; tests that need the
real data read the directory NBH_DATA_DIR named when pytest started, and fail without it.

Benchmarks and data directories for tests:

- ``synthetic_nb201``: an :class:`NB201Benchmark` of a synthetic full-size table (all 15,625
  cells, made-up but deterministic numbers in plausible ranges; ``tests/synthetic_nb201.py``),
  imported once per session. Use it wherever the test's assertions hold for any table (searches,
  resume, columns, baselines' bookkeeping); it needs no data directory.
- ``synthetic_data_dir``: a data directory laid out like the real one with that table
  (``nb201/nb201_table.parquet``) and a small CIFAR-10 (``cifar-10-batches-py``: 5 x 40 training
  and 40 test images, official format), for CLI runs that take ``--data-dir``; read-only.
- ``small_nb101``: a two-cell NB101 table for NB-1Shot1 searches that need a table but not its numbers.
- ``real_data_dir``, ``real_nb201``, ``real_nb101``: the real data, only for tests whose assertions
  depend on the real numbers or files (published accuracies, real statistics). Every test using
  one of them carries ``@pytest.mark.data``, and every ``data``-marked test uses one of them:
  collection stops with a usage error otherwise (see :func:`check_data_marks`). Fixtures requested
  at run time through ``request.getfixturevalue`` are invisible to that check; don't do that for
  these three.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from nasbench_harness.tabular.nb201 import NB201Benchmark
from nasbench_harness.tabular.nb201_import import import_nb201

REAL_DATA_DIR = os.environ.get("NBH_DATA_DIR")
NB201_TABLE = "nb201/nb201_table.parquet"


DATA_FIXTURES = frozenset({"real_data_dir", "real_nb201", "real_nb101"})
"""The fixtures that read the real data directory; exactly the tests marked ``data`` use them."""


@pytest.hookimpl(tryfirst=True)  # before ``-m`` deselects anything: every collected test is checked
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Refuse a run whose ``data`` marks disagree with the real-data fixtures; skip the tests
    marked ``cuda`` when torch sees no CUDA device (they run on GPU machines)."""
    check_data_marks(items)
    marked = [item for item in items if item.get_closest_marker("cuda")]
    if not marked:
        return
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device (marked cuda)")
    for item in marked:
        item.add_marker(skip)


def check_data_marks(items: list[pytest.Item]) -> None:
    """A :class:`pytest.UsageError` naming every test that uses a real-data fixture without the
    ``data`` mark (it would fail under ``-m 'not data'`` without NBH_DATA_DIR) or carries the mark
    without using one (``-m data`` would run it although it needs nothing real)."""
    problems = []
    for item in items:
        used = sorted(DATA_FIXTURES & set(getattr(item, "fixturenames", ())))
        marked = item.get_closest_marker("data") is not None
        if used and not marked:
            problems.append(
                f"{item.nodeid} uses {', '.join(used)} but is not marked @pytest.mark.data; mark it, or use "
                "the synthetic_nb201 / synthetic_data_dir / small_nb101 fixtures if real numbers don't matter"
            )
        elif marked and not used:
            problems.append(
                f"{item.nodeid} is marked @pytest.mark.data but uses none of {', '.join(sorted(DATA_FIXTURES))}; "
                "take the real data through one of them, or drop the mark"
            )
    if problems:
        raise pytest.UsageError("the data marks disagree with the real-data fixtures:\n  " + "\n  ".join(problems))


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


@pytest.fixture(scope="session")
def synthetic_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory with the synthetic NB201 table and a small CIFAR-10, written once per session."""
    from data_files import write_cifar10
    from synthetic_nb201 import write_synthetic_table

    root = tmp_path_factory.mktemp("synthetic-data")
    write_synthetic_table(root / NB201_TABLE)
    write_cifar10(root)
    return root


@pytest.fixture(scope="session")
def synthetic_nb201(synthetic_data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> NB201Benchmark:
    """The synthetic full-size NB201 table (``tests/synthetic_nb201.py``) imported into a session cache."""
    cache = tmp_path_factory.mktemp("synthetic-cache")
    return NB201Benchmark.load(import_nb201(synthetic_data_dir / NB201_TABLE, cache))


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
