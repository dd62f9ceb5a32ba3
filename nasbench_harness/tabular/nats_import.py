"""Read the NATS-Bench topology files (TSS) into the NB201 cache, with the official ``nats_bench`` package.

NATS-Bench's topology search space is NAS-Bench-201's: the same 15,625 cells in the same order,
the same four training settings, splits, seeds and the 12- and 200-epoch schedules, so its files
import into the same ``nb201`` cache under the same metric keys as the NB201 ``.pth``
(:mod:`.nb201_pth`, whose per-cell reader this module shares: every final-epoch number comes from
the official ``ArchResults`` accessors). The files also record every epoch: with ``curves`` each
split's seed-mean accuracy after epoch k of each schedule becomes ``<dataset>/<split>/accuracy@<hp>:e<k>``
(k = 1 .. hp-1; the final epoch is the plain key), so a derived cell can be scored at the
schedules' intermediate epochs.

The layouts of the official release (``nats_bench`` |NATS_BENCH_VERSION|):

- ``NATS-tss-v1_0-3ffb9-simple/``: ``meta.pickle.pbz2`` (the 15,625 arch strings) and one
  ``<index:06d>.pickle.pbz2`` per cell holding ``{"12": ArchResults state, "200": ...}``;
- ``NATS-tss-v1_0-3ffb9-full/``: the same with each trial's trained weights;
- ``NATS-tss-v1_0-3ffb9.pickle.pbz2``: every cell in one file.

These are bz2-compressed pickles, and unpickling runs code the file names: as for the ``.pth``,
nothing is unpickled without ``trust_pickle``; the layout is checked first, so a wrong path is
named before that question arises. Cells are read one at a time and dropped (the ``-full`` files'
weights never accumulate); a damaged file is an error naming it, and the cache is written only
once every cell was read, so a failed import leaves the previous cache.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import re
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from nasbench_harness.errors import SourceFileError, echo
from nasbench_harness.spaces.nb201 import NUM_CELLS, NB201Genotype
from nasbench_harness.tabular.cache import ImportedTable, Progress, sha256_file, write_cache
from nasbench_harness.tabular.nb201_columns import BENCHMARK, ROW_KEY, identity_columns, sorted_metrics
from nasbench_harness.tabular.nb201_metrics import DATASETS, HPS, SPLITS, MetricKey
from nasbench_harness.tabular.nb201_pth import _check_meta_archs, _read_dataset

NATS_BENCH_VERSION = "1.8"
"""The ``nats_bench`` release this reader is written and tested against (pinned in the ``nats`` extra)."""
NATS_IMPORTER_VERSION = 1
PICKLE_SUFFIX = ".pickle.pbz2"
META_FILE = "meta" + PICKLE_SUFFIX
_CELL_FILE = re.compile(r"(\d{1,6})\.pickle\.pbz2")
_READ_ERRORS = (
    OSError,
    EOFError,
    ValueError,
    KeyError,
    TypeError,
    AttributeError,
    AssertionError,
    IndexError,
    ImportError,  # a pickle naming a module that is not there
    pickle.UnpicklingError,
)
_INSTALL = "pip install 'nasbench-harness[nats]' (or: pip install nats_bench==" + NATS_BENCH_VERSION + ")"
__doc__ = (__doc__ or "").replace("|NATS_BENCH_VERSION|", NATS_BENCH_VERSION)


def is_nats_source(path: Path) -> bool:
    """True for a path in one of the NATS-Bench layouts: a directory, or a ``*.pickle.pbz2`` file."""
    return path.is_dir() or path.name.lower().endswith(PICKLE_SUFFIX)


def import_nats(
    source: str | os.PathLike[str],
    cache_dir: str | os.PathLike[str],
    *,
    trust_pickle: bool = False,
    curves: bool = True,
    progress: Progress | None = None,
) -> Path:
    """Import a NATS-Bench topology file or directory into ``<cache_dir>/nb201`` (replacing any
    earlier import, atomically); return that path. See :func:`read_nats`."""
    source = Path(source).expanduser()
    imported = read_nats(source, trust_pickle=trust_pickle, curves=curves, progress=progress)
    return write_cache(Path(cache_dir), imported, source_digest(source, progress))


def read_nats(
    path: Path, *, trust_pickle: bool = False, curves: bool = True, progress: Progress | None = None
) -> ImportedTable:
    """Every NB201 metric in the NATS-Bench topology file or directory ``path`` (plus the per-epoch
    accuracies with ``curves``); ``SourceFileError`` for anything that is not that layout, a damaged
    file, or a file that may only be unpickled with ``trust_pickle``."""
    cells = _cell_files(path)
    if not trust_pickle:
        raise SourceFileError(
            f"{path} is a NATS-Bench benchmark in bz2-compressed pickles, which only an unpickler can read; "
            "it was not unpickled. If the files come from the official NATS-Bench release, re-run with "
            "--trust-pickle (unpickling runs code from the file, so only do this for files you trust)"
        )
    api = _open_api(path)
    _check_meta_archs(path, list(api.meta_archs))
    if cells is None:  # one file: every cell is already in memory
        cells = {int(i): path for i in api.evaluated_indexes}
    reader = _Reader(curves)
    for done, (index, file) in enumerate(sorted(cells.items()), 1):
        reader.read_cell(index, _cell(api, path, index, file), file)
        if progress is not None:
            progress("read", done, len(cells))
    metrics = reader.metrics()
    return ImportedTable(
        benchmark=BENCHMARK,
        row_key=ROW_KEY,
        identity=identity_columns(),
        metrics=sorted_metrics(metrics),
        meanings={str(k): k.meaning() for k in metrics},
        notes={},
        source=path,
        source_format="nats-tss-" + ("directory" if path.is_dir() else "file"),
        importer=f"nats-tss (official nats_bench {_installed_version()} API)",
        importer_version=NATS_IMPORTER_VERSION,
        extra={
            "evaluated_cells": len(cells),
            "hps": sorted(reader.hps),
            "skipped": sorted(reader.skipped),
            "curves": "seed-mean accuracy of every eval split after each epoch, as :e<k>" if curves else "not imported",
            "trial_order": "#k = k-th training seed in ascending order; its seed value is <dataset>/seed@<hp>#k",
        },
    )


def source_digest(path: Path, progress: Progress | None = None) -> str:
    """sha256 of a NATS-Bench file; of a directory, sha256 over ``<name> <sha256>`` lines of its
    ``*.pickle.pbz2`` files in name order (so the sidecar still pins exactly what was imported)."""
    if not path.is_dir():
        return sha256_file(path, None if progress is None else lambda d, t: progress("hash", d, t))
    files = sorted(p for p in path.iterdir() if p.name.endswith(PICKLE_SUFFIX))
    digest = hashlib.sha256()
    for done, file in enumerate(files, 1):
        digest.update(f"{file.name} {sha256_file(file)}\n".encode())
        if progress is not None:
            progress("hash", done, len(files))
    return digest.hexdigest()


def _cell_files(path: Path) -> dict[int, Path] | None:
    """The per-cell files of a NATS-Bench directory by index (None for the one-file layout)."""
    expected = (
        "give the unpacked NATS-tss-v1_0-3ffb9-simple (or -full) directory, or the "
        "NATS-tss-v1_0-3ffb9.pickle.pbz2 file, as released"
    )
    if not path.exists():
        raise SourceFileError(f"no such file or directory: {path}; {expected}")
    if not path.is_dir():
        return None
    if not (path / META_FILE).is_file():
        raise SourceFileError(f"{path} is a directory without {META_FILE}, so not a NATS-Bench benchmark; {expected}")
    cells: dict[int, Path] = {}
    for file in path.iterdir():
        match = _CELL_FILE.fullmatch(file.name)
        if match is None:
            continue
        index = int(match.group(1))
        if index >= NUM_CELLS or index in cells:
            raise SourceFileError(
                f"{file}: a cell file for index {index}, but NATS-Bench's topology space has cells "
                f"0..{NUM_CELLS - 1}, each in one file; {expected}"
            )
        cells[index] = file
    if not cells:
        raise SourceFileError(f"{path} has {META_FILE} but no cell files (<index>{PICKLE_SUFFIX}); {expected}")
    return cells


def _open_api(path: Path) -> Any:
    try:
        import nats_bench
    except ImportError:
        raise SourceFileError(f"importing NATS-Bench files needs the official package: {_INSTALL}") from None
    try:
        return nats_bench.create(str(path), "tss", fast_mode=path.is_dir(), verbose=False)
    except _READ_ERRORS as exc:
        file = path / META_FILE if path.is_dir() else path
        raise SourceFileError(_unreadable(file, exc)) from None


def _cell(api: Any, root: Path, index: int, file: Path) -> dict[str, Any]:
    """``{hp: ArchResults}`` of cell ``index``; in the directory layout loaded now and dropped from
    the API (a ``-full`` cell holds its weights)."""
    try:
        if root.is_dir():
            api.reload(str(root), index)
            return dict(api.arch2infos_dict.pop(index))
        return dict(api.arch2infos_dict[index])
    except _READ_ERRORS as exc:
        raise SourceFileError(_unreadable(file, exc)) from None


def _unreadable(file: Path, exc: BaseException) -> str:
    first = (str(exc).splitlines() or [""])[0][:200] or type(exc).__name__
    return (
        f"cannot read {file} as a NATS-Bench topology file ({type(exc).__name__}: {first}); it is truncated, "
        "damaged or of another benchmark. Compare it with the official release and download it again"
    )


def _installed_version() -> str:
    from importlib import metadata

    try:
        return metadata.version("nats_bench")
    except metadata.PackageNotFoundError:  # pragma: no cover - imported above
        return "unknown"


def _check_cell(results: Any, index: int, hp: str, file: Path) -> None:
    """A cell's results are those of the cell its index names, and hold at least one training setting."""
    expected = NB201Genotype.from_index(index).to_string()
    if results.arch_str != expected or not results.get_dataset_names():
        found = "no trial" if results.arch_str == expected else f"the results of {echo(results.arch_str)}"
        raise SourceFileError(
            f"{file}: cell {index} is not in the NATS-Bench layout: for hp={hp} it holds {found}, where cell "
            f"{index} is {expected} with trials on {', '.join(DATASETS)}; it is damaged or of another benchmark. "
            "Compare it with the official release"
        )


