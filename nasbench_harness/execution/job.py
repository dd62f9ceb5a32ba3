"""One run of a sweep: its status on disk, and training (or skipping, or resuming) it under a lock.

Every executor (``local``, ``ray``, ``slurm``) runs :func:`run_one` per run, so a finished run is
skipped, an interrupted one resumes from its last complete epoch, and a failed one is retried only
when asked. A run is claimed with its lock (``<run dir>.lock``, see
:mod:`nasbench_harness.tracking.runlock`) for as long as it trains: two sweeps over the same
results folder never train the same run at once; the second reports it as busy.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from pathlib import Path

from nasbench_harness.errors import RunBusyError, RunDirError
from nasbench_harness.execution.suite import PlannedRun

INCOMPLETE = ("busy", "skipped-failed", "pending")
"""Outcomes of runs that are not trained yet and not failed this time: a sweep with one exits 1."""


@dataclass(frozen=True)
class Outcome:
    """How one run of a sweep ended: ``finished`` (now or before), ``failed``, ``busy`` (another
    sweep holds it), or ``skipped-failed`` (failed before; not retried); with the device, preset
    and host it trained on (empty when it did not train)."""

    run_id: str
    status: str
    message: str = ""
    device: str = ""
    preset: str = ""
    host: str = ""

    def where(self) -> str:
        """``cuda:0 on node-3, preset paper`` (empty when unknown)."""
        parts = [p for p in (self.device, f"on {self.host}" if self.host else "") if p]
        text = " ".join(parts)
        return f"{text}, preset {self.preset}" if self.preset and text else text


@dataclass(frozen=True)
class JobArgs:
    """What every run of a sweep is sent besides itself: the device it trains on where it lands
    (``cpu``, ``cuda``, ``cuda:N``), the data and cache folders (absolute), whether failed runs are
    retried, the trackers, and environment variables to set before training (a remote worker
    does not have the driver's ``NBH_DATA_DIR``)."""

    device: str = "cpu"
    data_dir: str | None = None
    cache_dir: str | None = None
    retry_failed: bool = False
    log: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)


def job_args(
    device: str,
    data_dir: str | os.PathLike[str] | None,
    cache_dir: str | os.PathLike[str] | None,
    retry_failed: bool,
    log: tuple[str, ...] = (),
) -> JobArgs:
    """:class:`JobArgs` with every path absolute (a remote worker starts elsewhere) and the
    driver's ``NBH_DATA_DIR`` / ``NBH_CACHE_DIR`` (absolute) and lock timings passed on; a bad
    lock timing is a ``ConfigError`` here, before any run."""
    from nasbench_harness.tracking.runlock import lock_timing

    lock_timing()

    def absolute(value: str | os.PathLike[str] | None) -> str | None:
        return None if value is None or str(value) == "" else str(Path(value).expanduser().resolve())

    env = {name: str(absolute(os.environ[name])) for name in ("NBH_DATA_DIR", "NBH_CACHE_DIR") if os.environ.get(name)}
    # every node must judge a lock's heartbeat alike (nasbench_harness.tracking.runlock)
    env.update({name: os.environ[name] for name in ("NBH_LOCK_BEAT_S", "NBH_LOCK_STALE_S") if os.environ.get(name)})
    return JobArgs(device, absolute(data_dir), absolute(cache_dir), retry_failed, tuple(log), env)


def run_status(path: Path) -> str | None:
    """The status in a run directory's manifest (None: no run there yet). A run stopped by
    Ctrl-C counts as ``interrupted`` (it resumes), not as ``failed``. ``RunDirError`` when the
    manifest is damaged (read by :func:`nasbench_harness.tracking.manifest.read_manifest_file`)."""
    from nasbench_harness.tracking.manifest import MANIFEST_FILE, read_manifest_file

    if not (path / MANIFEST_FILE).is_file():
        return None
    manifest = read_manifest_file(path / MANIFEST_FILE)
    status = str(manifest["status"])
    if status == "failed" and str(manifest.get("error") or "").startswith("interrupted"):
        return "interrupted"
    return status


def run_one(run: PlannedRun, job: JobArgs) -> Outcome:
    """Train (or skip, or resume) one run under its lock, mirrored to the trackers ``job.log``
    names; never raises for a failed search, a held or unlockable lock or a damaged run directory
    (the outcome says why)."""
    from nasbench_harness.methods.engine.run import run_search

    for name, value in job.env.items():
        os.environ.setdefault(name, value)
    answer = settled(run, job)
    if answer is not None:
        return answer
    preset = str(getattr(run.config, "preset", "") or "")
    host = socket.gethostname()
    problem = _device_problem(job.device, host)
    if problem:
        return Outcome(run.run_id, "failed", problem, job.device, preset, host)
    try:
        result = run_search(
            run.config, run.path, device=job.device, data_dir=job.data_dir, cache_dir=job.cache_dir, log=job.log
        )
        epochs = f"{result.epochs_completed} epochs"
        return Outcome(run.run_id, "finished", epochs, _trained_on(run.path, True), preset, host)
    except KeyboardInterrupt:
        raise
    except RunBusyError as exc:
        return Outcome(run.run_id, "busy", str(exc), preset=preset)
    except Exception as exc:  # the run directory records it; the sweep goes on
        device = _trained_on(run.path, True) if run.path.exists() else job.device
        return Outcome(run.run_id, "failed", f"{type(exc).__name__}: {exc}", device, preset, host)


def settled(run: PlannedRun, job: JobArgs) -> Outcome | None:
    """The outcome of a run that needs no training: finished before, failed before and not
    retried, or a damaged run directory; None when it needs training (an executor may answer
    these without a worker)."""
    preset = str(getattr(run.config, "preset", "") or "")
    try:
        status = run_status(run.path)
    except RunDirError as exc:
        return Outcome(run.run_id, "failed", f"{type(exc).__name__}: {exc}", preset=preset)
    if status == "finished":
        return Outcome(run.run_id, "finished", "already finished", _trained_on(run.path), preset)
    if status == "failed" and not job.retry_failed:
        return Outcome(run.run_id, "skipped-failed", "failed before; --retry-failed runs it again", preset=preset)
    return None


def _device_problem(device: str, host: str) -> str | None:
    """Why this worker cannot train on ``device`` (a CUDA run where torch sees no GPU), naming
    the GPUs the executor gave it; None when it can."""
    if not device.startswith("cuda"):
        return None
    import torch

    if torch.cuda.is_available():
        return None
    given = os.environ.get("CUDA_VISIBLE_DEVICES")
    gpus = f"GPU(s) {given}" if given else "no GPU"
    return (
        f"this run was placed on a GPU, but torch on {host} sees none (the executor gave it {gpus}; "
        f"torch {torch.__version__} {'has' if torch.version.cuda else 'has no'} CUDA): install a CUDA build "
        "of torch on the workers, or sweep with --device cpu"
    )


def _trained_on(path: Path, now: bool = False) -> str:
    """The device a run's manifest records (its latest session); for a run trained ``now`` by a
    worker that sees one GPU, with that GPU's id (``cuda:0 (GPU 3)``); "" when unreadable."""
    from nasbench_harness.tracking.manifest import MANIFEST_FILE, read_manifest_file

    try:
        device = str(read_manifest_file(path / MANIFEST_FILE).get("device") or "")
    except (RunDirError, OSError):
        return ""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "")
    if now and device.startswith("cuda") and visible and "," not in visible:
        return f"{device} (GPU {visible})"
    return device
