"""One search run = one directory that explains itself, written so a crash anywhere leaves it resumable.

``manifest.json``
    The caller's dict (resolved config, seed, versions, git commit, device, checksums, ...) plus
    the fields kept here: ``schema_version``, ``status`` ("running" | "finished" | "failed"),
    ``error`` (message or null), ``created`` and ``updated`` (ISO-8601 UTC),
    ``epochs_completed`` (trajectory rows) and ``last_epoch`` (epoch number of the last row, or null).
``trajectory.parquet``
    One row per completed epoch; ``epoch`` first, then the caller's columns in first-seen order.
``alphas.parquet``
    Long form, one row per (epoch, edge, op, ...) as the caller gives them.
``checkpoint.pt``
    The latest resumable state (``torch.save`` of the caller's dict plus ``epoch``): tensors and
    plain containers only, loaded with ``torch.load(weights_only=True)`` (``tracking/checkpoint.py``).

Every file is replaced atomically. :meth:`RunDir.commit_epoch` writes trajectory, alphas,
checkpoint, then manifest; so the checkpoint's epoch is the truth, and
:meth:`RunDir.resume_state` drops trajectory/alpha rows written after it: the rows of the one
epoch that was being committed. More rows than that ahead of the checkpoint, or fewer rows than it
claims, mean the directory was changed outside the harness; resuming then stops and says so.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nasbench_harness.errors import ConfigError, RunDirError
from nasbench_harness.tracking.atomic import atomic_write, atomic_write_json, remove_stale_temps, storage_error
from nasbench_harness.tracking.checkpoint import load_checkpoint_file, serialize_checkpoint
from nasbench_harness.tracking.columns import KINDS, ColumnStore, read_table_file
from nasbench_harness.tracking.configdiff import describe_config_diff
from nasbench_harness.tracking.manifest import (
    MANIFEST_FILE,
    check_status,
    new_manifest,
    read_manifest_file,
    refuse_maintained,
)
from nasbench_harness.tracking.provenance import utc_now

if TYPE_CHECKING:
    import pyarrow as pa

TRAJECTORY_FILE = "trajectory.parquet"
ALPHAS_FILE = "alphas.parquet"
CHECKPOINT_FILE = "checkpoint.pt"
RUN_FILES = (MANIFEST_FILE, TRAJECTORY_FILE, ALPHAS_FILE, CHECKPOINT_FILE)


@dataclass(frozen=True)
class ResumeState:
    """Where a run continues: the last complete epoch (None: start from scratch) and its checkpoint."""

    epoch: int | None
    checkpoint: dict[str, Any] | None
    dropped_rows: int = 0
    """Trajectory rows written after the checkpoint (by an epoch that did not complete) and removed."""


class RunDir:
    """The files of one search run; see the module docstring for the layout and write order."""

    def __init__(self, path: str | os.PathLike[str], durable: bool = True) -> None:
        """``durable=False`` skips fsync: still safe against a killed process, not against power loss."""
        self.path = Path(path)
        self.durable = durable
        self._trajectory: ColumnStore | None = None
        self._alphas: ColumnStore | None = None

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    @property
    def exists(self) -> bool:
        """True when the directory holds a run (has a ``manifest.json``)."""
        return (self.path / MANIFEST_FILE).is_file()

    def create(self, manifest: Mapping[str, Any]) -> None:
        """Start a new run here: make the directory and write the manifest with status "running".

        Raises ``RunDirError`` when a run (or a run file without a manifest) is already there.
        """
        if self.exists:
            old = self.read_manifest()
            raise RunDirError(
                f"{self.path} already holds a run (status {old.get('status')}, "
                f"{old.get('epochs_completed')} epochs completed); resume it, or give the new run an empty directory"
            )
        leftovers = [name for name in RUN_FILES if (self.path / name).exists()]
        if leftovers:
            raise RunDirError(
                f"{self.path} has {', '.join(leftovers)} but no {MANIFEST_FILE}, so it holds a damaged run; "
                f"move those files away or give the new run an empty directory"
            )
        record = new_manifest(manifest, utc_now())
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except FileExistsError:
            raise RunDirError(f"{self.path} is a file, not a directory; give the run a directory") from None
        except OSError as exc:
            raise storage_error(exc, self.path) from None
        remove_stale_temps(self.path)
        self._write_manifest(record)
        self._trajectory, self._alphas = ColumnStore("trajectory row"), ColumnStore("alpha row")

    def read_manifest(self) -> dict[str, Any]:
        """The manifest; ``RunDirError`` when it is missing, damaged or of a newer schema."""
        return read_manifest_file(self.path / MANIFEST_FILE)

    def update_manifest(self, **fields: Any) -> dict[str, Any]:
        """Set top-level manifest ``fields`` (not the ones kept here; use :meth:`set_status`); return the manifest."""
        refuse_maintained(fields, "update_manifest()")
        return self._update(fields)

    def set_status(self, status: str, error: str | None = None) -> None:
        """Record ``status`` ("running" | "finished" | "failed") and its error message (cleared when None)."""
        check_status(status)
        if error is not None and not isinstance(error, str):
            raise ConfigError(f"set_status() error must be a message string or None, got {type(error).__name__}")
        self._update({"status": status, "error": error})

    def check_config(self, config: Mapping[str, Any], key: str = "config", ignore: Iterable[str] = ()) -> None:
        """``RunDirError`` unless the manifest's ``key`` equals ``config`` (dotted keys in ``ignore`` aside)."""
        recorded = self.read_manifest().get(key)
        if not isinstance(recorded, Mapping):
            raise RunDirError(f"{self.path / MANIFEST_FILE} records no {key!r} dict to compare the new one with")
        diff = describe_config_diff(recorded, config, ignore)
        if diff:
            raise RunDirError(
                f"{self.path} holds a run with a different {key}: differs in {diff} (recorded vs new); "
                f"resume it with the recorded {key}, or start the new one in another directory"
            )

    def commit_epoch(
        self, epoch: int, row: Mapping[str, Any], alpha_rows: Iterable[Mapping[str, Any]], checkpoint: Mapping[str, Any]
    ) -> None:
        """Record a completed epoch: trajectory row, alpha rows, checkpoint, then manifest, each atomically.

        ``epoch`` must follow the last committed one by 1 (any non-negative start). ``row`` and each
        alpha row get ``epoch`` added when they lack it. ``checkpoint`` is saved with ``epoch`` added.
        If a write fails, memory is rolled back and the files on disk stay resumable.
        """
        manifest = self.read_manifest()
        if manifest.get("status") != "running":
            raise RunDirError(
                f"{self.path} holds a run with status {manifest.get('status')!r}; "
                f"call set_status('running') before committing more epochs to it"
            )
        if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
            raise ConfigError(f"commit_epoch() epoch must be a non-negative int, got {epoch!r}")
        trajectory, alphas = self._stores()
        epochs = trajectory.columns.get("epoch", [])
        if epochs and epoch != epochs[-1] + 1:
            raise RunDirError(
                f"commit_epoch() got epoch {epoch}, but {self.path} has epochs up to {epochs[-1]}; "
                f"epochs must follow one another (call resume_state() first when continuing a run)"
            )
        row = _with_epoch(row, epoch, "trajectory row")
        alpha_rows = [_with_epoch(r, epoch, "alpha row") for r in alpha_rows]
        if not isinstance(checkpoint, Mapping):
            raise ConfigError(f"commit_epoch() checkpoint must be a dict, got {type(checkpoint).__name__}")
        checkpoint = dict(_with_epoch(checkpoint, epoch, "checkpoint"))
        serialized = serialize_checkpoint(checkpoint)  # before any file: ConfigError for a value it cannot hold

        saved = trajectory.snapshot(), alphas.snapshot()
        try:
            trajectory.append([row])
            alphas.append(alpha_rows)
            # One directory sync before the checkpoint orders both Parquet renames before it; the
            # manifest's sync at the end makes the epoch durable (resume repairs a stale manifest).
            _write_parquet(self.path / TRAJECTORY_FILE, trajectory.to_table(), self.durable, sync_dir=False)
            _write_parquet(self.path / ALPHAS_FILE, alphas.to_table(), self.durable)
            _save_checkpoint(self.path / CHECKPOINT_FILE, serialized, self.durable)
        except BaseException:
            trajectory.restore(saved[0])
            alphas.restore(saved[1])
            raise
        self._write_manifest({**manifest, "epochs_completed": trajectory.n_rows, "last_epoch": epoch})

    def write_table(self, rows: Iterable[Mapping[str, Any]], kinds: Mapping[str, str] | None = None) -> None:
        """Record a run without epochs (the table-only baselines: one row per evaluated cell) as
        its whole trajectory, replacing any rows written before; no alphas, no checkpoint.

        ``kinds`` fixes column types ("bool", "int", "float", "str") that the values alone would
        leave open (a column of nulls) or widen, so runs of one kind share one Parquet schema.
        """
        manifest = self.read_manifest()
        if manifest.get("status") != "running":
            raise RunDirError(f"{self.path} holds a run with status {manifest.get('status')!r}; it takes no rows")
        store = ColumnStore("trajectory row")
        for key, kind in (kinds or {}).items():
            if kind not in KINDS:
                raise ConfigError(f"write_table() kinds take {', '.join(KINDS)}, got {kind!r} for {key!r}")
            store.kinds[key], store.columns[key] = kind, []
        store.append(rows)
        _write_parquet(self.path / TRAJECTORY_FILE, store.to_table(), self.durable)
        self._trajectory = store
        self._write_manifest({**manifest, "epochs_completed": store.n_rows, "last_epoch": None})

    def trajectory_rows(self) -> list[dict[str, Any]]:
        """The committed trajectory rows as dicts (copies), from memory or else from the file."""
        return self._stores()[0].rows()

    def load_checkpoint(self, map_location: Any = "cpu") -> dict[str, Any] | None:
        """The latest checkpoint (None if no epoch was committed), loaded with
        ``torch.load(weights_only=True)``: tensors and plain containers only, nothing in the file runs.

        ``RunDirError`` naming the file (and the class or function it names, if any) when it is
        damaged, holds anything else, or is not a dict with an int ``epoch``.
        """
        file = self.path / CHECKPOINT_FILE
        if not file.is_file():
            return None
        checkpoint = load_checkpoint_file(file, map_location, self._restart_hint())
        epoch = checkpoint.get("epoch") if isinstance(checkpoint, dict) else None
        if isinstance(epoch, bool) or not isinstance(epoch, int):
            raise RunDirError(f"{file} is not a run checkpoint (a dict with an int 'epoch'); {self._restart_hint()}")
        return checkpoint

    def resume_state(self, map_location: Any = "cpu") -> ResumeState:
        """Make the directory consistent with its checkpoint and say where to continue.

        Trajectory and alpha rows of epochs after the checkpoint's are dropped and the files
        rewritten; the manifest's epoch counts are corrected. ``RunDirError`` when the trajectory
        lacks epochs the checkpoint claims. The caller decides what a "finished" status means.
        """
        manifest = self.read_manifest()
        remove_stale_temps(self.path)
        checkpoint = self.load_checkpoint(map_location)
        last = None if checkpoint is None else checkpoint["epoch"]
        trajectory = _load_store(self.path / TRAJECTORY_FILE, "trajectory row")
        alphas = _load_store(self.path / ALPHAS_FILE, "alpha row")
        for store, file in ((trajectory, TRAJECTORY_FILE), (alphas, ALPHAS_FILE)):
            if store.n_rows and "epoch" not in store.columns:
                raise RunDirError(f"{self.path / file} has no 'epoch' column; it was not written by nasbench-harness")

        def kept(row: dict[str, Any]) -> bool:
            return last is not None and row["epoch"] is not None and row["epoch"] <= last

        # Checked before anything is rewritten: a refused resume leaves every file as it was.
        recorded = manifest.get("last_epoch")  # written after the checkpoint: never ahead of it
        if isinstance(recorded, int) and not isinstance(recorded, bool) and (last is None or recorded > last):
            self._check_ahead([recorded], last, MANIFEST_FILE)
        for store, file in ((trajectory, TRAJECTORY_FILE), (alphas, ALPHAS_FILE)):
            self._check_ahead(store.columns["epoch"] if store.n_rows else [], last, file)
        if last is not None:
            self._check_complete([e for e in trajectory.columns.get("epoch", []) if e is not None and e <= last], last)
        dropped = trajectory.keep_rows(kept)
        if dropped:
            _write_parquet(self.path / TRAJECTORY_FILE, trajectory.to_table(), self.durable)
        if alphas.keep_rows(kept):
            _write_parquet(self.path / ALPHAS_FILE, alphas.to_table(), self.durable)

        counts = {"epochs_completed": trajectory.n_rows, "last_epoch": last}
        if any(manifest.get(k) != v for k, v in counts.items()):
            self._write_manifest({**manifest, **counts})
        self._trajectory, self._alphas = trajectory, alphas
        return ResumeState(epoch=last, checkpoint=checkpoint, dropped_rows=dropped)

    def _check_complete(self, epochs: list[int], last: int) -> None:
        contiguous = all(b == a + 1 for a, b in itertools.pairwise(epochs))
        if epochs and contiguous and epochs[-1] == last:
            return
        file = self.path / TRAJECTORY_FILE
        holds = "is missing" if not file.exists() else f"holds epochs {_ranges(epochs) or 'none'}"
        raise RunDirError(
            f"{file} {holds}, but {self.path / CHECKPOINT_FILE} says epoch {last} is complete (rows up to it "
            f"must be present, without gaps); the directory was changed outside the harness. Restore the file; "
            f"{self._restart_hint()}"
        )

    def _check_ahead(self, epochs: list[Any], last: int | None, name: str) -> None:
        """Rows after the checkpoint may only be those of the one epoch being committed when the run
        stopped (``last + 1``), and the manifest records none; more mean the checkpoint was removed
        or replaced by an older one."""
        ahead = sorted({e for e in epochs if e is None or last is None or e > last}, key=lambda e: (e is None, e))
        if not ahead or (name != MANIFEST_FILE and len(ahead) == 1 and (last is None or ahead[0] == last + 1)):
            return
        file, checkpoint = self.path / name, self.path / CHECKPOINT_FILE
        says = f"says epoch {last} is the last complete one" if last is not None else "is missing"
        shown = (_ranges([e for e in ahead if e is not None]) + (", null" if None in ahead else "")).removeprefix(", ")
        holds = f"records epoch {shown} as complete" if name == MANIFEST_FILE else f"holds epochs {shown}"
        raise RunDirError(
            f"{file} {holds}, but {checkpoint} {says}; only the epoch being "
            f"written when a run stops can be ahead of its checkpoint, so the checkpoint was removed or replaced "
            f"outside the harness. Restore the newer {CHECKPOINT_FILE}; {self._restart_hint()}"
        )

    def _restart_hint(self) -> str:
        """What to do instead of resuming: the user decides whether the epochs recorded here are lost."""
        return (
            f"to restart the run from scratch (losing its recorded epochs), delete {self.path} or use a new directory"
        )

    def _stores(self) -> tuple[ColumnStore, ColumnStore]:
        if self._trajectory is None or self._alphas is None:
            self._trajectory = _load_store(self.path / TRAJECTORY_FILE, "trajectory row")
            self._alphas = _load_store(self.path / ALPHAS_FILE, "alpha row")
        return self._trajectory, self._alphas

    def _update(self, fields: Mapping[str, Any]) -> dict[str, Any]:
        manifest = {**self.read_manifest(), **fields}
        self._write_manifest(manifest)
        return manifest

    def _write_manifest(self, manifest: dict[str, Any]) -> None:
        manifest["updated"] = utc_now()
        try:
            atomic_write_json(self.path / MANIFEST_FILE, manifest, fsync=self.durable)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"the run manifest must hold JSON values only: {exc}") from None