@cache
def _epoch_key(dataset: str, split: str, hp: str, epoch: int) -> MetricKey:
    return MetricKey(dataset, split, "accuracy", hp, epoch=epoch)


@cache
def _eval_names(split: str, epochs: int) -> tuple[str, ...]:
    """The official per-epoch keys of ``split`` before the final epoch (``x-valid@0`` ...)."""
    return tuple(f"{split}@{i}" for i in range(epochs - 1))


class _Reader:
    """Collects the metrics of one cell after another into columns over all cells."""

    def __init__(self, curves: bool) -> None:
        self.curves = curves
        self.final: dict[MetricKey, np.ndarray] = {}
        self.per_epoch: dict[tuple[str, str, str], np.ndarray] = {}  # (hp, dataset, split) -> epochs-1 x cells
        self.hps: set[str] = set()
        self.skipped: set[str] = set()

    def read_cell(self, index: int, hp2results: dict[str, Any], file: Path) -> None:
        """Add the metrics of cell ``index`` (``{hp: ArchResults}``, read from ``file``)."""
        try:
            for hp, results in hp2results.items():
                if hp not in HPS:
                    self.skipped.add(f"hp={hp}")
                    continue
                self.hps.add(hp)
                _check_cell(results, index, hp, file)
                for dataset in results.get_dataset_names():
                    if dataset not in DATASETS:
                        self.skipped.add(f"dataset {dataset}")
                        continue
                    _read_dataset(results, dataset, hp, index, self._put, self.skipped)
                    if self.curves:
                        self._read_curves(results, dataset, hp, index)
        except SourceFileError:
            raise
        except (*_READ_ERRORS, ZeroDivisionError) as exc:
            raise SourceFileError(
                f"{file}: cell {index} is not in the NATS-Bench layout ({type(exc).__name__}: {str(exc)[:200]}); "
                "it is damaged or of another benchmark. Compare it with the official release"
            ) from None

    def _put(self, key: MetricKey, index: int, value: Any) -> None:
        if key not in self.final:
            self.final[key] = np.full(NUM_CELLS, np.nan)
        self.final[key][index] = np.nan if value is None else float(value)

    def _read_curves(self, results: Any, dataset: str, hp: str, index: int) -> None:
        """Seed-mean accuracy after each epoch but the last, per eval split, computed as the official
        ``get_metrics(..., iepoch=k-1, is_random=False)`` does (sum over seeds / count) without its
        per-call time sums; a split whose epochs are not all recorded has no curve for this cell."""
        trials = [results.query(dataset, seed) for seed in results.get_dataset_seeds(dataset)]
        epochs = min(int(trials[0].get_total_epoch()), int(hp))
        for split in trials[0].get_eval_set():
            if split not in SPLITS[dataset] or epochs < 2:
                continue
            names = _eval_names(split, epochs)
            try:
                values = np.array([[t.eval_acc1es[n] for n in names] for t in trials], dtype=np.float64)
            except (KeyError, TypeError, ValueError):
                self.skipped.add(f"{dataset} {split} per-epoch accuracy (not recorded for every epoch)")
                continue
            column = self.per_epoch.get((hp, dataset, split))
            if column is None:
                column = self.per_epoch[(hp, dataset, split)] = np.full((epochs - 1, NUM_CELLS), np.nan)
            column[: len(names), index] = values.sum(axis=0) / len(trials)

    def metrics(self) -> dict[MetricKey, np.ndarray]:
        """Every metric collected: the final-epoch ones and one per (schedule, split, epoch)."""
        out = dict(self.final)
        for (hp, dataset, split), column in self.per_epoch.items():
            for k, row in enumerate(column, 1):
                if not np.isnan(row).all():
                    out[_epoch_key(dataset, split, hp, k)] = row
        return out
