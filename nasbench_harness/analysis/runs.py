"""Many run directories as two tidy pandas frames, and the final-results table over seeds (the
aggregates themselves are in :mod:`nasbench_harness.analysis.aggregate`).

:func:`load_runs` reads ``manifest.json`` and ``trajectory.parquet`` of search runs (``nbh search``)
and table-only baselines (``nbh baseline``); see ``results/README.md`` for the columns. It never
drops a run silently: failed, running and epoch-less runs keep their row in :attr:`Runs.runs` with
their status; a damaged run (unreadable manifest or trajectory) stops the load with a
:class:`RunDirError` naming it, or with ``skip_damaged`` is left out and listed in :attr:`Runs.skipped`.

:attr:`Runs.epochs` holds one row per (run, epoch) with the run's identifying columns joined and
these derived columns (accuracies in %, differences in points):

``test_acc``
    Tabular test accuracy of the derived cell on the searched dataset: NB201's
    ``nb201_<d>_test`` (``d`` = cifar10, cifar100 or imagenet16_120 from the config's dataset),
    NB-1Shot1's ``nb101_test_acc``, a baseline's ``incumbent_test_acc``.
``test_regret``
    ``regret_test``: the best cell's test accuracy minus ``test_acc``.
``n_param_free``
    Parameter-free ops of the derived cell (NB201: ``n_parameter_free``; NB-1Shot1: ``n_maxpool``).
``gap_final``
    ``valid_acc - final_valid_acc``: supernet minus discretised net, same images.
``gap_table``
    ``valid_acc`` minus the derived cell's tabular validation accuracy (NB201:
    ``nb201_<d>_valid``; NB-1Shot1: ``nb101_valid_acc``).
``eigenvalue_smooth``
    Trailing 5-point moving average of ``eigenvalue`` over the epochs where it was measured
    (fewer points at the start; NaN on epochs without a measurement), as DARTS-ES's local average.
``early_stop_epoch``
    The run's last epoch when it stopped early (``stopped_early`` set), else NaN.
``answer``
    True on the row holding the method's answer: the last epoch, or for DARTS-ES the last row whose
    ``schedule_epoch`` is the manifest's ``result_epoch``.

Baselines have one row per evaluation: ``evaluation`` counts them and ``epoch`` is NA, so an
aggregate by epoch never mixes evaluations with epochs.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from nasbench_harness.analysis.aggregate import EIGEN_WINDOW, aggregate, mean_std_text, moving_average, summarize
from nasbench_harness.errors import ConfigError, RunDirError
from nasbench_harness.tracking.columns import read_table_file
from nasbench_harness.tracking.configdiff import config_diff
from nasbench_harness.tracking.manifest import MANIFEST_FILE, read_manifest_file
from nasbench_harness.tracking.rundir import TRAJECTORY_FILE
from nasbench_harness.tracking.schema import NB201_TEST_COLUMNS, nb201_table_column, rename_legacy

__all__ = [  # aggregate and EIGEN_WINDOW live in analysis.aggregate; importable from here as before
    "EIGEN_WINDOW",
    "FINAL_METRICS",
    "ID_COLUMNS",
    "NB201_TEST_COLUMNS",
    "Runs",
    "aggregate",
    "final_table",
    "find_runs",
    "load_runs",
]

ID_COLUMNS = ("path", "kind", "space", "dataset", "method", "seed", "preset", "status")
"""Columns identifying a run; joined onto every row of :attr:`Runs.epochs`."""
FINAL_METRICS = (
    "test_acc",
    "test_regret",
    "valid_acc",
    "final_valid_acc",
    "gap_final",
    "gap_table",
    "n_param_free",
    *NB201_TEST_COLUMNS,
    "genotype",
)
"""Answer-row values copied into :attr:`Runs.runs` as ``final_<name>`` (when the run has them)."""
_CONFIG_IGNORE = ("seed", "threads")


@dataclass(frozen=True)
class Runs:
    """Loaded runs: ``runs`` (one row per run) and ``epochs`` (one row per run-epoch); ``skipped``
    the damaged runs left out (``load_runs(skip_damaged=True)``) as (path, reason)."""

    runs: pd.DataFrame
    epochs: pd.DataFrame
    skipped: tuple[tuple[str, str], ...] = ()

    def __len__(self) -> int:
        return len(self.runs)

    def filter(
        self,
        space: str | Collection[str] | None = None,
        dataset: str | Collection[str] | None = None,
        method: str | Collection[str] | None = None,
        seed: int | Collection[int] | None = None,
        status: str | Collection[str] | None = None,
        kind: str | Collection[str] | None = None,
    ) -> Runs:
        """The runs matching every given value (a value, or a collection of accepted values)."""
        keep = pd.Series(True, index=self.runs.index)
        for column, wanted in (
            ("space", space),
            ("dataset", dataset),
            ("method", method),
            ("seed", seed),
            ("status", status),
            ("kind", kind),
        ):
            if wanted is None:
                continue
            values = [wanted] if isinstance(wanted, str | int) else list(wanted)
            keep &= self.runs[column].isin(values)
        runs = self.runs[keep].reset_index(drop=True)
        epochs = self.epochs[self.epochs["path"].isin(set(runs["path"]))].reset_index(drop=True)
        return Runs(runs, epochs, self.skipped)

    def answers(self) -> pd.DataFrame:
        """The answer row of every run that has one (see ``answer`` in the module docstring)."""
        return self.epochs[self.epochs["answer"]].reset_index(drop=True)


def find_runs(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Run directories in ``paths``: each is a run directory or a folder searched recursively.

    Returns sorted, de-duplicated directories holding a ``manifest.json``. ``ConfigError`` when a
    path does not exist or nothing is found.
    """
    found: set[Path] = set()
    given = [Path(p) for p in paths]
    for path in given:
        if (path / MANIFEST_FILE).is_file():
            found.add(path)
        elif path.is_dir():
            found.update(m.parent for m in path.rglob(MANIFEST_FILE))
        else:
            raise ConfigError(f"{path} does not exist; give run directories or folders holding them")
    if not found:
        shown = ", ".join(str(p) for p in given) or "(no paths)"
        raise ConfigError(
            f"no run directories (folders with a {MANIFEST_FILE}) in {shown}; "
            f"give the --out of `nbh search`/`nbh baseline` runs or a folder above them, such as results/"
        )
    return sorted(found)


