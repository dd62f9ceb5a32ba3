"""NAS-Bench-201 ground truth: open the imported cache and answer queries in microseconds.

    bench = NB201Benchmark.open()                      # cache dir from NBH_CACHE_DIR, ...
    bench.query(arch, "cifar10-valid/x-valid/accuracy@200")
    bench.query(arch, resolve_metric("cifar10", "test"))
    bench.query_many(all_genotypes(), "cifar100/x-test/accuracy@200")
    bench.regret(arch, "cifar10/ori-test/accuracy@200")

``arch`` is an :class:`NB201Genotype`, an arch string or an official index. No torch, no
pyarrow and no pandas on this path: opening reads a JSON sidecar and one ``.npy`` matrix.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from nasbench_harness import paths
from nasbench_harness.errors import (
    BenchmarkNotFoundError,
    GenotypeError,
    NotInBenchmarkError,
    OutOfDomainError,
    UnknownMetricError,
)
from nasbench_harness.spaces.nb201 import NUM_CELLS, NB201Genotype
from nasbench_harness.tabular.cache import Progress, cache_path, load_matrix, read_sidecar
from nasbench_harness.tabular.nb201_metrics import MetricKey

BENCHMARK = "nb201"
ArchLike = NB201Genotype | str | int | np.integer
MetricLike = MetricKey | str

# Files `open` imports by itself when no cache exists (fast table imports only; the official
# .pth needs minutes and tens of GB of RAM, so it is imported on request).
AUTO_IMPORT_SOURCES = ("nb201/nb201_table.parquet", "nb201/nb201_table.csv.gz", "nb201/nb201_table.csv")
OFFICIAL_FILES = ("NAS-Bench-201-v1_1-096897.pth", "NAS-Bench-201-v1_0-e61699.pth")


@dataclass(frozen=True, slots=True)
class Optimum:
    """The best cell of the benchmark for one metric."""

    index: int
    genotype: NB201Genotype
    value: float


class NB201Benchmark:
    """Read-only NB201 table behind a narrow query API (accuracies in %, times in s)."""

    def __init__(self, path: Path, sidecar: dict[str, Any], matrix: np.ndarray) -> None:
        self.path = Path(path)
        self.info = sidecar
        self._matrix = matrix
        self._rows = {entry["key"]: i for i, entry in enumerate(sidecar["metrics"])}
        self._optima: dict[int, Optimum] = {}

    # -- opening ------------------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> NB201Benchmark:
        """Open the cache directory ``path`` (as written by an importer)."""
        sidecar = read_sidecar(Path(path), BENCHMARK)
        return cls(Path(path), sidecar, load_matrix(Path(path), sidecar))

    @classmethod
    def open(
        cls,
        cache_dir: str | os.PathLike[str] | None = None,
        data_dir: str | os.PathLike[str] | None = None,
        *,
        auto_import: bool = True,
        progress: Progress | None = None,
    ) -> NB201Benchmark:
        """Open the imported NB201 benchmark in ``cache_dir`` (default: ``NBH_CACHE_DIR``, ...).

        With no cache yet and ``auto_import``, a table found in the data directory
        (``nb201/nb201_table.parquet`` or ``.csv[.gz]``) is imported first, once.
        """
        root = paths.cache_dir(cache_dir)
        path = cache_path(root, BENCHMARK)
        if not path.exists():
            source = find_source(paths.data_dir(data_dir)) if auto_import else None
            if source is None:
                raise BenchmarkNotFoundError(_not_found_message(root, paths.data_dir(data_dir), auto_import))
            from nasbench_harness.tabular.nb201_import import import_nb201

            import_nb201(source, root, progress=progress)
        return cls.load(path)

    # -- metrics ------------------------------------------------------------------------------
    @property
    def metrics(self) -> tuple[str, ...]:
        """Canonical keys of every metric this import holds."""
        return tuple(self._rows)

    def has(self, metric: MetricLike) -> bool:
        """True when this import holds ``metric``."""
        return str(metric) in self._rows

    def describe(self, metric: MetricLike) -> str:
        """What ``metric`` means, and the source's note on it if any."""
        entry = self.info["metrics"][self._row(metric)]
        return entry["meaning"] + (f" ({entry['note']})" if entry["note"] else "")

    def coverage(self, metric: MetricLike) -> int:
        """Number of cells with a value for ``metric``."""
        return int(self.info["metrics"][self._row(metric)]["cells"])

    # -- queries ------------------------------------------------------------------------------
    def query(self, arch: ArchLike, metric: MetricLike) -> float:
        """The value of ``metric`` for one cell; raises NotInBenchmarkError when the import has none."""
        row = self._row(metric)
        index = index_of(arch)
        value = float(self._matrix[row, index])
        if math.isnan(value):
            raise NotInBenchmarkError(
                f"NB201 cell #{index} {NB201Genotype.from_index(index)} has no value for {metric} in this import "
                f"({self.info['metrics'][row]['cells']} of {NUM_CELLS} cells have one; "
                f"source {self.info['source']['name']})"
            )
        return value

    def query_many(self, archs: Iterable[ArchLike] | np.ndarray, metric: MetricLike) -> np.ndarray:
        """Values of ``metric`` for many cells at once (NaN where the import has no value)."""
        return self._matrix[self._row(metric), indices_of(archs)]

    def values(self, metric: MetricLike) -> np.ndarray:
        """Read-only array of ``metric`` over all cells, position = official index."""
        return self._matrix[self._row(metric)]

    def record(self, arch: ArchLike) -> dict[str, float | None]:
        """Every metric of one cell (None where the import has no value)."""
        column = self._matrix[:, index_of(arch)]
        return {key: (None if math.isnan(v) else float(v)) for key, v in zip(self._rows, column.tolist(), strict=True)}

    def optimum(self, metric: MetricLike) -> Optimum:
        """The best cell for an accuracy metric (first index among ties)."""
        row = self._row(metric)
        if row not in self._optima:
            key = MetricKey.parse(self.metrics[row])
            if not key.higher_is_better:
                raise OutOfDomainError(f"an optimum is defined for accuracy metrics, not for {key}")
            values = self._matrix[row]
            if np.isnan(values).all():
                raise NotInBenchmarkError(f"no cell has a value for {key} in this import")
            best = int(np.nanargmax(values))
            self._optima[row] = Optimum(best, NB201Genotype.from_index(best), float(values[best]))
        return self._optima[row]

    def regret(self, arch: ArchLike, metric: MetricLike) -> float:
        """Optimum minus the cell's value, in accuracy points (>= 0)."""
        return self.optimum(metric).value - self.query(arch, metric)

    def regrets(self, archs: Iterable[ArchLike] | np.ndarray, metric: MetricLike) -> np.ndarray:
        """Vectorised :meth:`regret` (NaN where the import has no value)."""
        return self.optimum(metric).value - self.query_many(archs, metric)

    # -- internals ----------------------------------------------------------------------------
    def _row(self, metric: MetricLike) -> int:
        row = self._rows.get(metric if isinstance(metric, str) else str(metric))
        if row is None:
            key = metric if isinstance(metric, MetricKey) else MetricKey.parse(metric)  # explains bad names
            row = self._rows.get(str(key))  # another spelling of a stored key (``:e<hp>``: the final epoch)
        if row is None:
            raise UnknownMetricError(
                f"this NB201 import (from {self.info['source']['name']}) has no metric {key}; "
                f"it has {len(self._rows)}, e.g. {', '.join(self._example_metrics)} (see `nbh data info`)"
            )
        return row

    @cached_property
    def _example_metrics(self) -> list[str]:
        same = [k for k in self._rows if "#" not in k and ("/x-valid/accuracy@" in k or "/ori-test/accuracy@" in k)]
        return (same or list(self._rows))[:4]

    def __repr__(self) -> str:
        src = self.info["source"]
        return f"NB201Benchmark({len(self._rows)} metrics x {NUM_CELLS} cells from {src['name']}, cache {self.path})"


