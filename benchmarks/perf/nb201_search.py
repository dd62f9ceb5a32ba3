"""NB201 search speed: our supernet against the NB201 authors' own, side by side in one process.

Goals (issue 4), NB201 paper config (C=16, N=5, batch 64, 32x32, 2 threads):
- weight step (forward, backward, SGD step): >= 1.5x xautodl's ``TinyNetworkDarts`` in its
  faster memory format (channels_last), on the same random batches;
- the same for a full first-order DARTS iteration (arch step + weight step);
- both also as a fraction of the machine's compute limit (~1.46 GFLOP per image per training
  step against the float32 limit measured at the start, ``peak.py``; a first-order DARTS
  iteration also runs the arch step's forward and backward to the activations, 5/3 of a step).
And at the cpu preset: per-epoch tracking (both evaluations, the Hessian every 5 epochs) under
10% of the epoch; a 50-epoch search under 15 minutes (estimated from one epoch here).

Candidates run in interleaved rounds (peer, peer channels_last, ours, ...) and each figure is
the median over rounds, so a busy machine slows all of them alike.

The peer needs ``pip install --no-deps xautodl`` (its metadata pins numpy <= 1.19, which does
not exist for this Python; the modules used here need only torch). ``make bench`` does that.

Usage: NBH_DATA_DIR=... python benchmarks/perf/nb201_search.py [--rounds 5] [--steps 4]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from peak import compute_limit

from nasbench_harness.config import build_config
from nasbench_harness.methods.engine.loop import build_state
from nasbench_harness.methods.engine.steps import weight_step
from nasbench_harness.registry import make_method

BATCH = 64
GFLOP_PER_IMAGE = 1.46  # a training step of the paper config (forward + backward), per image
COMPUTE_LIMIT = 120.0  # img/s; replaced in main() by the measured float32 limit / GFLOP_PER_IMAGE
Step = Callable[[int], None]


def batches(n: int = 4) -> list[tuple[torch.Tensor, torch.Tensor]]:
    generator = torch.Generator().manual_seed(0)
    return [
        (torch.randn(BATCH, 3, 32, 32, generator=generator), torch.randint(0, 10, (BATCH,), generator=generator))
        for _ in range(n)
    ]


def _layout(x: torch.Tensor, channels_last: bool) -> torch.Tensor:
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def peer(data: list, channels_last: bool, darts: bool) -> Step:
    """xautodl's DARTS-V1 on NB201, as its search loop runs it (weights first, then the arch)."""
    from xautodl.models.cell_operations import NAS_BENCH_201
    from xautodl.models.cell_searchs.search_model_darts import TinyNetworkDarts

    torch.manual_seed(0)
    return peer_step(TinyNetworkDarts(16, 5, 4, 10, NAS_BENCH_201, False, False), data, channels_last, darts)


def peer_step(net: torch.nn.Module, data: list, channels_last: bool, darts: bool) -> Step:
    """One iteration of an xautodl search model with NB201's optimisers: a weight step (SGD, clip
    5), then (``darts``) a first-order arch step (Adam) on the next batch."""
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    w_optim = torch.optim.SGD(net.get_weights(), 0.025, momentum=0.9, nesterov=True, weight_decay=5e-4)
    a_optim = torch.optim.Adam(net.get_alphas(), 3e-4, betas=(0.5, 0.999), weight_decay=1e-3)

    def step(i: int) -> None:
        x, y = data[i % len(data)]
        x = _layout(x, channels_last)
        w_optim.zero_grad()
        _, logits = net(x)
        F.cross_entropy(logits, y).backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 5)
        w_optim.step()
        if darts:
            xv, yv = data[(i + 1) % len(data)]
            a_optim.zero_grad()
            _, logits = net(_layout(xv, channels_last))
            F.cross_entropy(logits, yv).backward()
            a_optim.step()

    return step


def ours(data: list, darts: bool) -> Step:
    """Our search loop's own step functions at the paper preset."""
    config = build_config("paper")
    method = make_method("darts")
    state, _ = build_state(config, method, 10, torch.device("cpu"))

    def step(i: int) -> None:
        x, y = data[i % len(data)]
        train = (_layout(x, True), y)
        if darts:
            xv, yv = data[(i + 1) % len(data)]
            method.arch_step.step(state, train, (_layout(xv, True), yv))
        weight_step(state, train)

    return step


