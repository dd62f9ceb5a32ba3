"""The on-disk cache of an imported benchmark, written once and read in milliseconds.

``<cache_dir>/<benchmark>/`` holds three files:

- ``table.parquet``: one row per architecture, identity columns then every metric under its
  canonical key; the form to open in pandas or share.
- ``metrics.npy``: the same metrics as one float64 matrix (metric x architecture), the view
  queries use (loading it needs numpy only; pyarrow alone would cost 0.3 s and 150 MB).
- ``keys.npy`` (only benchmarks whose rows are found by a key, such as NB101's module hash):
  the sorted row keys as fixed-width bytes, searched with ``np.searchsorted``.
- ``meta.json``: the sidecar. Source path, size and sha256, importer and version, schema
  version, the meaning and coverage of every metric, checksums of the two files above.

A cache is built in a hidden temporary directory and swapped in under a file lock, so a
failed or killed import leaves the previous cache (or none) and never a half-written one.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nasbench_harness import __version__
from nasbench_harness.errors import CacheError

SCHEMA_VERSION = 1
TABLE_FILE = "table.parquet"
MATRIX_FILE = "metrics.npy"
KEYS_FILE = "keys.npy"
SIDECAR_FILE = "meta.json"

Progress = Callable[[str, int, int], None]
"""Called as ``progress(phase, done, total)`` during long work (phase: "read", "hash", "spaces")."""


@dataclass
class ImportedTable:
    """What an importer hands to :func:`write_cache`.

    ``identity`` holds per-row columns that are not metrics (index, arch string, ops);
    ``metrics`` maps each canonical metric key to a float64 array with NaN where the source
    has no value; ``meanings`` and ``notes`` say what each metric is and where it came from.
    """

    benchmark: str
    row_key: str
    identity: dict[str, np.ndarray]
    metrics: dict[str, np.ndarray]
    meanings: dict[str, str]
    source: Path
    source_format: str
    importer: str
    importer_version: int
    notes: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    keys: np.ndarray | None = None
    """Sorted fixed-width bytes keys, one per row, when rows are looked up by key."""


def cache_path(cache_dir: Path, benchmark: str) -> Path:
    """Directory of ``benchmark``'s cache inside ``cache_dir``."""
    return Path(cache_dir) / benchmark


def sha256_file(path: Path, progress: Callable[[int, int], None] | None = None, chunk: int = 1 << 22) -> str:
    """Hex sha256 of a file, reporting bytes read to ``progress``."""
    digest = hashlib.sha256()
    total = os.path.getsize(path)
    done = 0
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
            done += len(block)
            if progress is not None:
                progress(done, total)
    return digest.hexdigest()


