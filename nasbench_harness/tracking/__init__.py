"""Run directories: manifest, per-epoch trajectory, alphas and checkpoint, all written atomically.

Importing this package loads neither torch nor pyarrow; they are imported by the functions that
need them (checkpoints, Parquet files, ``versions()``).
"""

from nasbench_harness.tracking.atomic import atomic_write, atomic_write_bytes, atomic_write_json, remove_stale_temps
from nasbench_harness.tracking.configdiff import config_diff, describe_config_diff
from nasbench_harness.tracking.manifest import MANIFEST_FILE, SCHEMA_VERSION, STATUSES
from nasbench_harness.tracking.provenance import command_line, file_fingerprint, git_commit, utc_now, versions
from nasbench_harness.tracking.rundir import (
    ALPHAS_FILE,
    CHECKPOINT_FILE,
    TRAJECTORY_FILE,
    ResumeState,
    RunDir,
    read_alphas,
    read_trajectory,
)

__all__ = [
    "ALPHAS_FILE",
    "CHECKPOINT_FILE",
    "MANIFEST_FILE",
    "SCHEMA_VERSION",
    "STATUSES",
    "TRAJECTORY_FILE",
    "ResumeState",
    "RunDir",
    "atomic_write",
    "atomic_write_bytes",
    "atomic_write_json",
    "command_line",
    "config_diff",
    "describe_config_diff",
    "file_fingerprint",
    "git_commit",
    "read_alphas",
    "read_trajectory",
    "remove_stale_temps",
    "utc_now",
    "versions",
]
