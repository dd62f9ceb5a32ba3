"""Where a sweep's runs train (issue 19): the placement follows the executor's machines, not the
driver's (a GPU-less Ray head, ``--device cuda`` where there is no GPU, a run larger than every
node: errors before anything is submitted); the local executor spreads its workers over the
GPUs (one ``CUDA_VISIBLE_DEVICES`` each, several per GPU for a fraction); every outcome says the
device, host and preset it trained with, in the summary, ``sweep.json`` and the report; a run
left busy or failed-and-not-retried makes the sweep exit 1."""

from __future__ import annotations

import json
import os
import socket
import textwrap
from pathlib import Path

import pytest
from test_cli import nbh
from test_sweep import TINY, _suite

from nasbench_harness.errors import ConfigError
from nasbench_harness.execution import local
from nasbench_harness.execution.job import JobArgs, Outcome
from nasbench_harness.execution.resources import Capacity, Node, Placement, place
from nasbench_harness.execution.suite import PlannedRun, expand, load_suite

SUITES = Path(__file__).parents[1] / "benchmarks" / "suites"


def machine(cpus: int = 16, gpus: int = 0) -> Capacity:
    return Capacity("local", (Node(cpus, gpus, "this machine"),), "this machine", tuple(str(i) for i in range(gpus)))


def ray_cluster(*nodes: tuple[float, float]) -> Capacity:
    return Capacity("ray", tuple(Node(c, g, f"10.0.0.{i}") for i, (c, g) in enumerate(nodes)), "the Ray cluster at X")


# --- place: the decision -----------------------------------------------------------------------


def test_auto_follows_the_executors_machines_not_the_drivers() -> None:
    # a head node without a GPU (the usual Ray cluster) and two 8-GPU workers: GPU runs
    head_and_workers = ray_cluster((4, 0), (32, 8), (32, 8))
    assert place(head_and_workers) == Placement("cuda", 1.0, 1)
    assert place(ray_cluster((4, 0), (8, 0))) == Placement("cpu", 0.0, 1)  # no GPU anywhere: CPU runs
    assert place(head_and_workers, "cpu") == Placement("cpu", 0.0, 1)
    assert place(head_and_workers, gpus_per_run=0.25, cpus_per_run=4) == Placement("cuda", 0.25, 4)
    # this machine: one CPU run at a time with every core, as before; GPU runs fill every GPU
    assert place(machine(16)) == Placement("cpu", 0.0, 16, 1)
    assert place(machine(16, 2)) == Placement("cuda", 1.0, 8, 2, ("0", "1"))


def test_a_fraction_packs_runs_on_each_gpu_and_the_workers_alternate_gpus() -> None:
    placement = place(machine(16, 2), gpus_per_run=0.25)
    assert placement.workers == 8 and placement.cpus_per_run == 2
    assert placement.gpu_slots == ("0", "1") * 4  # every GPU gets a run before any gets a second
    assert place(machine(16, 2), gpus_per_run=0.25, workers=3).gpu_slots == ("0", "1", "0")
    assert place(machine(4, 2), gpus_per_run=0.25).workers == 4  # never more workers than CPUs
    assert place(machine(16, 2), "cuda:1", workers=2) == Placement("cuda:1", 1.0, 8, 2)  # pinned: no spreading


@pytest.mark.parametrize(
    ("capacity", "kwargs", "message"),
    [
        (machine(16), {"device": "cuda"}, "--device cuda: this machine has no GPU"),
        (
            ray_cluster((4, 0), (8, 0)),
            {"device": "cuda"},
            "no GPU; use --device cpu (or auto), or another --ray-address",
        ),
        (machine(16), {"gpus_per_run": 0.5}, "--gpus-per-run 0.5: this machine has no GPU"),
        (machine(16, 1), {"device": "cpu", "gpus_per_run": 1}, "with --device cpu: drop one of them"),
        (machine(16, 1), {"gpus_per_run": 2}, "a search trains on one GPU"),
        (machine(16, 1), {"device": "cuda", "gpus_per_run": 0}, "a CUDA run needs a GPU share"),
        (machine(16, 1), {"workers": 8}, "use --gpus-per-run 0.125 to pack them"),
        (machine(16, 2), {"device": "cuda:2"}, "this machine has 2 GPU(s)"),
        (machine(2), {"workers": 3}, "allows 1..2 runs at once"),
        (machine(4), {"workers": 2, "cpus_per_run": 3}, "needs 6 CPUs"),
        (ray_cluster((4, 0), (8, 1)), {"cpus_per_run": 16}, "no node of the Ray cluster at X has that many CPUs"),
        (ray_cluster((8, 1)), {"workers": 4}, "--workers is the local executor's"),
        (ray_cluster((8, 1)), {"device": "cuda:1"}, "sees only the GPU it is given; use --device cuda"),
    ],
)
def test_placements_that_cannot_work_are_errors_before_anything_runs(
    capacity: Capacity, kwargs: dict, message: str
) -> None:
    with pytest.raises(ConfigError) as info:
        place(capacity, **kwargs)
    assert message in str(info.value)


