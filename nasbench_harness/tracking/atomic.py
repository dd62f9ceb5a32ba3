"""Atomic file writes: a temp file in the same directory, flushed, fsynced and renamed over the target.

A process killed at any moment leaves either the previous file or the new one, never a partial
one; at worst a hidden ``.<name>.<random>.nbh-tmp`` file stays behind, which
:func:`remove_stale_temps` deletes (run directories do so when they are created or resumed).

A write the file system refuses (no space left, quota, file size limit, read-only, no permission)
is a :class:`~nasbench_harness.errors.StorageError` naming the file and the cause; the file it
would have replaced is unchanged and no temp file stays behind.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from nasbench_harness.errors import ConfigError, StorageError, elide

TEMP_SUFFIX = ".nbh-tmp"
_FREE = "free space (or raise the quota)"
_WRITABLE = "make the folder writable for you, or write somewhere else"
WRITE_ERRORS: dict[int, tuple[str, str]] = {
    errno.ENOSPC: ("no space left on device", _FREE),
    errno.EDQUOT: ("disk quota exceeded", _FREE),
    errno.EFBIG: ("file too large (the file system's or the process's file size limit)", _FREE),
    errno.EROFS: ("read-only file system", _WRITABLE),
    errno.EACCES: ("permission denied", _WRITABLE),
    errno.EPERM: ("operation not permitted (an immutable or protected file or folder)", _WRITABLE),
    errno.EISDIR: ("a directory is in the way", "give a file path, not a directory"),
    errno.ENOTDIR: ("a part of the path is a file, not a folder", "give a path whose folders are folders"),
}
"""The errno values a write turns into a :class:`StorageError`: (cause, fix)."""


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str], fsync: bool = True, sync_dir: bool = True) -> Iterator[IO[bytes]]:
    """Yield a binary file that replaces ``path`` atomically when the block ends without error.

    On an exception the temp file is removed and ``path`` is left as it was. ``fsync`` flushes
    the data to disk before the rename, so even a power loss leaves the old or the new file;
    ``sync_dir`` also makes the rename itself durable (and ordered before later writes). A
    killed process leaves the old or the new file without either.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}{TEMP_SUFFIX}")
    # os.open with 0o666 (not mkstemp's 0o600) so the result gets the same permissions as any new file.
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(tmp, flags, 0o666)
    except OSError as exc:
        if exc.errno in WRITE_ERRORS:
            raise storage_error(exc, path) from None
        raise
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            if fsync:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError) and exc.errno in WRITE_ERRORS:
            raise storage_error(exc, path) from None
        raise
    if fsync and sync_dir:
        _fsync_dir(path.parent)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes, fsync: bool = True) -> None:
    """Replace ``path`` by ``data`` atomically (see :func:`atomic_write` for ``fsync``)."""
    with atomic_write(path, fsync=fsync) as f:
        f.write(data)


def atomic_write_json(path: str | os.PathLike[str], obj: Any, fsync: bool = True) -> None:
    """Replace ``path`` by ``obj`` as indented UTF-8 JSON, atomically.

    Paths become strings and numpy/torch scalars and arrays become Python numbers and lists;
    any other value that JSON cannot hold raises ``TypeError`` before anything is written.
    """
    text = json.dumps(obj, indent=1, default=_json_default, ensure_ascii=False)
    atomic_write_bytes(path, (text + "\n").encode("utf-8"), fsync=fsync)


def storage_error(exc: OSError, path: str | os.PathLike[str]) -> StorageError:
    """``exc`` (its errno one of :data:`WRITE_ERRORS`, else a generic cause) as a
    :class:`StorageError` naming ``path``."""
    cause, fix = WRITE_ERRORS.get(exc.errno or 0, (exc.strerror or str(exc), "check the path"))
    return StorageError(os.fspath(path), cause, fix)


def check_output_dir(path: str | os.PathLike[str], option: str) -> Path:
    """``path`` when it is a directory, or could be made one (every existing part of it is a
    directory); ``ConfigError`` naming ``option`` when a file stands in the way."""
    path = Path(path)
    for part in (path, *path.parents):
        if part.is_dir():
            return path
        if part.exists() or part.is_symlink():
            what = "is a file" if part == path else f"lies under {elide(str(part))}, which is a file"
            raise ConfigError(
                f"{option} {elide(str(path))} {what}, not a directory; give a directory (it is created when missing)"
            )
    return path


def remove_stale_temps(directory: str | os.PathLike[str]) -> list[Path]:
    """Delete temp files that killed writers left in ``directory``; return what was removed.

    Only call this where no other process is writing (a run directory belongs to one process).
    """
    removed = []
    for tmp in Path(directory).glob(f".*{TEMP_SUFFIX}"):
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
            removed.append(tmp)
    return removed


def _fsync_dir(directory: Path) -> None:
    """Make the rename itself durable; not possible (nor needed) on every platform."""
    with contextlib.suppress(OSError, AttributeError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if callable(getattr(obj, "tolist", None)):  # numpy scalars/arrays, torch tensors
        return obj.tolist()
    raise TypeError(f"a value of type {type(obj).__name__} cannot be written as JSON: {obj!r:.80}")