def read_trajectory(path: str | os.PathLike[str]) -> pa.Table:
    """A run's trajectory (one row per completed epoch); ``path`` is the run directory or the file."""
    return _read_parquet(path, TRAJECTORY_FILE)


def read_alphas(path: str | os.PathLike[str]) -> pa.Table:
    """A run's architecture parameters in long form; ``path`` is the run directory or the file."""
    return _read_parquet(path, ALPHAS_FILE)


def _read_parquet(path: str | os.PathLike[str], name: str) -> pa.Table:
    file = Path(path)
    if file.is_dir() or file.suffix != ".parquet":
        file = file / name
    if not file.is_file():
        raise RunDirError(
            f"no {file.name} at {file.parent}: the run has completed no epoch yet, or this is not a run directory"
        )
    return read_table_file(file)  # checked: page CRCs, footer statistics; RunDirError naming the file


def _load_store(file: Path, what: str) -> ColumnStore:
    if not file.is_file():
        return ColumnStore(what)
    return ColumnStore.from_table(_read_parquet(file, file.name), what, str(file))


def _write_parquet(file: Path, table: pa.Table, fsync: bool, sync_dir: bool = True) -> None:
    import pyarrow.parquet as pq

    with atomic_write(file, fsync=fsync, sync_dir=sync_dir) as f:
        pq.write_table(table, f, write_page_checksum=True)  # read_table_file verifies them


