"""What each run of a sweep is given, and so which device and preset it trains with: decided from
the machines the executor runs on (this one, a Ray cluster's nodes, a SLURM partition's nodes),
never from the machine that runs ``nbh sweep``.

:func:`place` turns the user's ``--device``, ``--gpus-per-run``, ``--cpus-per-run`` and
``--workers`` and a :class:`Capacity` into a :class:`Placement`, or a ``ConfigError`` before
anything is submitted (``--device cuda`` where there is no GPU, a run larger than every node).
A search trains on one device, so a run asks for at most one GPU; a fraction packs several runs
on one (a paper-scale NB201 search uses a few GB of a current GPU).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass

from nasbench_harness.errors import ConfigError


@dataclass(frozen=True)
class Node:
    """One machine runs can go to: its CPUs and GPUs (Ray may count fractions of GPUs)."""

    cpus: float
    gpus: float
    name: str = ""


@dataclass(frozen=True)
class Capacity:
    """The machines an executor runs on; ``where`` names them in messages (``this machine``, ...).
    ``gpu_ids``: the local executor's visible GPUs (``CUDA_VISIBLE_DEVICES`` values)."""

    executor: str
    nodes: tuple[Node, ...]
    where: str
    gpu_ids: tuple[str, ...] = ()

    @property
    def gpus(self) -> float:
        return sum(n.gpus for n in self.nodes)

    @property
    def most_cpus(self) -> float:
        return max((n.cpus for n in self.nodes), default=0)

    @property
    def most_gpus(self) -> float:
        return max((n.gpus for n in self.nodes), default=0)


@dataclass(frozen=True)
class Placement:
    """What every run is given. ``device``: what a run trains on where it lands (``cpu``, ``cuda``,
    or ``cuda:N`` on this machine). ``workers`` and ``gpu_slots`` are the local executor's: the
    processes at once, and the ``CUDA_VISIBLE_DEVICES`` value of each worker slot in turn."""

    device: str
    gpus_per_run: float
    cpus_per_run: int
    workers: int = 1
    gpu_slots: tuple[str, ...] = ()

    @property
    def uses_gpu(self) -> bool:
        return self.gpus_per_run > 0

    def describe(self) -> str:
        gpu = f", {self.gpus_per_run:g} GPU" if self.uses_gpu else ""
        workers = f", {self.workers} at once" if self.workers > 1 else ""
        return f"each run: {self.device}, {self.cpus_per_run} CPU{gpu}{workers}"


def local_capacity() -> Capacity:
    """This machine: the CPUs this process may use and the GPUs torch sees (their
    ``CUDA_VISIBLE_DEVICES`` ids, so a worker can be given one)."""
    import torch

    from nasbench_harness.threads import usable_cpus

    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    ids = [v.strip() for v in visible.split(",") if v.strip()] if visible else []
    gpu_ids = tuple(ids[:count]) if len(ids) >= count else tuple(str(i) for i in range(count))
    return Capacity("local", (Node(usable_cpus(), count, "this machine"),), "this machine", gpu_ids)


def place(
    capacity: Capacity,
    device: str = "auto",
    gpus_per_run: float | None = None,
    cpus_per_run: int | None = None,
    workers: int | None = None,
) -> Placement:
    """The :class:`Placement` of ``device`` (auto, cpu, cuda, cuda:N) on ``capacity``. Defaults:
    one GPU per run where the machines have GPUs (``auto``); the local executor fills every GPU
    slot (and runs one CPU run at a time, with all the cores); Ray and SLURM give a run one CPU."""
    gpus = _gpus_per_run(capacity, device, gpus_per_run)
    if capacity.executor == "local":
        return _place_local(capacity, device, gpus, cpus_per_run, workers)
    if workers not in (None, 1):
        raise ConfigError(
            f"--workers is the local executor's; {capacity.executor} runs as many runs at once as its "
            "machines fit: size them with --cpus-per-run and --gpus-per-run"
        )
    if device.startswith("cuda:"):
        raise ConfigError(
            f"--device {device}: a {capacity.executor} run sees only the GPU it is given; use --device cuda"
        )
    cpus = 1 if cpus_per_run is None else cpus_per_run
    if not 1 <= cpus <= capacity.most_cpus:
        sizes = ", ".join(f"{n.name or 'a node'}: {n.cpus:g}" for n in capacity.nodes[:8]) or "no nodes"
        raise ConfigError(
            f"--cpus-per-run {cpus}: no node of {capacity.where} has that many CPUs ({sizes}); "
            f"use 1..{capacity.most_cpus:g}, or the run would wait forever"
        )
    return Placement("cuda" if gpus else "cpu", gpus, cpus)


