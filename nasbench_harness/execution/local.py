"""Run a suite's runs: :func:`run_sweep` hands them to a :class:`Backend` (``local``: a pool of
worker processes on this machine; ``ray``: Ray tasks, :mod:`nasbench_harness.execution.ray`;
``slurm``: SLURM jobs through submitit, :mod:`nasbench_harness.execution.slurm`) and records the
outcomes.

Each run goes through :func:`nasbench_harness.execution.job.run_one` into its own directory, so a
finished run is skipped, an interrupted one resumes from its last complete epoch, and a failed one
is retried only when asked; a lock keeps two sweeps from training the same run. What each run is
given (device, CPU threads, GPU share) is a :class:`~nasbench_harness.execution.resources.Placement`
decided from the backend's machines. ``sweep.json`` lists every run, its status and where it
trained; it is updated after every run under its own file lock by reading, merging and replacing
it atomically, so two sweeps of one suite and preset at once keep it consistent: an outcome
replaces what was there, but ``busy`` (another sweep holds the run) and ``pending`` never replace
another sweep's outcome.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Protocol

from nasbench_harness.errors import ConfigError
from nasbench_harness.execution.job import INCOMPLETE, JobArgs, Outcome, job_args, run_one, run_status
from nasbench_harness.execution.resources import Capacity, Placement, local_capacity, place, visible_device
from nasbench_harness.execution.suite import PlannedRun

__all__ = ["INCOMPLETE", "SWEEP_FILE", "Backend", "Outcome", "open_backend", "run_one", "run_status", "run_sweep"]

SWEEP_FILE = "sweep.json"
MANIFEST_LOCK_TIMEOUT_S = 120
"""How long a sweep waits for ``sweep.json``'s lock (held for milliseconds by a healthy sweep)."""
EXECUTORS = ("local", "ray", "slurm")


class Backend(Protocol):
    """Where a sweep's runs train. ``capacity`` describes the machines (for :func:`place`);
    ``outcomes`` trains ``runs`` as ``placement`` says, yielding each outcome as it ends (a run whose
    worker, task or job died is ``failed`` and says so: it resumes next time), and may keep its own
    files (job logs) in ``workdir``, the sweep's folder; ``close`` releases what it started."""

    name: str

    def capacity(self) -> Capacity: ...

    def outcomes(
        self, runs: Sequence[PlannedRun], placement: Placement, job: JobArgs, workdir: Path
    ) -> Iterator[Outcome]: ...

    def close(self) -> None: ...


class LocalBackend:
    """A pool of ``placement.workers`` processes on this machine (1: in this process); with GPU
    runs, each worker sees one GPU (``CUDA_VISIBLE_DEVICES``), the slots taken in turn."""

    name = "local"
    task = staticmethod(run_one)
    """What each worker runs per run (a seam for tests)."""

    def capacity(self) -> Capacity:
        return local_capacity()

    def outcomes(
        self, runs: Sequence[PlannedRun], placement: Placement, job: JobArgs, workdir: Path
    ) -> Iterator[Outcome]:
        if placement.workers <= 1 and not placement.gpu_slots:
            for run in runs:
                yield self.task(run, job)
            return
        context = get_context("spawn")
        slots = context.Queue()
        for slot in placement.gpu_slots or [None] * placement.workers:
            slots.put(slot)
        pool = ProcessPoolExecutor(placement.workers, context, initializer=_take_slot, initargs=(slots,))
        with pool:
            pending: dict[Future[Outcome], PlannedRun] = {pool.submit(self.task, run, job): run for run in runs}
            try:
                while pending:
                    done, _ = wait(pending, return_when=FIRST_COMPLETED)
                    for future in done:
                        run = pending.pop(future)
                        try:
                            yield future.result()
                        except Exception as exc:  # a worker that died (e.g. killed): the run resumes next time
                            yield Outcome(run.run_id, "failed", f"worker died: {type(exc).__name__}: {exc}")
            except (KeyboardInterrupt, GeneratorExit):
                pool.shutdown(wait=False, cancel_futures=True)
                raise

    def close(self) -> None:
        pass


def _take_slot(slots: Any) -> None:
    """A local worker's initializer: see only the GPU of the next slot (None: every device)."""
    visible_device(slots.get())


def open_backend(executor: str = "local", ray_address: str | None = None, slurm: Any = None) -> Backend:
    """The backend named ``executor``; Ray connects (or starts) here, SLURM is asked for its
    partitions here, so a bad address or a missing ``sbatch`` is an error before any run."""
    if executor == "local":
        return LocalBackend()
    if executor == "ray":
        from nasbench_harness.execution.ray import RayBackend

        return RayBackend(ray_address)
    if executor == "slurm":
        from nasbench_harness.execution.slurm import SlurmBackend, SlurmOptions

        return SlurmBackend(slurm or SlurmOptions())
    raise ConfigError(f"unknown executor {executor!r}; use {', '.join(EXECUTORS)}")


