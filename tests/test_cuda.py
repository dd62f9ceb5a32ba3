"""Searches on a CUDA device (issue 18). Every test here is marked ``cuda``: skipped where torch
sees no GPU, run on a GPU machine with ``pytest -m cuda``. What does not depend on the device is
tested on the CPU elsewhere (``test_numerics.py``, ``test_host_syncs.py``, ``test_search.py``).

- one tiny epoch of every registered method on NB201 and, where the method runs there, on
  NB-1Shot1 space 1: it finishes with finite numbers;
- a training iteration of first-order DARTS (arch step, weight step) under
  ``torch.cuda.set_sync_debug_mode("error")``: no host sync inside;
- in deterministic mode (``numerics.deterministic``) a run interrupted after epoch 1 and resumed
  equals the uninterrupted run bit for bit;
- a checkpoint written on CUDA resumes on the CPU and finishes.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import pytest
import torch
from tiny import Interrupt, alphas, tiny_config, tiny_data, trajectory, without_times

from nasbench_harness.errors import ConfigError
from nasbench_harness.methods.engine.loop import build_loaders, build_state
from nasbench_harness.methods.engine.run import RunResult, run_search
from nasbench_harness.methods.engine.steps import weight_step
from nasbench_harness.registry import METHODS, build_method, make_method
from nasbench_harness.tracking import RunDir

if torch.cuda.is_available():
    # cuBLAS reads CUBLAS_WORKSPACE_CONFIG once, at its first call in the process, and the
    # deterministic runs below need it; set it at collection, before any test calls cuBLAS.
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")

pytestmark = [pytest.mark.cuda, pytest.mark.usefixtures("one_thread")]


def _runs_on(method: str, space: str) -> bool:
    try:
        make_method(method).check_space(space)
    except ConfigError:  # the method says it cannot run on the space
        return False
    return True


NB1SHOT1_METHODS = [m for m in METHODS if _runs_on(m, "nb1shot1-1")]


def _cuda_search(tmp_path: Path, bench: Any, name: str, config: Any, stop_after: int | None = None) -> RunResult:
    """``config`` run (or resumed) on CUDA in ``tmp_path / name`` on the tiny data; interrupted
    once epoch ``stop_after`` is committed, when given."""

    def stop(kind: str, info: dict[str, Any]) -> None:
        if kind == "epoch" and info["epoch"] == stop_after:
            raise Interrupt

    progress = stop if stop_after is not None else None
    return run_search(config, tmp_path / name, device="cuda", data=tiny_data(), bench=bench, progress=progress)


def _check_finite_run(result: RunResult, epochs: int) -> None:
    assert (result.status, result.epochs_completed) == ("finished", epochs)
    rows = trajectory(result)
    assert [r["epoch"] for r in rows] == list(range(1, epochs + 1))
    for row in rows:
        for key in ("train_loss", "train_acc", "valid_loss", "valid_acc", "final_valid_acc"):
            assert math.isfinite(row[key]), (key, row[key])
        assert row["eigenvalue"] is None or math.isfinite(row["eigenvalue"])
    assert all(math.isfinite(a["alpha"]) for a in alphas(result))


@pytest.mark.parametrize("method", list(METHODS))
def test_one_epoch_of_every_method_on_nb201(method: str, tmp_path: Path, synthetic_nb201: Any) -> None:
    result = _cuda_search(tmp_path, synthetic_nb201, "run", tiny_config(method=method, epochs=1))
    _check_finite_run(result, 1)
    manifest = RunDir(result.path).read_manifest()
    assert manifest["device"].startswith("cuda") and manifest["numerics"]["device"]["type"] == "cuda"


@pytest.mark.parametrize("method", NB1SHOT1_METHODS)
def test_one_epoch_of_every_method_on_nb1shot1(method: str, tmp_path: Path, small_nb101: Any) -> None:
    config = tiny_config(method=method, space="nb1shot1-1", epochs=1)
    _check_finite_run(_cuda_search(tmp_path, small_nb101, "run", config), 1)


def test_a_training_iteration_of_first_order_darts_never_syncs_with_the_host() -> None:
    device = torch.device("cuda")
    config = tiny_config(method="darts")
    method, _ = build_method(config)
    state, _ = build_state(config, method, 10, device)
    loaders = build_loaders(config, tiny_data(), device)
    state.epoch, state.steps = 1, len(loaders.train)
    state.net.train()
    pairs = list(zip(loaders.train.epoch(1), loaders.valid.epoch(1), strict=False))  # drawn (uploaded) before

    def iteration(step: int, train: Any, valid: Any) -> torch.Tensor:
        state.step, state.batch, state.arch_batch = step, train, valid
        method.arch_step.step(state, train, valid)
        loss, _ = weight_step(state, train)
        return loss

    iteration(0, *pairs[0])  # the first starts cuDNN and cuBLAS and creates the optimisers' state
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")  # a sync inside raises
    try:
        loss = iteration(1, *pairs[1])
    finally:
        torch.cuda.set_sync_debug_mode(0)
    assert math.isfinite(float(loss))


def test_in_deterministic_mode_a_resumed_run_equals_the_uninterrupted_one(tmp_path: Path, synthetic_nb201: Any) -> None:
    config = tiny_config(epochs=2, method_options={"order": 2}, numerics={"deterministic": True})
    whole = _cuda_search(tmp_path, synthetic_nb201, "whole", config)
    with pytest.raises(Interrupt):
        _cuda_search(tmp_path, synthetic_nb201, "split", config, stop_after=1)
    resumed = _cuda_search(tmp_path, synthetic_nb201, "split", config)
    assert (resumed.resumed_from, resumed.epochs_completed) == (1, 2)
    assert without_times(trajectory(whole)) == without_times(trajectory(resumed))
    assert alphas(whole) == alphas(resumed)
    flags = RunDir(resumed.path).read_manifest()["numerics"]["flags"]
    assert flags["deterministic_algorithms"] and flags["cudnn_deterministic"] and not flags["cudnn_benchmark"]
    assert flags["cublas_workspace_config"] in (":4096:8", ":16:8")
    assert not torch.are_deterministic_algorithms_enabled()  # the run put the flags back


def test_a_cuda_checkpoint_resumes_on_the_cpu(tmp_path: Path, synthetic_nb201: Any) -> None:
    config = tiny_config(epochs=2)
    with pytest.raises(Interrupt):
        _cuda_search(tmp_path, synthetic_nb201, "run", config, stop_after=1)
    resumed = run_search(config, tmp_path / "run", device="cpu", data=tiny_data(), bench=synthetic_nb201)
    assert resumed.resumed_from == 1
    _check_finite_run(resumed, 2)
    manifest = RunDir(resumed.path).read_manifest()
    assert manifest["device"] == "cpu" and manifest["numerics"]["device"]["type"] == "cpu"
    assert [s["device"]["type"] for s in manifest["numerics_earlier"]] == ["cuda"]
    assert manifest["config"]["model"]["channels_last"] is False  # the memory format the CUDA run chose
