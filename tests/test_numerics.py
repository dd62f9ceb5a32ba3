"""Numerics flags (issue 18): what a run sets and records, on the CPU.

TF32 and cuDNN flags exist in every torch build, so setting them, reading them back and restoring
them is tested here; their effect is the GPU's. Every test leaves torch's global flags as it found
them (the ``restored`` fixture), so no other test runs under a flag set here.
"""

from __future__ import annotations

import contextlib
import math
import os
import stat
from pathlib import Path
from typing import Any

import pytest
import torch
from tiny import interrupted_search, tiny_config, tiny_search, trajectory, without_times

import nasbench_harness.methods.components.hessian as hessian
import nasbench_harness.numerics as numerics
from nasbench_harness.config import NumericsConfig
from nasbench_harness.errors import ConfigError
from nasbench_harness.numerics import (
    apply_numerics,
    device_description,
    full_fp32,
    numerics_applied,
    numerics_flags,
    nvidia_driver_version,
    preserved_numerics,
)
from nasbench_harness.tracking import RunDir

CPU = torch.device("cpu")
NEW_API = hasattr(torch.backends.cudnn, "conv")
"""torch >= 2.9: per-op ``fp32_precision`` values beside the old flags."""


@pytest.fixture(autouse=True)
def restored() -> Any:
    """Torch's numerics flags as they were before the test, checked and put back after it."""
    before = _torch_flags()
    with preserved_numerics():
        yield
    assert _torch_flags() == before


def _torch_flags() -> dict[str, Any]:
    """:func:`numerics_flags` without the environment (``monkeypatch`` restores that after the fixtures)."""
    return {k: v for k, v in numerics_flags().items() if k != "cublas_workspace_config"}


def _live_tf32() -> tuple[bool, bool, str]:
    return (
        torch.backends.cuda.matmul.allow_tf32,
        torch.backends.cudnn.allow_tf32,
        torch.get_float32_matmul_precision(),
    )


def test_the_default_turns_tf32_off_and_reports_what_it_set() -> None:
    flags = apply_numerics(NumericsConfig(), CPU)
    assert _live_tf32() == (False, False, "highest")  # torch's own default has TF32 cuDNN convolutions
    assert flags["cuda_matmul_allow_tf32"] is False and flags["cudnn_allow_tf32"] is False
    assert flags["float32_matmul_precision"] == "highest"
    assert flags["cudnn_benchmark"] is True and torch.backends.cudnn.benchmark  # fixed shapes: tuned once
    assert flags["deterministic_algorithms"] is False and not torch.are_deterministic_algorithms_enabled()
    assert flags["cudnn_deterministic"] is False
    if NEW_API:
        assert torch.backends.cudnn.conv.fp32_precision == "ieee" == flags["cudnn_conv_fp32_precision"]
        assert torch.backends.cuda.matmul.fp32_precision == "ieee" == flags["cuda_matmul_fp32_precision"]
        assert flags["mkldnn_matmul_fp32_precision"] == "ieee"
    assert {k: v for k, v in flags.items() if not k.startswith("cublas_workspace_config_")} == numerics_flags()


def test_tf32_on_allows_it_on_the_gpu_only() -> None:
    flags = apply_numerics(NumericsConfig(tf32=True), CPU)
    assert _live_tf32() == (True, True, "high")
    assert flags["cuda_matmul_allow_tf32"] is True and flags["cudnn_allow_tf32"] is True
    if NEW_API:
        assert flags["cuda_matmul_fp32_precision"] == "tf32" and flags["cudnn_conv_fp32_precision"] == "tf32"
        assert flags["mkldnn_matmul_fp32_precision"] == "ieee"  # "high" would have given oneDNN TF32 too


def test_deterministic_mode_sets_every_switch() -> None:
    flags = apply_numerics(NumericsConfig(deterministic=True), CPU)
    assert torch.are_deterministic_algorithms_enabled() and flags["deterministic_algorithms"] is True
    assert not torch.is_deterministic_algorithms_warn_only_enabled()  # an op without one raises
    assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark
    assert flags["cudnn_deterministic"] is True and flags["cudnn_benchmark"] is False
    if hasattr(torch.backends.mkldnn, "deterministic"):
        assert flags["mkldnn_deterministic"] is True
    assert flags["cublas_workspace_config_set_by"] in (None, "environment")  # the CPU needs no cuBLAS


