"""Exceptions of the package.

Every message says what was wrong and what would be right; the CLI prints it without a
traceback and exits non-zero. :func:`echo` and :func:`elide` shorten what a message repeats.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

ECHO_LIMIT = 80
"""Characters of a user's input an error message repeats."""


def echo(value: object, limit: int = ECHO_LIMIT) -> str:
    """``repr(value)`` for an error message, cut to about ``limit`` characters (a pasted file or a
    119 KB string is named by its start and its length, not repeated)."""
    text = repr(value)
    if len(text) <= limit:
        return text
    size = f" ({len(value)} characters)" if isinstance(value, str) else ""
    return f"{text[: limit - 3]}...{size}"


def elide(text: str, limit: int = 120) -> str:
    """``text`` (a path, a file name) cut in the middle to about ``limit`` characters, keeping its
    start and its end (where a file's name is)."""
    return text if len(text) <= limit else f"{text[: limit // 2 - 2]}...{text[-(limit // 2 - 1) :]}"


class NbhError(Exception):
    """Base class of every error the package raises on purpose."""


class ConfigError(NbhError, ValueError):
    """A configuration, option or argument has a value the package cannot use."""


class GenotypeError(NbhError, ValueError):
    """An architecture string, op list or index does not describe a cell of the space."""


class UnknownMetricError(NbhError, ValueError):
    """A metric, dataset, split or fidelity name is not one the benchmark defines."""


class BenchmarkNotFoundError(NbhError):
    """No imported benchmark is in the cache (and none could be imported automatically)."""


class SourceFileError(NbhError):
    """A benchmark source file is missing, truncated, unreadable or of another kind."""


class CacheError(NbhError):
    """An imported benchmark cache is damaged or was written by another schema version."""


class NotInBenchmarkError(NbhError, LookupError):
    """The architecture is valid, but the imported benchmark has no value for it."""


class OutOfDomainError(NbhError, ValueError):
    """A request is well-formed but outside what the operation supports."""


class DatasetNotFoundError(NbhError):
    """The image data set a search needs is not in the data directory."""


class DataFormatError(NbhError):
    """An image data file is truncated, of another kind, or has unexpected contents."""


class RunDirError(NbhError):
    """A run directory is damaged, or holds a run that cannot be continued as asked."""


class RunBusyError(RunDirError):
    """Another live process holds the run's lock (it is training the run)."""


class TrainingError(NbhError):
    """A search diverged (a NaN or infinite loss); the run is kept up to the last complete epoch."""


class StorageError(NbhError):
    """A file could not be written (no space left, a read-only file system, no permission); the
    file it would have replaced is unchanged. ``path``, ``cause``, ``fix`` and ``then`` (what to
    do after the fix) let callers say it again with their context."""

    def __init__(self, path: str, cause: str, fix: str, then: str = "try again") -> None:
        super().__init__(f"{cause} while writing {path}; {fix}, then {then}")
        self.path, self.cause, self.fix, self.then = path, cause, fix, then

    def __reduce__(self) -> tuple[Any, ...]:
        return type(self), (self.path, self.cause, self.fix, self.then)


class Terminated(BaseException):
    """SIGTERM or SIGHUP arrived while a search was running; the run recorded where it stopped.

    A ``BaseException`` (as ``KeyboardInterrupt``), so no ``except Exception`` swallows it; the CLI
    exits with 128 + the signal's number. ``detail`` says what was kept and how to continue."""

    def __init__(self, signum: int, detail: str = "") -> None:
        import signal

        super().__init__(signum, detail)
        self.signum, self.detail = signum, detail
        self.name = signal.Signals(signum).name

    def __str__(self) -> str:
        return f"terminated by {self.name}" + (f"; {self.detail}" if self.detail else "")


def validation_problems(exc: Any, unknown_key: Callable[[tuple[Any, ...]], str], root: str) -> list[str]:
    """One line per error of a pydantic ``ValidationError``: ``key: message (got value)``, the
    value left out where a validator wrote the message; an unknown key as ``unknown_key(loc)``
    says (e.g. with the keys known there). ``root`` names a problem with no location."""
    problems = []
    for err in exc.errors():
        key = ".".join(str(part) for part in err["loc"]) or root
        if err["type"] == "extra_forbidden":
            problems.append(unknown_key(err["loc"]))
            continue
        message = err["msg"].removeprefix("Value error, ")
        problems.append(
            f"{key}: {message}" if err["type"] == "value_error" else f"{key}: {message} (got {err.get('input')!r})"
        )
    return problems
