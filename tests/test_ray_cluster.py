"""The ray executor on a multi-node Ray cluster on this machine (``ray.cluster_utils.Cluster``: a
head node without CPUs or GPUs, as on a real cluster, and worker nodes with fake GPUs): the
device and preset follow the workers, not the driver; a GPU fraction packs runs on one GPU; paths
and ``NBH_DATA_DIR`` reach the workers although the driver's were relative; a node killed mid-run
leaves its run to be resumed, and the sweep (rerun when needed) ends with the trajectories the
local executor gives."""

from __future__ import annotations

import json
import os
import signal
import textwrap
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from test_cli import nbh
from test_sweep import TINY, VOLATILE, _suite

from nasbench_harness.execution.local import run_status, run_sweep
from nasbench_harness.execution.ray import RayBackend
from nasbench_harness.execution.resources import place
from nasbench_harness.execution.suite import expand, load_suite
from nasbench_harness.tracking import read_trajectory

ray = pytest.importorskip("ray")  # a dev requirement: present wherever the tests run
from ray.cluster_utils import Cluster  # noqa: E402

SUITES = Path(__file__).parents[1] / "benchmarks" / "suites"


@pytest.fixture
def cluster() -> Any:
    """A head node that runs nothing (no CPU, no GPU: the driver's machine) and one worker node
    with 4 CPUs and 2 (fake) GPUs."""
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "num_gpus": 0})
    c.add_node(num_cpus=4, num_gpus=2)
    c.wait_for_nodes()
    yield c
    if ray.is_initialized():
        ray.shutdown()
    c.shutdown()


