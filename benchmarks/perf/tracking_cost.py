"""Tracking at the paper preset: what the end-of-epoch measurements cost against an epoch's training.

Goal (issue 18): tracking under 5% of an epoch at the paper preset (NB201, C=16, N=5, 32x32,
batch 64, 25,000 search-train images: 390 steps an epoch), for first-order DARTS.

Measured here, in one process, on the real CIFAR-10 (``NBH_DATA_DIR``), with the paper preset's
network and its tracking settings as they are (the evaluations on the fixed
``tracking.final_eval_images`` subset in batches of ``tracking.eval_batch_size``, the Hessian
eigenvalue on ``tracking.eigen_batch_size`` images every ``tracking.eigen_every`` epochs):

- a few training iterations (arch step + weight step), timed, median per iteration;
- the end-of-epoch tracking (:meth:`Search.track`: derivation, supernet and final-net
  evaluations, the table lookup) of an epoch without and of an epoch with the eigenvalue.

Extrapolated to an epoch: training = 390 x the median iteration (every iteration costs the
same: fixed shapes, no data-dependent work); tracking = the epoch without the eigenvalue +
(with - without) / eigen_every. Both sides are measured on the same machine in the same run, so
the ratio holds on a faster machine as long as training and evaluation speed up alike (both are
the same convolutions; a GPU runs the evaluation's larger batches at least as efficiently).

On a GPU the small supernet is bound by kernel launches more than by arithmetic, so the script
also counts the ATen ops (about one launch each) of a training iteration, of the two evaluations
and of an eigenvalue as a GPU computes it (Hessian-vector products 8 at a time, ``hvp_chunk``),
and gives the launch-bound estimate: tracking's ops over an epoch's. Op counts do not depend on
the batch size, so the eigenvalue's are counted on 8 images (8 batched products of the full
batch would need 8x one product's memory on this CPU).

Usage: NBH_DATA_DIR=... python benchmarks/perf/tracking_cost.py [--iterations 3] [--threads 2]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable

import torch
from torch.profiler import ProfilerActivity, profile

from nasbench_harness.config import build_config
from nasbench_harness.data import load_search_data
from nasbench_harness.methods.components import hessian
from nasbench_harness.methods.engine.loop import Search
from nasbench_harness.methods.engine.steps import training_step
from nasbench_harness.registry import make_method
from nasbench_harness.tabular.nb201 import NB201Benchmark
from nasbench_harness.tracking import RunDir

GOAL = 0.05


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=3, help="timed training iterations (after one warm-up)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    config = build_config("paper", {"seed": 0})
    t = config.tracking
    data = load_search_data(config.dataset, None)
    with tempfile.TemporaryDirectory() as tmp:
        search = Search(config, make_method("darts"), data, NB201Benchmark.open(), RunDir(tmp), torch.device("cpu"))
        s = search.state
        steps = len(search.loaders.train)
        s.epoch, s.steps = 1, steps
        s.net.train()
        train, valid = search.loaders.train.epoch(1), search.loaders.valid.epoch(1)
        times = []
        for i in range(args.iterations + 1):
            s.step = i
            started = time.perf_counter()
            loss, _ = training_step(s, next(train), next(valid))
            s.check_finite(loss)
            times.append(time.perf_counter() - started)
        iteration = statistics.median(times[1:])
        started = time.perf_counter()
        search.track(1)  # no eigenvalue in epoch 1 (eigen_every 5)
        plain = time.perf_counter() - started
        ops_iteration = count_ops(lambda: training_step(s, next(train), next(valid)))
        ops_plain = count_ops(lambda: search.track(1))
        small = tuple(t[:8] for t in search.loaders.eigen_batch)
        hessian.hvp_chunk = lambda device: 8  # as on a GPU
        ops_eigen = count_ops(lambda: search.eigenvalue(small))
        started = time.perf_counter()
        search.track(t.eigen_every)
        with_eigen = time.perf_counter() - started
    epoch_training = steps * iteration
    tracking = plain + (with_eigen - plain) / t.eigen_every
    share = tracking / (epoch_training + tracking)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print("\n## paper preset, first-order DARTS, tracking against training (one process)")
    print("| measurement | result | goal |")
    print("| --- | --- | --- |")
    print(f"| training iteration (median of {args.iterations}) | {iteration:.2f} s | |")
    print(f"| training, {steps} iterations (extrapolated) | {epoch_training:.0f} s | |")
    n_eval = min(t.final_eval_images or len(data.valid), len(data.valid))
    evals = f"{n_eval} images x 2 evaluations, batch {t.eval_batch_size}"
    print(f"| tracking without eigenvalue ({evals}) | {plain:.1f} s | |")
    print(f"| tracking with eigenvalue ({t.eigen_batch_size} images) | {with_eigen:.1f} s | |")
    amortised = f"{tracking:.1f} s = {share:.1%} of the epoch"
    print(f"| tracking per epoch, eigenvalue every {t.eigen_every} (time here) | {amortised} | < {GOAL:.0%} |")
    launches = ops_plain + ops_eigen / t.eigen_every
    launch_share = launches / (steps * ops_iteration + launches)
    print(
        f"| ATen ops: training iteration / evaluations / eigenvalue | {ops_iteration} / {ops_plain} / {ops_eigen} | |"
    )
    print(f"| tracking per epoch, launch-bound GPU estimate | {launch_share:.1%} of the epoch's ops | < {GOAL:.0%} |")


def count_ops(fn: Callable[[], object]) -> int:
    """ATen ops run by ``fn`` (top-level ones: those not called from inside another ATen op)."""
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    events = prof.events()
    return sum(
        1
        for e in events
        if e.name.startswith("aten::") and not (e.cpu_parent and e.cpu_parent.name.startswith("aten::"))
    )


if __name__ == "__main__":
    main()
