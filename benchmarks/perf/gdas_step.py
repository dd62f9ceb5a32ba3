"""GDAS on NB201: the reference forward (only the sampled op per edge) against the exact
straight-through option (every op) and against GDAS's own code, side by side in one process.

A GDAS iteration is an arch step (first order, on a search-valid batch) and a weight step, each
under a fresh one-hot sample, at NB201's paper config (C=16, N=5, batch 64, 32x32, 2 threads).
Candidates:

- "xautodl GDAS channels_last": ``TinyNetworkGDAS`` from the NB201 authors' ``xautodl`` (its
  ``forward_gdas``), as ``exps/NAS-Bench-201-algos/GDAS.py`` runs it (weights, then arch);
- "nasbench-harness reference": our GDAS, ``gradient="reference"`` (the default);
- "nasbench-harness straight-through": our GDAS, ``gradient="straight-through"``.

Each figure is the median over interleaved rounds, all candidates on the same random batches;
the ratio of the two ours is the cost of computing every op. The peer needs
``pip install --no-deps xautodl`` (``make bench`` does it); without it, only ours run.

Usage: python benchmarks/perf/gdas_step.py [--rounds 5] [--steps 3]
"""

from __future__ import annotations

import argparse
import importlib.util

import torch
from nb201_search import BATCH, Step, _layout, batches, measure, peer_step

from nasbench_harness.config import build_config
from nasbench_harness.methods.engine.loop import build_state
from nasbench_harness.methods.engine.steps import weight_step
from nasbench_harness.registry import make_method


def peer(data: list) -> Step:
    """xautodl's GDAS on NB201 (``TinyNetworkGDAS``, tau 10), channels_last."""
    from xautodl.models.cell_operations import NAS_BENCH_201
    from xautodl.models.cell_searchs.search_model_gdas import TinyNetworkGDAS

    torch.manual_seed(0)
    net = TinyNetworkGDAS(16, 5, 4, 10, NAS_BENCH_201, False, False)
    net.set_tau(10.0)
    return peer_step(net, data, channels_last=True, darts=True)


def ours(data: list, gradient: str) -> Step:
    """Our loop's GDAS arch step and weight step at the paper preset."""
    config = build_config("paper", {"method": "gdas", "method_options": {"gradient": gradient}, "epochs": 250})
    method = make_method("gdas", {"gradient": gradient})
    state, _ = build_state(config, method, 10, torch.device("cpu"))
    for component in method.all_components:
        component.setup(state)
    state.epoch, state.epochs = 1, 250

    def step(i: int) -> None:
        x, y = data[i % len(data)]
        train = (_layout(x, True), y)
        xv, yv = data[(i + 1) % len(data)]
        state.step = i
        method.arch_step.step(state, train, (_layout(xv, True), yv))
        weight_step(state, train)

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(2)
    data = batches()
    candidates = {
        "nasbench-harness reference": ours(data, "reference"),
        "nasbench-harness straight-through": ours(data, "straight-through"),
    }
    if importlib.util.find_spec("xautodl") is not None:
        candidates = {"xautodl GDAS channels_last": peer(data), **candidates}
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {BATCH}")
    rates = measure(candidates, args.rounds, args.steps)
    print(f"\n## GDAS iteration on NB201, paper config (train img/s, median of {args.rounds} rounds)")
    print("| candidate | img/s | vs straight-through |")
    print("| --- | --- | --- |")
    reference = rates["nasbench-harness straight-through"]
    for name, rate in rates.items():
        print(f"| {name} | {rate:.1f} | {rate / reference:.2f}x |")


if __name__ == "__main__":
    main()
