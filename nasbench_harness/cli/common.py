"""Shared CLI pieces: options, consoles, progress bars and error reporting."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from nasbench_harness.paths import CACHE_DIR_ENV, DATA_DIR_ENV

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)

DataDirOption = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        envvar=DATA_DIR_ENV,
        help="Directory with the raw data (benchmark files, datasets). Default: $NBH_DATA_DIR, else the user data dir.",
        show_default=False,
    ),
]
CacheDirOption = Annotated[
    Path | None,
    typer.Option(
        "--cache-dir",
        envvar=CACHE_DIR_ENV,
        help="Directory of imported benchmark caches. Default: $NBH_CACHE_DIR, else the user cache dir.",
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON instead of tables.")]

_PHASES = {
    "read": "Reading benchmark entries",
    "hash": "Checksumming the source",
    "spaces": "Marking NB-1Shot1 space cells",
}


@contextmanager
def progress_bar() -> Iterator[Callable[[str, int, int], None]]:
    """A ``progress(phase, done, total)`` callback drawing one rich bar per phase on stderr."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    bars = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
        disable=not err_console.is_terminal,
    )
    tasks: dict[str, Any] = {}

    def update(phase: str, done: int, total: int) -> None:
        if phase not in tasks:
            tasks[phase] = bars.add_task(_PHASES.get(phase, phase), total=total)
        bars.update(tasks[phase], completed=done, total=total)

    with bars:
        yield update


def print_json(data: Any) -> None:
    """Print ``data`` as JSON on stdout (NaN becomes null)."""
    sys.stdout.write(json.dumps(_clean(data), indent=2) + "\n")


def _clean(value: Any) -> Any:
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def fmt(value: float | None, digits: int = 2) -> str:
    """A number for a table cell, ``n/a`` when missing."""
    return "n/a" if value is None or value != value else f"{value:.{digits}f}"


def default_preset(device: str) -> str:
    """The preset a device implies: ``paper`` when it can be CUDA and CUDA is there, else ``cpu``."""
    if device == "cpu":
        return "cpu"
    import torch

    return "paper" if torch.cuda.is_available() else "cpu"
