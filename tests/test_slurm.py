"""The ``slurm`` executor against a real one-node SLURM on this machine (``slurm_cluster``): a
sweep's runs train as a job array; a cancelled job is a failed outcome naming its state and a rerun
resumes it, with trajectories identical to the local executor's; a job sent the requeue signal
(SIGUSR2, as before its time limit) requeues and resumes by itself, while a rerun of the sweep
whose driver was interrupted waits for it instead of submitting it again; bad requests are errors
before anything is submitted. The tests that need the cluster are marked ``slurm``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from slurm_cluster import SlurmCluster, slurm_cluster  # noqa: F401 (the fixture)

from nasbench_harness.errors import ConfigError
from nasbench_harness.execution.local import run_sweep
from nasbench_harness.execution.resources import Placement
from nasbench_harness.execution.slurm import JOBS_FILE, SlurmBackend, SlurmOptions, gpu_count
from nasbench_harness.execution.suite import PlannedRun, expand, load_suite
from nasbench_harness.tracking import read_trajectory
from nasbench_harness.tracking.manifest import read_manifest_file

EPOCHS = 16  # about 0.4 s each here: long enough to cancel or signal a run after its first epoch
SUITE = f"""\
name: tiny-slurm
reproduces: the slurm executor's tests
command: nbh sweep tiny-slurm.yaml --executor slurm
spaces: [nb201]
datasets: [cifar10]
seeds: [0, 1]
methods: [darts]
overrides:
  epochs: {EPOCHS}
  batch_size: 32
  model: {{channels: 8}}
  data: {{train_size: 96, valid_size: 96}}
  tracking: {{eigen_every: 0}}
variants:
  cpu: {{}}
"""
VOLATILE = {"epoch_time_s", "tracking_time_s", "wall_time_s"}
FAST = SlurmOptions(poll_s=0.5)
DRIVER = """\
import sys
from pathlib import Path
from nasbench_harness.execution.local import run_sweep
from nasbench_harness.execution.slurm import SlurmOptions
from nasbench_harness.execution.suite import expand, load_suite
suite, root, data = sys.argv[1:]
runs = expand(load_suite(Path(suite)), "cpu", root)[:1]
run_sweep(runs, Path(root), executor="slurm", slurm=SlurmOptions(poll_s=0.5), threads=1, data_dir=data)
"""


def _runs(tmp_path: Path, root: Path) -> list[PlannedRun]:
    suite = tmp_path / "tiny-slurm.yaml"
    suite.write_text(SUITE, encoding="utf-8")
    return expand(load_suite(suite), "cpu", root)


def _rows(run: PlannedRun) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if k not in VOLATILE} for r in read_trajectory(run.path).to_pylist()]


def _manifest(run: PlannedRun) -> dict[str, Any]:
    return read_manifest_file(run.path / "manifest.json")


def _job_ids(root: Path) -> dict[str, str]:
    path = root / "slurm" / JOBS_FILE
    return json.loads(path.read_text())["runs"] if path.is_file() else {}


def _wait(what: str, ready: Callable[[], bool], timeout: float = 120, poll_s: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting {timeout:g} s for {what}")
        time.sleep(poll_s)


def _trainers(cluster: SlurmCluster, job_id: str) -> list[int]:
    """The job's python processes (submitit's), by ``scontrol listpids``."""
    pids, (plain,) = [], cluster.run("squeue", "-h", "-j", job_id, "-o", "%A").split()  # an array task's own id
    for line in cluster.run("scontrol", "listpids", plain).splitlines()[1:]:
        pid = int(line.split()[0])
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:  # ended meanwhile
            continue
        if b"submitit.core._submit" in cmdline and not any(part.endswith(b"srun") for part in cmdline[:1]):
            pids.append(pid)
    assert pids, f"no python process in SLURM job {job_id}"
    return pids


def _epochs(run: PlannedRun) -> int:
    try:
        return int(_manifest(run).get("epochs_completed") or 0)
    except Exception:  # not written yet, or being replaced
        return 0


@pytest.fixture(scope="module")
def local_rows(tmp_path_factory: pytest.TempPathFactory, synthetic_data_dir: Path) -> dict[str, list[dict[str, Any]]]:
    """The suite's runs trained by the local executor: the trajectories SLURM must reproduce."""
    tmp = tmp_path_factory.mktemp("local")
    runs = _runs(tmp, tmp / "results")
    outcomes = run_sweep(runs, tmp / "results", workers=1, threads=1, data_dir=synthetic_data_dir, cache_dir=tmp / "c")
    assert [o.status for o in outcomes] == ["finished"] * 2
    return {run.run_id: _rows(run) for run in runs}


