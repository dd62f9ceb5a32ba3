"""Search steps on a GPU (or the CPU): ours against the authors' models, each speed option on and off.

What it measures, in one process, on random CIFAR-10-shaped batches made on the device beforehand
(no data loading): NB201 (C=16, N=5, batch 64, 32x32) and NB-1Shot1 space 1 (C=16, 9 cells,
batch 96, 32x32), or with ``--small`` (the default on the CPU) C=8, N=1 / 3 cells, batch 16, 16x16:

- weight steps per second and first-order DARTS iterations (arch step + weight step) per second of
  - the authors' models as their search code steps them, contiguous and channels_last: xautodl's
    ``TinyNetworkDarts`` (as ``nb201_search.py``), the NB-1Shot1 authors' one-shot model when
    ``NB1SHOT1_PEER``/``--nb1shot1-peer`` names a checkout (as ``nb1shot1_search.py``; built once
    per mode, since their step factory builds the net);
  - ours through the engine's API (``build_config`` -> ``build_method`` -> ``build_state``, then
    ``method.arch_step.step`` and ``steps.weight_step``): "ours" with every ``speed`` option off and
    ``model.channels_last`` at the device's default, then one candidate per option switched
    (``channels_last`` flipped, ``speed.amp_bf16``, ``speed.compile``, ``speed.cuda_graph``) and
    "ours all on". An option the device or the code lacks prints "n/a (reason)" and the run goes on;
- GPU busy fraction (CUDA): the kernels' time per iteration (union of their intervals in a profile
  of up to 3 iterations) x the iterations per second of the timed rounds;
- host syncs per iteration, on any device: the profiler's ``aten::_local_scalar_dense``,
  ``aten::item``, ``aten::is_nonzero``, ``aten::nonzero``, ``aten::lift_fresh`` and ``aten::equal``
  events in one iteration (the outermost of nested ones; the most of the profiled iterations).
  Reads inside an optimiser's step are counted apart (``optimizer_counter_reads_per_iter``): Adam
  reads its step counter, which torch keeps on the host, so no device sync. On CUDA also the
  runtime's ``cuda{Stream,Device,Event}Synchronize`` calls, and its ``cudaMemcpy*`` calls (JSON);
- peak memory (CUDA): ``torch.cuda.max_memory_allocated`` while a candidate is built and warmed up,
  less what was allocated before it (the other candidates);
- build and warm-up time; the warm-up (3 iterations per mode) holds ``torch.compile``'s
  compilation and the CUDA graph's capture, so neither is in the timed rounds.

Rounds interleave the candidates (every mode, every candidate, the order rotated each round); a
rate is the median over rounds, so a busy machine slows all alike. On the CPU it runs on one
thread unless ``--threads`` says otherwise: two threads on two loaded cores stall for seconds
per step at these sizes.

Goals (issue 18): on a GPU, our DARTS iteration keeps the GPU busy (the host is not the limit);
zero host syncs per iteration for ours; each speed option's speedup reported as a ratio against
"ours" measured side by side in the same run, to choose the defaults (``model.channels_last`` on
CUDA, the ``speed`` options) from GPU measurements. Target: under 5 minutes on a GPU with the
defaults (``torch.compile`` takes most of it: ``--options channels_last,amp_bf16,cuda_graph,all``
leaves it out); under a minute on 2 CPU cores with ``--small --rounds 2 --steps 2``.

Usage:
  python benchmarks/perf/gpu_step.py                   # CUDA if present (paper sizes), else the CPU (--small)
  python benchmarks/perf/gpu_step.py --json gpu.json   # every figure as JSON, written after each space
  python benchmarks/perf/gpu_step.py --device cpu --threads 1 --rounds 2 --steps 2 --spaces nb201
The NB201 peer needs ``pip install --no-deps xautodl==1.0.0`` (``make bench`` does it); without it
the peer is skipped with a note.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import statistics
import time
from collections import Counter
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from nb201_search import _layout, peer_step
from torch.profiler import ProfilerActivity, profile, record_function

from nasbench_harness.config import build_config, resolve_channels_last
from nasbench_harness.errors import ConfigError
from nasbench_harness.methods.engine import loop
from nasbench_harness.methods.engine.loop import build_state
from nasbench_harness.methods.engine.steps import weight_step
from nasbench_harness.numerics import device_description, numerics_applied
from nasbench_harness.registry import build_method
from nasbench_harness.tracking.provenance import git_commit, versions

Step = Callable[[int], None]
MODES = ("weight_step", "darts_iteration")
MODE_TITLES = {"weight_step": "weight step", "darts_iteration": "first-order DARTS iteration"}
SYNC_OPS = (
    "aten::_local_scalar_dense",
    "aten::item",
    "aten::is_nonzero",
    "aten::nonzero",
    "aten::lift_fresh",
    "aten::equal",
)
CUDA_SYNCS = ("cudaStreamSynchronize", "cudaDeviceSynchronize", "cudaEventSynchronize")
OPTIONS = ("channels_last", "amp_bf16", "compile", "cuda_graph", "all")
WARMUP = 3  # iterations per mode: compilation, graph capture, allocator and cuDNN caches
PROFILED = 3  # iterations per mode in the profile (at most --steps)
NUM_CLASSES = 10
BATCHES = 4


@dataclass(frozen=True)
class Size:
    """One space's sizes: ``depth`` is NB201's cells per stage or NB-1Shot1's cells in all."""

    channels: int
    depth: int
    batch: int
    image: int


