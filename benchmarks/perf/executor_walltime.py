"""The wall time of one suite under each executor on this machine (issue 19): ``nbh sweep`` from a
fresh results folder with ``--executor local``, ``ray`` (a local Ray instance) and ``slurm`` (a
single-node SLURM: the one ``SLURM_CONF`` points at, else one started here as the tests start
theirs, from ``tests/slurm_cluster.py``), one after another, each run given the same CPUs. Not a
test: it takes as long as the suite takes, three times.

    NBH_DATA_DIR=../shared/data python benchmarks/perf/executor_walltime.py           # quickstart, collapse
    python benchmarks/perf/executor_walltime.py --executors local,slurm --out walltime.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parents[2]


@contextlib.contextmanager
def slurm() -> Iterator[None]:
    """A SLURM to submit to: the configured one, else the tests' single-node cluster for the block."""
    if os.environ.get("SLURM_CONF"):
        yield
        return
    sys.path.insert(0, str(HERE / "tests"))
    from slurm_cluster import slurm_cluster

    cluster = slurm_cluster.__wrapped__()  # the fixture's generator: sets SLURM_CONF while it runs
    next(cluster)
    try:
        yield
    finally:
        next(cluster, None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--suite", default=str(HERE / "benchmarks/suites/quickstart.yaml"))
    parser.add_argument("--preset", default="collapse")
    parser.add_argument("--executors", default="local,ray,slurm")
    parser.add_argument("--cpus-per-run", default="1", help="CPUs (threads) of each run (default 1)")
    parser.add_argument("--out", type=Path, default=None, help="also write the results as JSON here")
    args = parser.parse_args()
    from nasbench_harness.threads import usable_cpus

    results = {}
    for executor in args.executors.split(","):
        with tempfile.TemporaryDirectory() as root:
            command = [sys.executable, "-m", "nasbench_harness.cli.main", "sweep", args.suite, "--preset", args.preset,
                       "--root", root, "--executor", executor, "--cpus-per-run", args.cpus_per_run]  # fmt: skip
            if executor == "local":
                command += ["--workers", str(max(1, usable_cpus() // int(args.cpus_per_run)))]
            context = slurm() if executor == "slurm" else contextlib.nullcontext()
            with context:
                started = time.perf_counter()
                done = subprocess.run(command, capture_output=True, text=True)
                wall = time.perf_counter() - started
            tail = (done.stdout + done.stderr).strip().splitlines()[-3:]
            results[executor] = {"wall_s": round(wall, 1), "exit": done.returncode, "tail": tail}
            print(f"{executor:<6} {wall / 60:6.1f} min  exit {done.returncode}  {tail[-1] if tail else ''}", flush=True)
    if args.out:
        args.out.write_text(json.dumps({"suite": Path(args.suite).stem, "preset": args.preset, **results}, indent=2))


if __name__ == "__main__":
    main()
