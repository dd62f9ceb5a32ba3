"""Executors: a suite's runs in a pool of worker processes on this machine (``local``), or as
Ray tasks on a local Ray instance or an existing cluster (``ray``).

Each run is `run_search` into its own directory, so a finished run is skipped, an interrupted
one resumes from its last complete epoch, and a failed one is retried only when asked. A run is
claimed with a file lock (``<run dir>.lock``) for as long as it trains: two sweeps over the same
results folder never train the same run at once; the second reports it as busy. The machine's
threads are split between the workers. ``sweep.json`` (written atomically after every run)
lists every run and its status.

With Ray, each run is one task that asks for ``threads`` CPUs (and a GPU when the device is
CUDA); on a cluster the results folder and the data directory must be on storage every node sees.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from nasbench_harness.execution.suite import PlannedRun

SWEEP_FILE = "sweep.json"


@dataclass(frozen=True)
class Outcome:
    """How one run of a sweep ended: ``finished`` (now or before), ``failed``, ``busy`` (another
    sweep holds it), or ``skipped-failed`` (failed before; not retried)."""

    run_id: str
    status: str
    message: str = ""


def run_status(path: Path) -> str | None:
    """The status in a run directory's manifest (None: no run there yet). A run stopped by
    Ctrl-C counts as ``interrupted`` (it resumes), not as ``failed``."""
    try:
        manifest = json.loads((path / "manifest.json").read_text())
        status = str(manifest["status"])
    except (OSError, ValueError, KeyError):
        return None
    if status == "failed" and str(manifest.get("error") or "").startswith("interrupted"):
        return "interrupted"
    return status


def run_one(run: PlannedRun, device: str, data_dir: str | None, retry_failed: bool) -> Outcome:
    """Train (or skip, or resume) one run under its lock; never raises for a failed search."""
    from filelock import FileLock, Timeout

    from nasbench_harness.methods.engine.run import run_search

    status = run_status(run.path)
    if status == "finished":
        return Outcome(run.run_id, "finished", "already finished")
    if status == "failed" and not retry_failed:
        return Outcome(run.run_id, "skipped-failed", "failed before; --retry-failed runs it again")
    run.path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(run.path) + ".lock")
    try:
        lock.acquire(timeout=0)
    except Timeout:
        return Outcome(run.run_id, "busy", "another sweep is training this run")
    try:
        result = run_search(run.config, run.path, device=device, data_dir=data_dir)
        return Outcome(run.run_id, "finished", f"{result.epochs_completed} epochs")
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # the run directory records it; the sweep goes on
        return Outcome(run.run_id, "failed", f"{type(exc).__name__}: {exc}")
    finally:
        lock.release()


def run_sweep(
    runs: Sequence[PlannedRun],
    manifest_dir: Path,
    *,
    workers: int = 1,
    threads: int | None = None,
    device: str = "cpu",
    data_dir: str | os.PathLike[str] | None = None,
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
    outcomes: list[Outcome] = []

    def record(outcome: Outcome) -> None:
        outcomes.append(outcome)
        statuses[outcome.run_id].update(status=outcome.status, message=outcome.message)
        _write_manifest(manifest_dir, statuses)
        if on_outcome:
            on_outcome(outcome)

    if executor == "ray":
        for outcome in _ray_outcomes(planned, threads, device, data, retry_failed, ray_address):
            record(outcome)
        return outcomes
    if executor != "local":
        from nasbench_harness.errors import ConfigError

        raise ConfigError(f"unknown executor {executor!r}; use local or ray")
    if workers <= 1:
        for run in planned:
            record(run_one(run, device, data, retry_failed))
        return outcomes
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
        pending: dict[Future[Outcome], PlannedRun] = {
            pool.submit(run_one, run, device, data, retry_failed): run for run in planned
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


def _ray_outcomes(
    runs: Sequence[PlannedRun], threads: int, device: str, data: str | None, retry_failed: bool, address: str | None
) -> Iterator[Outcome]:
    """Each run as a Ray task; outcomes in the order they finish."""
    try:
        import ray
    except ImportError:
        from nasbench_harness.errors import ConfigError

        raise ConfigError("--executor ray needs the ray package: pip install 'ray>=2.9'") from None
    started = not ray.is_initialized()
    if started:
        ray.init(address=address, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
    try:
        task = ray.remote(num_cpus=threads, num_gpus=1 if device.startswith("cuda") else 0)(run_one)
        pending = {task.remote(run, device, data, retry_failed): run for run in runs}
        while pending:
            (ref,), _ = ray.wait(list(pending), num_returns=1)
            run = pending.pop(ref)
            try:
                yield ray.get(ref)
            except Exception as exc:  # a task or node that died: the run resumes next time
                yield Outcome(run.run_id, "failed", f"task died: {type(exc).__name__}: {exc}")
    finally:
        if started:
            ray.shutdown()


def _write_manifest(directory: Path, statuses: dict[str, dict[str, Any]]) -> None:
    from nasbench_harness.tracking import atomic_write_json

    counts: dict[str, int] = {}
    for entry in statuses.values():
        counts[entry["status"]] = counts.get(entry["status"], 0) + 1
    atomic_write_json(directory / SWEEP_FILE, {"counts": counts, "runs": statuses})
