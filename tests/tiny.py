"""The tiny search the method tests share: 4 channels, one cell per stage (NB201) or three cells
(NB-1Shot1), batch 16, two epochs, the eigenvalue every epoch on 8 images, one thread, on 48
search-train and 32 search-valid synthetic 16x16 images.

``tiny_config(**overrides)`` builds the config (``overrides`` merged into the tiny settings
section by section, as ``build_config`` merges them into the preset); ``tiny_search(tmp_path,
bench, name, **overrides)`` runs or resumes it in ``tmp_path / name``, scored on ``bench`` (the
``synthetic_nb201`` or ``small_nb101`` fixture, or a real table in ``data``-marked tests).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

TINY = {
    "model": {"channels": 4, "cells_per_stage": 1},
    "batch_size": 16,
    "tracking": {"eigen_every": 1, "eigen_batch_size": 8},
    "threads": 1,
}
TINY_1SHOT1 = {**TINY, "space": "nb1shot1-1", "model": {"channels": 4, "num_cells": 3}}
TINY_DATA = {"n_train": 48, "n_valid": 32, "image_size": 16, "seed": 0}
"""Arguments of ``synthetic_search_data`` for the tiny searches."""
TIME_COLUMNS = frozenset({"epoch_time_s", "tracking_time_s", "wall_time_s"})
"""Trajectory columns that differ between two runs of the same search."""


def tiny_settings(space: str = "nb201") -> dict[str, Any]:
    """The tiny overrides for ``space`` (a fresh copy), two epochs."""
    base = TINY_1SHOT1 if space.startswith("nb1shot1") else TINY
    return {**copy.deepcopy(base), "space": space, "epochs": 2}


def merged(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``overrides`` on top; nested sections are merged key by key."""
    out = copy.deepcopy(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def tiny_config(**overrides: Any) -> Any:
    """The cpu preset under the tiny settings of ``overrides["space"]`` (default nb201) under ``overrides``."""
    from nasbench_harness.config import build_config

    return build_config("cpu", merged(tiny_settings(overrides.get("space", "nb201")), overrides))


def tiny_data(**changes: Any) -> Any:
    """The tiny synthetic search data (``changes`` replace arguments of ``synthetic_search_data``)."""
    from nasbench_harness.data import synthetic_search_data

    return synthetic_search_data(**{**TINY_DATA, **changes})


def tiny_search(
    tmp_path: Path,
    bench: Any,
    name: str = "run",
    *,
    config: Any = None,
    progress: Any = None,
    resume: bool = True,
    **overrides: Any,
) -> Any:
    """Run (or resume) ``config`` (default: ``tiny_config(**overrides)``) in ``tmp_path / name`` on
    the tiny data, scored on ``bench``; the :class:`RunResult`."""
    from nasbench_harness.methods.engine.run import run_search

    config = tiny_config(**overrides) if config is None else config
    return run_search(
        config, tmp_path / name, device="cpu", data=tiny_data(), bench=bench, progress=progress, resume=resume
    )


def trajectory(result: Any) -> list[dict[str, Any]]:
    """The rows of a run's ``trajectory.parquet`` (``result``: a RunResult or a run directory)."""
    from nasbench_harness.tracking import read_trajectory

    return read_trajectory(getattr(result, "path", result)).to_pylist()


def alphas(result: Any) -> list[dict[str, Any]]:
    """The rows of a run's ``alphas.parquet``."""
    from nasbench_harness.tracking import read_alphas

    return read_alphas(getattr(result, "path", result)).to_pylist()


def without_times(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``rows`` without the wall-clock columns, for comparing two runs."""
    return [{k: v for k, v in row.items() if k not in TIME_COLUMNS} for row in rows]


class Interrupt(Exception):
    """Raised by :func:`interrupted_search`'s progress hook, as a kill would end the run."""


def interrupted_search(tmp_path: Path, bench: Any, name: str, *, after_epoch: int, **kwargs: Any) -> None:
    """Start :func:`tiny_search` in ``tmp_path / name`` (``kwargs`` as there) and interrupt it once
    epoch ``after_epoch`` is committed, leaving the directory a resumed run continues from."""
    import pytest

    def stop(kind: str, info: dict[str, Any]) -> None:
        if kind == "epoch" and info["epoch"] == after_epoch:
            raise Interrupt

    with pytest.raises(Interrupt):
        tiny_search(tmp_path, bench, name, progress=stop, **kwargs)
