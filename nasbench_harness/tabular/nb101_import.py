"""Import the official NAS-Bench-101 tfrecord files into the cache, without TensorFlow.

``nasbench_only108.tfrecord`` and ``nasbench_full.tfrecord`` (and subsets in the same format)
hold one record per training repeat. Every repeat and every epoch budget present is kept;
each record's ``evaluation_data`` is [start, halfway, final], and the start entry is ignored as
the official API does. Rows are the distinct module hashes, sorted; at import the cells of
each NB-1Shot1 space are marked, so coverage per space is known without recomputing it.
"""

from __future__ import annotations

import math
import os
import warnings
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from nasbench_harness.errors import GenotypeError, SourceFileError
from nasbench_harness.spaces.nb1shot1 import SPACES, reachable_hashes
from nasbench_harness.spaces.nb101 import NB101Spec
from nasbench_harness.tabular.cache import ImportedTable, Progress, sha256_file, write_cache
from nasbench_harness.tabular.nb101_metrics import EPOCHS, POINTS, QUANTITIES, NB101Metric
from nasbench_harness.tabular.nb101_records import NB101Record, parse_record
from nasbench_harness.tabular.tfrecord import read_records

BENCHMARK = "nb101"
IMPORTER_VERSION = 1
ROW_KEY = "NB101 module hash (rows sorted by hash)"
_POINT_INDEX = {"halfway": 1, "final": 2}  # positions in evaluation_data


@dataclass
class _Cell:
    adjacency: str
    ops: str
    params: int | None
    runs: dict[int, list[tuple]] = field(default_factory=lambda: defaultdict(list))


def import_nb101(
    source: str | os.PathLike[str], cache_dir: str | os.PathLike[str], *, progress: Progress | None = None
) -> Path:
    """Import an NB101 tfrecord into ``<cache_dir>/nb101`` (replacing any earlier import)."""
    source = Path(source).expanduser()
    if not source.is_file():
        raise SourceFileError(
            f"no such file: {source}; give the path of nasbench_only108.tfrecord or nasbench_full.tfrecord"
        )
    imported = read_nb101(source, progress)
    digest = sha256_file(source, None if progress is None else lambda d, t: progress("hash", d, t))
    return write_cache(Path(cache_dir), imported, digest)


def read_nb101(path: Path, progress: Progress | None = None) -> ImportedTable:
    """Every record of an NB101 tfrecord, grouped by module hash, as cache columns."""
    cells = _read_cells(path, progress)
    if not cells:
        raise SourceFileError(f"{path} holds no NB101 records")
    hashes = sorted(cells)
    metrics = _metric_columns(hashes, cells)
    identity = _identity_columns(hashes, cells)
    coverage = {}
    for number in SPACES:
        reachable = reachable_hashes(number)
        member = np.fromiter((h in reachable for h in hashes), dtype=bool, count=len(hashes))
        identity[f"in_space{number}"] = member
        coverage[str(number)] = {"reachable": len(reachable), "covered": int(member.sum())}
        if progress is not None:
            progress("spaces", number, len(SPACES))
    ordered = dict(sorted(metrics.items(), key=lambda kv: kv[0].sort_key()))
    return ImportedTable(
        benchmark=BENCHMARK,
        row_key=ROW_KEY,
        identity=identity,
        metrics={str(k): v for k, v in ordered.items()},
        meanings={str(k): k.meaning() for k in ordered},
        source=path,
        source_format="nb101-tfrecord",
        importer="nb101-tfrecord",
        importer_version=IMPORTER_VERSION,
        extra={
            "cells": len(hashes),
            "records": sum(len(r) for c in cells.values() for r in c.runs.values()),
            "epochs": sorted({e for c in cells.values() for e in c.runs}),
            "nb1shot1_coverage": coverage,
        },
        keys=np.array(hashes, dtype="S32"),
    )


