"""The on-disk cache of an imported benchmark, written once and read in milliseconds.

``<cache_dir>/<benchmark>/`` holds three files:

- ``table.parquet``: one row per architecture, identity columns then every metric under its
  canonical key; the form to open in pandas or share.
- ``metrics.npy``: the same metrics as one float64 matrix (metric x architecture), the view
  queries use (loading it needs numpy only; pyarrow alone would cost 0.3 s and 150 MB).
- ``keys.npy`` (only benchmarks whose rows are found by a key, such as NB101's module hash):
  the sorted row keys as fixed-width bytes, searched with ``np.searchsorted``.
- ``meta.json``: the sidecar. Source path, size and sha256, importer and version, schema
  version, the meaning and coverage of every metric, sha256 of the files above, and a
  ``checksum`` of the sidecar itself.

Every read checks the sidecar's checksum and the sha256 of the arrays it loads, so a cache
damaged after the import is refused with the command that rebuilds it, never read as numbers.

A cache is built in a hidden temporary directory and swapped in under a file lock, so a
failed or killed import leaves the previous cache (or none) and never a half-written one.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

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


class DamagedParquet(Exception):
    """A Parquet file that cannot be read, or whose values disagree with its own footer; the
    message is a short clause naming what was wrong (callers add the file and what to do)."""


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


def read_parquet_verified(path: Path) -> Any:
    """The ``pyarrow.Table`` in the Parquet file ``path``, checked against the file itself.

    Page CRCs are verified where the writer stored them, and every column chunk's decoded values
    must match the min, max and null count its footer records: a damaged page (a bit flip the
    compression did not notice) is an error instead of silently wrong numbers. Raises
    :class:`DamagedParquet` for an unreadable, truncated or inconsistent file.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        file = pq.ParquetFile(path, page_checksum_verification=True)
        table = file.read()
        metadata = file.metadata
    except (pa.ArrowException, OSError, EOFError, MemoryError, ValueError, IndexError, KeyError) as exc:
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise DamagedParquet(f"not a readable Parquet file ({first[:200]})") from None
    try:
        _check_statistics(table, metadata)
    except (pa.ArrowException, ValueError, KeyError, IndexError, EOFError) as exc:  # an undecodable footer
        raise DamagedParquet(f"its footer is damaged ({type(exc).__name__}: {str(exc)[:120]})") from None
    return table


def _check_statistics(table: Any, metadata: Any) -> None:
    """:class:`DamagedParquet` when the columns disagree with the Arrow schema pyarrow stored beside
    them (names, types), or a column chunk's values with its footer statistics."""
    import base64

    import pyarrow as pa
    import pyarrow.compute as pc

    stored = (metadata.metadata or {}).get(b"ARROW:schema")
    if stored is not None:
        schema = pa.ipc.read_schema(pa.py_buffer(base64.b64decode(stored)))
        for field in schema:
            found = table.schema.field(field.name) if field.name in table.column_names else None
            if found is None or _kind(found.type) != _kind(field.type):
                raise DamagedParquet(
                    f"its footer and the Arrow schema stored in it disagree on column {field.name!r:.40} "
                    f"({'missing' if found is None else found.type} vs {field.type})"
                )
    start = 0
    for group in range(metadata.num_row_groups):
        row_group = metadata.row_group(group)
        for j in range(row_group.num_columns):
            chunk = row_group.column(j)
            name = chunk.path_in_schema
            if chunk.physical_type != metadata.schema.column(j).physical_type:
                # pyarrow aborts the process on reading the statistics of such a chunk
                raise DamagedParquet(f"the footer gives column {name!r} two different types")
            stats = chunk.statistics
            if stats is None or name not in table.column_names:
                continue
            values = table.column(name).slice(start, row_group.num_rows)
            where = f"column {name!r}, rows {start}..{start + row_group.num_rows - 1}"
            if stats.has_null_count and values.null_count != stats.null_count:
                raise DamagedParquet(
                    f"{where} hold {values.null_count} nulls but the file's footer records {stats.null_count}"
                )
            kind = values.type
            comparable = any(
                test(kind)
                for test in (pa.types.is_integer, pa.types.is_floating, pa.types.is_string, pa.types.is_large_string)
            )
            if not (stats.has_min_max and comparable and len(values) > values.null_count):
                continue
            found = pc.min_max(values).as_py()
            if not (_same(found["min"], stats.min) and _same(found["max"], stats.max)):
                raise DamagedParquet(
                    f"{where} range from {found['min']!r:.40} to {found['max']!r:.40} but the file's footer "
                    f"records {stats.min!r:.40} to {stats.max!r:.40}"
                )
        start += row_group.num_rows


def _kind(kind: Any) -> str:
    """A column type's family: what a reader may turn it into (a dictionary reads as its values,
    a large string as a string) keeps the family; a string read as bytes does not."""
    import pyarrow as pa

    if pa.types.is_dictionary(kind):
        return _kind(kind.value_type)
    families = {
        "str": (pa.types.is_string, pa.types.is_large_string),
        "bytes": (pa.types.is_binary, pa.types.is_large_binary, pa.types.is_fixed_size_binary),
        "int": (pa.types.is_integer,),
        "float": (pa.types.is_floating,),
        "bool": (pa.types.is_boolean,),
        "time": (pa.types.is_temporal,),
    }
    return next((name for name, tests in families.items() if any(test(kind) for test in tests)), str(kind))


