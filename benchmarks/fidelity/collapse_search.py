"""Search for a reduced setting where DARTS collapses on NB201 CIFAR-10 (issue 17): evidence, not a test.

Each row of :data:`SETTINGS` is a set of config overrides on top of the ``cpu`` preset. The script
runs ``nbh search`` for every (row, method, seed) asked, each in its own run directory under
``--root`` (re-running resumes or skips what is done), then writes one line per run to
``results.csv`` next to this file and prints the table::

    python benchmarks/fidelity/collapse_search.py --rows cpu,alr5 --seeds 0,1 --jobs 2
    python benchmarks/fidelity/collapse_search.py --summary            # the table of what has run

Per run: final parameter-free ops (NB201: skip connections + pools; of 6 edges), final skip
connections, the skip count by epoch, the derived cell's NB201 CIFAR-10 test accuracy (200-epoch
table, mean over its seeds), the Hessian eigenvalue first and last, and the wall time. ``--threads``
is per run; ``--jobs`` runs that many at once (keep jobs x threads within the machine's cores).
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results.csv"

# name -> (overrides on the cpu preset, why this row). Every row sets the alphas' learning rate
# itself. The cpu preset otherwise: C=8, N=1 (cells per stage), 5,000 + 5,000 images at 16x16, batch 64,
# 50 epochs, SGD 0.025 cosine. NB201's own setting has 25,000 images per split at batch 64: 390
# steps an epoch, 19,500 in 50 epochs; the cpu preset's 78 steps an epoch give 3,900, so at 3e-4
# the alphas' Adam steps (each moving an alpha by about the learning rate) add up to a fifth of
# the paper's total movement.
SETTINGS: dict[str, tuple[dict[str, Any], str]] = {
    "cpu": ({"arch_optim": {"lr": 3e-4}}, "the cpu preset before issue 17 (the paper's arch lr 3e-4)"),
    "alr5": (
        {"arch_optim": {"lr": 1.5e-3}},
        "arch lr x5: the paper's total alpha movement in 3,900 steps",
    ),
    "alr10": ({"arch_optim": {"lr": 3e-3}}, "arch lr x10: twice the paper's total alpha movement"),
    "alr5-e100": (
        {"arch_optim": {"lr": 1.5e-3}, "epochs": 100},
        "arch lr x5 over 100 epochs (the DrNAS, SDARTS and beta-DARTS NB201 schedule length)",
    ),
    "alr10-e100": (
        {"arch_optim": {"lr": 3e-3}, "epochs": 100},
        "arch lr x10 over 100 epochs: the collapse preset",
    ),
    "n2-alr5": (
        {"model": {"cells_per_stage": 2}, "arch_optim": {"lr": 1.5e-3}},
        "deeper supernet (N=2, 8 cells) and arch lr x5",
    ),
    "n3-alr5-e30": (
        {"model": {"cells_per_stage": 3}, "arch_optim": {"lr": 1.5e-3}, "epochs": 30},
        "N=3 (11 cells), arch lr x5, 30 epochs",
    ),
    "bs16": (
        {"batch_size": 16, "epochs": 30, "arch_optim": {"lr": 3e-4}},
        "batch 16: 312 steps an epoch, 9,360 in 30 epochs",
    ),
    "bs16-alr2": (
        {"batch_size": 16, "epochs": 30, "arch_optim": {"lr": 6e-4}},
        "batch 16 and arch lr x2: about the paper's alpha movement",
    ),
    "n2-bs32-alr2": (
        {"model": {"cells_per_stage": 2}, "batch_size": 32, "epochs": 40, "arch_optim": {"lr": 6e-4}},
        "N=2, batch 32 (156 steps an epoch), arch lr x2, 40 epochs",
    ),
}


def flat(overrides: dict[str, Any], prefix: str = "") -> list[str]:
    """``--set key=value`` arguments for nested ``overrides``."""
    out = []
    for key, value in overrides.items():
        if isinstance(value, dict):
            out += flat(value, f"{prefix}{key}.")
        else:
            out += ["--set", f"{prefix}{key}={value}"]
    return out


def run_dir(root: Path, row: str, method: str, seed: int) -> Path:
    return root / row / method / f"seed-{seed}"


def run_one(root: Path, row: str, method: str, seed: int, threads: int, data_dir: str | None) -> tuple[str, int]:
    """``nbh search`` of ``method`` at setting ``row`` and ``seed`` (resumed where it stopped); (dir, exit code)."""
    overrides, _ = SETTINGS[row]
    out = run_dir(root, row, method, seed)
    return search(out, ["--method", method, "--seed", str(seed), "--preset", "cpu", "--threads", str(threads),
                        *flat(overrides)], data_dir)  # fmt: skip


def search(out: Path, options: list[str], data_dir: str | None) -> tuple[str, int]:
    """``nbh search --device cpu --out OUT OPTIONS`` (``--resume`` when OUT holds a run), its output
    in ``OUT/../seed-<k>.log``; (dir, exit code)."""
    args = [sys.executable, "-m", "nasbench_harness.cli.main", "search", "--device", "cpu", "--out", str(out), *options]
    if (out / "manifest.json").exists():
        args.append("--resume")
    if data_dir:
        args += ["--data-dir", data_dir]
    log = out.parent / f"{out.name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w", encoding="utf-8") as f:
        code = subprocess.run(args, stdout=f, stderr=subprocess.STDOUT, check=False).returncode
    return str(out), code


def summarise(root: Path, row: str, method: str, seed: int) -> dict[str, Any] | None:
    """One line of ``results.csv`` for a run that has completed an epoch (None before)."""
    import json

    import pandas as pd

    out = run_dir(root, row, method, seed)
    if not (out / "trajectory.parquet").exists():
        return None
    manifest = json.loads((out / "manifest.json").read_text())
    traj = pd.read_parquet(out / "trajectory.parquet")
    # The method's answer: the last epoch, or the one an early stop names (DARTS-ES returns the
    # genotype from before the eigenvalue grew, not the one of the epoch it stopped in).
    answer = manifest.get("result_epoch")
    last = traj[traj["epoch"] == answer].iloc[-1] if answer is not None else traj.iloc[-1]
    eig = traj["eigenvalue"].dropna() if "eigenvalue" in traj else pd.Series(dtype=float)
    return {
        "row": row,
        "method": method,
        "seed": seed,
        "status": manifest.get("status"),
        "epochs": int(traj["epoch"].iloc[-1]),
        "result_epoch": int(last["epoch"]),
        "param_free": int(last["n_parameter_free"]),
        "skip": int(last["n_skip_connect"]),
        "skip_by_epoch": " ".join(str(int(v)) for v in traj["n_skip_connect"]),
        "test_acc": round(float(last["nb201_cifar10_test"]), 2),
        "best_test_along_run": round(float(traj["nb201_cifar10_test"].max()), 2),
        "eig_first": round(float(eig.iloc[0]), 4) if len(eig) else math.nan,
        "eig_last": round(float(eig.iloc[-1]), 4) if len(eig) else math.nan,
        "minutes": round(float(traj["wall_time_s"].iloc[-1]) / 60, 1) if "wall_time_s" in traj else math.nan,
        "genotype": last["genotype"],
        "error": str(manifest.get("error") or "")[:80],  # e.g. "interrupted by the user": stopped by hand
    }


def run_all(root: Path, jobs: list[tuple[str, str, int]], threads: int, parallel: int, data_dir: str | None) -> None:
    """Every (row, method, seed) of ``jobs``, ``parallel`` at once, each reported as it ends."""
    run_all_with(run_one, root, jobs, threads, parallel, data_dir)


def run_all_with(
    run: Callable[..., tuple[str, int]],
    root: Path,
    jobs: list[tuple[str, str, int]],
    threads: int,
    parallel: int,
    data_dir: str | None,
) -> None:
    """:func:`run_all` with another ``run(root, row, method, seed, threads, data_dir)``."""
    started = time.monotonic()
    with ThreadPoolExecutor(parallel) as pool:
        futures = [pool.submit(run, root, r, m, s, threads, data_dir) for r, m, s in jobs]
        for (r, m, s), future in zip(jobs, futures, strict=True):
            _, code = future.result()
            print(f"{r} {m} seed {s}: exit {code} ({(time.monotonic() - started) / 60:.1f} min)", flush=True)


def write_results(root: Path) -> list[dict[str, Any]]:
    """``results.csv`` from every run under ``root``; its rows."""
    rows = []
    for row in SETTINGS:
        for method_dir in sorted((root / row).glob("*")) if (root / row).is_dir() else []:
            for seed_dir in sorted(method_dir.glob("seed-*")):
                if seed_dir.is_dir():
                    found = summarise(root, row, method_dir.name, int(seed_dir.name.split("-")[1]))
                    if found:
                        rows.append(found)
    if rows:
        with open(RESULTS, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    return rows


def print_table(rows: list[dict[str, Any]]) -> None:
    cols = ["row", "method", "seed", "status", "epochs", "param_free", "skip", "test_acc", "eig_first", "eig_last",
            "minutes", "skip_by_epoch"]  # fmt: skip
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for r in rows:
        print("| " + " | ".join(str(r[c]) for c in cols) + " |")


def print_aggregate(rows: list[dict[str, Any]], seeds: set[int] | None = None) -> None:
    """Per (row, method), finished 50-epoch-or-longer runs only: seeds, median parameter-free ops,
    median test accuracy, runs ending in the all-parameter-free cell, runs whose eigenvalue rose."""
    import statistics

    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:
        if r["status"] == "finished" and (seeds is None or int(r["seed"]) in seeds):
            groups.setdefault((r["row"], r["method"]), []).append(r)
    print("| row | method | seeds | median param-free | median test acc | all 6 param-free | eigenvalue rose |")
    print("|---|---|---|---|---|---|---|")
    for (row, method), found in groups.items():
        found.sort(key=lambda r: int(r["seed"]))
        free = [int(r["param_free"]) for r in found]
        acc = [float(r["test_acc"]) for r in found]
        rose = sum(float(r["eig_last"]) > float(r["eig_first"]) for r in found)
        seeds_text = ",".join(str(r["seed"]) for r in found)
        print(f"| {row} | {method} | {seeds_text} | {statistics.median(free):g} | {statistics.median(acc):.2f} | "
              f"{free.count(6)} of {len(found)} | {rose} of {len(found)} |")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", default="", help=f"comma-separated rows of: {', '.join(SETTINGS)}")
    parser.add_argument("--methods", default="darts", help="comma-separated methods (default: darts)")
    parser.add_argument("--seeds", default="0,1", help="comma-separated seeds (default: 0,1)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per run (default 1)")
    parser.add_argument("--jobs", type=int, default=2, help="runs at once (default 2)")
    parser.add_argument("--root", type=Path, default=Path(os.environ.get("NBH_FIDELITY_ROOT", "results/fidelity")))
    parser.add_argument("--data-dir", default=None, help="the data directory (default: NBH_DATA_DIR)")
    parser.add_argument("--summary", action="store_true", help="only rewrite results.csv and print the table")
    args = parser.parse_args()
    if not args.summary:
        rows = [r for r in args.rows.split(",") if r]
        unknown = [r for r in rows if r not in SETTINGS]
        if unknown or not rows:
            parser.error(f"--rows: choose from {', '.join(SETTINGS)} (got {args.rows!r})")
        jobs = [(r, m, int(s)) for r in rows for m in args.methods.split(",") for s in args.seeds.split(",")]
        run_all(args.root, jobs, args.threads, args.jobs, args.data_dir)
    results = write_results(args.root)
    print_table(results)
    print()
    print_aggregate(results)


if __name__ == "__main__":
    main()