def load_runs(
    paths: Iterable[str | os.PathLike[str]],
    skip_damaged: bool = False,
    warn: Callable[[str], None] | None = None,
) -> Runs:
    """Load every run under ``paths`` (see :func:`find_runs`) into a :class:`Runs`.

    A damaged run is a :class:`RunDirError` naming its file; with ``skip_damaged`` it is left out,
    listed in :attr:`Runs.skipped` and passed to ``warn`` (one line). ``RunDirError`` when every run is damaged.
    """
    run_rows, epoch_frames, skipped = [], [], []
    found = find_runs(paths)
    for path in found:
        try:
            row, epochs = _load_one(path)
        except RunDirError as exc:
            if not skip_damaged:
                raise RunDirError(f"{exc}; or leave damaged runs out with --skip-damaged") from None
            skipped.append((str(path), str(exc)))
            if warn:
                warn(f"skipped damaged run {path}: {exc}")
            continue
        run_rows.append(row)
        epoch_frames.append(epochs)
    if not run_rows:
        raise RunDirError(f"all {len(found)} run(s) found are damaged; the first: {skipped[0][1]}")
    runs = pd.DataFrame(run_rows)
    runs["config_diff"] = _config_diffs(runs)
    frames = [f for f in epoch_frames if len(f)]
    epochs = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=[*ID_COLUMNS, "epoch", "answer"])
    epochs["answer"] = epochs["answer"].astype(bool)
    first = [c for c in (*ID_COLUMNS, "epoch", "evaluation") if c in epochs.columns]
    epochs = epochs[first + [c for c in epochs.columns if c not in first]]
    return Runs(runs.drop(columns="_config"), epochs, tuple(skipped))