def write_cache(cache_dir: Path, imported: ImportedTable, source_sha256: str) -> Path:
    """Write ``imported`` as ``<cache_dir>/<benchmark>/`` atomically; return that directory."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from filelock import FileLock

    keys = list(imported.metrics)
    n_rows = _common_length(imported)
    matrix = (
        np.vstack([np.asarray(imported.metrics[k], dtype=np.float64) for k in keys]) if keys else np.empty((0, n_rows))
    )
    table = pa.table({**imported.identity, **{k: matrix[i] for i, k in enumerate(keys)}})

    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    final = cache_path(cache_dir, imported.benchmark)
    with FileLock(str(cache_dir / f".{imported.benchmark}.lock")):
        for stale in cache_dir.glob(f".{imported.benchmark}.tmp-*"):
            shutil.rmtree(stale, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{imported.benchmark}.tmp-", dir=cache_dir))
        try:
            np.save(tmp / MATRIX_FILE, matrix)
            if imported.keys is not None:
                np.save(tmp / KEYS_FILE, imported.keys)
            pq.write_table(table, tmp / TABLE_FILE)
            sidecar = _sidecar(imported, keys, matrix, source_sha256, tmp)
            (tmp / SIDECAR_FILE).write_text(json.dumps(sidecar, indent=1))
            _swap_in(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return final


def read_sidecar(path: Path, benchmark: str) -> dict[str, Any]:
    """The sidecar of the cache at ``path``, checked for the schema this package reads."""
    rebuild = f"rebuild it with `nbh data import {benchmark} SOURCE`"
    try:
        sidecar = json.loads((Path(path) / SIDECAR_FILE).read_text())
    except FileNotFoundError:
        raise CacheError(f"the {benchmark} cache at {path} has no {SIDECAR_FILE}; {rebuild}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CacheError(
            f"the {benchmark} cache sidecar {Path(path) / SIDECAR_FILE} is damaged ({exc}); {rebuild}"
        ) from None
    if not isinstance(sidecar, dict) or sidecar.get("benchmark") != benchmark:
        raise CacheError(f"{Path(path) / SIDECAR_FILE} is not a {benchmark} cache sidecar; {rebuild}")
    version = sidecar.get("schema_version")
    if version != SCHEMA_VERSION:
        source = sidecar.get("source", {}).get("path", "SOURCE")
        raise CacheError(
            f"the {benchmark} cache at {path} was written with cache schema version {version}, but this "
            f"nasbench-harness ({__version__}) reads version {SCHEMA_VERSION}; rebuild it with "
            f"`nbh data import {benchmark} {source}`"
        )
    return sidecar


def load_matrix(path: Path, sidecar: dict[str, Any]) -> np.ndarray:
    """The metric matrix of a cache, checked against the shape its sidecar records."""
    benchmark = sidecar["benchmark"]
    expected = (len(sidecar["metrics"]), sidecar["rows"]["count"])
    try:
        matrix = np.load(Path(path) / MATRIX_FILE, allow_pickle=False)
    except (OSError, ValueError, EOFError):  # missing, truncated or not an .npy file
        matrix = None
    if matrix is None or matrix.shape != expected or matrix.dtype != np.float64:
        source = sidecar.get("source", {}).get("path", "SOURCE")
        raise CacheError(
            f"the {benchmark} cache file {Path(path) / MATRIX_FILE} is missing, truncated or damaged "
            f"(expected float64 of shape {expected}); rebuild it with `nbh data import {benchmark} {source}`"
        )
    matrix.setflags(write=False)
    return matrix


def load_keys(path: Path, sidecar: dict[str, Any]) -> np.ndarray:
    """The sorted row keys of a cache, checked against the row count its sidecar records."""
    benchmark = sidecar["benchmark"]
    try:
        keys = np.load(Path(path) / KEYS_FILE, allow_pickle=False)
    except (OSError, ValueError, EOFError):
        keys = None
    if keys is None or keys.shape != (sidecar["rows"]["count"],) or keys.dtype.kind != "S":
        source = sidecar.get("source", {}).get("path", "SOURCE")
        raise CacheError(
            f"the {benchmark} cache file {Path(path) / KEYS_FILE} is missing, truncated or damaged; "
            f"rebuild it with `nbh data import {benchmark} {source}`"
        )
    return keys


def _common_length(imported: ImportedTable) -> int:
    lengths = {len(v) for v in [*imported.identity.values(), *imported.metrics.values()]}
    if len(lengths) != 1:
        raise ValueError(f"importer {imported.importer} produced columns of different lengths {sorted(lengths)}")
    return lengths.pop()


def _sidecar(
    imported: ImportedTable, keys: list[str], matrix: np.ndarray, source_sha256: str, tmp: Path
) -> dict[str, Any]:
    source = imported.source.resolve()
    return {
        "benchmark": imported.benchmark,
        "schema_version": SCHEMA_VERSION,
        "created_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "nasbench_harness_version": __version__,
        "importer": {"name": imported.importer, "version": imported.importer_version},
        "source": {
            "path": str(source),
            "name": source.name,
            "format": imported.source_format,
            "size_bytes": source.stat().st_size,
            "sha256": source_sha256,
        },
        "rows": {"count": int(matrix.shape[1]), "key": imported.row_key, "identity_columns": list(imported.identity)},
        "metrics": [
            {
                "key": key,
                "meaning": imported.meanings[key],
                "note": imported.notes.get(key, ""),
                "cells": int(np.count_nonzero(~np.isnan(matrix[i]))),
            }
            for i, key in enumerate(keys)
        ],
        "files": {
            name: {"sha256": sha256_file(tmp / name)}
            for name in (MATRIX_FILE, TABLE_FILE, KEYS_FILE)
            if (tmp / name).exists()
        },
        "extra": imported.extra,
    }


def _swap_in(tmp: Path, final: Path) -> None:
    """Replace ``final`` by ``tmp``; the old cache is removed only once the new one is in place."""
    old = None
    if final.exists():
        old = final.with_name(f".{final.name}.tmp-old-{os.getpid()}")
        os.replace(final, old)
    os.replace(tmp, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
