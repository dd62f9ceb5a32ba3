"""NB-1Shot1 search speed: our one-shot model against the NB-1Shot1 authors', side by side in one process.

Goal (issue 6), space 1, C=16, 9 cells, batch 96, 32x32, 2 threads: >= 1.5x the authors' model
in its faster memory format (channels_last), for the weight step and the first-order DARTS
iteration, on the same random batches; and the fraction of the machine's compute limit (the
float32 limit measured at the start, ``peak.py``; a training step's FLOPs are counted here from
the convolutions and the classifier: 2 x multiply-adds, x3 for forward + backward; a
first-order DARTS iteration adds the arch step's forward and backward to the activations, x5
in all, ``DARTS_WORK``).

One more candidate, "our convolutions alone", runs only the convolutions of our weight step
(the same shapes, layouts and threads, forward and backward): the rate the step would reach if
everything else (batch norm, ReLU, pooling, weighted sums, the optimiser) took no time.

The peer is the authors' code, which is not on PyPI: point ``NB1SHOT1_PEER`` at a checkout of
``automl/nasbench-1shot1`` (its ``optimizers/darts/model_search.py``, ``operations.py``,
``genotypes.py``). Its import of the TensorFlow-based NB101 API is stubbed (only the class
``SearchSpace1`` is used, for a type test), and its ``.cuda()`` calls are no-ops on a CPU.

Before/after a change: ``NBH_BASELINE_TREE=/path/to/another/checkout`` adds the candidate
"nasbench-harness baseline", the same step run from that tree's package (its worker imports
``nasbench_harness`` from there), measured side by side with this tree in the same rounds.

Usage: NB1SHOT1_PEER=/path/to/nasbench-1shot1 python benchmarks/perf/nb1shot1_search.py
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
import types
from collections.abc import Callable
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from peak import compute_limit
from torch import nn

from nasbench_harness.config import build_config
from nasbench_harness.methods.engine.loop import build_state
from nasbench_harness.methods.engine.steps import weight_step
from nasbench_harness.registry import make_method

BATCH = 96
DARTS_WORK = 5 / 3  # a DARTS iteration's FLOPs per train image, in weight steps (module doc)
Step = Callable[[int], None]


@contextmanager
def _cuda_calls_are_noops():
    original = torch.Tensor.cuda
    if not torch.cuda.is_available():
        torch.Tensor.cuda = lambda self, *args, **kwargs: self  # type: ignore[method-assign]
    try:
        yield
    finally:
        torch.Tensor.cuda = original  # type: ignore[method-assign]


def load_peer(path: str):  # type: ignore[no-untyped-def]
    """The authors' ``Network`` class and their ``SearchSpace1`` stand-in."""
    stub = types.ModuleType("nasbench_analysis.search_spaces.search_space_1")

    class SearchSpace1:  # their model only tests type(search_space) == SearchSpace1
        num_intermediate_nodes = 4

    stub.SearchSpace1 = SearchSpace1  # type: ignore[attr-defined]
    for name in ("nasbench_analysis", "nasbench_analysis.search_spaces"):
        sys.modules.setdefault(name, types.ModuleType(name))
    sys.modules["nasbench_analysis.search_spaces.search_space_1"] = stub
    sys.path.insert(0, path)
    from optimizers.darts.model_search import Network  # type: ignore[import-not-found]

    return Network, SearchSpace1


def batches(n: int = 4) -> list[tuple[torch.Tensor, torch.Tensor]]:
    generator = torch.Generator().manual_seed(0)
    return [
        (torch.randn(BATCH, 3, 32, 32, generator=generator), torch.randint(0, 10, (BATCH,), generator=generator))
        for _ in range(n)
    ]