def test_deterministic_cuda_sets_the_cublas_workspace_before_cuda_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    record = numerics._cublas_workspace(True, torch.device("cuda"))
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    assert record == {
        "cublas_workspace_config_set_by": "nbh",
        "cublas_workspace_config_set_before_cuda_init": not torch.cuda.is_initialized(),
    }
    monkeypatch.setenv("CUBLAS_WORKSPACE_CONFIG", ":16:8")
    assert numerics._cublas_workspace(True, torch.device("cuda"))["cublas_workspace_config_set_by"] == "environment"
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":16:8"
    monkeypatch.setenv("CUBLAS_WORKSPACE_CONFIG", ":0:0")
    with pytest.raises(ConfigError, match=r"CUBLAS_WORKSPACE_CONFIG=:4096:8.*sets it to ':0:0'"):
        numerics._cublas_workspace(True, torch.device("cuda"))
    assert numerics._cublas_workspace(False, torch.device("cuda"))["cublas_workspace_config_set_by"] == "environment"


def test_numerics_applied_restores_every_flag_even_when_the_block_raises() -> None:
    before = numerics_flags()
    seen = []

    def fail() -> None:
        with numerics_applied(NumericsConfig(tf32=True, deterministic=True), CPU):
            seen.append((torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.allow_tf32))
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        fail()
    assert seen == [(True, True)] and numerics_flags() == before


@pytest.mark.parametrize("tf32", [False, True])
def test_full_fp32_turns_tf32_and_autocast_off_and_restores_even_on_error(tf32: bool) -> None:
    apply_numerics(NumericsConfig(tf32=tf32), CPU)
    before = numerics_flags()
    x = torch.randn(4, 4)
    seen = []

    def fail() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16), full_fp32():
            precision = torch.backends.cudnn.conv.fp32_precision if NEW_API else "ieee"
            seen.append((*_live_tf32(), precision, (x @ x).dtype))
            raise ValueError("inside")

    with pytest.raises(ValueError, match="inside"):
        fail()
    assert seen == [(False, False, "highest", "ieee", torch.float32)]  # autocast would give bfloat16
    assert numerics_flags() == before
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert (x @ x).dtype == torch.bfloat16  # autocast is back too


def _eigen_setup() -> tuple[Any, Any, list[int]]:
    import torch.nn.functional as F

    from nasbench_harness.testing import tiny_state

    state = tiny_state("nb201")
    x, y = state.batch

    def loss(a: torch.Tensor) -> torch.Tensor:
        loss.flags.append(_live_tf32())  # type: ignore[attr-defined]
        return F.cross_entropy(state.forward(x, state.mixing(a, phase="eval"), "eval"), y)

    loss.flags = []  # type: ignore[attr-defined]
    return loss, state.alphas, state.space.group_sizes


