"""The presets of a search run, as plain data: what each preset sets, per space family.

``paper`` and ``common`` share the space's published base setting here; ``paper`` is then
overlaid with the method's own protocol (:mod:`nasbench_harness.protocols`) by
:func:`nasbench_harness.config.config_values`, while ``common`` stays one protocol for every
method (as NB201's own table compares its methods). ``cpu`` and ``collapse`` are CPU-sized and
use the common protocol. Kept apart from :mod:`nasbench_harness.config` so that the schema and
the numbers can each be read on their own.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

# The end-of-epoch evaluations (supernet and final net) use a fixed subset of 2,048 of the
# 25,000 search-valid images: a forward of all of them twice an epoch would cost about a
# tenth of the epoch's training; 2,048 keeps tracking under 5% (benchmarks/perf/tracking_cost.py)
# with a standard error under 0.7 points on an accuracy near 90%.
_PUBLISHED_NB201: dict[str, Any] = {"tracking": {"final_eval_images": 2048}}
# NB-1Shot1's DARTS setting: C=16, 9 cells, batch 96, wd 3e-4 (the rest as NB201).
_PUBLISHED_NB1SHOT1: dict[str, Any] = {
    "batch_size": 96,
    "optim": {"weight_decay": 3e-4},
    "tracking": {"final_eval_images": 2048},
}

_CPU_NB201: dict[str, Any] = {
    "model": {"channels": 8, "cells_per_stage": 1},
    "data": {"train_size": 5000, "valid_size": 5000, "image_size": 16},
    "tracking": {"final_eval_images": 512, "eigen_batch_size": 32},
}
_CPU_NB1SHOT1: dict[str, Any] = {
    "batch_size": 96,
    "optim": {"weight_decay": 3e-4},
    "model": {"channels": 8, "num_cells": 3},
    "data": {"train_size": 5000, "valid_size": 5000, "image_size": 16},
    "tracking": {"final_eval_images": 512, "eigen_batch_size": 32},
}
_COLLAPSE: dict[str, Any] = {"epochs": 100, "arch_optim": {"lr": 3e-3}}
"""What ``collapse`` adds to ``cpu`` on every space (keys ``cpu`` does not set)."""

PRESETS: dict[str, dict[str, Any]] = {
    # NB201's published base setting; config_values overlays the method's protocol on it.
    "paper": _PUBLISHED_NB201,
    # Calibrated on 2 CPU cores: an epoch of first-order DARTS takes about 5 s, so 50 epochs take
    # about 5 minutes, and tracking (both evaluations every epoch, the Hessian every 5) stays
    # under 10% of the epoch; see benchmarks/perf/nb201_search.py.
    "cpu": _CPU_NB201,
    # The cpu preset where DARTS's collapse shows (issue 17; benchmarks/fidelity/README.md, row
    # alr10-e100): 5,000 search-train images at batch 64 give 78 arch steps an epoch where the
    # paper's 25,000 give 390, so the alphas' Adam (whose step is about its learning rate) moves
    # them a fifth as far; the alphas' learning rate x10 (3e-3) and 100 epochs let them drift as far
    # as the paper's do. About 10 minutes a run on one core.
    "collapse": {**_CPU_NB201, **_COLLAPSE},
    # The published base setting for every method alike (what `paper` was before per-method
    # protocols): methods compared under identical settings.
    "common": _PUBLISHED_NB201,
}
"""What each preset sets on NB201 (under the overrides). Order matters: the CLI lists them so."""
LAPTOP_PRESETS = ("cpu", "collapse")
"""The presets sized for a CPU; the others need a GPU."""
PROTOCOL_PRESETS = ("paper",)
"""The presets overlaid with the method's own protocol (:mod:`nasbench_harness.protocols`)."""

NB1SHOT1_PRESETS: dict[str, dict[str, Any]] = {
    "paper": _PUBLISHED_NB1SHOT1,
    # 16x16 images with 3 stacks of 1 cell: about as long an epoch as NB201's cpu preset.
    "cpu": _CPU_NB1SHOT1,
    # The cpu preset with NB201's collapse settings (arch lr x10, 100 epochs): 52 arch steps an
    # epoch here against the paper's 260.
    "collapse": {**_CPU_NB1SHOT1, **_COLLAPSE},
    "common": _PUBLISHED_NB1SHOT1,
}
"""What an NB-1Shot1 space changes in each preset (applied over the preset, under overrides)."""


def preset_for(gpu: bool, variants: Iterable[str] | None = None) -> str:
    """The default preset of runs that train on a GPU (``gpu``) or not. A single search: ``paper``
    on a GPU, else ``cpu``. A suite (``variants``, in its file's order): its first variant that
    fits (GPU-sized on a GPU, one of :data:`LAPTOP_PRESETS` otherwise), so a suite that lists
    ``common`` before ``paper`` compares under one protocol by default; without such a variant,
    the single search's default."""
    fallback = "paper" if gpu else "cpu"
    if variants is None:
        return fallback
    fits = [v for v in variants if (v not in LAPTOP_PRESETS) == gpu]
    return fits[0] if fits else fallback