def _read_cells(path: Path, progress: Progress | None) -> dict[str, _Cell]:
    size = path.stat().st_size
    cells: dict[str, _Cell] = {}
    for record in read_records(path):
        rec = parse_record(record, path)
        where = f"{path}, record {record.number} (byte offset {record.offset})"
        if rec.epochs not in EPOCHS:
            raise SourceFileError(f"{where}: {rec.epochs} epochs; NB101 budgets are {', '.join(map(str, EPOCHS))}")
        if len(rec.evaluations) < 3:
            raise SourceFileError(
                f"{where}: {len(rec.evaluations)} evaluations; NB101 records hold 3 (start, halfway, final)"
            )
        _check_values(rec, where)
        ops = ",".join(rec.ops)
        cell = cells.get(rec.module_hash)
        if cell is None or (cell.adjacency, cell.ops) != (rec.adjacency, ops):  # repeats usually repeat the spec
            try:
                spec = NB101Spec.from_strings(rec.adjacency, rec.ops)
                spec.validate()
            except GenotypeError as exc:
                raise SourceFileError(f"{where}: {exc}; {_REDO}") from None
            if spec.module_hash() != rec.module_hash:
                raise SourceFileError(
                    f"{where}: the record's module hash {rec.module_hash} is not the hash of its graph "
                    f"({spec.module_hash()}), so its numbers would be filed under another cell; {_REDO}"
                )
        if cell is None:
            cell = cells[rec.module_hash] = _Cell(rec.adjacency, ops, rec.trainable_parameters)
        cell.runs[rec.epochs].append(rec.evaluations)
        if progress is not None and record.number % 2000 == 0:
            progress("read", record.offset, size)
    if progress is not None:
        progress("read", size, size)
    return cells


_REDO = "the file is damaged or was not written as NB101 writes it; download it again"
_LIMITS = {
    "train_accuracy": (0.0, 1.0, "accuracies are fractions 0..1"),
    "validation_accuracy": (0.0, 1.0, "accuracies are fractions 0..1"),
    "test_accuracy": (0.0, 1.0, "accuracies are fractions 0..1"),
    "training_time": (0.0, 1e8, "training times are in s, >= 0 and below 1e8 (3 years)"),
}


def _check_values(rec: NB101Record, where: str) -> None:
    """SourceFileError naming the first number of ``rec`` that no NB101 run can have (NaN: not set)."""
    if rec.trainable_parameters is not None and rec.trainable_parameters < 0:
        raise SourceFileError(f"{where}: trainable_parameters is {rec.trainable_parameters}, below 0; {_REDO}")
    for point, position in _POINT_INDEX.items():
        evaluation = rec.evaluations[position]
        for quantity, (low, high, rule) in _LIMITS.items():
            value = getattr(evaluation, quantity)
            if not (math.isnan(value) or low <= value <= high):
                raise SourceFileError(f"{where}: {point} {quantity} is {value!r}; {rule}; {_REDO}")


def _metric_columns(hashes: list[str], cells: dict[str, _Cell]) -> dict[NB101Metric, np.ndarray]:
    n = len(hashes)
    epochs_present = sorted({e for c in cells.values() for e in c.runs})
    out: dict[NB101Metric, np.ndarray] = {NB101Metric("params"): np.full(n, np.nan)}
    for row, h in enumerate(hashes):
        if cells[h].params is not None:
            out[NB101Metric("params")][row] = cells[h].params
    for epochs in epochs_present:
        repeats = max(len(c.runs.get(epochs, ())) for c in cells.values())
        n_rep = out[NB101Metric("n_repeats", epochs)] = np.zeros(n)
        # values[point][quantity] has shape (repeats, cells); NaN where a cell has fewer repeats
        values = {p: {q: np.full((repeats, n), np.nan) for q in QUANTITIES} for p in POINTS}
        for row, h in enumerate(hashes):
            runs = cells[h].runs.get(epochs, ())
            n_rep[row] = len(runs)
            for k, evaluations in enumerate(runs):
                for point, position in _POINT_INDEX.items():
                    ev = evaluations[position]
                    for quantity in QUANTITIES:
                        values[point][quantity][k, row] = getattr(ev, quantity)
        for point in POINTS:
            for quantity in QUANTITIES:
                stack = values[point][quantity]
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)  # a cell without this budget: NaN mean
                    out[NB101Metric(quantity, epochs, point)] = np.nanmean(stack, axis=0)
                for k in range(repeats):
                    out[NB101Metric(quantity, epochs, point, k)] = stack[k]
    return out


def _identity_columns(hashes: list[str], cells: dict[str, _Cell]) -> dict[str, np.ndarray]:
    ops = [cells[h].ops for h in hashes]
    return {
        "module_hash": np.array(hashes, dtype=object),
        "adjacency": np.array([cells[h].adjacency for h in hashes], dtype=object),
        "ops": np.array(ops, dtype=object),
        "num_vertices": np.array([o.count(",") + 1 for o in ops], dtype=np.int8),
    }