def _layout(x: torch.Tensor, channels_last: bool) -> torch.Tensor:
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def peer(network_cls, space_cls, data: list, channels_last: bool, darts: bool) -> Step:  # type: ignore[no-untyped-def]
    """The authors' DARTS search step (their train_search.py: arch step, then weight step)."""
    torch.manual_seed(0)
    with _cuda_calls_are_noops():
        net = network_cls(16, 10, 9, nn.CrossEntropyLoss(), output_weights=True, search_space=space_cls(), steps=4)
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    w_optim = torch.optim.SGD(net.parameters(), 0.025, momentum=0.9, weight_decay=3e-4)
    a_optim = torch.optim.Adam(net.arch_parameters(), 3e-4, betas=(0.5, 0.999), weight_decay=1e-3)

    def step(i: int) -> None:
        x, y = data[i % len(data)]
        if darts:
            xv, yv = data[(i + 1) % len(data)]
            a_optim.zero_grad()
            net._loss(_layout(xv, channels_last), yv).backward()
            a_optim.step()
        w_optim.zero_grad()
        F.cross_entropy(net(_layout(x, channels_last)), y).backward()
        nn.utils.clip_grad_norm_(net.parameters(), 5)
        w_optim.step()

    return step


def ours(data: list, darts: bool) -> tuple[Step, nn.Module]:
    """Our search loop's step functions at the paper preset of space 1."""
    config = build_config("paper", {"space": "nb1shot1-1"})
    method = make_method("darts")
    state, _ = build_state(config, method, 10, torch.device("cpu"))

    def step(i: int) -> None:
        x, y = data[i % len(data)]
        train = (_layout(x, True), y)
        if darts:
            xv, yv = data[(i + 1) % len(data)]
            method.arch_step.step(state, train, (_layout(xv, True), yv))
        weight_step(state, train)

    return step, state.net


