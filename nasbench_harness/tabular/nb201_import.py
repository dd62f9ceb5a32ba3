"""Import NAS-Bench-201 ground truth into the cache, from a table or the official ``.pth``.

Tables (``.parquet``, ``.csv``, ``.csv.gz``) are read through a column mapping (a YAML file
naming the source column of each canonical metric; the built-in one fits
``nb201_table.parquet``). The official files are read by :mod:`.nb201_pth`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from nasbench_harness.errors import ConfigError, GenotypeError, SourceFileError, UnknownMetricError, echo
from nasbench_harness.spaces.nb201 import NUM_CELLS, NB201Genotype
from nasbench_harness.tabular.cache import ImportedTable, Progress, sha256_file, write_cache
from nasbench_harness.tabular.nb201_columns import BENCHMARK, ROW_KEY, identity_columns, sorted_metrics
from nasbench_harness.tabular.nb201_metrics import MetricKey
from nasbench_harness.yaml_loader import load_yaml

__all__ = [  # BENCHMARK, ROW_KEY, identity_columns and sorted_metrics live in nb201_columns
    "BENCHMARK",
    "PTH_SUFFIXES",
    "ROW_KEY",
    "TABLE_SUFFIXES",
    "TableMapping",
    "identity_columns",
    "import_nb201",
    "read_table",
    "sorted_metrics",
]

TABLE_IMPORTER_VERSION = 1
TABLE_SUFFIXES = (".parquet", ".csv", ".csv.gz")
PTH_SUFFIXES = (".pth",)


def import_nb201(
    source: str | os.PathLike[str],
    cache_dir: str | os.PathLike[str],
    *,
    mapping: str | os.PathLike[str] | None = None,
    trust_pickle: bool = False,
    progress: Progress | None = None,
) -> Path:
    """Import ``source`` into ``<cache_dir>/nb201`` (replacing any earlier import); return that path.

    ``mapping`` (tables only) is a YAML column mapping; ``trust_pickle`` (``.pth`` only) lets
    torch unpickle arbitrary objects, which only a file from a trusted origin deserves.
    """
    source = Path(source).expanduser()
    from nasbench_harness.tabular.nats_import import import_nats, is_nats_source

    if is_nats_source(source):  # NATS-Bench's topology files: the same cells, the same keys
        if mapping is not None:
            raise ConfigError("--mapping applies to tables (.parquet/.csv); NATS-Bench files need none")
        return import_nats(source, cache_dir, trust_pickle=trust_pickle, progress=progress)
    if not source.is_file():
        raise SourceFileError(f"no such file: {source}; give the path of an NB201 table or the official .pth")
    name = source.name.lower()
    if name.endswith(PTH_SUFFIXES):
        if mapping is not None:
            raise ConfigError("--mapping applies to tables (.parquet/.csv); the official .pth needs none")
        from nasbench_harness.tabular.nb201_pth import read_official

        imported = read_official(source, trust_pickle=trust_pickle, progress=progress)
    elif name.endswith(TABLE_SUFFIXES):
        imported = read_table(source, TableMapping.load(mapping) if mapping else TableMapping.default())
    else:
        raise SourceFileError(
            f"cannot import {source}: unknown file type; NB201 sources are the official "
            f"NAS-Bench-201-v1_*.pth or a table ending in {', '.join(TABLE_SUFFIXES)}"
        )
    digest = sha256_file(source, None if progress is None else lambda d, t: progress("hash", d, t))
    return write_cache(Path(cache_dir), imported, digest)


# -- tables -----------------------------------------------------------------------------------
@dataclass
class TableMapping:
    """Which source column holds each canonical metric, and how rows are identified."""

    name: str
    index_column: str | None
    arch_column: str | None
    columns: dict[MetricKey, str]
    notes: dict[MetricKey, str] = field(default_factory=dict)
    origin: str = "built-in"

    _FIELDS = ("name", "index_column", "arch_column", "columns", "notes")

    @classmethod
    def default(cls) -> TableMapping:
        """The mapping for tables laid out like ``nb201_table.parquet``."""
        ref = resources.files("nasbench_harness.tabular").joinpath("mappings/nb201_table.yaml")
        with resources.as_file(ref) as path:
            mapping = cls.from_dict(load_yaml(path), "built-in nb201_table.yaml")
        return mapping

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> TableMapping:
        """Read a mapping YAML file (see the built-in ``mappings/nb201_table.yaml``)."""
        return cls.from_dict(load_yaml(path), str(path))

    @classmethod
    def from_dict(cls, data: Any, origin: str) -> TableMapping:
        """Validate a parsed mapping; errors name the file and the offending entry."""
        if not isinstance(data, dict):
            raise ConfigError(f"column mapping {origin}: expected a mapping with keys {', '.join(cls._FIELDS)}")
        unknown = sorted(set(data) - set(cls._FIELDS))
        if unknown:
            raise ConfigError(f"column mapping {origin}: unknown key(s) {unknown}; allowed: {', '.join(cls._FIELDS)}")
        columns = _metric_dict(data.get("columns"), origin, "columns")
        notes = _metric_dict(data.get("notes") or {}, origin, "notes")
        if not columns:
            raise ConfigError(f"column mapping {origin}: 'columns' must map at least one metric to a source column")
        stray = [str(k) for k in notes if k not in columns]
        if stray:
            raise ConfigError(f"column mapping {origin}: notes for metrics that are not mapped: {', '.join(stray)}")
        index_column, arch_column = data.get("index_column"), data.get("arch_column")
        if not index_column and not arch_column:
            raise ConfigError(f"column mapping {origin}: give index_column, arch_column or both to identify rows")
        return cls(str(data.get("name") or Path(origin).stem), index_column, arch_column, columns, notes, origin)


def read_table(path: Path, mapping: TableMapping) -> ImportedTable:
    """Read an NB201 table through ``mapping``; every row is checked against the official index."""
    table = _read_arrow(path)
    have = set(table.column_names)
    needed = [c for c in (mapping.index_column, mapping.arch_column) if c] + list(mapping.columns.values())
    missing = [c for c in dict.fromkeys(needed) if c not in have]
    if missing:
        raise SourceFileError(
            f"{path} lacks column(s) {', '.join(missing)} that the column mapping ({mapping.origin}) names; "
            f"it has: {', '.join(table.column_names)}. Pass --mapping with a mapping for this table"
        )
    rows = _row_indices(path, table, mapping)
    metrics: dict[MetricKey, np.ndarray] = {}
    for key, column in mapping.columns.items():
        values = table.column(column).to_numpy(zero_copy_only=False)
        try:
            values = values.astype(np.float64)
        except (TypeError, ValueError):
            raise SourceFileError(
                f"{path}: column {column} ({key}) is not numeric{_first_text(values)}; map a numeric column "
                f"to it (--mapping), or {_REDO}"
            ) from None
        _check_values(path, column, key, values, rows)
        full = np.full(NUM_CELLS, np.nan)
        full[rows] = values
        metrics[key] = full
    return ImportedTable(
        benchmark=BENCHMARK,
        row_key=ROW_KEY,
        identity=identity_columns(),
        metrics=sorted_metrics(metrics),
        meanings={str(k): k.meaning() for k in metrics},
        notes={str(k): v for k, v in mapping.notes.items()},
        source=path,
        source_format="table",
        importer="nb201-table",
        importer_version=TABLE_IMPORTER_VERSION,
        extra={
            "mapping": mapping.name,
            "mapping_origin": mapping.origin,
            "source_columns": {str(k): c for k, c in mapping.columns.items()},
            "source_rows": int(table.num_rows),
        },
    )


def _metric_dict(data: Any, origin: str, what: str) -> dict[MetricKey, str]:
    if not isinstance(data, dict):
        raise ConfigError(f"column mapping {origin}: '{what}' must map metric keys to strings")
    out: dict[MetricKey, str] = {}
    for key, value in data.items():
        try:
            metric = MetricKey.parse(str(key))
        except UnknownMetricError as exc:
            raise ConfigError(f"column mapping {origin}, {what}: {exc}") from None
        if not isinstance(value, str) or not value:
            raise ConfigError(f"column mapping {origin}, {what}: {key} must map to a non-empty string")
        out[metric] = value
    return out


def _read_arrow(path: Path) -> Any:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    from nasbench_harness.tabular.cache import DamagedParquet, read_parquet_verified

    kind = "Parquet" if path.name.lower().endswith(".parquet") else "CSV"
    try:
        return read_parquet_verified(path) if kind == "Parquet" else pacsv.read_csv(path)
    except DamagedParquet as exc:
        problem = str(exc)
    except (pa.ArrowException, OSError, EOFError, MemoryError, ValueError) as exc:
        problem = (str(exc).splitlines() or [type(exc).__name__])[0][:200]
    raise SourceFileError(
        f"cannot read {path} as {kind}: {problem}; the file is truncated, damaged or of another format; {_REDO}"
    )


def _row_indices(path: Path, table: Any, mapping: TableMapping) -> np.ndarray:
    """Official index of every source row; cross-checks index and arch string when both exist."""
    n = table.num_rows
    if n == 0 or n > NUM_CELLS:
        raise SourceFileError(f"{path} has {n} rows; an NB201 table has 1 to {NUM_CELLS} (one per cell)")
    parsed: np.ndarray | None = None
    if mapping.arch_column:
        arch = table.column(mapping.arch_column).to_pylist()
        parsed = np.empty(n, dtype=np.int64)
        for i, text in enumerate(arch):
            try:
                parsed[i] = NB201Genotype.from_string(text).index
            except GenotypeError as exc:
                raise SourceFileError(f"{path}, row {i}, column {mapping.arch_column}: {exc}") from None
    rows = parsed
    if mapping.index_column:
        raw = table.column(mapping.index_column).to_numpy(zero_copy_only=False)
        if raw.dtype.kind not in "iu" or raw.min() < 0 or raw.max() >= NUM_CELLS:
            raise SourceFileError(f"{path}: column {mapping.index_column} must hold integer indices 0..{NUM_CELLS - 1}")
        rows = raw.astype(np.int64)
        if parsed is not None and (bad := np.flatnonzero(parsed != rows)).size:
            i = int(bad[0])
            raise SourceFileError(
                f"{path}: row {i} has index {rows[i]} but arch {NB201Genotype.from_index(int(parsed[i]))}, "
                f"which is official index {parsed[i]}; {bad.size} row(s) disagree. The table is not in "
                "NAS-Bench-201's official order (or not NB201); drop index_column from the mapping to "
                "identify rows by arch string alone"
            )
    assert rows is not None
    uniq, counts = np.unique(rows, return_counts=True)
    if (counts > 1).any():
        dup = int(uniq[counts > 1][0])
        raise SourceFileError(f"{path}: cell #{dup} {NB201Genotype.from_index(dup)} appears in more than one row")
    return rows


_REDO = "download the table again, or export it anew"
_BOUNDS: dict[str, tuple[float, float, str]] = {
    "accuracy": (0.0, 100.0, "accuracies in %"),
    "loss": (0.0, 1e4, "cross-entropy losses"),
    "time": (0.0, 1e8, "times in s"),
    "params": (0.0, 1e5, "parameter counts in millions"),
    "flops": (0.0, 1e7, "FLOPs in millions"),
    "latency": (0.0, 1e4, "latencies in s"),
    "n_seeds": (0.0, 1e3, "whole seed counts"),
    "seed": (0.0, 2.0**32, "whole seed numbers"),
}
"""Per quantity: the lowest and highest plausible value, and what the values are."""
_WHOLE = frozenset({"n_seeds", "seed"})


def _first_text(values: np.ndarray) -> str:
    """Where a column that should be numbers first holds something else: `` (row 3 holds 'n/a')``."""
    for i, value in enumerate(values):
        try:
            float(value)
        except (TypeError, ValueError):
            return f" (row {i} holds {echo(value, 40)})"
    return ""


def _check_values(path: Path, column: str, key: MetricKey, values: np.ndarray, rows: np.ndarray) -> None:
    """SourceFileError naming the first value of ``column`` that ``key``'s quantity cannot take
    (NaN is a missing value), or when the column holds no value at all."""
    known = ~np.isnan(values)
    if not known.any():
        raise SourceFileError(
            f"{path}: column {column} ({key}) holds no values (every row is empty or NaN); leave the metric "
            f"out of the column mapping (--mapping), or {_REDO}"
        )
    low, high, what = _BOUNDS[key.quantity]
    outside = ~((values >= low) & (values <= high)) & known
    zeroed = np.where(known, values, 0.0)
    fractional = known & (np.floor(zeroed) != zeroed) if key.quantity in _WHOLE else np.zeros_like(known)
    for bad, rule in ((outside, f"outside {low:g}..{high:g} for {what}"), (fractional, f"not one of {what}")):
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            cell = NB201Genotype.from_index(int(rows[i]))
            raise SourceFileError(
                f"{path}: column {column} ({key}) holds {float(values[i])!r} in row {i} (cell #{cell.index} "
                f"{cell}), {rule}; {int(bad.sum())} value(s) of the column are. The table is damaged or was "
                f"exported wrongly: {_REDO}"
            )
    finite = values[known]
    if key.quantity == "accuracy" and finite.max() <= 1.0:
        raise SourceFileError(
            f"{path}: column {column} ({key}) looks like fractions (max {finite.max():.4f}); NB201 "
            "accuracies are in %, multiply the column by 100 before importing"
        )
