"""One run of a sweep: its status on disk, and training (or skipping, or resuming) it under a lock.

Every executor (``local``, ``ray``) runs :func:`run_one` per run, so a finished run is skipped, an
interrupted one resumes from its last complete epoch, and a failed one is retried only when asked.
A run is claimed with a file lock (``<run dir>.lock``) for as long as it trains: two sweeps over
the same results folder never train the same run at once; the second reports it as busy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from nasbench_harness.errors import RunDirError
from nasbench_harness.execution.suite import PlannedRun


@dataclass(frozen=True)
class Outcome:
    """How one run of a sweep ended: ``finished`` (now or before), ``failed``, ``busy`` (another
    sweep holds it), or ``skipped-failed`` (failed before; not retried)."""

    run_id: str
    status: str
    message: str = ""


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


def run_one(
    run: PlannedRun,
    device: str,
    data_dir: str | None,
    retry_failed: bool,
    cache_dir: str | None = None,
    log: Sequence[str] = (),
) -> Outcome:
    """Train (or skip, or resume) one run under its lock, mirrored to the trackers ``log`` names;
    never raises for a failed search or a damaged run directory (the outcome is ``failed`` and says why)."""
    from filelock import FileLock, Timeout

    from nasbench_harness.methods.engine.run import run_search

    try:
        status = run_status(run.path)
    except RunDirError as exc:
        return Outcome(run.run_id, "failed", f"{type(exc).__name__}: {exc}")
    if status == "finished":
        return Outcome(run.run_id, "finished", "already finished")
    if status == "failed" and not retry_failed:
        return Outcome(run.run_id, "skipped-failed", "failed before; --retry-failed runs it again")
    run.path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(run.path) + ".lock", is_singleton=True)  # run_search takes the same instance again
    try:
        lock.acquire(timeout=0)
    except Timeout:
        return Outcome(run.run_id, "busy", "another sweep is training this run")
    try:
        result = run_search(run.config, run.path, device=device, data_dir=data_dir, cache_dir=cache_dir, log=log)
        return Outcome(run.run_id, "finished", f"{result.epochs_completed} epochs")
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # the run directory records it; the sweep goes on
        return Outcome(run.run_id, "failed", f"{type(exc).__name__}: {exc}")
    finally:
        lock.release()