def convolutions_alone(data: list) -> Step:
    """Forward + backward of exactly the convolutions of our weight step, on their own."""
    step, net = ours(data, False)
    calls: list[tuple[torch.Tensor, torch.Tensor, tuple]] = []

    def record(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        x = inputs[0].detach().clone(memory_format=torch.preserve_format).requires_grad_(inputs[0].requires_grad)
        weight = module.weight.detach().clone(memory_format=torch.preserve_format).requires_grad_(True)
        calls.append((x, weight, module.padding))

    handles = [m.register_forward_hook(record) for m in net.modules() if isinstance(m, nn.Conv2d)]
    step(0)
    for handle in handles:
        handle.remove()
    grads = [torch.ones_like(F.conv2d(x, w, padding=p)) for x, w, p in calls]

    def run(i: int) -> None:
        for (x, w, padding), grad in zip(calls, grads, strict=True):
            x.grad = w.grad = None
            F.conv2d(x, w, padding=padding).backward(grad)

    return run


def training_gflop_per_image(net: nn.Module, weights: torch.Tensor) -> float:
    """2 x multiply-adds of every conv and linear layer, x3 for forward + backward, per image."""
    macs = 0

    def hook(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        nonlocal macs
        if isinstance(module, nn.Conv2d):
            k = module.kernel_size[0] * module.kernel_size[1] * module.in_channels // module.groups
            macs += output.numel() * k
        elif isinstance(module, nn.Linear):
            macs += output.numel() * module.in_features

    handles = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    with torch.no_grad():
        net(torch.randn(1, 3, 32, 32), weights)
    for handle in handles:
        handle.remove()
    return 3 * 2 * macs / 1e9


CANDIDATES = ("authors contiguous", "authors channels_last", "nasbench-harness", "our convolutions alone")
BASELINE = "nasbench-harness baseline"


def build(name: str, darts: bool, peer_path: str) -> Step:
    """The step function of one candidate, on the shared random batches."""
    data = batches()
    if name in ("nasbench-harness", BASELINE):
        return ours(data, darts)[0]
    if name == "our convolutions alone":
        return convolutions_alone(data)
    network_cls, space_cls = load_peer(peer_path)
    return peer(network_cls, space_cls, data, name.endswith("channels_last"), darts)


def worker(name: str, darts: bool, peer_path: str) -> None:
    """Build one candidate, then time ``steps`` steps per line read from stdin (``steps``; empty: quit)."""
    torch.set_num_threads(2)
    step = build(name, darts, peer_path)
    step(0)
    step(1)
    print("ready", flush=True)
    i = 0
    for line in sys.stdin:
        if not line.strip():
            break
        started = time.perf_counter()
        for _ in range(int(line)):
            step(i)
            i += 1
        print(time.perf_counter() - started, flush=True)


def _worker_env(name: str) -> dict[str, str]:
    """The baseline candidate imports nasbench_harness from ``NBH_BASELINE_TREE``."""
    env = dict(os.environ)
    if name == BASELINE:
        env["PYTHONPATH"] = os.pathsep.join([os.environ["NBH_BASELINE_TREE"], env.get("PYTHONPATH", "")])
    return env


def measure(candidates: tuple[str, ...], darts: bool, rounds: int, steps: int, peer_path: str) -> dict[str, float]:
    """Median images/s of each candidate over interleaved rounds.

    Each candidate lives in its own process (built and warmed up once), and the rounds
    alternate between them: the same machine and time window for all, without one model's
    allocations changing the memory allocator's state (mmap thresholds, fragmentation) for another.
    """
    procs = {
        name: subprocess.Popen(
            [sys.executable, __file__, "--worker", name, "--peer", peer_path, *(["--darts"] if darts else [])],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=_worker_env(name),
        )
        for name in candidates
    }
    try:
        for name, proc in procs.items():
            if proc.stdout is None or proc.stdout.readline().strip() != "ready":
                raise SystemExit(f"the {name} worker failed to start (see its error above)")
        rates: dict[str, list[float]] = {name: [] for name in procs}
        for _ in range(rounds):
            for name, proc in procs.items():
                assert proc.stdin is not None and proc.stdout is not None
                proc.stdin.write(f"{steps}\n")
                proc.stdin.flush()
                rates[name].append(BATCH * steps / float(proc.stdout.readline()))
    finally:
        for proc in procs.values():
            if proc.stdin is not None:
                proc.stdin.close()
            proc.wait()
    return {name: statistics.median(values) for name, values in rates.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--darts", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--peer", default=os.environ.get("NB1SHOT1_PEER"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not args.peer:
        raise SystemExit("set NB1SHOT1_PEER to a checkout of automl/nasbench-1shot1 (see the module docstring)")
    if args.worker:
        worker(args.worker, args.darts, args.peer)
        return
    torch.set_num_threads(2)
    _, net = ours(batches(1), False)
    from nasbench_harness.methods.engine.adapters import get_search_space

    space = get_search_space("nb1shot1-1")
    gflop = training_gflop_per_image(net, space.softmax(torch.zeros(space.layout.size)))
    peak, how = compute_limit()
    limit = peak / gflop
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; training step {gflop:.2f} GFLOP/image")
    print(f"{how}: compute limit ~{limit:.0f} img/s")
    extra = (BASELINE,) if os.environ.get("NBH_BASELINE_TREE") else ()
    for title, darts in (("weight step", False), ("first-order DARTS iteration", True)):
        candidates = CANDIDATES if not darts else CANDIDATES[:-1]  # our convolutions alone: weight step only
        candidates = candidates + extra
        rates = measure(candidates, darts, args.rounds, args.steps, args.peer)
        print(f"\n## {title} (train img/s, median of {args.rounds} interleaved rounds of {args.steps} steps)")
        print("| candidate | img/s | vs authors channels_last | of compute limit |")
        print("| --- | --- | --- | --- |")
        reference = rates["authors channels_last"]
        work = DARTS_WORK if darts else 1.0
        for name, rate in rates.items():
            print(f"| {name} | {rate:.1f} | {rate / reference:.2f}x | {rate * work / limit:.0%} |")


if __name__ == "__main__":
    main()
