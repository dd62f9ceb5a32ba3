"""Read the official NAS-Bench-201 ``.pth`` files with the official ``nas-bench-201`` package.

Every value comes from the official API's own accessors (``ArchResults.get_metrics`` with
``is_random=False`` for the seed mean and ``is_random=<seed>`` per seed, ``get_compute_costs``),
for both schedules (hp 200 and hp 12) explicitly, never from its defaults (``hp='12'`` and a
random trial). Loading the full v1_1 file takes minutes and tens of GB of RAM; it is done once.
"""

from __future__ import annotations

import os
import pickle
import re
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from nasbench_harness.errors import SourceFileError
from nasbench_harness.spaces.nb201 import NUM_CELLS, NB201Genotype
from nasbench_harness.tabular.cache import ImportedTable, Progress
from nasbench_harness.tabular.nb201_columns import BENCHMARK, ROW_KEY, identity_columns, sorted_metrics
from nasbench_harness.tabular.nb201_metrics import DATASETS, HPS, SPLITS, MetricKey

PTH_IMPORTER_VERSION = 1
_HP_FIELDS = ("200", "12")


def read_official(path: Path, *, trust_pickle: bool = False, progress: Progress | None = None) -> ImportedTable:
    """All metrics of an official NB201 benchmark file, keyed by canonical metric."""
    api = _open_api(path, trust_pickle)
    _check_meta_archs(path, api.meta_archs)
    metrics: dict[MetricKey, np.ndarray] = {}
    skipped: set[str] = set()

    def put(key: MetricKey, index: int, value: Any) -> None:
        if key not in metrics:
            metrics[key] = np.full(NUM_CELLS, np.nan)
        metrics[key][index] = np.nan if value is None else float(value)

    evaluated = [int(i) for i in api.evaluated_indexes]
    for done, index in enumerate(evaluated, 1):
        for hp, results in api.arch2infos_dict[index].items():
            if hp not in HPS:
                skipped.add(f"hp={hp}")
                continue
            for dataset in results.get_dataset_names():
                if dataset not in DATASETS:
                    skipped.add(f"dataset {dataset}")
                    continue
                _read_dataset(results, dataset, hp, index, put, skipped)
        if progress is not None:
            progress("read", done, len(evaluated))

    return ImportedTable(
        benchmark=BENCHMARK,
        row_key=ROW_KEY,
        identity=identity_columns(),
        metrics=sorted_metrics(metrics),
        meanings={str(k): k.meaning() for k in metrics},
        notes={},
        source=path,
        source_format="nb201-pth",
        importer="nb201-pth (official nas-bench-201 API)",
        importer_version=PTH_IMPORTER_VERSION,
        extra={
            "evaluated_cells": len(evaluated),
            "hps": sorted({hp for i in evaluated for hp in api.arch2infos_dict[i]}),
            "skipped": sorted(skipped),
            "trial_order": "#k = k-th training seed in ascending order; its seed value is <dataset>/seed@<hp>#k",
        },
    )


def _read_dataset(results: Any, dataset: str, hp: str, index: int, put: Any, skipped: set[str]) -> None:
    """Seed-mean and per-seed numbers of one (cell, hp, dataset) from an ``ArchResults``."""
    seeds = results.get_dataset_seeds(dataset)
    first = results.query(dataset, seeds[0])
    put(MetricKey(dataset, None, "n_seeds", hp), index, len(seeds))
    for k, seed in enumerate(seeds):
        put(MetricKey(dataset, None, "seed", hp, k), index, seed)
    costs = results.get_compute_costs(dataset)
    for quantity in ("params", "flops", "latency"):
        put(MetricKey(dataset, None, quantity, hp), index, costs.get(quantity))
    for split in ("train", *first.get_eval_set()):
        if split not in SPLITS[dataset]:
            skipped.add(f"{dataset} split {split}")
            continue
        mean = results.get_metrics(dataset, split, is_random=False)
        put(MetricKey(dataset, split, "accuracy", hp), index, mean["accuracy"])
        put(MetricKey(dataset, split, "loss", hp), index, mean["loss"])
        put(MetricKey(dataset, split, "time", hp), index, mean["all_time"])
        for k, seed in enumerate(seeds):
            trial = results.get_metrics(dataset, split, is_random=seed)
            put(MetricKey(dataset, split, "accuracy", hp, k), index, trial["accuracy"])
            put(MetricKey(dataset, split, "loss", hp, k), index, trial["loss"])


def _open_api(path: Path, trust_pickle: bool) -> Any:
    try:
        from nas_201_api import NASBench201API
    except ImportError:  # pragma: no cover - a declared dependency
        raise SourceFileError("importing a .pth needs the official package: pip install nas-bench-201") from None
    with open(path, "rb") as f:
        magic = f.read(2)
    if magic[:2] != b"PK" and magic[:1] != b"\x80":  # torch's zip format, or a legacy pickle
        raise SourceFileError(_unreadable(path, ValueError("neither a torch zip archive nor a pickle")))
    try:
        with _weights_only_off(trust_pickle):
            return NASBench201API(str(path), verbose=False)
    except pickle.UnpicklingError as exc:
        if "weights_only" in str(exc) or "Weights only" in str(exc):
            named = re.search(r"GLOBAL ([\w.]{1,80})", str(exc))
            raise SourceFileError(
                f"{path} holds objects that torch's safe loader refuses to unpickle"
                f"{f' ({named.group(1)})' if named else ''}; it was not unpickled. If the file comes from "
                "the official NAS-Bench-201 release, re-run with --trust-pickle (unpickling runs code from "
                "the file, so only do this for files you trust)"
            ) from None
        raise SourceFileError(_unreadable(path, exc)) from None
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        raise SourceFileError(_unreadable(path, exc)) from None
    except (AssertionError, KeyError, AttributeError, TypeError) as exc:
        raise SourceFileError(
            f"{path} is a torch file but not a NAS-Bench-201 benchmark ({type(exc).__name__}: {exc}); "
            "expected NAS-Bench-201-v1_0-e61699.pth or NAS-Bench-201-v1_1-096897.pth"
        ) from None


def _unreadable(path: Path, exc: BaseException) -> str:
    first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return (
        f"cannot load {path} as a torch file ({first}); it is truncated, damaged or not a .pth. "
        "Compare its size and sha256 with the official release and download it again"
    )


def _check_meta_archs(path: Path, meta_archs: list[str]) -> None:
    if len(meta_archs) != NUM_CELLS:
        raise SourceFileError(f"{path} lists {len(meta_archs)} architectures; NAS-Bench-201 has {NUM_CELLS}")
    for i, arch in enumerate(meta_archs):
        if arch != NB201Genotype.from_index(i).to_string():
            raise SourceFileError(
                f"{path}: architecture #{i} is {arch}, but NAS-Bench-201's #{i} is "
                f"{NB201Genotype.from_index(i)}; this is not an official NAS-Bench-201 file"
            )


@contextmanager
def _weights_only_off(enabled: bool):  # type: ignore[no-untyped-def]
    """Let the official API's ``torch.load`` unpickle everything, for trusted files only; otherwise
    force torch's weights-only loader, even when the environment asks torch to skip it
    (``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD`` set in the shell is not a --trust-pickle)."""
    on, off = "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "TORCH_FORCE_WEIGHTS_ONLY_LOAD"
    if not enabled:
        on, off = off, on
    previous = {name: os.environ.get(name) for name in (on, off)}
    os.environ[on] = "1"
    os.environ.pop(off, None)
    try:
        with warnings.catch_warnings():  # torch warns about the variable and about old pickle protocols
            warnings.simplefilter("ignore")
            yield
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
