"""The GPU benchmark (``benchmarks/perf/gpu_step.py``) runs on the CPU at its smallest sizes and
reports every candidate: a rate, or why it has none. Timings are not asserted."""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

import pytest

PERF = Path(__file__).parents[1] / "benchmarks" / "perf"


@pytest.fixture
def gpu_step(monkeypatch: pytest.MonkeyPatch) -> Any:
    """The benchmark module, imported as its siblings import each other (from its own folder)."""
    monkeypatch.syspath_prepend(str(PERF))
    monkeypatch.delenv("NB1SHOT1_PEER", raising=False)
    return importlib.import_module("gpu_step")


@pytest.mark.usefixtures("one_thread")
def test_the_benchmark_reports_every_candidate_on_the_cpu(gpu_step: Any, tmp_path: Path) -> None:
    out = tmp_path / "gpu.json"
    argv = ["--device", "cpu", "--small", "--rounds", "1", "--steps", "1", "--spaces", "nb201,nb1shot1"]
    returned = gpu_step.main([*argv, "--json", str(out)])
    result = json.loads(out.read_text())
    assert result == json.loads(json.dumps(returned))
    assert result["device"]["type"] == "cpu" and result["sizes"] == "small"
    assert set(result["spaces"]) == {"nb201", "nb1shot1"}
    for space, figures in result["spaces"].items():
        candidates = figures["candidates"]
        expected = {"ours", "ours channels_last=off", "ours +amp_bf16", "ours +compile", "ours +cuda_graph"}
        assert expected <= set(candidates), space
        assert sum(c["kind"] == "peer" for c in candidates.values()) == 2, space  # ran or said why not
        for name, c in candidates.items():
            if c["status"] == "n/a":
                assert isinstance(c["reason"], str) and c["reason"], (space, name)
                continue
            for mode in ("weight_step", "darts_iteration"):
                assert c[mode]["it_per_s"] > 0, (space, name, mode)
                assert isinstance(c[mode]["syncs_per_iter"], int), (space, name, mode)
        assert candidates["ours"]["status"] == "ok"
        assert candidates["ours +cuda_graph"]["status"] == "n/a"  # no CUDA graphs on the CPU
        assert candidates["ours"]["darts_iteration"]["syncs_per_iter"] == 0  # issue 18: no host reads


@pytest.mark.usefixtures("one_thread")
def test_the_compile_candidate_runs_and_reports_its_warm_up(gpu_step: Any) -> None:
    """Traced with ``aot_eager`` (inductor's code generation takes minutes on this CPU); the
    engine's backend is the same afterwards."""
    import torch

    from nasbench_harness.methods.engine import loop

    backend = loop.COMPILE_BACKEND
    argv = ["--device", "cpu", "--small", "--rounds", "1", "--steps", "1", "--spaces", "nb201"]
    try:
        result = gpu_step.main([*argv, "--options", "compile", "--compile-backend", "aot_eager"])
    finally:
        torch._dynamo.reset()  # no compiled code left behind for the tests that follow
    assert backend == loop.COMPILE_BACKEND
    compiled = result["spaces"]["nb201"]["candidates"]["ours +compile"]
    assert compiled["status"] == "ok" and compiled["settings"]["compile"], compiled.get("reason")
    assert compiled["warmup_s"] > 0 and compiled["darts_iteration"]["it_per_s"] > 0
