"""The ``ray`` executor: each run of a sweep as one Ray task, on a local Ray instance or an
existing cluster (``address``).

A task asks for the placement's CPUs and GPU share (a fraction packs several runs on one GPU) and
calls the same :func:`nasbench_harness.execution.job.run_one` as the local executor. The device and
preset follow the cluster's nodes, not the driver's (a head node without a GPU is the usual case).
Paths are sent absolute and the driver's ``NBH_DATA_DIR`` / ``NBH_CACHE_DIR`` go with every task
(``runtime_env``); the results folder and the data directory must be on storage every node sees.
``ray`` is imported only when this executor runs, so the package never needs it otherwise.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from nasbench_harness.errors import ConfigError
from nasbench_harness.execution.job import JobArgs, Outcome, run_one
from nasbench_harness.execution.resources import Capacity, Node, Placement
from nasbench_harness.execution.suite import PlannedRun

MAX_RETRIES = 2
"""Times Ray reruns a task whose worker or node died; the rerun resumes from the last complete epoch."""


class RayBackend:
    """Connects to ``address`` (None: starts a local Ray instance) when made; shuts down only what
    it started."""

    name = "ray"

    def __init__(self, address: str | None = None) -> None:
        try:
            import ray
        except ImportError:
            raise ConfigError("--executor ray needs the ray package: pip install 'ray>=2.9'") from None
        self._ray = ray
        self.address = address
        self._started = not ray.is_initialized()
        if self._started:
            try:
                # a local instance started here runs its tasks at this process's priority: Ray's default
                # worker niceness (15) loses every core to anything else the user runs on the workstation
                extra = {} if address else {"_system_config": {"worker_niceness": 0}}
                ray.init(
                    address=address, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True, **extra
                )
            except ConnectionError as exc:
                raise ConfigError(f"--ray-address {address}: cannot connect ({exc}); is the cluster up?") from None

    def capacity(self) -> Capacity:
        alive = [n for n in self._ray.nodes() if n.get("Alive")]
        nodes = tuple(
            Node(float(n["Resources"].get("CPU", 0)), float(n["Resources"].get("GPU", 0)), str(n["NodeManagerAddress"]))
            for n in alive
        )
        where = f"the Ray cluster at {self.address}" if self.address else "the local Ray instance"
        return Capacity("ray", nodes, where)

    def outcomes(
        self, runs: Sequence[PlannedRun], placement: Placement, job: JobArgs, workdir: Path
    ) -> Iterator[Outcome]:
        """Each run as a task; outcomes in the order they finish. A task that died ``MAX_RETRIES``
        + 1 times gives a ``failed`` outcome (the run resumes next time)."""
        ray = self._ray
        options: dict[str, Any] = {
            "num_cpus": placement.cpus_per_run,
            "num_gpus": placement.gpus_per_run,
            "max_retries": MAX_RETRIES,
            "retry_exceptions": False,
        }
        if job.env:
            options["runtime_env"] = {"env_vars": dict(job.env)}
        task = ray.remote(run_one).options(**options)
        pending = {task.remote(run, job): run for run in runs}
        try:
            while pending:
                (ref,), _ = ray.wait(list(pending), num_returns=1)
                run = pending.pop(ref)
                try:
                    yield ray.get(ref)
                except Exception as exc:  # a task or node that died: the run resumes next time
                    yield Outcome(run.run_id, "failed", f"task died: {type(exc).__name__}: {_first_line(exc)}")
        except (KeyboardInterrupt, GeneratorExit):
            for ref in pending:
                ray.cancel(ref, force=True)
            raise

    def close(self) -> None:
        if self._started and self._ray.is_initialized():
            self._ray.shutdown()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else ""