def _gpus_per_run(capacity: Capacity, device: str, asked: float | None) -> float:
    """GPUs per run: 1 where there are GPUs and the device allows, else 0; checked against ``device``."""
    if asked is not None and not (0 <= asked <= 1 and math.isfinite(asked)):
        raise ConfigError(
            f"--gpus-per-run {asked:g}: a search trains on one GPU; give 1, or a fraction such as 0.25 "
            "to pack 4 runs on each GPU (0: no GPU)"
        )
    if device == "cpu":
        if asked:
            raise ConfigError(f"--gpus-per-run {asked:g} with --device cpu: drop one of them")
        return 0.0
    has_gpu = capacity.gpus > 0
    if device.startswith("cuda"):
        if not has_gpu:
            raise ConfigError(
                f"--device {device}: {capacity.where} has no GPU; use --device cpu (or auto), or another "
                + {"ray": "--ray-address", "slurm": "--slurm-partition"}.get(capacity.executor, "machine")
            )
        if asked == 0:
            raise ConfigError(f"--device {device} with --gpus-per-run 0: a CUDA run needs a GPU share")
        return 1.0 if asked is None else float(asked)
    if asked and not has_gpu:
        raise ConfigError(f"--gpus-per-run {asked:g}: {capacity.where} has no GPU")
    return (1.0 if has_gpu else 0.0) if asked is None else float(asked)


def _place_local(
    capacity: Capacity, device: str, gpus: float, cpus_per_run: int | None, workers: int | None
) -> Placement:
    """This machine: GPU runs spread over the visible GPUs, ``1 // gpus`` per GPU; the CPU threads
    split between the workers (workers x threads never exceed the CPUs this process may use)."""
    cpus = int(capacity.most_cpus)
    slots: tuple[str, ...] = ()
    if gpus and not device.startswith("cuda:"):
        per_gpu = max(1, int(1 / gpus + 1e-9))
        slots = tuple(gpu for _ in range(per_gpu) for gpu in capacity.gpu_ids)  # interleaved: GPU 0, 1, 0, 1, ...
        if workers is None:
            workers = max(1, min(len(slots), cpus))
        elif workers > len(slots):
            raise ConfigError(
                f"--workers {workers} with --gpus-per-run {gpus:g} needs {math.ceil(workers * gpus)} GPU(s); "
                f"this machine has {len(capacity.gpu_ids)}: use --gpus-per-run "
                f"{len(capacity.gpu_ids) / workers:.3g} to pack them, or fewer workers"
            )
    elif gpus and device.startswith("cuda:"):
        index = device.split(":", 1)[1]
        if not index.isdigit() or int(index) >= len(capacity.gpu_ids):
            raise ConfigError(f"--device {device}: this machine has {len(capacity.gpu_ids)} GPU(s) (cuda:0..)")
    workers = 1 if workers is None else workers
    if not 1 <= workers <= cpus:
        raise ConfigError(
            f"--workers {workers}: this machine allows 1..{cpus} runs at once (the CPUs this process may use)"
        )
    threads = cpus_per_run or max(1, cpus // workers)
    if not 1 <= threads <= cpus:
        raise ConfigError(
            f"threads per run {threads}: this machine allows at most {cpus} (the CPUs this process may use); "
            f"give --cpus-per-run 1..{cpus}"
        )
    if workers * threads > cpus:
        raise ConfigError(
            f"--workers {workers} with {threads} threads per run needs {workers * threads} CPUs; this machine "
            f"allows at most {cpus} (the CPUs this process may use); lower the workers or --cpus-per-run"
        )
    run_device = device if device.startswith("cuda:") else "cuda" if gpus else "cpu"
    return Placement(run_device, gpus, threads, workers, slots[:workers] if slots else ())


def visible_device(slot: str | None) -> None:
    """In a local worker process, before torch starts CUDA: see only GPU ``slot`` (None: as is)."""
    if slot is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = slot


def nodes_summary(nodes: Sequence[Node]) -> str:
    """``2 nodes: 16 CPUs, 8 GPUs`` for messages and ``--dry-run``."""
    cpus = sum(n.cpus for n in nodes)
    gpus = sum(n.gpus for n in nodes)
    return f"{len(nodes)} node(s): {cpus:g} CPUs, {gpus:g} GPUs"