SIZES = {
    "paper": {"nb201": Size(16, 5, 64, 32), "nb1shot1": Size(16, 9, 96, 32)},
    "small": {"nb201": Size(8, 1, 16, 16), "nb1shot1": Size(8, 3, 16, 16)},
}
SPACES = {"nb201": "nb201", "nb1shot1": "nb1shot1-1"}


@dataclass
class Candidate:
    """A step function per mode, or the reason there is none (``reason``); its figures in ``record``."""

    name: str
    kind: str  # "ours" or "peer"
    settings: dict[str, Any]
    build: Callable[[], tuple[dict[str, Step], Callable[[], None]]] | None = None
    guarded: bool = True  # a failure makes it n/a; plain ours and the peers must not fail
    steps: dict[str, Step] = field(default_factory=dict)
    finish: Callable[[], None] = lambda: None  # after each round, outside the timing
    reason: str | None = None
    record: dict[str, Any] = field(default_factory=dict)
    next_i: int = 0

    def run(self, mode: str, n: int) -> None:
        for _ in range(n):
            self.steps[mode](self.next_i)
            self.next_i += 1


def random_batches(size: Size, device: torch.device) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``BATCHES`` CIFAR-10-shaped (image, label) batches on ``device``, the same for every candidate."""
    g = torch.Generator().manual_seed(0)
    shape = (size.batch, 3, size.image, size.image)
    return [
        (
            torch.randn(shape, generator=g).to(device),
            torch.randint(0, NUM_CLASSES, (size.batch,), generator=g).to(device),
        )
        for _ in range(BATCHES)
    ]


def in_layout(data: list, channels_last: bool) -> list:
    return [(_layout(x, channels_last), y) for x, y in data]


def ours(space: str, size: Size, device: torch.device, data: list, speed: dict[str, bool], nhwc: bool):
    """Our DARTS (first order) on ``space`` through the engine API: (steps per mode, finish)."""
    shape = {"cells_per_stage": size.depth} if space == "nb201" else {"num_cells": size.depth}
    model = {"channels": size.channels, **shape, "channels_last": nhwc}
    config = build_config(
        "paper", {"space": SPACES[space], "method": "darts", "batch_size": size.batch, "model": model, "speed": speed}
    )
    method, _ = build_method(config)
    state, _ = build_state(config, method, NUM_CLASSES, device)
    for component in method.all_components:
        component.setup(state)
    state.epoch, state.steps = 1, 10_000
    state.net.train()
    batches = in_layout(data, nhwc)

    def darts(i: int) -> None:
        train, valid = batches[i % BATCHES], batches[(i + 1) % BATCHES]
        state.step, state.batch, state.arch_batch = i, train, valid
        method.arch_step.step(state, train, valid)
        weight_step(state, train)

    def weights(i: int) -> None:
        train = batches[i % BATCHES]
        state.step, state.batch = i, train
        weight_step(state, train)

    return {"weight_step": weights, "darts_iteration": darts}, state.check_finite


def xautodl(size: Size, device: torch.device, data: list, nhwc: bool):
    """xautodl's ``TinyNetworkDarts`` stepped as ``nb201_search.py`` steps it (weights, then arch)."""
    from xautodl.models.cell_operations import NAS_BENCH_201
    from xautodl.models.cell_searchs.search_model_darts import TinyNetworkDarts

    torch.manual_seed(0)
    net = TinyNetworkDarts(size.channels, size.depth, 4, NUM_CLASSES, NAS_BENCH_201, False, False).to(device)
    batches = in_layout(data, nhwc)
    return {mode: peer_step(net, batches, nhwc, mode == "darts_iteration") for mode in MODES}, lambda: None