def test_the_hessian_eigenvalue_runs_in_full_fp32_and_equals_the_unwrapped_one_on_the_cpu(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    apply_numerics(NumericsConfig(tf32=True), CPU)  # what the training steps may use
    loss, alphas, groups = _eigen_setup()
    wrapped = hessian.dominant_eigenvalue(loss, alphas, softmax_groups=groups, weight_decay=1e-3)
    assert loss.flags and set(loss.flags) == {(False, False, "highest")}  # type: ignore[attr-defined]
    assert _live_tf32() == (True, True, "high")
    monkeypatch.setattr(hessian, "full_fp32", contextlib.nullcontext)
    plain = hessian.dominant_eigenvalue(loss, alphas, softmax_groups=groups, weight_decay=1e-3)
    assert wrapped == plain and math.isfinite(wrapped.value)


def test_a_run_records_its_numerics_and_device_and_leaves_the_flags_as_they_were(
    tmp_path: Path, synthetic_nb201: Any
) -> None:
    before = numerics_flags()
    result = tiny_search(tmp_path, synthetic_nb201, epochs=1)
    assert numerics_flags() == before
    manifest = RunDir(result.path).read_manifest()
    section = manifest["numerics"]
    assert set(section) == {"flags", "device", "speed"}
    flags = section["flags"]
    assert flags["cudnn_allow_tf32"] is False and flags["cuda_matmul_allow_tf32"] is False
    assert flags["float32_matmul_precision"] == "highest" and flags["deterministic_algorithms"] is False
    assert "cublas_workspace_config_set_by" in flags
    device = section["device"]
    assert device["type"] == "cpu" and device["torch_threads"] == 1 == manifest["threads"]
    assert device["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert section["speed"] == manifest["config"]["speed"] == {"amp_bf16": False, "compile": False, "cuda_graph": False}
    assert "numerics_earlier" not in manifest


def test_a_resumed_run_records_each_session(tmp_path: Path, synthetic_nb201: Any) -> None:
    config = tiny_config(epochs=2)
    interrupted_search(tmp_path, synthetic_nb201, "run", after_epoch=1, config=config)
    first = RunDir(tmp_path / "run").read_manifest()["numerics"]
    tiny_search(tmp_path, synthetic_nb201, "run", config=config)
    manifest = RunDir(tmp_path / "run").read_manifest()
    assert manifest["numerics_earlier"] == [first] and len(manifest["resumed_at"]) == 1
    assert manifest["numerics"]["device"]["type"] == "cpu"


def test_on_the_cpu_tf32_changes_nothing_and_deterministic_mode_runs(tmp_path: Path, synthetic_nb201: Any) -> None:
    plain = tiny_search(tmp_path, synthetic_nb201, "plain", epochs=1)
    tf32 = tiny_search(tmp_path, synthetic_nb201, "tf32", epochs=1, numerics={"tf32": True})
    assert without_times(trajectory(plain)) == without_times(trajectory(tf32))
    det = tiny_search(tmp_path, synthetic_nb201, "det", epochs=1, numerics={"deterministic": True})
    assert det.status == "finished" and math.isfinite(trajectory(det)[0]["train_loss"])
    assert RunDir(det.path).read_manifest()["numerics"]["flags"]["deterministic_algorithms"] is True
    assert not torch.are_deterministic_algorithms_enabled()


def test_the_cpu_description() -> None:
    described = device_description("cpu")
    assert described["type"] == "cpu" and described["logical_cpus"] == os.cpu_count()
    assert described["torch_threads"] == torch.get_num_threads()
    assert described["mkl"] == torch.backends.mkl.is_available()
    assert described["processor"] is None or isinstance(described["processor"], str)


def test_the_cuda_description_from_torch_and_the_driver(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CUDA branch, with torch's device queries standing in for a GPU's answers."""

    class Props:
        name, major, minor, total_memory, multi_processor_count = "NVIDIA H200", 9, 0, 150_000_000_000, 132

    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda index: Props())
    monkeypatch.setattr(numerics, "nvidia_driver_version", lambda: ("570.86.15", "nvml"))
    described = device_description(torch.device("cuda"))
    assert described == {
        "type": "cuda",
        "index": 0,
        "name": "NVIDIA H200",
        "compute_capability": "9.0",
        "total_memory_bytes": 150_000_000_000,
        "multiprocessors": 132,
        "tf32_capable": True,
        "driver_version": "570.86.15",
        "driver_version_source": "nvml",
        "cuda_runtime": torch.version.cuda,
        "cudnn": str(torch.backends.cudnn.version()) if torch.backends.cudnn.is_available() else None,
    }


def test_the_driver_version_falls_back_to_nvidia_smi_and_else_is_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(numerics, "_nvml_driver_version", lambda: None)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert nvidia_driver_version() == (None, None)
    smi = tmp_path / "nvidia-smi"
    smi.write_text("#!/bin/sh\necho 570.86.15\n")
    smi.chmod(smi.stat().st_mode | stat.S_IXUSR)
    assert nvidia_driver_version() == ("570.86.15", "nvidia-smi")
    smi.write_text("#!/bin/sh\nexit 9\n")
    assert nvidia_driver_version() == (None, None)


def test_nvml_is_asked_without_raising() -> None:
    version = numerics._nvml_driver_version()  # None on a machine without the NVIDIA driver
    assert version is None or (isinstance(version, str) and version)
