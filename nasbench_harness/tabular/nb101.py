"""NAS-Bench-101 ground truth: open the imported cache and look cells up by hash or spec.

    bench = NB101Benchmark.open()
    bench.query("<module hash>", "final/validation_accuracy@108")      # fraction 0..1
    answer = bench.lookup(NB101Spec.from_matrix(matrix, ops))
    answer.in_benchmark, answer.value("final/test_accuracy@108")

The imported table may be a subset of NB101 (the shared file is): a valid cell it lacks gets
an explicit "not in benchmark" answer, never a KeyError and never a zero. No torch here.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nasbench_harness import paths
from nasbench_harness.errors import BenchmarkNotFoundError, GenotypeError, NotInBenchmarkError, UnknownMetricError
from nasbench_harness.spaces.nb1shot1 import NB1Shot1Genotype
from nasbench_harness.spaces.nb101 import NB101Spec
from nasbench_harness.tabular.cache import Progress, cache_path, load_keys, load_matrix, read_sidecar
from nasbench_harness.tabular.nb101_metrics import NB101Metric

BENCHMARK = "nb101"
AUTO_IMPORT_SOURCES = (
    "nasbench/nasbench_only108.tfrecord",
    "nasbench/nasbench_full.tfrecord",
    "nasbench/nasbench_only108_nb1shot1.tfrecord",
    "nasbench_only108.tfrecord",
    "nasbench_full.tfrecord",
)
IN_BENCHMARK, NOT_IN_BENCHMARK = "in benchmark", "not in benchmark"


def status_text(in_benchmark: bool) -> str:
    """The words reports and the CLI show for whether the imported table holds a cell."""
    return IN_BENCHMARK if in_benchmark else NOT_IN_BENCHMARK


CellLike = str | NB101Spec | NB1Shot1Genotype | tuple[Sequence[Sequence[int]] | np.ndarray, Sequence[str]]
_HASH_RE = re.compile(r"[0-9a-f]{32}")


@dataclass(frozen=True, slots=True)
class NB101Answer:
    """What the imported NB101 table says about one cell; ``values`` is empty when it is absent."""

    module_hash: str
    in_benchmark: bool
    values: dict[str, float]

    def value(self, metric: NB101Metric | str) -> float:
        """One metric; raises NotInBenchmarkError when the table lacks the cell."""
        if not self.in_benchmark:
            raise NotInBenchmarkError(f"NB101 cell {self.module_hash} is {NOT_IN_BENCHMARK} (this import is a subset)")
        return self.values[str(metric)]

    @property
    def status(self) -> str:
        return status_text(self.in_benchmark)

    def __str__(self) -> str:
        return f"{self.module_hash}: {self.status}"


class NB101Benchmark:
    """Read-only NB101 table (accuracies as fractions 0..1, times in s) behind a narrow query API."""

    def __init__(self, path: Path, sidecar: dict[str, Any], matrix: np.ndarray, keys: np.ndarray) -> None:
        self.path = Path(path)
        self.info = sidecar
        self._matrix = matrix
        self._keys = keys
        self._rows = {entry["key"]: i for i, entry in enumerate(sidecar["metrics"])}

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> NB101Benchmark:
        """Open the cache directory ``path``."""
        sidecar = read_sidecar(Path(path), BENCHMARK)
        return cls(Path(path), sidecar, load_matrix(Path(path), sidecar), load_keys(Path(path), sidecar))

    @classmethod
    def open(
        cls,
        cache_dir: str | os.PathLike[str] | None = None,
        data_dir: str | os.PathLike[str] | None = None,
        *,
        auto_import: bool = True,
        progress: Progress | None = None,
    ) -> NB101Benchmark:
        """Open the imported NB101 table; with none yet, import a tfrecord found in the data directory once."""
        root = paths.cache_dir(cache_dir)
        path = cache_path(root, BENCHMARK)
        if not path.exists():
            data = paths.data_dir(data_dir)
            source = paths.first_file(data, AUTO_IMPORT_SOURCES)
            if source is None or not auto_import:
                raise BenchmarkNotFoundError(
                    f"no NB101 benchmark is imported in {root}"
                    + ("" if not auto_import else f" and no NB101 tfrecord in the data directory {data}")
                    + ". Import nasbench_only108.tfrecord (or nasbench_full.tfrecord) once with "
                    "`nbh data import nb101 PATH`, or point --data-dir / NBH_DATA_DIR at a directory holding "
                    "nasbench/<file>.tfrecord"
                )
            from nasbench_harness.tabular.nb101_import import import_nb101

            import_nb101(source, root, progress=progress)
        return cls.load(path)

    # -- metrics ------------------------------------------------------------------------------
    @property
    def metrics(self) -> tuple[str, ...]:
        return tuple(self._rows)

    @property
    def num_cells(self) -> int:
        return int(self._keys.size)

    def has(self, metric: NB101Metric | str) -> bool:
        return str(metric) in self._rows

    def describe(self, metric: NB101Metric | str) -> str:
        return self.info["metrics"][self._row(metric)]["meaning"]

    def values(self, metric: NB101Metric | str) -> np.ndarray:
        """Read-only array of ``metric`` over all imported cells (rows in hash order)."""
        return self._matrix[self._row(metric)]

    @property
    def hashes(self) -> np.ndarray:
        """Module hashes of the imported cells (sorted, bytes)."""
        return self._keys

    # -- cells --------------------------------------------------------------------------------
    def row_of(self, cell: CellLike) -> int | None:
        """Row of a cell in this import, or None when the table lacks it."""
        key = module_hash_of(cell).encode()
        row = int(np.searchsorted(self._keys, key))
        return row if row < self._keys.size and self._keys[row] == key else None

    def lookup(self, cell: CellLike) -> NB101Answer:
        """Every metric of one cell, or an explicit not-in-benchmark answer."""
        h = module_hash_of(cell)
        row = self.row_of(h)
        if row is None:
            return NB101Answer(h, False, {})
        column = self._matrix[:, row].tolist()
        return NB101Answer(h, True, {k: v for k, v in zip(self._rows, column, strict=True) if not math.isnan(v)})

    def query(self, cell: CellLike, metric: NB101Metric | str) -> float:
        """One metric of one cell; NotInBenchmarkError when the table lacks the cell or the value."""
        r = self._row(metric)
        row = self.row_of(cell)
        if row is None:
            raise NotInBenchmarkError(
                f"NB101 cell {module_hash_of(cell)} is {NOT_IN_BENCHMARK}: this import ({self.info['source']['name']}) "
                f"holds {self.num_cells:,} cells"
            )
        value = float(self._matrix[r, row])
        if math.isnan(value):
            raise NotInBenchmarkError(f"NB101 cell {module_hash_of(cell)} has no value for {metric} in this import")
        return value

    def query_many(self, cells: Iterable[CellLike], metric: NB101Metric | str) -> np.ndarray:
        """Values of ``metric`` for many cells (NaN where the table lacks the cell)."""
        r = self._row(metric)
        keys = np.array([module_hash_of(c).encode() for c in cells], dtype="S32")
        rows = np.minimum(np.searchsorted(self._keys, keys), max(self._keys.size - 1, 0))
        found = self._keys[rows] == keys
        return np.where(found, self._matrix[r, rows], np.nan)

    def _row(self, metric: NB101Metric | str) -> int:
        row = self._rows.get(str(metric))
        if row is None:
            key = metric if isinstance(metric, NB101Metric) else NB101Metric.parse(metric)
            raise UnknownMetricError(
                f"this NB101 import (from {self.info['source']['name']}) has no metric {key}; "
                f"it has e.g. {', '.join(k for k in self._rows if '#' not in k)[:300]} (see `nbh data info --metrics`)"
            )
        return row

    def __repr__(self) -> str:
        return f"NB101Benchmark({self.num_cells:,} cells, {len(self._rows)} metrics from {self.info['source']['name']})"


def module_hash_of(cell: CellLike) -> str:
    """The NB101 module hash of a hash string, a spec, an NB-1Shot1 genotype or (matrix, ops)."""
    if isinstance(cell, str):
        if not _HASH_RE.fullmatch(cell):
            raise GenotypeError(f"an NB101 module hash is 32 lowercase hex characters, got {cell!r}")
        return cell
    if isinstance(cell, NB101Spec | NB1Shot1Genotype):
        return cell.module_hash()
    if isinstance(cell, tuple) and len(cell) == 2:
        return NB101Spec.from_matrix(cell[0], cell[1]).module_hash()
    raise GenotypeError(
        "an NB101 cell is a module hash, an NB101Spec, an NB1Shot1Genotype or a (matrix, ops) pair, "
        f"got {type(cell).__name__}"
    )