def _save_checkpoint(file: Path, serialized: bytes, fsync: bool) -> None:
    # Serialised in memory first (serialize_checkpoint): torch.save would turn a failed write (a full
    # disk) into a RuntimeError.
    with atomic_write(file, fsync=fsync, sync_dir=False) as f:
        f.write(serialized)


def _with_epoch(row: Mapping[str, Any], epoch: int, what: str) -> dict[str, Any]:
    """``row`` with ``epoch`` first; a different ``epoch`` already in it is an error."""
    if not isinstance(row, Mapping):
        raise ConfigError(f"a {what} must be a dict, got {type(row).__name__}")
    given = row.get("epoch", epoch)
    if given != epoch or isinstance(given, bool):
        raise ConfigError(f"a {what} for epoch {epoch} says 'epoch': {given!r}; leave it out or make it {epoch}")
    return {"epoch": epoch, **{k: v for k, v in row.items() if k != "epoch"}}


def _ranges(epochs: list[int]) -> str:
    """``[0, 1, 2, 5, 7, 8]`` -> ``"0-2, 5, 7-8"``."""
    spans: list[list[int]] = []
    for e in epochs:
        if spans and e == spans[-1][1] + 1:
            spans[-1][1] = e
        else:
            spans.append([e, e])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in spans)
