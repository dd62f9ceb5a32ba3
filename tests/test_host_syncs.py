"""No host reads inside a training iteration (issue 18), counted on the CPU.

On a GPU every read of a device value by the host (``float(t)``, ``t.item()``, ``bool(t)``,
``t.tolist()``, ``t.cpu()``) blocks until the queue drains, and every tensor built from Python
data (``torch.tensor([...])``, indexing with a tuple) is a host-to-device copy. Neither depends on
the device, so both are counted here on the CPU, in two independent ways:

- the profiler's ATen events that read a scalar or lift host data: ``aten::_local_scalar_dense``
  (under ``item``/``float``/``bool``), ``aten::is_nonzero``, ``aten::nonzero`` (data-dependent
  shape), ``aten::equal`` and ``aten::lift_fresh`` (``torch.tensor`` of Python data);
- a ``TorchFunctionMode`` that sees every tensor method the host uses to read values
  (``tolist``, ``numpy``, ``cpu``, ``item``, ``__bool__``, ...), which the profiler does not
  (``tolist`` of a CPU tensor records no op).

An iteration is what the loop does per batch pair: the arch step and the weight step
(:func:`~nasbench_harness.methods.engine.steps.training_step`), plus drawing the next batches.
Allowed, with the reason:

- GDAS's reference gradient computes only each edge's sampled op, which needs the sample on the
  host (its authors' code reads it with ``.item()`` per edge; we read the whole sample once per
  forward): one read per forward, two per iteration;
- single-stage derives each hard sample by the space's rule on the host (NB-1Shot1: the top k
  parents per node), because the weight step computes that path only: one read and one upload of
  its one-hot weights per forward, two of each per iteration. After a read the device queue is
  empty anyway, so the upload adds a copy's latency, not a sync.
"""

from __future__ import annotations

import collections
import weakref
from collections.abc import Iterator
from typing import Any

import pytest
import torch
from torch.overrides import TorchFunctionMode
from torch.profiler import ProfilerActivity, profile

from nasbench_harness.config import build_config
from nasbench_harness.data.synthetic import synthetic_search_data
from nasbench_harness.errors import ConfigError
from nasbench_harness.methods.engine.loop import build_loaders, build_state
from nasbench_harness.methods.engine.steps import training_step
from nasbench_harness.registry import METHODS, build_method

pytestmark = pytest.mark.usefixtures("one_thread")

SYNC_OPS = (
    "aten::_local_scalar_dense",
    "aten::is_nonzero",
    "aten::nonzero",
    "aten::equal",
    "aten::lift_fresh",
)
READ_METHODS = {
    torch.Tensor.tolist,
    torch.Tensor.numpy,
    torch.Tensor.cpu,
    torch.Tensor.item,
    torch.Tensor.__bool__,
    torch.Tensor.__float__,
    torch.Tensor.__int__,
    torch.Tensor.__index__,
}
ALLOWED: dict[str, tuple[int, int]] = {"gdas": (2, 0), "single-stage": (2, 2)}
"""(reads, uploads) per iteration that are part of the method (see the module doc)."""
SPACES = ("nb201", "nb1shot1-1", "nb1shot1-2", "nb1shot1-3")
TINY = {"model": {"channels": 4, "cells_per_stage": 1, "num_cells": 3}, "batch_size": 8, "epochs": 4}


def _runs_on(method_name: str, space: str) -> bool:
    try:
        build_method(build_config("cpu", {"space": space, "method": method_name, **TINY}))
    except ConfigError:  # the method says it cannot run on the space
        return False
    return True


CASES = [(m, s) for s in SPACES for m in sorted(METHODS) if _runs_on(m, s)]


class HostReads(TorchFunctionMode):
    """Counts the host's reads of device values and its uploads of host data, as a GPU would see
    them, by following where every tensor lives in a GPU run of the same code:

    - on the host: what ``cpu()``/``numpy()`` return, what a factory makes without a ``device``
      (``torch.rand(shape)``, ``torch.tensor(data)``), and what an op computes from host tensors
      only; also ``on_host`` (tensors torch keeps on the CPU on every device);
    - on the device: everything else (the network, the alphas, the batches and what follows).

    A read (``item``, ``bool``, ``float``, ``int``, ``tolist``, ``cpu``, ``numpy``) of a device
    tensor counts in ``reads``; a device tensor made from Python data (``torch.tensor(data,
    device=...)``) or from a host tensor (``.to(device)``), or indexed with a Python sequence,
    counts in ``uploads``. Reads of host tensors are free and are counted in ``host_reads``.
    """

    def __init__(self, on_host: set[int] = frozenset()) -> None:  # type: ignore[assignment]
        super().__init__()
        self.reads: collections.Counter[str] = collections.Counter()
        self.uploads: collections.Counter[str] = collections.Counter()
        self.host_reads = 0
        self.host: weakref.WeakValueDictionary[int, torch.Tensor] = weakref.WeakValueDictionary()
        self.on_host = on_host

    def _is_host(self, t: torch.Tensor) -> bool:
        return id(t) in self.on_host or self.host.get(id(t)) is t

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        tensors = [a for a in _flat(args) + _flat(list(kwargs.values())) if isinstance(a, torch.Tensor)]
        name = getattr(func, "__name__", str(func))
        if func in READ_METHODS:
            if tensors and self._is_host(tensors[0]):
                self.host_reads += 1
            else:
                self.reads[name] += 1
        elif func in (torch.Tensor.__getitem__, torch.Tensor.__setitem__) and not self._is_host(args[0]):
            index = _flat(list(args[1]) if isinstance(args[1], tuple) else [args[1]])
            if _sequence_index(args[1]) or any(isinstance(i, torch.Tensor) and self._is_host(i) for i in index):
                self.uploads[f"{name} with a host index"] += 1
        elif func is torch.Tensor.to and tensors and self._is_host(tensors[0]) and _moves(args, kwargs):
            self.uploads["to(device)"] += 1
        elif func in (torch.tensor, torch.as_tensor) and kwargs.get("device") is not None:
            self.uploads[name] += 1
        out = func(*args, **kwargs)
        host_out = func in (torch.Tensor.cpu, torch.Tensor.numpy) or (
            all(self._is_host(t) for t in tensors) and (tensors or kwargs.get("device") is None)
        )
        if func is torch.Tensor.to and _moves(args, kwargs):
            host_out = False
        if host_out:
            for t in _flat([out]):
                if isinstance(t, torch.Tensor):
                    self.host[id(t)] = t
        return out


