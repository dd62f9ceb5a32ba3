"""Fake but complete run directories with known numbers, for the analysis, figures and report tests.

:func:`write_run` writes a search run (``manifest.json``, ``trajectory.parquet``, ``alphas.parquet``)
as ``nbh search`` does, :func:`write_baseline` a table-only baseline as ``nbh baseline`` does, and
:func:`write_sweep` many search runs in the ``results/`` layout. Default numbers follow
:func:`default_columns` (so tests can recompute them); any column can be overridden with a scalar
(every epoch) or a list (one value per epoch).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

NB201_ARCH = "|nor_conv_3x3~0|+|nor_conv_3x3~0|skip_connect~1|+|skip_connect~0|nor_conv_1x1~1|avg_pool_3x3~2|"
NB1SHOT1_GENOTYPE = "conv3x3-bn-relu~input|maxpool3x3~input,block0|conv1x1-bn-relu~block1|output~input,block2"
NB201_OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
NB201_EDGES = ("1->0", "2->0", "2->1", "3->0", "3->1", "3->2")
NOW = "2026-01-01T00:00:00+00:00"


def default_columns(space: str, seed: int, epochs: int, eigen_every: int = 2) -> dict[str, list[Any]]:
    """The default trajectory columns of a fake run: simple formulas of ``seed`` and the epoch ``e``.

    ``valid_acc = 50 + e + seed / 10``, ``final_valid_acc = valid_acc - 20 + e``; NB201:
    ``nb201_<d>_test = 80 + e + seed / 10`` for every dataset d (valid: 1 point lower),
    ``regret_test = 94.37 - nb201_cifar10_test``, ``n_parameter_free = e % 4``; NB-1Shot1:
    ``nb101_test_acc = 90 + e / 10 + seed / 10`` (valid 0.5 higher), ``n_maxpool = e % 3``.
    ``eigenvalue = 0.1 * e`` on every ``eigen_every``-th epoch, null otherwise.
    """
    es = list(range(1, epochs + 1))
    valid = [50.0 + e + seed / 10 for e in es]
    cols: dict[str, list[Any]] = {
        "epoch": es,
        "schedule_epoch": es,
        "action": [None] * epochs,
        "train_loss": [2.0 / e for e in es],
        "train_acc": [40.0 + e for e in es],
        "lr": [0.025] * epochs,
        "arch_lr": [3e-4] * epochs,
        "valid_loss": [2.1 / e for e in es],
        "valid_acc": valid,
        "final_valid_acc": [v - 20 + e for v, e in zip(valid, es, strict=True)],
        "gap": [20.0 - e for e in es],
        "eigenvalue": [0.1 * e if e % eigen_every == 0 else None for e in es],
        "epoch_time_s": [5.0] * epochs,
        "tracking_time_s": [0.5] * epochs,
        "wall_time_s": [5.5 * e for e in es],
    }
    if space == "nb201":
        test = [80.0 + e + seed / 10 for e in es]
        cols |= {
            "genotype": [NB201_ARCH] * epochs,
            "genotype_index": [1234] * epochs,
            "n_skip_connect": [e % 3 for e in es],
            "n_none": [0] * epochs,
            "n_parameter_free": [e % 4 for e in es],
        }
        for d in ("cifar10", "cifar100", "imagenet16_120"):
            cols[f"nb201_{d}_valid"] = [t - 1 for t in test]
            cols[f"nb201_{d}_test"] = list(test)
        cols["regret_valid"] = [91.61 - (t - 1) for t in test]
        cols["regret_test"] = [94.37 - t for t in test]
    else:
        test = [90.0 + e / 10 + seed / 10 for e in es]
        cols |= {
            "genotype": [NB1SHOT1_GENOTYPE] * epochs,
            "module_hash": ["0" * 32] * epochs,
            "in_benchmark": [True] * epochs,
            "benchmark_status": ["in benchmark"] * epochs,
            "nb101_valid_acc": [t + 0.5 for t in test],
            "nb101_test_acc": test,
            "regret_valid": [95.0 - (t + 0.5) for t in test],
            "regret_test": [94.5 - t for t in test],
            "n_maxpool": [e % 3 for e in es],
            "input_output_weight": [0.2] * epochs,
            "input_output_dominates": [False] * epochs,
        }
    return cols


def write_run(
    directory: str | Path,
    space: str = "nb201",
    dataset: str = "cifar10",
    method: str = "darts",
    seed: int = 0,
    epochs: int = 5,
    *,
    status: str = "finished",
    error: str | None = None,
    preset: str = "cpu",
    stopped_early: str | None = None,
    result_epoch: int | None = None,
    config: dict[str, Any] | None = None,
    **column_overrides: Any,
) -> Path:
    """Write a search run directory like ``nbh search``'s and return its path.

    ``epochs`` rows are written (0: no trajectory, as a run that failed in its first epoch).
    ``column_overrides`` replace or add trajectory columns (a scalar for every epoch, or a list);
    ``config`` entries update the config dict (e.g. ``{"optim": {"lr": 0.05}}``).
    """
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    run_config = {
        "space": space,
        "method": method,
        "method_options": {},
        "dataset": dataset,
        "seed": seed,
        "preset": preset,
        "epochs": max(epochs, 1),
        "batch_size": 64,
        "optim": {"lr": 0.025, "weight_decay": 0.0005},
        "arch_optim": {"lr": 0.0003},
        "tracking": {"eigen_every": 2},
        "threads": None,
        "plugins": [],
        **(config or {}),
    }
    manifest: dict[str, Any] = {
        "schema_version": 1,
        "status": status,
        "error": error,
        "created": NOW,
        "updated": NOW,
        "epochs_completed": epochs,
        "last_epoch": epochs or None,
        "config": run_config,
        "seed": seed,
        "method": method,
        "device": "cpu",
        "threads": 2,
        "versions": {"python": "3.11", "nasbench_harness": "0.1.0"},
        "git": {"commit": "0" * 40, "dirty": False},
        "data": {"dataset": dataset, "split_seed": 0},
        "table": {"benchmark": "nb201" if space == "nb201" else "nb101", "source": None, "cache": "/tmp/cache"},
        "plugins": [],
    }
    if stopped_early is not None:
        manifest["stopped_early"] = stopped_early
        manifest["result_epoch"] = result_epoch
    if epochs:
        cols = default_columns(space, seed, epochs)
        for name, value in column_overrides.items():
            cols[name] = list(value) if isinstance(value, list | tuple) else [value] * epochs
        pq.write_table(pa.table(cols), path / "trajectory.parquet")
        pq.write_table(pa.Table.from_pylist(_alpha_rows(space, epochs)), path / "alphas.parquet")
    (path / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return path


def write_baseline(
    directory: str | Path,
    space: str = "nb201",
    dataset: str = "cifar10",
    method: str = "random-search",
    seed: int = 0,
    n: int = 10,
    **column_overrides: Any,
) -> Path:
    """Write a table-only baseline like ``nbh baseline``'s; ``incumbent_test_acc = 85 + i / 2`` at evaluation i."""
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    ev = list(range(1, n + 1))
    cols: dict[str, list[Any]] = {
        "method": [method] * n,
        "seed": [seed] * n,
        "evaluation": ev,
        "genotype": [NB201_ARCH] * n,
        "valid_acc": [80.0 + i / 4 for i in ev],
        "parent": [None] * n,
        "incumbent": [NB201_ARCH] * n,
        "incumbent_valid_acc": [80.0 + i / 4 for i in ev],
        "incumbent_test_acc": [85.0 + i / 2 for i in ev],
        "regret_valid": [91.61 - (80.0 + i / 4) for i in ev],
        "regret_test": [94.37 - (85.0 + i / 2) for i in ev],
        "skipped_not_in_benchmark": [0] * n,
    }
    for name, value in column_overrides.items():
        cols[name] = list(value) if isinstance(value, list | tuple) else [value] * n
    pq.write_table(pa.table(cols), path / "trajectory.parquet")
    manifest = {
        "schema_version": 1,
        "kind": "tabular-baseline",
        "status": "finished",
        "error": None,
        "created": NOW,
        "updated": NOW,
        "method": method,
        "space": space,
        "dataset": dataset,
        "seed": seed,
        "n": n,
        "population": 10 if method == "regularized-evolution" else None,
        "sample": 3 if method == "regularized-evolution" else None,
        "metrics": {"valid": "valid", "test": "test"},
        "skipped_not_in_benchmark": 0,
        "incumbent": NB201_ARCH,
        "incumbent_test_acc": cols["incumbent_test_acc"][-1],
        "regret_test": cols["regret_test"][-1],
        "versions": {"python": "3.11"},
        "git": {"commit": "0" * 40, "dirty": False},
    }
    (path / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return path


def write_sweep(
    root: str | Path,
    methods: Iterable[str],
    seeds: Iterable[int],
    space: str = "nb201",
    dataset: str = "cifar10",
    epochs: int = 5,
    columns: Callable[[str, int], dict[str, Any]] | None = None,
    **run_options: Any,
) -> list[Path]:
    """Write one run per (method, seed) at ``root/<space>/<dataset>/<method>/cpu/seed-<seed>``.

    ``columns(method, seed)`` returns extra ``write_run`` keyword arguments (column overrides,
    ``status``, ...) for that run; ``run_options`` go to every run.
    """
    paths = []
    for method in methods:
        for seed in seeds:
            extra = {**run_options, **(columns(method, seed) if columns else {})}
            target = Path(root) / space / dataset / method / "cpu" / f"seed-{seed}"
            paths.append(write_run(target, space, dataset, method, seed, epochs, **extra))
    return paths


def _alpha_rows(space: str, epochs: int) -> list[dict[str, Any]]:
    if space == "nb201":
        groups = [(edge, NB201_OPS) for edge in NB201_EDGES]
    else:
        ops = ("conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3")
        groups = [(f"block{i}", ops) for i in range(3)] + [("output", ("input", "block0", "block1", "block2"))]
    rows = []
    for epoch in range(1, epochs + 1):
        for edge, ops in groups:
            for k, op in enumerate(ops):
                rows.append({"epoch": epoch, "edge": edge, "op": op, "alpha": 1e-3 * k * epoch, "weight": 1 / len(ops)})
    return rows