def nb1shot1_authors(path: str, size: Size, device: torch.device, data: list, nhwc: bool):
    """The NB-1Shot1 authors' one-shot model stepped as ``nb1shot1_search.py`` steps it (arch, then weights)."""
    from nb1shot1_search import load_peer, peer

    network_cls, space_cls = load_peer(path)

    def sized(_c: int, classes: int, _layers: int, *args: Any, **kwargs: Any) -> Any:
        return network_cls(size.channels, classes, size.depth, *args, **kwargs)

    batches = in_layout(data, nhwc)
    with torch.device(device):  # their alphas are plain tensors made in __init__, not parameters
        steps = {mode: peer(sized, space_cls, batches, nhwc, mode == "darts_iteration") for mode in MODES}
    return steps, lambda: None


def peers(space: str, size: Size, device: torch.device, data: list, peer_path: str | None) -> list[Candidate]:
    """The authors' model of ``space`` in both layouts, or the reason it cannot run."""
    out = []
    for nhwc in (False, True):
        label = "channels_last" if nhwc else "contiguous"
        if space == "nb201":
            c = Candidate(f"xautodl TinyNetworkDarts {label}", "peer", {"channels_last": nhwc}, guarded=False)
            if importlib.util.find_spec("xautodl") is None:
                c.reason = "xautodl not installed: pip install --no-deps xautodl==1.0.0"
            else:
                c.build = lambda nhwc=nhwc: xautodl(size, device, data, nhwc)
        else:
            c = Candidate(f"authors' one-shot model {label}", "peer", {"channels_last": nhwc}, guarded=False)
            if not peer_path:
                c.reason = "no checkout of automl/nasbench-1shot1: set NB1SHOT1_PEER or --nb1shot1-peer"
            else:
                c.build = lambda nhwc=nhwc: nb1shot1_authors(peer_path, size, device, data, nhwc)
        out.append(c)
    return out


def our_variants(device: torch.device, options: list[str], left_out: dict[str, str]) -> list[tuple]:
    """(name, speed options, channels_last, reason it does not run or None) of plain ours, of ours
    with each of ``options`` switched, and of ours with all of them on together (``all``: the ones
    this device has); the options in ``left_out`` appear with their reason."""
    nhwc = resolve_channels_last(build_config("paper"), device)  # the device's default
    plain = {"amp_bf16": False, "compile": False, "cuda_graph": False}
    out: list[tuple] = [("ours", plain, nhwc, None)]
    for option in OPTIONS:
        if option in left_out:
            out.append((f"ours +{option}", {**plain, option: True}, nhwc, left_out[option]))
        elif option == "channels_last" and option in options:
            out.append((f"ours channels_last={'off' if nhwc else 'on'}", plain, not nhwc, None))
        elif option == "all" and option in options:
            every = {k: k in options and (k != "cuda_graph" or device.type == "cuda") for k in plain}
            out.append(("ours all on", every, True if "channels_last" in options else nhwc, None))
        elif option in options:
            out.append((f"ours +{option}", {**plain, option: True}, nhwc, None))
    return out


