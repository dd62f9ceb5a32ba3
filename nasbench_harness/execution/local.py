"""Run a suite's runs: :func:`run_sweep` with a pool of worker processes on this machine
(``local``), or as Ray tasks (``ray``, in :mod:`nasbench_harness.execution.ray`).

Each run goes through :func:`nasbench_harness.execution.job.run_one` into its own directory, so a
finished run is skipped, an interrupted one resumes from its last complete epoch, and a failed one
is retried only when asked; a file lock keeps two sweeps from training the same run. The
machine's threads are split between the workers. ``sweep.json`` (written atomically after every
run) lists every run and its status.
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
) -> list[Outcome]:
    """Run ``runs`` with ``workers`` processes (1: in this process); returns every outcome.

    Each run gets ``threads`` torch threads (default: the machine's cores split between the
    workers). Results depend on the thread count, not on the number of workers.
    """
    threads = threads or max(1, (os.cpu_count() or 1) // max(1, workers))
    planned = [PlannedRun(r.run_id, r.config.model_copy(update={"threads": threads}), r.path) for r in runs]
    statuses: dict[str, dict[str, Any]] = {r.run_id: {"path": str(r.path), "status": "pending"} for r in planned}
    manifest_dir.mkdir(parents=True, exist_ok=True)
    _write_manifest(manifest_dir, statuses)
    data = None if data_dir is None else str(data_dir)
    cache = None if cache_dir is None else str(cache_dir)
    outcomes: list[Outcome] = []

    def record(outcome: Outcome) -> None:
        outcomes.append(outcome)
        statuses[outcome.run_id].update(status=outcome.status, message=outcome.message)
        _write_manifest(manifest_dir, statuses)
        if on_outcome:
            on_outcome(outcome)

    if executor == "ray":
        from nasbench_harness.execution.ray import ray_outcomes

        for outcome in ray_outcomes(planned, threads, device, data, retry_failed, ray_address, cache):
            record(outcome)
        return outcomes
    if executor != "local":
        raise ConfigError(f"unknown executor {executor!r}; use local or ray")
    if workers <= 1:
        for run in planned:
            record(run_one(run, device, data, retry_failed, cache))
        return outcomes
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
        pending: dict[Future[Outcome], PlannedRun] = {
            pool.submit(run_one, run, device, data, retry_failed, cache): run for run in planned
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


def _write_manifest(directory: Path, statuses: dict[str, dict[str, Any]]) -> None:
    from nasbench_harness.tracking import atomic_write_json

    counts: dict[str, int] = {}
    for entry in statuses.values():
        counts[entry["status"]] = counts.get(entry["status"], 0) + 1
    atomic_write_json(directory / SWEEP_FILE, {"counts": counts, "runs": statuses})