def test_gres_fields_count_gpus() -> None:
    assert [gpu_count(g) for g in ("(null)", "gpu:4", "gpu:a100:4(S:0-1)", "gpu:a100:2,gpu:v100:2")] == [0, 4, 4, 4]
    assert gpu_count("gpu:a100:4(S:0-1),mps:400") == 4 and gpu_count("mps:100") == 0


@pytest.mark.slurm
def test_bad_requests_fail_before_submission(
    slurm_cluster: SlurmCluster,  # noqa: F811
    tmp_path: Path,
    synthetic_data_dir: Path,
) -> None:
    runs = _runs(tmp_path, tmp_path / "results")
    capacity = SlurmBackend(FAST).capacity()
    assert capacity.where == "SLURM partition debug" and capacity.gpus == 0
    assert [n.name for n in capacity.nodes] == [slurm_cluster.node]
    sweep = {"executor": "slurm", "threads": 1, "data_dir": synthetic_data_dir}
    with pytest.raises(ConfigError, match=r"--gpus-per-run 0\.5: SLURM gives whole GPUs; use 1, or the local/ray"):
        run_sweep(runs, tmp_path / "results", slurm=FAST, placement=Placement("cuda", 0.5, 1), **sweep)
    with pytest.raises(ConfigError, match=r"--device cuda: SLURM partition debug has no GPU"):
        run_sweep(runs, tmp_path / "results", slurm=FAST, device="cuda", **sweep)
    with pytest.raises(ConfigError, match=r"--slurm-partition gpu: SLURM has no such partition; it knows debug\*"):
        run_sweep(runs, tmp_path / "results", slurm=SlurmOptions(partition="gpu"), **sweep)
    with pytest.raises(ConfigError, match=r"--slurm-option time: the sweep sets it \(--slurm-time\)"):
        SlurmOptions(extra=(("time", "10"),))
    assert not (tmp_path / "results" / "slurm").exists()
    refused = SlurmOptions(extra=(("constraint", "no-such-feature"),))
    with pytest.raises(ConfigError, match=r"sbatch refused the sweep's jobs: .*Invalid feature specification"):
        run_sweep(runs, tmp_path / "refused", slurm=refused, **sweep)
    assert slurm_cluster.run("squeue", "-h").strip() == ""


@pytest.mark.slurm
def test_cancelled_job_fails_and_a_rerun_resumes_it(
    slurm_cluster: SlurmCluster,  # noqa: F811
    tmp_path: Path,
    synthetic_data_dir: Path,
    local_rows: dict[str, list[dict[str, Any]]],
) -> None:
    root = tmp_path / "results"
    runs = _runs(tmp_path, root)
    victim, other = runs
    sweep = {"executor": "slurm", "slurm": FAST, "threads": 1, "data_dir": synthetic_data_dir}
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(run_sweep, runs, root, **sweep)
        _wait("the jobs' ids", lambda: len(_job_ids(root)) == 2)
        job_id = _job_ids(root)[victim.run_id]
        assert job_id.endswith("_0")  # one array, a task per run
        _wait("a complete epoch", lambda: _epochs(victim) >= 1 or first.done(), poll_s=0.05)
        trainers = _trainers(slurm_cluster, job_id)
        for pid in trainers:  # held still while SLURM cancels the job
            os.kill(pid, signal.SIGSTOP)
        slurm_cluster.run("scancel", job_id)
        # submitit's job ignores the SIGTERM, and this cluster's process tracking (linuxproc, no
        # cgroups here) may miss the SIGKILL that follows KillWait: send it as a real cluster's would
        for pid in trainers:
            os.kill(pid, signal.SIGKILL)
        outcomes = {o.run_id: o for o in first.result(timeout=180)}
    assert _epochs(victim) < EPOCHS, "the run finished before it was cancelled; make it longer"
    failed = outcomes[victim.run_id]
    assert failed.status == "failed", failed
    assert failed.message.startswith(f"SLURM job {job_id} CANCELLED: rerun the sweep to resume it"), failed.message
    assert "; its log ends: " in failed.message and "CANCELLED AT" in failed.message, failed.message
    assert outcomes[other.run_id].status == "finished"
    assert (root / "slurm" / job_id / f"{job_id}_0_log.err").is_file()

    again = {o.run_id: o for o in run_sweep(runs, root, **sweep)}
    assert again[other.run_id].message == "already finished"  # answered here, not by a job
    assert again[victim.run_id].status == "finished" and again[victim.run_id].host.split(".")[0] == slurm_cluster.node
    assert _job_ids(root)[victim.run_id] != job_id and _job_ids(root)[other.run_id].endswith("_1")
    assert _manifest(victim)["resumed_at"] and not _manifest(other).get("resumed_at")
    for run in runs:
        assert _rows(run) == local_rows[run.run_id] and len(_rows(run)) == EPOCHS