def final_table(runs: Runs) -> pd.DataFrame:
    """NB201-paper style table of the answer's test accuracy (%) per (space, dataset, method).

    Only finished runs count (``n``); ``n_unfinished`` says how many others there were. For each
    metric of :data:`NB201_TEST_COLUMNS` present, plus ``test_acc`` (the searched dataset's):
    ``<metric>_mean``, ``<metric>_std`` and ``<metric>`` formatted as ``"93.76 ± 0.21"``.
    """
    frame = runs.runs
    keys = ["space", "dataset", "method"]
    metrics = [m for m in ("test_acc", *NB201_TEST_COLUMNS) if f"final_{m}" in frame.columns]
    rows = []
    for key, group in frame.groupby(keys, sort=True, dropna=False):
        done = group[group["status"] == "finished"]
        row: dict[str, Any] = dict(zip(keys, key, strict=True))
        row["n"], row["n_unfinished"] = len(done), len(group) - len(done)
        for metric in metrics:
            summary = summarize(done[f"final_{metric}"])
            row[f"{metric}_mean"], row[f"{metric}_std"] = summary.mean, summary.std
            row[metric] = mean_std_text(summary)
        rows.append(row)
    return pd.DataFrame(rows)


# -- internals --------------------------------------------------------------------------------
def _load_one(path: Path) -> tuple[dict[str, Any], pd.DataFrame]:
    manifest = read_manifest_file(path / MANIFEST_FILE)
    config = manifest.get("config")
    kind = "search" if isinstance(config, dict) and manifest.get("kind") != "tabular-baseline" else "baseline"
    config = config if isinstance(config, dict) else {}
    ident = {
        "path": str(path),
        "kind": kind,
        "space": config.get("space", manifest.get("space")),
        "dataset": config.get("dataset", manifest.get("dataset")),
        "method": config.get("method", manifest.get("method")),
        "seed": config.get("seed", manifest.get("seed")),
        "preset": config.get("preset", "table" if kind == "baseline" else None),
        "status": manifest.get("status"),
    }
    # A run with plugins is its own variant of the method: "darts+SkipPenalty".
    plugins = [str(p.get("ref", "")).rpartition(":")[2] for p in config.get("plugins") or [] if isinstance(p, dict)]
    if ident["method"] is not None and plugins:
        ident["method"] = "+".join([str(ident["method"]), *filter(None, plugins)])
    missing = [k for k in ("space", "dataset", "method") if ident[k] is None]
    if missing:
        raise RunDirError(
            f"{path / MANIFEST_FILE} names no {', '.join(missing)} (neither in 'config' nor at the top); "
            f"it was not written by `nbh search` or `nbh baseline`"
        )
    epochs = _read_epochs(path)
    stopped = manifest.get("stopped_early")
    result_epoch = manifest.get("result_epoch")
    if len(epochs):
        try:
            epochs = _derive(epochs, ident, kind, stopped, result_epoch)
        except (KeyError, TypeError, ValueError) as exc:  # a readable file with columns of the wrong kind
            raise RunDirError(
                f"{path / TRAJECTORY_FILE} has unexpected contents ({type(exc).__name__}: {str(exc)[:80]}); "
                f"restore it or remove the run"
            ) from None
        epochs = epochs.assign(**ident)
    answer = epochs[epochs["answer"]] if len(epochs) else epochs
    row = {
        **ident,
        "error": manifest.get("error"),
        "epochs": len(epochs),
        "stopped_early": stopped,
        "result_epoch": result_epoch,
        "answer_epoch": _first(answer, "evaluation" if kind == "baseline" else "epoch"),
        "config_hash": _config_hash(config or ident),
        "_config": config,
    }
    for metric in FINAL_METRICS:
        if metric in epochs.columns:
            row[f"final_{metric}"] = _first(answer, metric)
    return row, epochs