def candidates(space: str, size: Size, device: torch.device, args: argparse.Namespace) -> list[Candidate]:
    """The candidates of ``space``: the authors', plain ours, ours per speed option (see :func:`our_variants`)."""
    data = random_batches(size, device)
    out = peers(space, size, device, data, args.nb1shot1_peer)
    for name, speed, nhwc, reason in our_variants(device, args.options, args.left_out):
        c = Candidate(name, "ours", {**speed, "channels_last": nhwc}, guarded=name != "ours", reason=reason)
        same = next((o.name for o in out if o.kind == "ours" and o.settings == c.settings), None)
        if same and not reason:
            c.reason = f"the same settings as {same}"
        elif not reason:
            c.build = lambda speed=speed, nhwc=nhwc: ours(space, size, device, data, speed, nhwc)
        out.append(c)
    return out


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _why(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:240] if text else ''}"


@contextmanager
def guard(c: Candidate, what: str):
    """Turn a failure of an option candidate into its n/a reason; plain ones fail the run."""
    try:
        yield
    except Exception as exc:
        if not c.guarded:
            raise
        c.reason = f"{what}: {_why(exc)}"
        print(f"  {c.name}: n/a ({c.reason})", flush=True)


def prepare(c: Candidate, device: torch.device) -> None:
    """Build ``c`` and warm every mode up, timing both and measuring its peak memory (CUDA)."""
    if c.reason is not None or c.build is None:
        return
    _sync(device)
    before = torch.cuda.memory_allocated(device) if device.type == "cuda" else 0
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    started = time.perf_counter()
    with guard(c, "build"):
        c.steps, c.finish = c.build()
    built = time.perf_counter()
    if c.reason is not None:
        return
    with guard(c, "warm-up"):
        for mode in reversed(MODES):  # the DARTS iteration first: it compiles both forwards
            c.run(mode, WARMUP)
        _sync(device)
        c.finish()
    c.record["build_s"] = built - started
    c.record["warmup_s"] = time.perf_counter() - built
    if device.type == "cuda":
        c.record["peak_memory_mib"] = (torch.cuda.max_memory_allocated(device) - before) / 2**20
    print(f"  {c.name}: built in {c.record['build_s']:.1f} s, warmed up in {c.record['warmup_s']:.1f} s", flush=True)


def measure(cands: list[Candidate], device: torch.device, rounds: int, steps: int) -> None:
    """Median iterations/s of every ready candidate and mode over interleaved rounds."""
    seconds: dict[tuple[str, str], list[float]] = {}
    for r in range(rounds):
        ready = [c for c in cands if c.reason is None]
        ready = ready[r % len(ready) :] + ready[: r % len(ready)] if ready else []
        for mode in MODES:
            for c in ready:
                if c.reason is not None:
                    continue
                with guard(c, f"round {r + 1}"):
                    _sync(device)
                    started = time.perf_counter()
                    c.run(mode, steps)
                    _sync(device)
                    seconds.setdefault((c.name, mode), []).append(time.perf_counter() - started)
                    c.finish()
    for c in cands:
        if c.reason is None:
            for mode in MODES:
                c.record[mode] = {"it_per_s": steps / statistics.median(seconds[(c.name, mode)])}