def test_the_sweeps_default_preset_follows_the_placement(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(local, "local_capacity", lambda: machine(16, 2))
    quickstart = str(SUITES / "quickstart.yaml")
    code, out, _ = nbh(capsys, monkeypatch, "sweep", quickstart, "--dry-run", "--root", str(tmp_path))
    assert code == 0 and "quickstart (paper): 4 runs." in out
    assert "local: each run: cuda, 8 CPU, 1 GPU, 2 at once" in out
    code, out, _ = nbh(capsys, monkeypatch, "sweep", str(SUITES / "quickstart.yaml"), "--dry-run", "--device", "cpu",
                       "--root", str(tmp_path))  # fmt: skip
    assert code == 0 and "quickstart (collapse): 4 runs." in out and "local: each run: cpu, 16 CPU" in out
    code, _, err = nbh(capsys, monkeypatch, "sweep", str(SUITES / "quickstart.yaml"), "--dry-run", "--preset", "paper",
                       "--device", "cpu", "--root", str(tmp_path))  # fmt: skip
    assert code == 0 and "preset paper is sized for a GPU, and these runs train on the CPU" in err


@pytest.mark.parametrize(
    ("args", "hint"),
    [
        (["--ray-address", "auto"], "--ray-address"),
        (["--slurm-partition", "gpu"], "--slurm-*"),
        (["--executor", "ray", "--workers", "2"], "--workers"),
    ],
)
def test_options_of_another_executor_are_usage_errors(
    args: list[str], hint: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, _, err = nbh(capsys, monkeypatch, "sweep", str(SUITES / "quickstart.yaml"), "--dry-run", *args)
    assert code == 2 and hint in err


# --- the local executor on several GPUs ----------------------------------------------------------


def report_gpu(run: PlannedRun, job: JobArgs) -> Outcome:
    """A worker's task in the tests below: which GPU the worker sees, and its pid."""
    import time

    time.sleep(0.3)  # long enough that every worker of the pool takes a run
    return Outcome(run.run_id, "finished", f"{os.getpid()}", os.environ.get("CUDA_VISIBLE_DEVICES", ""))


def test_local_workers_each_see_one_gpu(tmp_path: Path) -> None:
    backend = local.LocalBackend()
    backend.task = report_gpu  # type: ignore[method-assign]  (an instance attribute: a plain function)
    runs = [PlannedRun(f"r{i}", None, tmp_path / f"r{i}") for i in range(8)]
    placement = Placement("cuda", 0.5, 1, 4, ("0", "1", "0", "1"))
    outcomes = list(backend.outcomes(runs, placement, JobArgs("cuda"), tmp_path))
    gpu_of = {}
    for outcome in outcomes:
        assert gpu_of.setdefault(outcome.message, outcome.device) == outcome.device  # a worker keeps its GPU
    assert sorted(gpu_of.values()) == ["0", "0", "1", "1"]  # 4 workers: two on each GPU


def test_a_worker_placed_on_a_gpu_that_torch_cannot_see_fails_the_run_saying_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    from nasbench_harness.execution.job import run_one

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3")
    (run,) = expand(load_suite(_suite(tmp_path)), "cpu", tmp_path)[:1]
    outcome = run_one(run, JobArgs("cuda"))
    assert outcome.status == "failed" and outcome.host == socket.gethostname()
    assert "placed on a GPU, but torch on" in outcome.message and "gave it GPU(s) 3" in outcome.message
    assert not run.path.exists()  # nothing written


# --- what the sweep says ------------------------------------------------------------------------
# (the plan, run lines, sweep.json and report of a finished sweep: test_sweep.py,
# test_cli_sweep_with_a_report_says_where_each_run_trained, on the same sweep)


def test_a_busy_or_skipped_run_leaves_the_sweep_incomplete_exit_1(
    tmp_path: Path, synthetic_data_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    suite = _suite(tmp_path, textwrap.dedent(TINY).replace("seeds: [0, 1]", "seeds: [0]"))
    (failed, _) = expand(load_suite(suite), "cpu", tmp_path / "results")
    failed.path.mkdir(parents=True)
    (failed.path / "manifest.json").write_text(json.dumps({"schema_version": 1, "status": "failed", "error": "x"}))
    code, out, _ = nbh(capsys, monkeypatch, "sweep", str(suite), "--root", str(tmp_path / "results"), "--device",
                       "cpu", "--data-dir", str(synthetic_data_dir))  # fmt: skip
    assert code == 1 and "2 runs: 1 finished, 1 skipped-failed" in out and "1 run(s) not trained" in out
    manifest = json.loads((tmp_path / "results" / "tiny" / "cpu" / "sweep.json").read_text())
    assert manifest["incomplete"] == 1 and manifest["counts"] == {"finished": 1, "skipped-failed": 1}


@pytest.mark.cuda
def test_local_workers_train_on_the_gpu_they_were_given(tmp_path: Path, synthetic_data_dir: Path) -> None:
    """On a GPU machine: two runs at half a GPU each train at once on GPU 0, and say so."""
    from nasbench_harness.execution.resources import local_capacity

    runs = expand(load_suite(_suite(tmp_path)), "cpu", tmp_path)[:2]
    capacity = local_capacity()
    placement = place(capacity, "auto", gpus_per_run=0.5, cpus_per_run=1)
    assert placement.workers == 2 and placement.gpu_slots == (capacity.gpu_ids[0],) * 2
    outcomes = local.run_sweep(runs, tmp_path / "sweep", placement=placement, data_dir=synthetic_data_dir)
    assert [o.status for o in outcomes] == ["finished", "finished"], [o.message for o in outcomes]
    assert {o.device for o in outcomes} == {f"cuda (GPU {capacity.gpu_ids[0]})"}  # the worker's only GPU
    for run in runs:
        assert json.loads((run.path / "manifest.json").read_text())["device"] == "cuda"