def _flat(values: Any) -> list[Any]:
    out: list[Any] = []
    for v in values:
        out.extend(_flat(v) if isinstance(v, list | tuple) else [v])
    return out


def _sequence_index(index: Any) -> bool:
    parts = index if isinstance(index, tuple) else (index,)
    return any(isinstance(p, list | tuple) for p in parts)


def _moves(args: Any, kwargs: dict[str, Any]) -> bool:
    """Whether a ``Tensor.to`` call names a device."""
    return any(isinstance(a, str | torch.device) for a in args[1:]) or "device" in kwargs


def _on_host(state: Any) -> set[int]:
    """The optimisers' step counters: torch keeps them on the CPU (unless ``capturable``) so that
    reading them costs no device sync; Adam reads its counter once per step."""
    return {
        id(value)
        for optimizer in (state.w_optim, state.a_optim)
        for per_param in optimizer.state.values()
        for key, value in per_param.items()
        if key == "step" and isinstance(value, torch.Tensor) and value.device.type == "cpu"
    }


def _iterations(method_name: str, space: str) -> tuple[Any, Iterator[Any]]:
    """The search state and a generator whose every ``next`` runs one iteration of
    ``method_name`` on ``space`` (batch draw, arch step, weight step)."""
    config = build_config("cpu", {"space": space, "method": method_name, **TINY})
    method, _ = build_method(config)
    device = torch.device("cpu")
    data = synthetic_search_data(64, 64, image_size=16)
    state, _ = build_state(config, method, data.num_classes, device)
    loaders = build_loaders(config, data, device)
    state.eval_batches = lambda: loaders.evaluation.epoch(0)
    state.snapshot = lambda: {}
    for component in method.all_components:
        component.setup(state)

    def run() -> Iterator[Any]:
        state.epoch, state.steps = 2, len(loaders.train)
        state.net.train()
        valid = loaders.valid.epoch(2)
        for step, train in enumerate(loaders.train.epoch(2)):
            state.step = step
            training_step(state, train, next(valid))
            yield

    return state, run()


def _count(state: Any, iterations: Iterator[Any]) -> tuple[dict[str, int], HostReads]:
    next(iterations)  # the epoch's first step: lazy set-up, per-epoch draws
    next(iterations)  # warm
    seen = HostReads(_on_host(state))
    with profile(activities=[ProfilerActivity.CPU]) as prof, seen:
        next(iterations)
    ops = collections.Counter(e.name for e in prof.events() if e.name in SYNC_OPS)
    return dict(ops), seen


def test_every_method_runs_somewhere() -> None:
    assert {m for m, _ in CASES} == set(METHODS) and {s for _, s in CASES} == set(SPACES)


@pytest.mark.parametrize(("method_name", "space"), CASES)
def test_a_training_iteration_reads_nothing_on_the_host(method_name: str, space: str) -> None:
    ops, seen = _count(*_iterations(method_name, space))
    reads, uploads = ALLOWED.get(method_name, (0, 0))
    found = f"reads {dict(seen.reads)}, uploads {dict(seen.uploads)}, profiler {ops}"
    assert sum(seen.reads.values()) <= reads and sum(seen.uploads.values()) <= uploads, (
        f"{method_name} on {space}, one iteration: {found} (allowed {reads} reads, {uploads} uploads)"
    )
    # The profiler cross-checks what the mode cannot see: a scalar read inside a C++ op
    # (nonzero, a tensor-valued repeat count, ...) has no Python call of its own.
    assert ops.get("aten::nonzero", 0) == ops.get("aten::equal", 0) == 0, found
    python_reads = sum(seen.reads.values()) + seen.host_reads
    assert ops.get("aten::_local_scalar_dense", 0) <= python_reads, found


def test_the_detectors_see_a_host_read() -> None:
    """The detectors are not blind: each catches the kind of traffic it is there for, and reads of
    host tensors are not counted as device reads."""
    x = torch.ones(3, device="cpu")  # a device tensor in the mode's model
    seen = HostReads()
    with profile(activities=[ProfilerActivity.CPU]) as prof, seen:
        float(x.sum())
        x.tolist()
        _ = x[(0, 2),]
        torch.tensor([1.0, 2.0], device="cpu")
        host = torch.rand(3)  # made on the host: reading it is free
        host.argmax().item()
        x.cpu().tolist()
    ops = collections.Counter(e.name for e in prof.events() if e.name in SYNC_OPS)
    assert ops["aten::_local_scalar_dense"] >= 2 and ops["aten::lift_fresh"] >= 1
    assert seen.reads == {"__float__": 1, "tolist": 1, "cpu": 1}
    assert sum(seen.uploads.values()) == 2 and seen.host_reads == 2
