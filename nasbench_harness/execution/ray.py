"""The ``ray`` executor: each run of a sweep as one Ray task, on a local Ray instance or an
existing cluster (``address``).

A task asks for ``threads`` CPUs (and a GPU when the device is CUDA) and calls the same
:func:`nasbench_harness.execution.job.run_one` as the local executor. On a cluster the results
folder and the data directory must be on storage every node sees. ``ray`` is imported only when
this executor runs, so the package never needs it otherwise.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from nasbench_harness.errors import ConfigError
from nasbench_harness.execution.job import Outcome, run_one
from nasbench_harness.execution.suite import PlannedRun


def ray_outcomes(
    runs: Sequence[PlannedRun],
    threads: int,
    device: str,
    data: str | None,
    retry_failed: bool,
    address: str | None,
    cache: str | None = None,
    log: Sequence[str] = (),
) -> Iterator[Outcome]:
    """Each run as a Ray task; outcomes in the order they finish. A task or node that dies gives a
    ``failed`` outcome (the run resumes next time). Starts Ray when it is not running, and shuts
    down only what it started."""
    try:
        import ray
    except ImportError:
        raise ConfigError("--executor ray needs the ray package: pip install 'ray>=2.9'") from None
    started = not ray.is_initialized()
    if started:
        ray.init(address=address, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
    try:
        task = ray.remote(num_cpus=threads, num_gpus=1 if device.startswith("cuda") else 0)(run_one)
        pending = {task.remote(run, device, data, retry_failed, cache, tuple(log)): run for run in runs}
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