def index_of(arch: ArchLike) -> int:
    """Official index of a genotype, arch string or index (checked)."""
    if isinstance(arch, NB201Genotype):
        return arch.index
    if isinstance(arch, str):
        return _index_of_string(arch)
    if isinstance(arch, int | np.integer) and not isinstance(arch, bool):
        if 0 <= arch < NUM_CELLS:
            return int(arch)
        raise GenotypeError(f"an NB201 architecture index is in 0..{NUM_CELLS - 1}, got {arch}")
    raise GenotypeError(
        f"an NB201 architecture is a genotype, an arch string or an index in 0..{NUM_CELLS - 1}, "
        f"got {type(arch).__name__}"
    )


def indices_of(archs: Iterable[ArchLike] | np.ndarray) -> np.ndarray:
    """Official indices of many architectures, as an int64 array."""
    if isinstance(archs, np.ndarray) and archs.dtype.kind in "iu":
        if archs.size and (archs.min() < 0 or archs.max() >= NUM_CELLS):
            raise GenotypeError(f"NB201 architecture indices lie in 0..{NUM_CELLS - 1}")
        return archs.astype(np.int64, copy=False)
    items: Sequence[ArchLike] = archs if isinstance(archs, Sequence) else list(archs)
    return np.fromiter((index_of(a) for a in items), dtype=np.int64, count=len(items))


def find_source(data_dir: Path) -> Path | None:
    """The first NB201 table in ``data_dir`` that can be imported automatically."""
    return paths.first_file(data_dir, AUTO_IMPORT_SOURCES)


@lru_cache(maxsize=NUM_CELLS)
def _index_of_string(arch: str) -> int:
    return NB201Genotype.from_string(arch).index


def _not_found_message(root: Path, data_dir: Path, auto_import: bool) -> str:
    official = [p for name in OFFICIAL_FILES for p in (data_dir / name, data_dir / "nb201" / name) if p.is_file()]
    if official:
        return (
            f"no NB201 benchmark is imported in {root}; found the official file {official[0]}: "
            f"import it once with `nbh data import nb201 {official[0]}`"
        )
    looked = "" if not auto_import else f" and no NB201 table in the data directory {data_dir}"
    return (
        f"no NB201 benchmark is imported in {root}{looked}. Import one with `nbh data import nb201 PATH`, "
        "PATH being the official NAS-Bench-201-v1_1-096897.pth (or v1_0-e61699.pth) or an NB201 table "
        "(.parquet/.csv); or point --data-dir / NBH_DATA_DIR at a directory holding nb201/nb201_table.parquet"
    )