def test_the_preset_and_device_follow_the_workers_not_the_gpu_less_head(
    cluster: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    quickstart = str(SUITES / "quickstart.yaml")
    ray_args = ["--executor", "ray", "--ray-address", cluster.address, "--root", str(tmp_path)]
    code, out, err = nbh(capsys, monkeypatch, "sweep", quickstart, "--dry-run", *ray_args)
    assert code == 0, err
    assert "quickstart (paper): 4 runs." in out and "ray: each run: cuda, 1 CPU, 1 GPU" in out
    code, out, _ = nbh(capsys, monkeypatch, "sweep", quickstart, "--dry-run", *ray_args, "--gpus-per-run", "0.25",
                       "--cpus-per-run", "2")  # fmt: skip
    assert code == 0 and "ray: each run: cuda, 2 CPU, 0.25 GPU" in out
    code, _, err = nbh(capsys, monkeypatch, "sweep", quickstart, "--dry-run", *ray_args, "--cpus-per-run", "8")
    assert code == 1 and "no node of the Ray cluster at" in err and "has that many CPUs" in err  # never submitted
    assert not ray.is_initialized()  # the sweep disconnected from the cluster it did not start


def test_a_gpu_fraction_packs_runs_on_one_gpu(cluster: Any, tmp_path: Path, synthetic_data_dir: Path) -> None:
    """4 runs at 0.5 GPU on a node with 2 GPUs: two on each. These GPUs are fake, so each run
    fails at once, naming the GPU Ray gave it; that is the placement under test."""
    suite = _suite(tmp_path, textwrap.dedent(TINY))
    runs = expand(load_suite(suite), "cpu", tmp_path / "results")
    backend = RayBackend(cluster.address)
    try:
        placement = place(backend.capacity(), "auto", gpus_per_run=0.5)
        outcomes = run_sweep(runs, tmp_path / "sweep", backend=backend, placement=placement,
                             data_dir=synthetic_data_dir)  # fmt: skip
    finally:
        backend.close()
    assert [o.status for o in outcomes] == ["failed"] * 4
    assert all("placed on a GPU, but torch on" in o.message for o in outcomes)
    given = Counter(o.message.split("gave it GPU(s) ")[1].split(";")[0] for o in outcomes)
    assert given == {"0": 2, "1": 2}


def _raylet_of(pid: int) -> int:
    """The parent of a Ray worker process: its node's raylet."""
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def test_a_node_killed_mid_run_and_the_sweep_completing_it(
    tmp_path: Path, synthetic_data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = textwrap.dedent(TINY).replace("epochs: 2", "epochs: 6").replace("seeds: [0, 1]", "seeds: [0]")
    suite = _suite(tmp_path, text)
    # the reference: the same runs with the local executor, one thread each as on the cluster
    local_runs = expand(load_suite(suite), "cpu", tmp_path / "local")
    run_sweep(local_runs, tmp_path / "local", threads=1, data_dir=synthetic_data_dir)
    # the driver's paths are relative: the runs' directories and NBH_DATA_DIR must reach the workers absolute
    monkeypatch.chdir(tmp_path)
    os.symlink(synthetic_data_dir, tmp_path / "data")
    monkeypatch.setenv("NBH_DATA_DIR", "data")
    monkeypatch.setenv("NBH_LOCK_BEAT_S", "1")
    monkeypatch.setenv("NBH_LOCK_STALE_S", "4")
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    nodes = [c.add_node(num_cpus=1), c.add_node(num_cpus=1)]
    c.wait_for_nodes()
    runs = expand(load_suite(suite), "cpu", Path("results"))
    outcomes: list[Any] = []
    try:
        sweep = threading.Thread(
            target=lambda: outcomes.extend(run_sweep(runs, Path("sweep"), executor="ray", ray_address=c.address))
        )
        sweep.start()
        victim = runs[0]
        trajectory = tmp_path / victim.path / "trajectory.parquet"
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and not (
            trajectory.exists() and len(read_trajectory(trajectory.parent)) >= 1
        ):
            time.sleep(0.1)
        assert trajectory.exists(), "the run never committed an epoch"
        pid = json.loads(Path(str(tmp_path / victim.path) + ".lock").read_text())["pid"]
        raylet = _raylet_of(pid)
        (node,) = [n for n in nodes if n.all_processes["raylet"][0].process.pid == raylet]
        os.kill(pid, signal.SIGKILL)  # the node dies with everything on it
        c.remove_node(node, allow_graceful=False)
        sweep.join(timeout=300)
        assert not sweep.is_alive()
        assert len(outcomes) == 2 and {o.status for o in outcomes} <= {"finished", "failed"}
        if any(o.status == "failed" for o in outcomes):
            assert all("task died" in o.message for o in outcomes if o.status == "failed")
            c.add_node(num_cpus=1)
            again = run_sweep(runs, Path("sweep"), executor="ray", ray_address=c.address)
            assert [o.status for o in again] == ["finished", "finished"]
    finally:
        if ray.is_initialized():
            ray.shutdown()
        c.shutdown()
    manifest = json.loads((tmp_path / victim.path / "manifest.json").read_text())
    assert manifest["resumed_at"]  # continued from its last complete epoch, not restarted
    assert all(run_status(tmp_path / r.path) == "finished" for r in runs)
    for a, b in zip(local_runs, runs, strict=True):
        rows_a = [{k: v for k, v in r.items() if k not in VOLATILE} for r in read_trajectory(a.path).to_pylist()]
        rows_b = [
            {k: v for k, v in r.items() if k not in VOLATILE} for r in read_trajectory(tmp_path / b.path).to_pylist()
        ]
        assert rows_a == rows_b and len(rows_a) == 6
    sweep_json = json.loads((tmp_path / "sweep" / "sweep.json").read_text())
    assert sweep_json["counts"] == {"finished": 2} and sweep_json["incomplete"] == 0


def test_a_local_ray_instance_runs_its_tasks_at_the_drivers_priority() -> None:
    """Ray's workers run at niceness 15 by default; on a workstation that would hand every core to
    anything else running. A local instance the sweep starts keeps the driver's priority."""
    backend = RayBackend(None)
    try:
        niceness = ray.get(ray.remote(lambda: os.nice(0)).options(num_cpus=1).remote())
    finally:
        backend.close()
    assert niceness == os.nice(0)