@pytest.mark.slurm
def test_requeue_signal_resumes_and_an_interrupted_sweep_waits_for_its_job(
    slurm_cluster: SlurmCluster,  # noqa: F811
    tmp_path: Path,
    synthetic_data_dir: Path,
    local_rows: dict[str, list[dict[str, Any]]],
) -> None:
    root = tmp_path / "results"
    (run,) = _runs(tmp_path, root)[:1]
    suite = tmp_path / "tiny-slurm.yaml"
    driver = subprocess.Popen([sys.executable, "-c", DRIVER, str(suite), str(root), str(synthetic_data_dir)])
    try:
        _wait("a complete epoch", lambda: _epochs(run) >= 1 or driver.poll() is not None)
        assert driver.poll() is None, f"the sweep stopped early ({driver.returncode})"
        (job_id,) = _job_ids(root).values()
        assert "_" not in job_id  # one run: a plain job, no array
        # what SLURM sends signal_delay_s before the time limit (--signal=USR2@90), to the job's steps
        slurm_cluster.run("scancel", "--signal=USR2", job_id)
        driver.send_signal(signal.SIGINT)  # Ctrl-C: the driver stops waiting, the job goes on
        assert driver.wait(timeout=60) != 0
    finally:
        if driver.poll() is None:
            driver.kill()
    state = slurm_cluster.run("squeue", "-h", "-j", job_id, "-o", "%T").strip()
    assert state in {"PENDING", "REQUEUED", "RUNNING", "COMPLETING"}, state  # requeued, not cancelled

    (outcome,) = run_sweep([run], root, executor="slurm", slurm=FAST, threads=1, data_dir=synthetic_data_dir)
    assert outcome.status == "finished", outcome
    assert _job_ids(root) == {run.run_id: job_id}  # waited for, not submitted again
    assert "Restarts=1" in slurm_cluster.run("scontrol", "show", "job", job_id)
    assert _epochs(run) == EPOCHS and len(_manifest(run)["resumed_at"]) == 1
    assert _rows(run) == local_rows[run.run_id]
    logs = root / "slurm" / job_id / f"{job_id}_0_log"  # submitit's info on .out, its warnings on .err
    assert "Caught signal SIGUSR2" in Path(f"{logs}.err").read_text()
    assert f"Requeued job {job_id}" in Path(f"{logs}.out").read_text()


def test_options_are_checked() -> None:
    for options, message in [
        ({"time_min": 0}, r"--slurm-time 0"),
        ({"array_parallelism": 0}, r"--slurm-array-parallelism 0"),
        ({"poll_s": 0}, r"poll_s 0"),
        ({"signal_delay_s": -1}, r"signal_delay_s -1"),
        ({"extra": (("account;rm", "x"),)}, r"--slurm-option account;rm: not an sbatch option"),
    ]:
        with pytest.raises(ConfigError, match=message):
            SlurmOptions(**options)
    assert SlurmOptions(extra=(("--qos", "high"), ("exclusive", ""))).sbatch_extra() == {
        "qos": "high",
        "exclusive": True,
    }
