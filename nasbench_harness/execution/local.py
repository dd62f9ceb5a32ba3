"""Run a suite's runs: :func:`run_sweep` with a pool of worker processes on this machine
(``local``), or as Ray tasks (``ray``, in :mod:`nasbench_harness.execution.ray`).

Each run goes through :func:`nasbench_harness.execution.job.run_one` into its own directory, so a
finished run is skipped, an interrupted one resumes from its last complete epoch, and a failed one
is retried only when asked; a file lock keeps two sweeps from training the same run. The
machine's threads are split between the workers (workers x threads never exceed the CPUs this
process may use). ``sweep.json`` lists every run and its status; it is updated after every run
under its own file lock by reading, merging and replacing it atomically, so two sweeps of one
suite and preset at once keep it consistent: an outcome replaces what was there, but ``busy``
(another sweep holds the run) and ``pending`` never replace another sweep's outcome.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from nasbench_harness.errors import ConfigError
from nasbench_harness.execution.job import Outcome, run_one, run_status
from nasbench_harness.execution.suite import PlannedRun

__all__ = ["SWEEP_FILE", "Outcome", "run_one", "run_status", "run_sweep"]  # Outcome, run_one, run_status: job.py

SWEEP_FILE = "sweep.json"


def run_sweep(
    runs: Sequence[PlannedRun],
    manifest_dir: Path,
    *,
    workers: int = 1,
    threads: int | None = None,
    device: str = "cpu",
    data_dir: str | os.PathLike[str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    retry_failed: bool = False,
    on_outcome: Callable[[Outcome], None] | None = None,
    executor: str = "local",
    ray_address: str | None = None,
    log: Sequence[str] = (),
) -> list[Outcome]:
    """Run ``runs`` with ``workers`` processes (1: in this process); returns every outcome.

    Each run gets ``threads`` torch threads (default: the machine's cores split between the
    workers). Results depend on the thread count, not on the number of workers. ``log`` names
    trackers each run mirrors its rows to; they are checked here, before any run starts.
    """
    from nasbench_harness.tracking.trackers import check_trackers

    log = check_trackers(log)
    threads = _threads_per_run(workers, threads, executor, ray_address)
    planned = [PlannedRun(r.run_id, r.config.model_copy(update={"threads": threads}), r.path) for r in runs]
    statuses: dict[str, dict[str, Any]] = {r.run_id: {"path": str(r.path), "status": "pending"} for r in planned}
    manifest_dir.mkdir(parents=True, exist_ok=True)
    _write_manifest(manifest_dir, statuses, start=True)
    data = None if data_dir is None else str(data_dir)
    cache = None if cache_dir is None else str(cache_dir)
    outcomes: list[Outcome] = []

    def record(outcome: Outcome) -> None:
        outcomes.append(outcome)
        statuses[outcome.run_id].update(status=outcome.status, message=outcome.message)
        _write_manifest(manifest_dir, {outcome.run_id: statuses[outcome.run_id]})
        if on_outcome:
            on_outcome(outcome)

    if executor == "ray":
        from nasbench_harness.execution.ray import ray_outcomes

        for outcome in ray_outcomes(planned, threads, device, data, retry_failed, ray_address, cache, log):
            record(outcome)
        return outcomes
    if executor != "local":
        raise ConfigError(f"unknown executor {executor!r}; use local or ray")
    if workers <= 1:
        for run in planned:
            record(run_one(run, device, data, retry_failed, cache, log))
        return outcomes
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
        pending: dict[Future[Outcome], PlannedRun] = {
            pool.submit(run_one, run, device, data, retry_failed, cache, log): run for run in planned
        }
        try:
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    run = pending.pop(future)
                    try:
                        record(future.result())
                    except Exception as exc:  # a worker that died (e.g. killed): the run resumes next time
                        record(Outcome(run.run_id, "failed", f"worker died: {type(exc).__name__}: {exc}"))
        except KeyboardInterrupt:
            pool.shutdown(wait=False, cancel_futures=True)
            raise
    return outcomes


def _threads_per_run(workers: int, threads: int | None, executor: str, ray_address: str | None) -> int:
    """Torch threads per run (default: the usable CPUs split between the workers), checked against
    the CPUs this process may use where the runs train here (local, or a local Ray instance)."""
    from nasbench_harness.threads import threads_problem, usable_cpus

    cpus = usable_cpus()
    if executor == "local" and not 1 <= workers <= cpus:
        raise ConfigError(
            f"--workers {workers}: this machine allows 1..{cpus} runs at once (the CPUs this process may use)"
        )
    threads = threads or max(1, cpus // max(1, workers))
    if executor == "local" or ray_address is None:
        problem = threads_problem(threads, "threads per run")
        if problem:
            raise ConfigError(problem)
    if executor == "local" and workers * threads > cpus:
        raise ConfigError(
            f"--workers {workers} with {threads} threads per run needs {workers * threads} CPUs; this machine "
            f"allows at most {cpus} (the CPUs this process may use); lower the workers or the threads"
        )
    return threads


_WEAK = {"pending": 0, "busy": 1}
"""Statuses that are no outcome; any other status (finished, failed, ...) ranks 2."""


def _write_manifest(directory: Path, entries: dict[str, dict[str, Any]], start: bool = False) -> None:
    """Merge ``entries`` into ``sweep.json`` under its lock: an entry replaces one of equal or
    lower rank (pending < busy < an outcome); ``start`` (a sweep's first write) also drops runs no
    longer planned, so an edited suite leaves no stale entries."""
    import json

    from filelock import FileLock

    from nasbench_harness.tracking import atomic_write_json

    path = directory / SWEEP_FILE
    with FileLock(str(path) + ".lock"):
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
        atomic_write_json(path, {"counts": counts, "runs": runs})
