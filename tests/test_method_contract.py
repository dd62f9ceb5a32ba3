"""Every registered method, the same checks: two epochs on tiny synthetic NB201 with every column
and its method-state columns filled, and on NB-1Shot1 either two epochs or a clear refusal."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from nasbench_harness.config import build_config
from nasbench_harness.data import synthetic_search_data
from nasbench_harness.errors import ConfigError
from nasbench_harness.methods.engine.run import run_search
from nasbench_harness.registry import METHODS, make_method
from nasbench_harness.tracking import read_trajectory

COMMON = {
    "epoch", "schedule_epoch", "action", "train_loss", "train_acc", "valid_loss", "valid_acc", "final_valid_acc",
    "gap", "genotype", "regret_valid", "regret_test", "eigenvalue", "lr", "arch_lr", "epoch_time_s",
}  # fmt: skip
TINY = {"batch_size": 16, "tracking": {"eigen_every": 1, "eigen_batch_size": 8}, "threads": 1, "epochs": 2}


pytestmark = pytest.mark.usefixtures("one_thread")


def _run(tmp_path: Path, bench: Any, method: str, space: str) -> list[dict[str, Any]]:
    model = {"channels": 4, "cells_per_stage": 1} if space == "nb201" else {"channels": 4, "num_cells": 3}
    config = build_config("cpu", {**TINY, "method": method, "space": space, "model": model})
    data = synthetic_search_data(n_train=48, n_valid=32, image_size=16, seed=0)
    return read_trajectory(run_search(config, tmp_path / "run", device="cpu", data=data, bench=bench).path).to_pylist()


@pytest.mark.data
@pytest.mark.parametrize("method", list(METHODS))
def test_two_epochs_on_nb201_fill_every_column(method: str, tmp_path: Path, real_nb201: Any) -> None:
    rows = _run(tmp_path, real_nb201, method, "nb201")
    assert [r["epoch"] for r in rows] == [1, 2]
    state_columns = set(make_method(method).state_columns())
    for row in rows:
        assert set(row) >= COMMON | state_columns
        for column in COMMON - {"action"}:
            assert row[column] is not None, column
        assert 0 <= row["valid_acc"] <= 100 and 0 <= row["final_valid_acc"] <= 100
    last = rows[-1]
    filled = {c for c in state_columns if last[c] is not None}
    # early-stopping statistics need several eigenvalues before they exist
    assert filled >= state_columns - {"es_local_avg", "es_growth"}, state_columns - filled


@pytest.mark.parametrize("method", list(METHODS))
def test_on_nb1shot1_a_method_runs_or_refuses_clearly(method: str, tmp_path: Path, small_nb101: Any) -> None:
    refusal = None
    try:
        make_method(method).check_space("nb1shot1-1")
    except ConfigError as exc:
        refusal = str(exc)
    if refusal is not None:
        assert refusal.startswith(f"method {method!r} cannot run on nb1shot1-1: ") and len(refusal) > 60
        with pytest.raises(ConfigError, match="cannot run on nb1shot1-1"):
            _run(tmp_path, small_nb101, method, "nb1shot1-1")
        return
    rows = _run(tmp_path, small_nb101, method, "nb1shot1-1")
    assert [r["epoch"] for r in rows] == [1, 2] and all(r["module_hash"] for r in rows)
