"""A suite's runs with the local executor, one run per device against several packed on it, side
by side in one process (issue 19): wall time, runs per hour and their ratio, and the device each
run reports it trained on.

On a GPU machine it compares GPU shares (``--shares 1,0.25``: one run at a time on each GPU,
then four per GPU; the workers follow the share, ``CUDA_VISIBLE_DEVICES`` per worker); on the CPU
it compares worker counts (``--workers 1,2``: the cores split between them). The suite's runs are
cut to ``--epochs`` (default 5) so the comparison takes minutes; a full run's time is that times
its epochs / ``--epochs``, plus its start. Each configuration trains into its own temporary folder.

    NBH_DATA_DIR=../shared/data python benchmarks/perf/sweep_packing.py                # quickstart, collapse
    python benchmarks/perf/sweep_packing.py --shares 1,0.5,0.25 --epochs 10 --out packing.json

Measured on one NVIDIA H200 with 16 cores (torch 2.11, 2026-12-04; a 10,500-image CIFAR-10 subset,
all the collapse preset draws from): the quickstart's 4 runs cut to 5 epochs took 69.4 s one at a
time (1 GPU each, 16 threads) and 33.0 s four at once (0.25 GPU and 4 threads each): 2.11x the
runs per hour. These small networks leave most of the GPU idle, so packing pays.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parents[2]


def measure(runs: list[Any], workers: int | None, share: float | None, device: str, data_dir: str | None) -> dict:
    """One configuration: the runs trained from scratch in a fresh folder, timed end to end."""
    from nasbench_harness.execution.local import LocalBackend, run_sweep
    from nasbench_harness.execution.resources import place
    from nasbench_harness.execution.suite import PlannedRun

    backend = LocalBackend()
    placement = place(backend.capacity(), device, share, None, workers)
    with tempfile.TemporaryDirectory() as folder:
        moved = [PlannedRun(r.run_id, r.config, Path(folder) / r.run_id) for r in runs]
        started = time.perf_counter()
        outcomes = run_sweep(moved, Path(folder) / "sweep", backend=backend, placement=placement, data_dir=data_dir)
        wall = time.perf_counter() - started
    return {
        "placement": placement.describe(),
        "workers": placement.workers,
        "gpus_per_run": placement.gpus_per_run,
        "wall_s": round(wall, 2),
        "runs_per_hour": round(3600 * len(runs) / wall, 1),
        "statuses": sorted({o.status for o in outcomes}),
        "devices": sorted({o.device for o in outcomes}),
        "failures": [o.message for o in outcomes if o.status != "finished"][:2],
    }


def main() -> None:
    import torch

    from nasbench_harness.execution.suite import PlannedRun, expand, load_suite

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--suite", default=str(HERE / "benchmarks/suites/quickstart.yaml"))
    parser.add_argument("--preset", default="collapse")
    parser.add_argument("--epochs", type=int, default=5, help="epochs per run (default 5)")
    parser.add_argument("--shares", default="1,0.25", help="GPU shares compared on a GPU (default 1,0.25)")
    parser.add_argument("--workers", default="1,2", help="worker counts compared on the CPU (default 1,2)")
    parser.add_argument("--data-dir", default=None, help="the data directory (default: NBH_DATA_DIR)")
    parser.add_argument("--out", type=Path, default=None, help="also write the results as JSON here")
    args = parser.parse_args()

    runs = expand(load_suite(args.suite), args.preset, "unused")
    runs = [PlannedRun(r.run_id, r.config.model_copy(update={"epochs": args.epochs}), r.path) for r in runs]
    gpu = torch.cuda.is_available()
    if gpu:
        configs = [(None, float(s)) for s in args.shares.split(",")]
    else:
        configs = [(int(w), None) for w in args.workers.split(",")]
    results = []
    for workers, share in configs:
        result = measure(runs, workers, share, "cuda" if gpu else "cpu", args.data_dir)
        results.append(result)
        print(f"{result['placement']:<48} {result['wall_s']:>8.1f} s  {result['runs_per_hour']:>7.1f} runs/h  "
              f"{','.join(result['statuses'])}  on {', '.join(result['devices'])}", flush=True)  # fmt: skip
    first = results[0]["wall_s"]
    for result in results[1:]:
        print(f"{result['placement']}: {first / result['wall_s']:.2f}x the throughput of {results[0]['placement']}")
    summary = {
        "device": torch.cuda.get_device_name(0) if gpu else "cpu",
        "suite": Path(args.suite).stem,
        "preset": args.preset,
        "runs": len(runs),
        "epochs": args.epochs,
        "results": results,
    }
    if args.out:
        args.out.write_text(json.dumps(summary, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
