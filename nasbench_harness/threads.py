"""How many CPU threads a run may use here: the process's affinity and its cgroup quota bound it.

Checked where a run starts, not when a config is built (a suite planned on a login node may run
on a larger machine).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from nasbench_harness.errors import ConfigError


def usable_cpus() -> int:
    """The CPUs this process may use: its affinity mask (else ``os.cpu_count()``), lowered by a
    cgroup CPU quota (a container's or a batch job's ``cpu.max``) when one is set."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    quota = _cgroup_cpu_quota()
    return max(1, min(cpus, quota) if quota else cpus)


def _cgroup_cpu_quota(root: Path = Path("/sys/fs/cgroup")) -> int | None:
    """CPUs allowed by the cgroup v2 (``cpu.max``) or v1 (``cpu.cfs_quota_us``) quota under
    ``root``, rounded up; None: no quota."""
    try:
        parts = (root / "cpu.max").read_text(encoding="ascii").split()
        if len(parts) == 2 and parts[0] != "max":
            return max(1, math.ceil(int(parts[0]) / int(parts[1])))
        if parts:
            return None
    except (OSError, ValueError, ZeroDivisionError):
        pass
    try:
        quota = int((root / "cpu" / "cpu.cfs_quota_us").read_text(encoding="ascii"))
        period = int((root / "cpu" / "cpu.cfs_period_us").read_text(encoding="ascii"))
        return max(1, math.ceil(quota / period)) if quota > 0 and period > 0 else None
    except (OSError, ValueError):
        return None


def threads_problem(threads: int, option: str = "--threads") -> str | None:
    """Why ``threads`` torch threads are too many here (more than :func:`usable_cpus`), or None."""
    limit = usable_cpus()
    if 1 <= threads <= limit:
        return None
    if threads < 1:
        return f"{option} {threads}: use 1..{limit} (the CPUs this process may use)"
    return f"{option} {threads}: this machine allows at most {limit} (the CPUs this process may use); use 1..{limit}"


def check_threads(threads: int | None, option: str = "threads") -> int | None:
    """``threads`` unchanged when this machine has that many CPUs for the process; else a
    :class:`ConfigError` naming ``option`` and the limit. Checked where a run starts (not when a
    config is built: a suite planned on one machine may run on another)."""
    problem = None if threads is None else threads_problem(threads, option)
    if problem:
        raise ConfigError(problem)
    return threads
