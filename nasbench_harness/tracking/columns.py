"""A typed, append-only column store: the in-memory form of ``trajectory.parquet`` and ``alphas.parquet``.

Values are bool, int, float, str or None (null). A column keeps one kind; int widens to float,
other mixes are refused. Columns may first appear in a later row; earlier rows read null there.
Column order is first-seen order. pyarrow is imported only when a table is built or read.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nasbench_harness.errors import ConfigError, RunDirError

if TYPE_CHECKING:
    import pyarrow as pa

KINDS = ("bool", "int", "float", "str")
Snapshot = tuple[int, dict[str, str | None]]


class ColumnStore:
    """Rows kept column-wise, with one kind per column (``None`` while a column holds only nulls)."""

    def __init__(self, what: str) -> None:
        self.what = what
        """Names the rows in error messages, e.g. "trajectory row"."""
        self.columns: dict[str, list[Any]] = {}
        self.kinds: dict[str, str | None] = {}
        self.n_rows = 0

    def append(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """Append ``rows``; every row is checked first, so a bad value leaves the store unchanged."""
        kinds = dict(self.kinds)
        clean_rows = []
        for row in rows:
            if not isinstance(row, Mapping):
                raise ConfigError(f"a {self.what} must be a dict of column name to value, got {type(row).__name__}")
            clean = {}
            for key, value in row.items():
                if not isinstance(key, str):
                    raise ConfigError(f"{self.what} column names must be strings, got {key!r}")
                value, kind = _normalise(value, key, self.what)
                kinds[key] = _merge(kinds.get(key), kind, key, self.what)
                clean[key] = value
            clean_rows.append(clean)
        for key in kinds:
            if key not in self.columns:
                self.columns[key] = [None] * self.n_rows
        self.kinds = kinds
        for clean in clean_rows:
            for key, column in self.columns.items():
                column.append(clean.get(key))
        self.n_rows += len(clean_rows)

    def snapshot(self) -> Snapshot:
        """A marker to :meth:`restore` after a failed write."""
        return self.n_rows, dict(self.kinds)

    def restore(self, snapshot: Snapshot) -> None:
        """Forget every row and column added since ``snapshot`` was taken."""
        n_rows, kinds = snapshot
        self.columns = {key: column[:n_rows] for key, column in self.columns.items() if key in kinds}
        self.kinds = kinds
        self.n_rows = n_rows

    def keep_rows(self, keep: Callable[[dict[str, Any]], bool]) -> int:
        """Keep the rows for which ``keep(row)`` is true; return how many were dropped."""
        mask = [keep(row) for row in self.rows()]
        self.columns = {
            key: [v for v, k in zip(column, mask, strict=True) if k] for key, column in self.columns.items()
        }
        dropped = self.n_rows - sum(mask)
        self.n_rows -= dropped
        return dropped

    def rows(self) -> list[dict[str, Any]]:
        """The rows as dicts (fresh copies), nulls included."""
        keys = list(self.columns)
        return [dict(zip(keys, values, strict=True)) for values in zip(*self.columns.values(), strict=True)]

    def to_table(self) -> pa.Table:
        """The rows as a pyarrow table with int64/float64/bool/string columns (null type while all-null)."""
        import pyarrow as pa

        types = {None: pa.null(), "bool": pa.bool_(), "int": pa.int64(), "float": pa.float64(), "str": pa.string()}
        fields = [pa.field(key, types[kind]) for key, kind in self.kinds.items()]
        arrays = [pa.array(self.columns[key], type=field.type) for key, field in zip(self.kinds, fields, strict=True)]
        return pa.Table.from_arrays(arrays, schema=pa.schema(fields))

    @classmethod
    def from_table(cls, table: pa.Table, what: str, source: str) -> ColumnStore:
        """A store holding ``table``'s rows; ``source`` names the file in the error for an unusable column."""
        import pyarrow as pa

        store = cls(what)
        for field in table.schema:
            t = field.type
            if pa.types.is_null(t):
                kind = None
            elif pa.types.is_boolean(t):
                kind = "bool"
            elif pa.types.is_integer(t):
                kind = "int"
            elif pa.types.is_floating(t):
                kind = "float"
            elif pa.types.is_string(t) or pa.types.is_large_string(t):
                kind = "str"
            else:
                raise RunDirError(
                    f"{source} has column {field.name!r} of type {t}, but run directories hold only "
                    f"bool, int, float and string columns; the file was not written by nasbench-harness"
                )
            store.kinds[field.name] = kind
            store.columns[field.name] = table.column(field.name).to_pylist()
        store.n_rows = table.num_rows
        epochs = store.columns.get("epoch")
        kind = store.kinds.get("epoch")
        if epochs and (kind != "int" or any(e is None or e < 0 for e in epochs)):
            holds = f"{kind or 'null'} values" if kind != "int" else "missing or negative epochs"
            raise RunDirError(
                f"{source} has an 'epoch' column of {holds}, where a run directory numbers its epochs with "
                f"ints >= 0; {DAMAGED_FIX}"
            )
        return store


DAMAGED_FIX = (
    "it is written atomically, so it was damaged or changed outside the harness; restore it from a copy, "
    "or rerun the run in a new directory"
)
"""What to do about a damaged run-directory table (the default advice of :func:`read_table_file`)."""


def read_table_file(file: str | os.PathLike[str], fix: str = DAMAGED_FIX) -> pa.Table:
    """The table in the run-directory Parquet file ``file`` (``trajectory.parquet``, ``alphas.parquet``).

    Read-only and checked: page CRCs where written, and every column's values against the min,
    max and null count the file's footer records. A truncated, corrupted or foreign file is a
    :class:`RunDirError` naming the file, what was wrong and ``fix`` (what the user can do).
    """
    from nasbench_harness.tabular.cache import DamagedParquet, read_parquet_verified

    path = Path(file)
    try:
        return read_parquet_verified(path)
    except DamagedParquet as exc:
        raise RunDirError(f"{path}: {exc}; {fix}") from None


def _normalise(value: Any, key: str, what: str) -> tuple[Any, str | None]:
    """``value`` as a plain Python scalar and its kind; numpy/torch scalars are unwrapped with ``.item()``."""
    if value is None:
        return None, None
    if isinstance(value, bool):
        return value, "bool"
    if isinstance(value, int):
        return int(value), "int"
    if isinstance(value, float):
        return float(value), "float"
    if isinstance(value, str):
        return str(value), "str"
    item = getattr(value, "item", None)
    if callable(item):
        try:
            scalar = item()
        except (ValueError, RuntimeError):  # an array or tensor of more than one element
            scalar = value
        if scalar is not value and isinstance(scalar, bool | int | float | str):
            return _normalise(scalar, key, what)
    raise ConfigError(
        f"{what} column {key!r} got a value of type {type(value).__name__} ({value!r:.60}); "
        f"values must be int, float, str, bool or None (convert arrays to one number per column)"
    )


def _merge(old: str | None, new: str | None, key: str, what: str) -> str | None:
    if old is None or old == new:
        return new if new is not None else old
    if new is None:
        return old
    if {old, new} == {"int", "float"}:
        return "float"
    raise ConfigError(
        f"{what} column {key!r} held {old} values and now got a {new}; keep one type per column "
        f"(use None for a missing value, float('nan') for an undefined number)"
    )