def measure(candidates: dict[str, Step], rounds: int, steps: int) -> dict[str, float]:
    """Median images/s (train images) of each candidate over interleaved rounds."""
    for step in candidates.values():  # warm-up: allocator, oneDNN primitives
        step(0)
        step(1)
    rates: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(rounds):
        for name, step in candidates.items():
            started = time.perf_counter()
            for i in range(steps):
                step(i)
            rates[name].append(BATCH * steps / (time.perf_counter() - started))
    return {name: statistics.median(values) for name, values in rates.items()}


def report(title: str, rates: dict[str, float], work: float) -> None:
    """A markdown table of ``rates``; ``work``: FLOPs per train image in weight steps."""
    print(f"\n## {title} (train img/s, median)")
    print("| candidate | img/s | vs peer channels_last | of compute limit |")
    print("| --- | --- | --- | --- |")
    reference = rates["xautodl channels_last"]
    for name, rate in rates.items():
        print(f"| {name} | {rate:.1f} | {rate / reference:.2f}x | {rate * work / COMPUTE_LIMIT:.0%} |")


def tracking_overhead() -> None:
    """At the cpu preset on the real data: one epoch's training, evaluations and Hessian."""
    from nasbench_harness.data import load_search_data
    from nasbench_harness.methods.engine.loop import Search
    from nasbench_harness.tabular.nb201 import NB201Benchmark
    from nasbench_harness.tracking import RunDir

    config = build_config("cpu")
    d = config.data
    data = load_search_data(
        config.dataset, None, train_size=d.train_size, valid_size=d.valid_size, image_size=d.image_size
    )
    with tempfile.TemporaryDirectory() as tmp:
        search = Search(config, make_method("darts"), data, NB201Benchmark.open(), RunDir(tmp), torch.device("cpu"))
        t0 = time.perf_counter()
        search.train_epoch(1)
        t1 = time.perf_counter()
        genotype = search.state.derive()
        search.evaluate(search.state.mixing().detach(), None, batch_stats=False)
        search.evaluate(*search.state.space.final_net(genotype, torch.device("cpu")), batch_stats=True)
        t2 = time.perf_counter()
        search.eigenvalue()
        t3 = time.perf_counter()
    train, evals, eigen = t1 - t0, t2 - t1, t3 - t2
    per_epoch = evals + eigen / config.tracking.eigen_every
    print("\n## cpu preset, one epoch of first-order DARTS on real CIFAR-10")
    print("| measurement | result | goal |")
    print("| --- | --- | --- |")
    print(f"| training (arch + weight steps) | {train:.2f} s | |")
    print(f"| supernet + final-net evaluation | {evals:.3f} s | |")
    print(f"| Hessian eigenvalue (every {config.tracking.eigen_every} epochs) | {eigen:.2f} s | |")
    print(f"| tracking per epoch, amortised | {per_epoch / (train + per_epoch):.1%} of the epoch | < 10% |")
    print(f"| 50 epochs, estimated | {50 * (train + per_epoch) / 60:.1f} min | < 15 min |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--skip-tracking", action="store_true", help="skip the cpu-preset epoch (needs real data)")
    args = parser.parse_args()
    global COMPUTE_LIMIT
    torch.set_num_threads(2)
    peak, how = compute_limit()
    COMPUTE_LIMIT = peak / GFLOP_PER_IMAGE
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, cpu count {os.cpu_count()}")
    print(f"{how}: compute limit ~{COMPUTE_LIMIT:.0f} img/s at {GFLOP_PER_IMAGE} GFLOP/image")
    data = batches()
    for title, darts in (("weight step", False), ("first-order DARTS iteration", True)):
        rates = measure(
            {
                "xautodl contiguous": peer(data, False, darts),
                "xautodl channels_last": peer(data, True, darts),
                "nasbench-harness": ours(data, darts),
            },
            args.rounds,
            args.steps,
        )
        report(title, rates, 5 / 3 if darts else 1.0)
    if not args.skip_tracking:
        tracking_overhead()


if __name__ == "__main__":
    main()