def _read_epochs(path: Path) -> pd.DataFrame:
    file = path / TRAJECTORY_FILE
    if not file.is_file():
        return pd.DataFrame()
    frame = read_table_file(file, fix="restore it or remove the run").to_pandas()
    return rename_legacy(frame)


def _derive(
    frame: pd.DataFrame, ident: dict[str, Any], kind: str, stopped: str | None, result_epoch: int | None
) -> pd.DataFrame:
    frame = frame.copy()
    nan = pd.Series(np.nan, index=frame.index)

    def col(name: str) -> pd.Series:
        return pd.to_numeric(frame[name], errors="coerce") if name in frame.columns else nan

    if kind == "baseline":
        frame["epoch"] = pd.Series(pd.NA, index=frame.index, dtype="Int64")
        frame["test_acc"] = col("incumbent_test_acc")
    elif ident["space"] == "nb201":
        dataset = str(ident["dataset"])
        frame["test_acc"] = col(nb201_table_column(dataset, "test"))
        frame["gap_table"] = col("valid_acc") - col(nb201_table_column(dataset, "valid"))
        frame["n_param_free"] = col("n_parameter_free")
    else:
        frame["test_acc"] = col("nb101_test_acc")
        frame["gap_table"] = col("valid_acc") - col("nb101_valid_acc")
        frame["n_param_free"] = col("n_maxpool")
    frame["test_regret"] = col("regret_test")
    if "pt_regret_test" in frame.columns:  # DARTS-PT's selection, where the run measured it
        frame["pt_test_regret"] = col("pt_regret_test")
    if kind == "search":
        frame["gap_final"] = col("valid_acc") - col("final_valid_acc")
        frame["eigenvalue_smooth"] = moving_average(col("eigenvalue"), EIGEN_WINDOW)
        frame["early_stop_epoch"] = float(frame["epoch"].iloc[-1]) if stopped else math.nan
    frame["answer"] = _answer_mask(frame, result_epoch if kind == "search" else None)
    return frame


def _answer_mask(frame: pd.DataFrame, result_epoch: int | None) -> pd.Series:
    mask = pd.Series(False, index=frame.index)
    position = len(frame) - 1
    if result_epoch is not None:
        column = "schedule_epoch" if "schedule_epoch" in frame.columns else "epoch"
        hits = np.flatnonzero(frame[column].to_numpy() == result_epoch)
        if len(hits):
            position = int(hits[-1])
    mask.iloc[position] = True
    return mask


def _first(frame: pd.DataFrame, column: str) -> Any:
    if column not in frame.columns or not len(frame):
        return None
    value = frame[column].iloc[0]
    if value is pd.NA:
        return None
    return value.item() if isinstance(value, np.generic) else value


def _config_hash(config: dict[str, Any]) -> str:
    """12 hex digits of the config's sha256, seed and threads left out (equal for seeds of one setting)."""
    kept = {k: v for k, v in config.items() if k not in _CONFIG_IGNORE}
    return hashlib.sha256(json.dumps(kept, sort_keys=True, default=str).encode()).hexdigest()[:12]


def _config_diffs(runs: pd.DataFrame) -> list[str]:
    """Per run: the dotted keys where its config differs from the most common one of its method.

    Runs are grouped by (space, dataset, method); ``""`` when the run has the group's usual config.
    """
    out = pd.Series("", index=runs.index, dtype=object)
    for _, group in runs.groupby(["space", "dataset", "method"], dropna=False):
        usual = group["config_hash"].mode().iloc[0]
        reference = group.loc[group["config_hash"] == usual, "_config"].iloc[0]
        for index, config in group["_config"].items():
            out[index] = ", ".join(config_diff(reference, config, ignore=_CONFIG_IGNORE))
    return out.tolist()
