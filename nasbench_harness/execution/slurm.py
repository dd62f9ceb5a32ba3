"""The ``slurm`` executor: a sweep's runs as one SLURM job array, submitted with submitit.

:class:`SlurmBackend` asks ``sinfo`` for the partition's nodes (:meth:`~SlurmBackend.capacity`, which
:func:`~nasbench_harness.execution.resources.place` sizes the runs against), then submits every run
not settled yet (finished, or failed and not retried: answered here) as one array task that calls
:func:`nasbench_harness.execution.job.run_one`, and polls ``squeue`` every ``poll_s`` seconds,
yielding each run's outcome as its task ends. A task that ends without a result (cancelled, node
failure, out of memory, ...) is a ``failed`` outcome naming the SLURM state; the run keeps its
complete epochs and a rerun of the sweep resumes it. Ctrl-C (or closing the generator) stops the
waiting, never the jobs: they keep training, and a rerun waits for the ones still queued or running
(``slurm/jobs.json``, run id -> job id) instead of submitting them again.

Files, all under the sweep's folder: ``slurm/<job id>/`` holds what submitit writes for each task,
the sbatch script, the task's logs (``<job id>_0_log.out``/``.err``) and two pickles. submitit
pickles the callable and its arguments (the run's config and paths, :class:`JobArgs`) into
``<job id>_submitted.pkl``; the job unpickles them and pickles its :class:`Outcome` into
``<job id>_0_result.pkl``, which this process unpickles. Both are written by this sweep and its own
jobs into the user's own results folder: nothing else is ever unpickled.

Requeue: sbatch is given ``--signal=USR2@<signal_delay_s>``, so SLURM sends SIGUSR2 that long before
the time limit (and on preemption where the cluster is set up so). submitit's handler in the job
calls :meth:`TrainRun.checkpoint`, which resubmits the same call, and runs ``scontrol requeue``; the
job exits (the run's manifest still says ``running``), waits in the queue, and starts again with the
same job id: ``run_one`` resumes the run from its last complete epoch (so does a job SLURM itself
requeues, ``PreemptMode=REQUEUE``). At its 4th time limit (submitit's ``max_num_timeout`` is 3;
preemptions do not count) the run fails instead, "timed-out too many times": ``--retry-failed``
resumes it. The results folder, data and Python environment must be on storage every node sees.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nasbench_harness.errors import ConfigError
from nasbench_harness.execution.job import JobArgs, Outcome, run_one
from nasbench_harness.execution.job import settled as settled_outcome
from nasbench_harness.execution.resources import Capacity, Node, Placement
from nasbench_harness.execution.suite import PlannedRun

try:  # the job's callable must be a module-level class to unpickle; submitit is optional
    from submitit.helpers import Checkpointable as _Checkpointable
except ImportError:  # pragma: no cover - SlurmBackend refuses to start without submitit
    _Checkpointable = object  # type: ignore[assignment,misc]

COMMANDS = ("sbatch", "sinfo", "squeue", "srun")
"""What the driver runs (srun: submitit's sbatch script starts each task with it)."""
JOBS_FILE = "jobs.json"
RESUME = "rerun the sweep to resume it from its last complete epoch"
QUEUED = frozenset(
    {"PENDING", "RUNNING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESV_DEL_HOLD", "SPECIAL_EXIT", "COMPLETING",
     "CONFIGURING", "SUSPENDED", "STOPPED", "RESIZING", "SIGNALING", "STAGE_OUT"}
)  # fmt: skip
"""squeue states of a task that will still run or is running (a held one waits for its release)."""
RESULT_GRACE_S = 30.0
"""How long a COMPLETED task's result pickle may take to appear (a shared filesystem's latency)."""
RESERVED = {
    "array": "set by submitit", "output": "submitit's log files", "error": "submitit's log files",
    "open-mode": "submitit's log files", "signal": "the requeue signal", "partition": "--slurm-partition",
    "time": "--slurm-time", "cpus-per-task": "--cpus-per-run", "gpus-per-node": "--gpus-per-run",
    "gpus": "--gpus-per-run", "ntasks-per-node": "one task per run", "ntasks": "one task per run",
    "nodes": "one node per run",
}  # fmt: skip
"""sbatch options ``extra`` may not set, and what sets them instead."""


@dataclass(frozen=True)
class SlurmOptions:
    """How the runs are submitted. ``partition``: None for the cluster's default; ``time_min``: each
    job's time limit (a job reaching it requeues and resumes); ``array_parallelism``: array tasks
    running at once; ``extra``: further sbatch options as (key, value), e.g. ("account", "proj")
    (an empty value gives a bare flag such as ``--exclusive``); ``setup``: shell lines each job runs
    first (``module load cuda``); ``poll_s``: seconds between the driver's checks;
    ``signal_delay_s``: how long before the time limit SLURM signals the job to requeue."""

    partition: str | None = None
    time_min: int = 1440
    array_parallelism: int = 64
    extra: tuple[tuple[str, str], ...] = ()
    setup: tuple[str, ...] = ()
    poll_s: float = 5.0
    signal_delay_s: int = 90

    def __post_init__(self) -> None:
        if self.time_min < 1:
            raise ConfigError(f"--slurm-time {self.time_min}: give the time limit in minutes, at least 1")
        if self.array_parallelism < 1:
            raise ConfigError(f"--slurm-array-parallelism {self.array_parallelism}: at least 1 task must run")
        if not self.poll_s > 0:
            raise ConfigError(f"poll_s {self.poll_s}: the driver polls SLURM every poll_s seconds; give > 0")
        if self.signal_delay_s < 0:
            raise ConfigError(f"signal_delay_s {self.signal_delay_s}: seconds before the time limit; give >= 0")
        for key, _ in self.extra:
            flag = _flag(key)
            if not re.fullmatch(r"[a-z][a-z0-9-]*", flag):
                raise ConfigError(f"--slurm-option {key}: not an sbatch option name (e.g. account=myproj)")
            if flag in RESERVED:
                raise ConfigError(f"--slurm-option {key}: the sweep sets it ({RESERVED[flag]})")

    def sbatch_extra(self) -> dict[str, Any]:
        """``extra`` as submitit's ``additional_parameters`` (slurm.py ``_make_sbatch_string`` writes
        ``#SBATCH --key=value``, a bare ``--key`` for True)."""
        return {_flag(key).replace("-", "_"): value if value != "" else True for key, value in self.extra}


def _flag(key: str) -> str:
    return key.strip().lstrip("-").replace("_", "-").lower()


class TrainRun(_Checkpointable):
    """What each array task runs: :func:`run_one`. submitit's SIGUSR2 handler
    (core/job_environment.py ``SignalHandler.checkpoint_and_try_requeue``) calls :meth:`checkpoint`
    and requeues the job with the call it returns."""

    def __call__(self, run: PlannedRun, job: JobArgs) -> Outcome:
        return run_one(run, job)

    def checkpoint(self, run: PlannedRun, job: JobArgs) -> Any:
        """The same call: the requeued job resumes the run from its last complete epoch."""
        from submitit.helpers import DelayedSubmission

        return DelayedSubmission(self, run, job)


class SlurmBackend:
    """Submits to the SLURM cluster the ``sinfo``/``sbatch`` on PATH talk to (``SLURM_CONF``)."""

    name = "slurm"

    def __init__(self, options: SlurmOptions | None = None) -> None:
        self.options = options or SlurmOptions()
        try:
            import submitit  # noqa: F401
        except ImportError:
            raise ConfigError("--executor slurm needs submitit: pip install 'nasbench-harness[slurm]'") from None
        missing = [c for c in COMMANDS if shutil.which(c) is None]
        if missing:
            raise ConfigError(
                f"--executor slurm needs the SLURM commands {', '.join(missing)} on PATH; run the sweep on a "
                "machine that submits to the cluster (a login node)"
            )

    def capacity(self) -> Capacity:
        """The partition's nodes as ``sinfo`` lists them, with their CPUs and GPUs (``gpu`` gres)."""
        listed = _command("sinfo", "-h", "-o", "%P").split()  # the default partition is marked "*"
        names = list(dict.fromkeys(p.rstrip("*") for p in listed))
        default = next((p.rstrip("*") for p in listed if p.endswith("*")), None)
        partition = self.options.partition or default
        known = ", ".join(n + ("*" if n == default else "") for n in names) or "none"
        if partition is None:
            raise ConfigError(f"SLURM has no default partition; choose one with --slurm-partition ({known})")
        if partition not in names:
            raise ConfigError(f"--slurm-partition {partition}: SLURM has no such partition; it knows {known}")
        nodes: dict[str, Node] = {}
        for line in _command("sinfo", "-h", "-N", "-p", partition, "-o", "%N|%c|%G").splitlines():
            name, _, rest = line.strip().partition("|")
            cpus, _, gres = rest.partition("|")
            count = re.match(r"\d+", cpus)
            if name and count:
                nodes[name] = Node(float(count.group()), float(gpu_count(gres)), name)
        if not nodes:
            raise ConfigError(f"--slurm-partition {partition}: sinfo lists no nodes in it; partitions: {known}")
        return Capacity("slurm", tuple(nodes.values()), f"SLURM partition {partition}")

    def outcomes(
        self, runs: Sequence[PlannedRun], placement: Placement, job: JobArgs, workdir: Path
    ) -> Iterator[Outcome]:
        """Settled runs at once; then each submitted (or still queued) run's outcome as its task ends."""
        gpus = placement.gpus_per_run
        if gpus != int(gpus):
            raise ConfigError(
                f"--gpus-per-run {gpus:g}: SLURM gives whole GPUs; use 1, or the local/ray executor to pack runs"
            )
        folder = workdir.resolve() / "slurm"
        todo = []
        for run in runs:
            settled = settled_outcome(run, job)
            if settled:
                yield settled
            else:
                todo.append(run)
        queued = _queued(folder, [r.run_id for r in todo])
        fresh = [r for r in todo if r.run_id not in queued]
        waiting = {queued[r.run_id]: r for r in todo if r.run_id in queued}  # job id -> run
        if fresh:
            ids = self._submit(fresh, placement, job, folder)
            waiting.update(zip(ids, fresh, strict=True))
            _record_jobs(folder, {r.run_id: i for r, i in zip(fresh, ids, strict=True)})
        # Ctrl-C or GeneratorExit while waiting ends only the waiting: the jobs keep training (no scancel)
        yield from _watch(waiting, folder, self.options.poll_s)

    def _submit(self, runs: list[PlannedRun], placement: Placement, job: JobArgs, folder: Path) -> list[str]:
        """One job array (one plain job for one run); the job ids (``<array>_<index>``)."""
        import submitit

        options = self.options
        # SlurmExecutor, not AutoExecutor: its parameters are sbatch's names (slurm/slurm.py
        # _make_sbatch_string); map_array of several calls is one sbatch --array=0-N%parallelism
        # (SlurmExecutor._internal_process_submissions), and "%j" in the folder gives each task its own
        executor = submitit.SlurmExecutor(folder=folder / "%j")
        params: dict[str, Any] = {
            "job_name": "-".join(("nbh", *folder.parent.parts[-2:])),  # nbh-<suite>-<preset>
            "time": options.time_min,  # also the timeout submitit's requeue counts against
            "cpus_per_task": placement.cpus_per_run,
            "ntasks_per_node": 1,
            "array_parallelism": options.array_parallelism,
            "signal_delay_s": min(options.signal_delay_s, options.time_min * 30),  # at most half the limit
        }
        if options.partition:
            params["partition"] = options.partition
        if placement.gpus_per_run > 0:
            params["gpus_per_node"] = int(placement.gpus_per_run)
        if options.extra:
            params["additional_parameters"] = options.sbatch_extra()
        if options.setup:
            params["setup"] = list(options.setup)
        executor.update_parameters(**params)
        try:
            jobs = executor.map_array(TrainRun(), runs, [job] * len(runs))
        except (OSError, subprocess.SubprocessError, RuntimeError) as exc:  # FailedJobError: sbatch said no
            detail = " ".join(str(exc).split())[:500]
            raise ConfigError(f"sbatch refused the sweep's jobs: {detail}") from None
        return [str(j.job_id) for j in jobs]

    def close(self) -> None:
        pass


def gpu_count(gres: str) -> int:
    """GPUs in an sinfo ``%G`` field: ``gpu:4``, ``gpu:a100:4(S:0-1)``, ``gpu:a100:2,gpu:v100:2``,
    ``(null)``."""
    total = 0
    for item in re.sub(r"\([^)]*\)", "", gres).split(","):
        parts = item.strip().split(":")
        if parts[0] == "gpu":
            total += int(parts[-1]) if len(parts) > 1 and parts[-1].isdigit() else 1
    return total


def _run(args: Sequence[str], timeout: float = 120) -> subprocess.CompletedProcess[str] | None:
    """Run a SLURM command (no shell); None when it cannot start or does not answer in time."""
    try:
        return subprocess.run(list(args), capture_output=True, text=True, timeout=timeout, check=False)  # noqa: S603
    except (OSError, subprocess.TimeoutExpired):
        return None


def _command(*args: str) -> str:
    """A SLURM command's stdout; a ConfigError naming the command when it fails."""
    done = _run(args)
    if done is None or done.returncode:
        why = (" ".join(done.stderr.split())[:300] or f"exit status {done.returncode}") if done else "no answer"
        raise ConfigError(f"{' '.join(args)} failed: {why}; is SLURM reachable from this machine?")
    return done.stdout


def _squeue(job_ids: Sequence[str]) -> dict[str, str] | None:
    """The state of each task of ``job_ids``' arrays that squeue still lists (``-t all``: ended ones
    too, until SLURM forgets them); None when squeue cannot answer now (tried again next poll). Not
    submitit's watcher (slurm/slurm.py ``SlurmInfoWatcher``): it asks sacct, which needs SLURM's
    accounting database, and a cluster without one would leave ended jobs "UNKNOWN" forever."""
    arrays = sorted({i.split("_")[0] for i in job_ids})
    args = ["squeue", "-h", "-r", "-t", "all", "-j", ",".join(arrays), "-o", "%i|%T"]
    done = _run(args, 60)
    if done is None or done.returncode:
        return {} if done is not None and "Invalid job id" in done.stderr else None  # every job asked for is forgotten
    states = {}
    for line in done.stdout.splitlines():
        job_id, _, state = line.strip().partition("|")
        states[job_id] = state.split()[0] if state.strip() else "UNKNOWN"
    return states


def _paths(folder: Path, job_id: str) -> Any:
    """submitit's files of task ``job_id`` (core/utils.py ``JobPaths``: ``<folder>/<id>/<id>_0_result.pkl``, ...)."""
    from submitit.core.utils import JobPaths

    return JobPaths(folder / "%j", job_id=job_id, task_id=0)


def _result(folder: Path, job_id: str) -> tuple[str, Any] | None:
    """The (``success``, Outcome) or (``error``, traceback) a task pickled (core/submission.py
    ``process_job``), or None while there is none (it is renamed into place whole)."""
    from submitit.core.utils import pickle_load

    path = _paths(folder, job_id).result_pickle
    if not path.exists():
        return None
    with contextlib.suppress(OSError, EOFError, ValueError):  # not whole yet on a slow shared filesystem
        return pickle_load(path)  # this sweep's own job wrote it (see the module docstring)
    return None


def _watch(waiting: dict[str, PlannedRun], folder: Path, poll_s: float) -> Iterator[Outcome]:
    """Poll until every task in ``waiting`` has given its outcome."""
    ended: dict[str, float] = {}  # job id -> when squeue first said it is not queued
    while waiting:
        states = _squeue(list(waiting))
        for job_id, run in list(waiting.items()):
            result = _result(folder, job_id)
            state = states.get(job_id, "FORGOTTEN") if states is not None else "RUNNING"
            if result is None and state in QUEUED:
                ended.pop(job_id, None)
                continue
            if result is None:
                since = ended.setdefault(job_id, time.monotonic())
                grace = RESULT_GRACE_S if state == "COMPLETED" else max(2 * poll_s, 5.0)
                if time.monotonic() - since < grace:
                    continue  # a requeue or a result may be on its way
            del waiting[job_id]
            yield _outcome(run, job_id, state, result, folder)
        if waiting:
            time.sleep(poll_s)


def _outcome(run: PlannedRun, job_id: str, state: str, result: tuple[str, Any] | None, folder: Path) -> Outcome:
    if result is not None and result[0] == "success" and isinstance(result[1], Outcome):
        return result[1]
    preset = str(getattr(run.config, "preset", "") or "")
    paths = _paths(folder, job_id)
    if result is not None:  # the job itself raised (run_one does not): e.g. the package missing on the node
        lines = [line for line in str(result[1]).splitlines() if line.strip()]
        why = lines[-1].strip()[:300] if lines else "an error"
        return Outcome(run.run_id, "failed", f"SLURM job {job_id} raised {why}; log: {paths.stderr}", preset=preset)
    what = "is no longer listed by squeue" if state == "FORGOTTEN" else state
    message = f"SLURM job {job_id} {what}: {RESUME}"
    tail = _tail(paths.stderr)
    return Outcome(run.run_id, "failed", message + (f"; its log ends: {tail}" if tail else ""), preset=preset)


def _tail(path: Path, lines: int = 3, limit: int = 400) -> str:
    """The last ``lines`` lines of a log but submitit's and srun's chatter (when short; else the log's path)."""
    text = path.read_text(encoding="utf-8", errors="replace") if path.is_file() else ""
    every = [line.strip() for line in text.splitlines() if line.strip()]
    kept = [line for line in every if not line.startswith(("submitit ", "srun: "))] or every
    tail = " | ".join(kept[-lines:])
    return tail if len(tail) <= limit else f"see {path}"


def _read_jobs(folder: Path) -> dict[str, str]:
    try:
        runs = json.loads((folder / JOBS_FILE).read_text(encoding="utf-8"))["runs"]
        return {str(k): str(v) for k, v in runs.items()} if isinstance(runs, dict) else {}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}


def _record_jobs(folder: Path, jobs: dict[str, str]) -> None:
    """Merge run id -> job id into ``slurm/jobs.json`` (under its lock: two sweeps may share it)."""
    from filelock import FileLock

    from nasbench_harness.tracking import atomic_write_json

    folder.mkdir(parents=True, exist_ok=True)
    with FileLock(str(folder / JOBS_FILE) + ".lock"):
        runs = {**_read_jobs(folder), **jobs}
        note = "the SLURM job of each run (its latest); scancel <job id> stops one; its files are in slurm/<job id>/"
        atomic_write_json(folder / JOBS_FILE, {"note": note, "runs": runs})


def _queued(folder: Path, run_ids: list[str]) -> dict[str, str]:
    """The runs whose job from an earlier sweep (``jobs.json``) is still queued or running: waited
    for, not submitted again."""
    recorded = {r: j for r, j in _read_jobs(folder).items() if r in run_ids}
    recorded = {r: j for r, j in recorded.items() if _paths(folder, j).submitted_pickle.exists()}
    if not recorded:
        return {}
    states = _squeue(list(recorded.values())) or {}
    return {r: j for r, j in recorded.items() if states.get(j) in QUEUED}