def profile_candidate(c: Candidate, device: torch.device, steps: int) -> None:
    """Host syncs per iteration (every device) and kernel time per iteration (CUDA) of each mode."""
    cuda = device.type == "cuda"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    n = max(1, min(steps, PROFILED))
    for mode in MODES:
        with guard(c, f"profile of the {MODE_TITLES[mode]}"), profile(activities=activities) as prof:
            for _ in range(n):
                with record_function("gpu_step.iteration"):
                    c.run(mode, 1)
            _sync(device)
        if c.reason is not None:
            return
        c.finish()
        events = list(prof.events())
        spans = [e.time_range for e in events if e.name == "gpu_step.iteration" and e.device_type.name == "CPU"]
        per_iteration = [_counts(events, span, cuda) for span in spans]
        worst = max(per_iteration, key=lambda counts: (sum(counts[0].values()), sum(counts[1].values())))
        figures = c.record[mode]
        figures["syncs_per_iter"] = int(sum(worst[0].values()))
        figures["syncs_by_name"] = dict(worst[0])
        figures["optimizer_counter_reads_per_iter"] = worst[2]
        if cuda:
            figures["cuda_syncs_per_iter"] = int(sum(worst[1][k] for k in CUDA_SYNCS))
            figures["cuda_runtime_calls"] = dict(worst[1])
            device_events = [e for e in events if e.device_type.name == "CUDA" and not e.is_user_annotation]
            kernel_s = _busy_us([e.time_range for e in device_events]) / 1e6 / n
            figures["gpu_time_per_iter_ms"] = 1e3 * kernel_s
            figures["gpu_busy_fraction"] = kernel_s * figures["it_per_s"] if kernel_s > 0 else None
            if kernel_s == 0:
                figures["gpu_busy_note"] = "the profiler recorded no kernels"


def _counts(events: list, span: Any, cuda: bool) -> tuple[Counter, Counter, int]:
    """Inside ``span``: the host-sync ATen events (the outermost of nested ones: ``item`` runs
    ``_local_scalar_dense``), the CUDA runtime's sync and memcpy calls, and the reads inside an
    optimiser's step, counted apart: Adam reads its step counter, which torch keeps on the host
    (unless ``capturable``), so that read costs no device sync."""
    inside = [e for e in events if e.device_type.name == "CPU" and span.start <= e.time_range.start <= span.end]
    ops: Counter = Counter()
    counter_reads = 0
    for e in inside:
        if e.name not in SYNC_OPS:
            continue
        ancestors = []
        parent = e.cpu_parent
        while parent is not None:
            ancestors.append(parent.name)
            parent = parent.cpu_parent
        if any(name in SYNC_OPS for name in ancestors):
            continue
        if any(name.startswith("Optimizer.step#") for name in ancestors):
            counter_reads += 1
        else:
            ops[e.name] += 1
    runtime = Counter(e.name for e in inside if cuda and (e.name in CUDA_SYNCS or e.name.startswith("cudaMemcpy")))
    return ops, runtime, counter_reads


def _busy_us(ranges: list) -> float:
    """Length of the union of the intervals (us): kernels on several streams may overlap."""
    total, end = 0.0, float("-inf")
    for r in sorted(ranges, key=lambda r: r.start):
        if r.end > end:
            total += r.end - max(r.start, end)
            end = r.end
    return total


def ratios(cands: list[Candidate]) -> None:
    """Each ready candidate's rate against plain ours and against the faster of the authors' layouts."""
    for mode in MODES:
        rates = {c.name: c.record[mode]["it_per_s"] for c in cands if c.reason is None}
        best_peer = max((rates[c.name] for c in cands if c.kind == "peer" and c.name in rates), default=None)
        for c in cands:
            if c.name in rates:
                c.record[mode]["vs_ours"] = rates[c.name] / rates["ours"]
                c.record[mode]["vs_best_peer"] = rates[c.name] / best_peer if best_peer else None


def _fmt(value: Any, spec: str, suffix: str = "") -> str:
    return "n/a" if value is None else f"{value:{spec}}{suffix}"


