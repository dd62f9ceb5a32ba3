"""What a run's manifest records about where its numbers came from: versions, git commit, checksums, time."""

from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

GIT_TIMEOUT_S = 5.0


def utc_now() -> str:
    """The current time as ISO-8601 UTC with milliseconds, e.g. ``2024-05-01T12:00:00.123+00:00``."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


def versions(torch: bool = True) -> dict[str, str | None]:
    """Versions of Python, the platform, this package and the libraries behind the numbers.

    Library versions come from the installed distributions (None when not installed). With
    ``torch`` (the default; searches have imported it anyway) torch is imported to also record
    the CUDA and cuDNN versions it was built with (None on CPU builds).
    """
    from nasbench_harness import __version__

    found: dict[str, str | None] = {
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "nasbench_harness": __version__,
    }
    for dist in ("numpy", "pyarrow", "torch"):
        try:
            found[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            found[dist] = None
    if torch and found["torch"] is not None:
        import torch as _torch

        found["torch"] = _torch.__version__  # the module's own version also names the build (+cpu, +cu121)
        found["torch_cuda"] = _torch.version.cuda
        cudnn = _torch.backends.cudnn.version() if _torch.backends.cudnn.is_available() else None
        found["torch_cudnn"] = str(cudnn) if cudnn is not None else None
    return found


def git_commit(path: str | os.PathLike[str] | None = None) -> dict[str, Any] | None:
    """The git commit of the checkout holding ``path`` (default: this package's source), or None.

    Returns ``{"commit": 40-hex, "dirty": bool, "root": str}``; ``dirty`` means tracked files
    differ from the commit (untracked files do not count). None when ``path`` is not inside a
    git work tree, when (by default) the package is installed rather than checked out, or when
    git is missing or slow. Never raises.
    """
    default = path is None
    where = Path(__file__).resolve().parent.parent if default else Path(path)
    if not where.is_dir():
        where = where.parent
    top = _git(where, "rev-parse", "--show-toplevel", "HEAD")
    if top is None or len(top.split()) != 2:
        return None
    root, commit = top.split()
    if len(commit) != 40:
        return None
    # An installed package can sit inside some other repository (a venv in a project); only a
    # checkout whose git tracks this package's files tells which code ran.
    if default and not _git(where, "ls-files", "--", "__init__.py"):
        return None
    status = _git(where, "status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(status) if status is not None else None, "root": root}


def file_fingerprint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """``{"path", "size_bytes", "sha256"}`` of a data or table file, for the manifest."""
    from nasbench_harness.tabular.cache import sha256_file

    path = Path(path).resolve()
    return {"path": str(path), "size_bytes": path.stat().st_size, "sha256": sha256_file(path)}


def command_line() -> list[str]:
    """The command that started this process, as the manifest records it."""
    return [sys.executable, *sys.argv]


def _git(cwd: Path, *args: str) -> str | None:
    """stdout of ``git -C cwd args`` stripped, or None if git fails, is missing or times out."""
    try:
        done = subprocess.run(  # noqa: S603 (fixed arguments, no shell)
            ["git", "-C", str(cwd), *args],  # noqa: S607 (git from PATH, as a user would run it)
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT_S,
            check=False,
            env={**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_OPTIONAL_LOCKS": "0"},
        )
    except (OSError, subprocess.SubprocessError, ValueError):
        return None
    if done.returncode != 0:
        return None
    return done.stdout.strip()