def run_sweep(
    runs: Sequence[PlannedRun],
    manifest_dir: Path,
    *,
    workers: int | None = None,
    threads: int | None = None,
    device: str = "cpu",
    gpus_per_run: float | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    retry_failed: bool = False,
    on_outcome: Callable[[Outcome], None] | None = None,
    executor: str = "local",
    ray_address: str | None = None,
    slurm: Any = None,
    log: Sequence[str] = (),
    backend: Backend | None = None,
    placement: Placement | None = None,
) -> list[Outcome]:
    """Run ``runs`` on ``backend`` (default: one opened for ``executor`` here and closed after);
    returns every outcome. ``placement`` (default: :func:`place` of ``device``, ``gpus_per_run``,
    ``threads`` and ``workers`` on the backend's machines) says what each run is given; every
    run's config gets its threads. Results depend on the thread count, not on the number of
    workers. ``log`` names trackers each run mirrors its rows to; they are checked here, before
    any run starts."""
    from nasbench_harness.tracking.trackers import check_trackers

    log = check_trackers(log)
    own = backend is None
    backend = backend or open_backend(executor, ray_address, slurm)
    try:
        placement = placement or place(backend.capacity(), device, gpus_per_run, threads, workers)
        job = job_args(placement.device, data_dir, cache_dir, retry_failed, tuple(log))
        update = {"threads": placement.cpus_per_run}
        planned = [PlannedRun(r.run_id, r.config.model_copy(update=update), r.path.resolve()) for r in runs]
        statuses = {r.run_id: {"path": str(r.path), "status": "pending"} for r in planned}
        manifest_dir.mkdir(parents=True, exist_ok=True)
        _write_manifest(manifest_dir, statuses, start=True)
        outcomes: list[Outcome] = []
        for outcome in backend.outcomes(planned, placement, job, manifest_dir):
            outcomes.append(outcome)
            entry = statuses[outcome.run_id]
            entry.update(status=outcome.status, message=outcome.message)
            where = {"device": outcome.device, "preset": outcome.preset, "host": outcome.host}
            entry.update({key: value for key, value in where.items() if value})
            _write_manifest(manifest_dir, {outcome.run_id: entry})
            if on_outcome:
                on_outcome(outcome)
        return outcomes
    finally:
        if own:
            backend.close()


_WEAK = {"pending": 0, "busy": 1}
"""Statuses that are no outcome; any other status (finished, failed, ...) ranks 2."""


def _write_manifest(directory: Path, entries: dict[str, dict[str, Any]], start: bool = False) -> None:
    """Merge ``entries`` into ``sweep.json`` under its lock: an entry replaces one of equal or
    lower rank (pending < busy < an outcome); ``start`` (a sweep's first write) also drops runs no
    longer planned, so an edited suite leaves no stale entries. ``counts`` counts each status and
    ``incomplete`` the runs not trained yet (pending, busy, skipped-failed)."""
    import json

    from filelock import FileLock, Timeout

    from nasbench_harness.tracking import atomic_write_json

    path = directory / SWEEP_FILE
    lock = FileLock(str(path) + ".lock", timeout=MANIFEST_LOCK_TIMEOUT_S)
    try:
        lock.acquire()
    except Timeout:
        raise ConfigError(
            f"{lock.lock_file} has been held for {MANIFEST_LOCK_TIMEOUT_S} s: another sweep of this suite is "
            "stuck writing it, or (on a file system without flock) a killed sweep left it; delete it when no "
            "sweep of this suite is running"
        ) from None
    try:
        try:
            runs = json.loads(path.read_text(encoding="utf-8"))["runs"]
            if not isinstance(runs, dict):
                raise TypeError
        except (OSError, ValueError, KeyError, TypeError):  # missing or damaged: it is rebuilt from the outcomes
            runs = {}
        if start:
            runs = {run_id: entry for run_id, entry in runs.items() if run_id in entries}
        for run_id, entry in entries.items():
            old = runs.get(run_id)
            old_rank = _WEAK.get(old.get("status"), 2) if isinstance(old, dict) else -1
            if _WEAK.get(entry["status"], 2) >= old_rank:
                runs[run_id] = dict(entry)
        counts: dict[str, int] = {}
        for entry in runs.values():
            status = str(entry.get("status")) if isinstance(entry, dict) else "unknown"
            counts[status] = counts.get(status, 0) + 1
        incomplete = sum(n for status, n in counts.items() if status in INCOMPLETE)
        atomic_write_json(path, {"counts": counts, "incomplete": incomplete, "runs": runs})
    finally:
        lock.release()