def print_space(space: str, size: Size, cands: list[Candidate], cuda: bool) -> None:
    """Markdown tables of ``space``: one per mode, then each candidate's status and set-up cost."""
    depth = f"N={size.depth}" if space == "nb201" else f"{size.depth} cells"
    head = f"{space}: C={size.channels}, {depth}, batch {size.batch}, {size.image}x{size.image}"
    on_gpu = "" if cuda else " (cpu)"
    for mode in MODES:
        print(f"\n## {head}: {MODE_TITLES[mode]} (median over interleaved rounds)")
        print("| candidate | it/s | img/s | vs ours | vs best peer | GPU busy | host syncs/iter | CUDA syncs/iter |")
        print("| --- | --- | --- | --- | --- | --- | --- | --- |")
        for c in cands:
            if c.reason is not None:
                print(f"| {c.name} | n/a (see the candidates below) | | | | | | |")
                continue
            f = c.record[mode]
            cells = [
                _fmt(f.get("it_per_s"), ".2f"),
                _fmt(f["it_per_s"] * size.batch, ".0f"),
                _fmt(f.get("vs_ours"), ".2f", "x"),
                _fmt(f.get("vs_best_peer"), ".2f", "x"),
                _fmt(f.get("gpu_busy_fraction"), ".0%") + ("" if f.get("gpu_busy_fraction") else on_gpu),
                _fmt(f.get("syncs_per_iter"), "d"),
                _fmt(f.get("cuda_syncs_per_iter"), "d") + ("" if f.get("cuda_syncs_per_iter") is not None else on_gpu),
            ]
            print(f"| {c.name} | {' | '.join(cells)} |")
    print(f"\n## {head}: candidates (set-up not timed)")
    print("| candidate | settings | status | build s | warm-up s (compile, capture) | peak memory MiB |")
    print("| --- | --- | --- | --- | --- | --- |")
    for c in cands:
        r = c.record
        cells = [
            ", ".join(k for k, v in c.settings.items() if v) or "(none)",
            "ok" if c.reason is None else f"n/a ({c.reason})",
            _fmt(r.get("build_s"), ".1f"),
            _fmt(r.get("warmup_s"), ".1f"),
            _fmt(r.get("peak_memory_mib"), ".0f") + ("" if r.get("peak_memory_mib") is not None else on_gpu),
        ]
        print(f"| {c.name} | {' | '.join(cells)} |")


def describe_device(device: torch.device) -> dict[str, Any]:
    """What the figures were measured on, and with which code."""
    info: dict[str, Any] = {
        "type": device.type,
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "versions": versions(),
        "git": git_commit(),
    }
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info.update(
            name=props.name,
            capability=f"{props.major}.{props.minor}",
            memory_gib=props.total_memory / 2**30,
            matmul_fp32_precision=getattr(torch.backends.cuda.matmul, "fp32_precision", None),
            conv_fp32_precision=getattr(getattr(torch.backends.cudnn, "conv", None), "fp32_precision", None),
            cudnn_benchmark=torch.backends.cudnn.benchmark,
        )
    return info


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", help="auto (cuda when present), cpu, cuda or cuda:N")
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default: 5 on CUDA, 3 on the CPU)")
    parser.add_argument("--steps", type=int, help="iterations per round and mode (default: 10 on CUDA, 3 on the CPU)")
    sizes = parser.add_mutually_exclusive_group()
    sizes.add_argument("--small", action="store_true", help="CPU sizes (the default on the CPU)")
    sizes.add_argument("--paper", action="store_true", help="the papers' sizes (the default on CUDA)")
    parser.add_argument("--spaces", default="nb201,nb1shot1", help="comma-separated: nb201, nb1shot1")
    parser.add_argument(
        "--options",
        help=f"comma-separated speed options to switch on one at a time, and together: {', '.join(OPTIONS)} "
        "(default: all; on the CPU all but compile, which takes minutes there)",
    )
    parser.add_argument(
        "--compile-backend", default=loop.COMPILE_BACKEND, help="torch.compile backend of speed.compile"
    )
    parser.add_argument("--nb1shot1-peer", default=os.environ.get("NB1SHOT1_PEER"), help="a nasbench-1shot1 checkout")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: 1 on the CPU, torch's with CUDA)")
    parser.add_argument("--json", help="write every figure to this JSON file (after each space)")
    args = parser.parse_args(argv)
    if (args.rounds is not None and args.rounds < 1) or (args.steps is not None and args.steps < 1):
        parser.error("--rounds and --steps take 1 or more")
    args.left_out = {}
    if args.options is None:
        args.options = ",".join(OPTIONS)
        if loop.resolve_device(args.device).type == "cpu":
            args.options = ",".join(o for o in OPTIONS if o != "compile")
            args.left_out = {"compile": "left out on the CPU by default (inductor compiles for minutes): see --options"}
    for name, allowed in (("spaces", SPACES), ("options", OPTIONS)):
        chosen = [v for v in getattr(args, name).split(",") if v]
        unknown = sorted(set(chosen) - set(allowed))
        if unknown:
            parser.error(f"--{name}: unknown {', '.join(unknown)}; choose from {', '.join(allowed)}")
        setattr(args, name, chosen)
    return args