def _same(a: Any, b: Any) -> bool:
    return bool(a == b or (a != a and b != b))  # NaN equals NaN here


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
            pq.write_table(table, tmp / TABLE_FILE, write_page_checksum=True)
            sidecar = _sidecar(imported, keys, matrix, source_sha256, tmp)
            sidecar["checksum"] = _sidecar_checksum(sidecar)
            (tmp / SIDECAR_FILE).write_text(json.dumps(sidecar, indent=1))
            _swap_in(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return final


def read_sidecar(path: Path, benchmark: str) -> dict[str, Any]:
    """The sidecar of the cache at ``path``, checked for the schema this package reads and
    against the checksum it carries (caches written before the checksum existed have none)."""
    file = Path(path) / SIDECAR_FILE
    rebuild = f"rebuild it with `nbh data import {benchmark} SOURCE`"
    try:
        sidecar = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CacheError(f"the {benchmark} cache at {path} has no {SIDECAR_FILE}; {rebuild}") from None
    except OSError as exc:
        raise CacheError(f"cannot read {file} ({exc.strerror or exc}); check its permissions, or {rebuild}") from None
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise CacheError(f"the {benchmark} cache sidecar {file} is damaged ({str(exc)[:120]}); {rebuild}") from None
    if not isinstance(sidecar, dict) or sidecar.get("benchmark") != benchmark:
        raise CacheError(f"{file} is not a {benchmark} cache sidecar; {rebuild}")
    source = sidecar.get("source")
    if isinstance(source, dict) and isinstance(source.get("path"), str):
        rebuild = f"rebuild it with `nbh data import {benchmark} {source['path']}`"
    version = sidecar.get("schema_version")
    if version != SCHEMA_VERSION:
        raise CacheError(
            f"the {benchmark} cache at {path} was written with cache schema version {version!r:.20}, but this "
            f"nasbench-harness ({__version__}) reads version {SCHEMA_VERSION}; {rebuild}"
        )
    recorded = sidecar.get("checksum")
    if recorded is not None and recorded != _sidecar_checksum(sidecar):
        raise CacheError(
            f"the {benchmark} cache sidecar {file} does not match the checksum it carries: it was changed or "
            f"damaged after the import; {rebuild}"
        )
    problem = _sidecar_problem(sidecar)
    if problem:
        raise CacheError(f"the {benchmark} cache sidecar {file} is damaged ({problem}); {rebuild}")
    return sidecar


def load_matrix(path: Path, sidecar: dict[str, Any]) -> np.ndarray:
    """The metric matrix of a cache, checked against the shape and the checksum its sidecar records."""
    expected = (len(sidecar["metrics"]), sidecar["rows"]["count"])
    matrix = _load_array(Path(path), MATRIX_FILE, sidecar, f"float64 of shape {expected}")
    if matrix.shape != expected or matrix.dtype != np.float64:
        _damaged(Path(path), MATRIX_FILE, sidecar, f"expected float64 of shape {expected}")
    matrix.setflags(write=False)
    return matrix


def load_keys(path: Path, sidecar: dict[str, Any]) -> np.ndarray:
    """The sorted row keys of a cache, checked against the row count and checksum its sidecar records."""
    keys = _load_array(Path(path), KEYS_FILE, sidecar, "fixed-width bytes")
    if keys.shape != (sidecar["rows"]["count"],) or keys.dtype.kind != "S":
        _damaged(Path(path), KEYS_FILE, sidecar, f"expected {sidecar['rows']['count']} fixed-width byte keys")
    return keys


def _load_array(path: Path, name: str, sidecar: dict[str, Any], what: str) -> np.ndarray:
    """The .npy file ``name`` of the cache, its bytes checked against the sidecar's sha256 (when recorded)."""
    try:
        data = (path / name).read_bytes()
    except OSError:
        _damaged(path, name, sidecar, f"expected {what}")
    recorded = sidecar.get("files", {}).get(name, {}).get("sha256")
    if recorded is not None and hashlib.sha256(data).hexdigest() != recorded:
        _damaged(path, name, sidecar, "its sha256 differs from the one recorded at import")
    try:
        return np.load(io.BytesIO(data), allow_pickle=False)
    except (OSError, ValueError, EOFError):  # truncated or not an .npy file
        _damaged(path, name, sidecar, f"expected {what}")


def _damaged(path: Path, name: str, sidecar: dict[str, Any], detail: str) -> NoReturn:
    benchmark = sidecar["benchmark"]
    source = sidecar.get("source", {}).get("path", "SOURCE")
    raise CacheError(
        f"the {benchmark} cache file {path / name} is missing, truncated or damaged ({detail}); "
        f"rebuild it with `nbh data import {benchmark} {source}`"
    )


def _sidecar_checksum(sidecar: dict[str, Any]) -> str:
    """sha256 of the sidecar's content without its ``checksum`` field (keys sorted)."""
    body = {k: v for k, v in sidecar.items() if k != "checksum"}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode("utf-8")).hexdigest()


def _sidecar_problem(sidecar: dict[str, Any]) -> str | None:
    """What is missing from a sidecar the readers need, or None."""
    rows, metrics, files = sidecar.get("rows"), sidecar.get("metrics"), sidecar.get("files", {})
    if not isinstance(rows, dict) or type(rows.get("count")) is not int or rows["count"] < 0:
        return "no row count"
    if not isinstance(metrics, list) or not all(
        isinstance(m, dict) and isinstance(m.get("key"), str) and type(m.get("cells")) is int for m in metrics
    ):
        return "the metric list is not a list of {key, cells, ...} entries"
    if len({m["key"] for m in metrics}) != len(metrics):
        return "a metric is listed twice"
    if not isinstance(files, dict) or not all(isinstance(v, dict) for v in files.values()):
        return "the file checksums are not a mapping"
    return None


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
