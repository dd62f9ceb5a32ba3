"""Where the package reads raw data and keeps its caches. No hard-coded paths."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

APP_NAME = "nasbench-harness"
DATA_DIR_ENV = "NBH_DATA_DIR"
CACHE_DIR_ENV = "NBH_CACHE_DIR"


def data_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The raw-data directory: ``explicit``, else ``$NBH_DATA_DIR``, else the user data dir."""
    if explicit:
        return Path(explicit).expanduser()
    if os.environ.get(DATA_DIR_ENV):
        return Path(os.environ[DATA_DIR_ENV]).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir(APP_NAME))


def first_file(directory: Path, candidates: Iterable[str]) -> Path | None:
    """The first of ``candidates`` (paths relative to ``directory``) that is an existing file."""
    return next((directory / rel for rel in candidates if (directory / rel).is_file()), None)


def cache_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The cache of imported benchmarks: ``explicit``, else ``$NBH_CACHE_DIR``, else the user cache dir."""
    if explicit:
        return Path(explicit).expanduser()
    if os.environ.get(CACHE_DIR_ENV):
        return Path(os.environ[CACHE_DIR_ENV]).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir(APP_NAME))