def run_space(
    space: str, size: Size, device: torch.device, args: argparse.Namespace, rounds: int, steps: int
) -> dict[str, Any]:
    """Build, warm up, time and profile the candidates of ``space``; print its tables; its figures."""
    print(f"\n{space}: building and warming up", flush=True)
    cands = candidates(space, size, device, args)
    for c in cands:
        if c.build is None:
            print(f"  {c.name}: n/a ({c.reason})", flush=True)
        prepare(c, device)
    measure(cands, device, rounds, steps)
    for c in cands:
        if c.reason is None:
            profile_candidate(c, device, steps)
    ratios(cands)
    print_space(space, size, cands, device.type == "cuda")
    figures = {}
    for c in cands:
        status = "ok" if c.reason is None else "n/a"
        figures[c.name] = {"kind": c.kind, "settings": c.settings, "status": status, "reason": c.reason, **c.record}
    return {"sizes": vars(size), "candidates": figures}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark; print the tables and return (and with ``--json`` write) every figure."""
    args = parse_args(argv)
    device = loop.resolve_device(args.device)
    cuda = device.type == "cuda"
    if args.threads or not cuda:
        torch.set_num_threads(args.threads or 1)
    sizes = "paper" if args.paper or (cuda and not args.small) else "small"
    rounds, steps = args.rounds or (5 if cuda else 3), args.steps or (10 if cuda else 3)
    result: dict[str, Any] = {
        "device": describe_device(device),
        "torch": torch.__version__,
        "sizes": sizes,
        "rounds": rounds,
        "steps": steps,
        "options": args.options,
        "compile_backend": args.compile_backend,
        "spaces": {},
    }
    where = result["device"].get("name", result["device"]["cpu"])
    print(f"{device} ({where}), torch {torch.__version__}, {torch.get_num_threads()} threads; ", end="")
    print(f"{sizes} sizes, {rounds} rounds x {steps} iterations per mode", flush=True)
    backend, loop.COMPILE_BACKEND = loop.COMPILE_BACKEND, args.compile_backend
    # the numerics a run sets (TF32 off unless numerics.tf32), not torch's defaults
    with numerics_applied(build_config("paper").numerics, device) as flags:
        result["numerics"] = {"flags": flags, "device": device_description(device)}
        _run_spaces(result, args, device, sizes, rounds, steps, backend)
    if args.json:
        print(f"\nwrote {args.json}")
    return result


def _run_spaces(
    result: dict[str, Any],
    args: argparse.Namespace,
    device: torch.device,
    sizes: str,
    rounds: int,
    steps: int,
    backend: str,
) -> None:
    cuda = device.type == "cuda"
    try:
        for space in args.spaces:
            result["spaces"][space] = run_space(space, SIZES[sizes][space], device, args, rounds, steps)
            if args.json:  # after each space: a run cut short still brings back what it measured
                with open(args.json, "w") as out:
                    json.dump(result, out, indent=2)
            if cuda:
                torch.cuda.empty_cache()
    finally:
        loop.COMPILE_BACKEND = backend


if __name__ == "__main__":
    os.environ.setdefault("KINETO_LOG_LEVEL", "6")  # the profiler's start/stop lines would clutter the tables
    try:
        main()
    except ConfigError as exc:  # --device cuda without one
        raise SystemExit(f"error: {exc}") from None
