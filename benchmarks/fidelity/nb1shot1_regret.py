"""Does a reduced NB-1Shot1 setting show DARTS's test regret rising over the epochs? (issue 17) Evidence, not a test.

The NB-1Shot1 and SDARTS papers plot the anytime NB101 test regret of the cell each method would
pick: DARTS's rises as its cells fill with the parameter-free op (maxpool3x3) while SDARTS's and
R-DARTS's stay low. This script runs ``nbh search`` on NB-1Shot1 space 3 for every (row, method,
seed) asked, each in its own directory under ``--root`` (resumed or skipped when there), writes one
line per run to ``nb1shot1_results.csv`` and prints it::

    NBH_DATA_DIR=../shared/data python benchmarks/fidelity/nb1shot1_regret.py --rows s3-collapse \\
        --methods darts,sdarts-rs --seeds 0,1,2 --jobs 2
    python benchmarks/fidelity/nb1shot1_regret.py --summary

Per run: how many epochs' derived cells the imported NB101 table has (the shared table is a ~30%
subset, so a cell outside it has no regret: the column is NaN, never a guess), the mean test
regret over the covered epochs of the first and the second half of the run, the last covered
regret, the maxpool blocks first and last, and the eigenvalue first and last. A rise needs
covered epochs in both halves; a run without them says so instead of a trend.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from collapse_search import flat, run_all_with, search

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "nb1shot1_results.csv"

# name -> (preset, overrides, why). NB-1Shot1's paper setting: C=16, 9 cells, batch 96, 50 epochs,
# arch Adam 3e-4 (README, "Searching NAS-Bench-1Shot1"); the cpu preset has 52 arch steps an epoch
# where the paper's 25,000 search-train images give 260.
ROWS: dict[str, tuple[str, dict[str, Any], str]] = {
    "s3-cpu": ("cpu", {"space": "nb1shot1-3"}, "space 3 at the cpu preset (arch lr 3e-4, 50 epochs)"),
    "s3-collapse": ("collapse", {"space": "nb1shot1-3"}, "space 3 at the collapse preset (arch lr 3e-3, 100 epochs)"),
}


def run_dir(root: Path, row: str, method: str, seed: int) -> Path:
    return root / row / method / f"seed-{seed}"


def run_one(root: Path, row: str, method: str, seed: int, threads: int, data_dir: str | None) -> tuple[str, int]:
    """``nbh search`` of ``method`` at ``row`` and ``seed`` (resumed where it stopped); (dir, exit code)."""
    preset, overrides, _ = ROWS[row]
    rest = {k: v for k, v in overrides.items() if k != "space"}
    options = ["--space", overrides["space"], "--method", method, "--seed", str(seed), "--preset", preset,
               "--threads", str(threads), *flat(rest)]  # fmt: skip
    return search(run_dir(root, row, method, seed), options, data_dir)


def _mean(values: list[float]) -> float:
    return round(sum(values) / len(values), 2) if values else math.nan


def summarise(root: Path, row: str, method: str, seed: int) -> dict[str, Any] | None:
    """One line of ``nb1shot1_results.csv`` for a run that has completed an epoch (None before)."""
    import pandas as pd

    out = run_dir(root, row, method, seed)
    if not (out / "trajectory.parquet").exists():
        return None
    manifest = json.loads((out / "manifest.json").read_text())
    traj = pd.read_parquet(out / "trajectory.parquet")
    regret = traj["regret_test"].astype(float)
    covered = traj[regret.notna()]
    half = (int(traj["epoch"].iloc[-1]) + 1) // 2
    first = covered[covered["epoch"] <= half]["regret_test"].tolist()
    second = covered[covered["epoch"] > half]["regret_test"].tolist()
    eig = traj["eigenvalue"].dropna() if "eigenvalue" in traj else pd.Series(dtype=float)
    return {
        "row": row,
        "method": method,
        "seed": seed,
        "status": manifest.get("status"),
        "epochs": int(traj["epoch"].iloc[-1]),
        "covered_epochs": len(covered),
        "regret_first_half": _mean(first),
        "regret_second_half": _mean(second),
        "covered_first_half": len(first),
        "covered_second_half": len(second),
        "regret_last_covered": round(float(covered["regret_test"].iloc[-1]), 2) if len(covered) else math.nan,
        # the rise the papers' figures show: the last covered regret over the lowest covered one
        "last_covered_epoch": int(covered["epoch"].iloc[-1]) if len(covered) else None,
        "regret_min_covered": round(float(covered["regret_test"].min()), 2) if len(covered) else math.nan,
        "rise_after_min": round(float(covered["regret_test"].iloc[-1] - covered["regret_test"].min()), 2)
        if len(covered)
        else math.nan,
        "maxpool_first": int(traj["n_maxpool"].iloc[0]),
        "maxpool_last": int(traj["n_maxpool"].iloc[-1]),
        "maxpool_by_epoch": " ".join(str(int(v)) for v in traj["n_maxpool"]),
        "regret_by_epoch": " ".join("-" if math.isnan(v) else f"{v:.1f}" for v in regret),
        "eig_first": round(float(eig.iloc[0]), 4) if len(eig) else math.nan,
        "eig_last": round(float(eig.iloc[-1]), 4) if len(eig) else math.nan,
        "minutes": round(float(traj["wall_time_s"].iloc[-1]) / 60, 1),
        "error": str(manifest.get("error") or "")[:80],
    }


def write_results(root: Path) -> list[dict[str, Any]]:
    """``nb1shot1_results.csv`` from every run under ``root``; its rows."""
    rows = []
    for row in ROWS:
        for method_dir in sorted((root / row).glob("*")) if (root / row).is_dir() else []:
            for seed_dir in sorted(d for d in method_dir.glob("seed-*") if d.is_dir()):
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
    cols = ["row", "method", "seed", "status", "epochs", "covered_epochs", "covered_first_half", "regret_first_half",
            "covered_second_half", "regret_second_half", "last_covered_epoch", "regret_min_covered", "rise_after_min",
            "maxpool_first", "maxpool_last", "eig_first", "eig_last", "minutes"]  # fmt: skip
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for r in rows:
        print("| " + " | ".join(str(r[c]) for c in cols) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", default="", help=f"comma-separated rows of: {', '.join(ROWS)}")
    parser.add_argument("--methods", default="darts", help="comma-separated methods (default: darts)")
    parser.add_argument("--seeds", default="0,1", help="comma-separated seeds (default: 0,1)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per run (default 1)")
    parser.add_argument("--jobs", type=int, default=2, help="runs at once (default 2)")
    parser.add_argument("--root", type=Path, default=Path(os.environ.get("NBH_FIDELITY_ROOT", "results/fidelity")))
    parser.add_argument("--data-dir", default=None, help="the data directory (default: NBH_DATA_DIR)")
    parser.add_argument("--summary", action="store_true", help="only rewrite the results file and print the table")
    args = parser.parse_args()
    if not args.summary:
        rows = [r for r in args.rows.split(",") if r]
        unknown = [r for r in rows if r not in ROWS]
        if unknown or not rows:
            parser.error(f"--rows: give rows of {', '.join(ROWS)} (unknown: {', '.join(unknown) or 'none given'})")
        jobs = [(r, m, int(s)) for r in rows for m in args.methods.split(",") for s in args.seeds.split(",")]
        run_all_with(run_one, args.root, jobs, args.threads, args.jobs, args.data_dir)
    print_table(write_results(args.root))


if __name__ == "__main__":
    main()
