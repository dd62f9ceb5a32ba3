"""Issue 17's acceptance measurement for one setting of ``collapse_search.SETTINGS``: DARTS and the
robust methods on seeds nobody tuned on, and a verdict per criterion::

    python benchmarks/fidelity/acceptance.py --row alr5                 # runs what is missing, then judges
    python benchmarks/fidelity/acceptance.py --row alr5 --judge-only    # judges the runs already there

The criteria (medians over the seeds):

1. DARTS (first order) ends with at least 4 of 6 parameter-free ops;
2. ... and at most 70% NB201 CIFAR-10 test accuracy;
3. ... its skip connections rise over the run: the final count exceeds the count after epoch 1
   (the median over seeds of final minus first is > 0);
4. at least two of R-DARTS(L2), SDARTS-RS, SDARTS-ADV, beta-DARTS and DARTS-ES end with at least
   88% test accuracy;
5. DARTS's Hessian eigenvalue rises: the last measured eigenvalue exceeds the first in the median.

Evidence, not a test: the runs take tens of minutes to hours on 2 cores. The per-run lines go to
``results.csv`` (see ``collapse_search.py``); the verdicts are printed.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from collapse_search import SETTINGS, run_all, write_results

ACCEPTANCE_SEEDS = (10, 11, 12, 13, 14)
"""Seeds no setting was tuned on (the search used 0 and 1)."""
ROBUST = ("rdarts-l2", "sdarts-rs", "sdarts-adv", "beta-darts", "darts-es")


def judge(rows: list[dict[str, Any]], row: str, seeds: tuple[int, ...]) -> list[tuple[str, bool, str]]:
    """(criterion, met, the figures behind it) for setting ``row`` over ``seeds``."""

    def runs(method: str) -> list[dict[str, Any]]:
        return [r for r in rows if r["row"] == row and r["method"] == method and int(r["seed"]) in seeds]

    darts = runs("darts")
    verdicts: list[tuple[str, bool, str]] = []
    if len(darts) < len(seeds):
        return [("all DARTS runs present", False, f"{len(darts)} of {len(seeds)} seeds have run")]
    free = [int(r["param_free"]) for r in darts]
    acc = [float(r["test_acc"]) for r in darts]
    rise = [int(r["skip"]) - int(str(r["skip_by_epoch"]).split()[0]) for r in darts]
    eig = [float(r["eig_last"]) - float(r["eig_first"]) for r in darts]
    verdicts.append(("DARTS median param-free ops >= 4", statistics.median(free) >= 4, f"per seed {free}"))
    verdicts.append(("DARTS median test acc <= 70%", statistics.median(acc) <= 70, f"per seed {acc}"))
    verdicts.append(("DARTS skip count rises (final - epoch 1)", statistics.median(rise) > 0, f"per seed {rise}"))
    holding = []
    for method in ROBUST:
        found = runs(method)
        if len(found) == len(seeds):
            median = statistics.median(float(r["test_acc"]) for r in found)
            holding.append(f"{method} {median:.2f}")
            if median < 88:
                holding[-1] += " (<88)"
    met = sum(not h.endswith("(<88)") for h in holding)
    verdicts.append(("two robust methods with median test acc >= 88%", met >= 2, "; ".join(holding) or "none ran"))
    verdicts.append(("DARTS eigenvalue rises (last - first)", statistics.median(eig) > 0, f"per seed {eig}"))
    return verdicts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--row", required=True, help=f"a setting of collapse_search.py: {', '.join(SETTINGS)}")
    parser.add_argument("--methods", default=",".join(("darts", *ROBUST)), help="methods to run (default: all six)")
    parser.add_argument("--seeds", default=",".join(map(str, ACCEPTANCE_SEEDS)))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--root", type=Path, default=Path("results/fidelity"))
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--judge-only", action="store_true", help="judge the runs already there; run nothing")
    args = parser.parse_args()
    if args.row not in SETTINGS:
        parser.error(f"--row: choose from {', '.join(SETTINGS)}")
    seeds = tuple(int(s) for s in args.seeds.split(","))
    if not args.judge_only:
        jobs = [(args.row, m, s) for m in args.methods.split(",") for s in seeds]
        run_all(args.root, jobs, args.threads, args.jobs, args.data_dir)
    for criterion, met, figures in judge(write_results(args.root), args.row, seeds):
        print(f"{'PASS' if met else 'FAIL'}  {criterion}: {figures}")


if __name__ == "__main__":
    main()
