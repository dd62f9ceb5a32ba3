"""Run locks: a run directory ``<run>`` is trained under a lock next to it, so two processes, on one
machine or on many sharing the results folder, never train one run at once.

Two kinds of lock. *flock*, wherever the file system has it: an exclusive ``flock`` on ``<run>.lock``,
which stays in place. The OS frees it when its holder dies, however it dies (an NFS server: when the
dead client's lease ends, NFSv4: about 90 s). *soft*, where ``flock`` fails with ENOSYS, EOPNOTSUPP
or ENOLCK (Lustre mounted without ``-o flock``, NFS without a lock daemon, many FUSE mounts):
``<run>.lock.soft``, created with ``O_CREAT | O_EXCL`` and deleted on release; nothing frees it when
its holder dies, it is broken once stale. It has its own name, so a ``<run>.lock`` left there never
blocks it, and each kind respects a live lock of the other (a folder some nodes mount with flock).

Heartbeat: the holder writes a record (pid, host, since, beat interval, beats) in its lock file,
which a daemon thread rewrites (fsynced: the mtime moves) every ``NBH_LOCK_BEAT_S`` seconds (default
30) until release stops and joins it. Staleness: a heartbeat older than ``NBH_LOCK_STALE_S`` seconds
(default 120, at least 2 beats) is stale; its holder is dead, or cut off from the file server.

Claiming a lock another process holds: a ``<run>.lock`` without heartbeat record (an older version
or another tool holds it) is :class:`RunBusyError` at once, and so is a heartbeat younger than 1.5
beats or one that moves while watched (a live holder; the message names pid, host, since and the
heartbeat's age). Otherwise the file is watched, about 4 looks a beat, until it moves (busy), is
released (taken), or is stale and has stood still for 1.5 beats while watched (dead). Then a soft
lock is broken (renamed to a unique name, checked to be the stale one and deleted, so of two
breakers exactly one wins; it is created again with ``O_EXCL``) and a flock is tried once more: still
held, it is :class:`RunBusyError` saying that the holder's heartbeat is N s old and it may be a dead
node whose lock the file server keeps. Telling dead from live takes that watching: it happens only
for a holder that stopped beating and lasts at most ``NBH_LOCK_STALE_S + NBH_LOCK_BEAT_S`` seconds.

On NFS, Lustre and other shared storage: use the same ``NBH_LOCK_*`` values on every node.
Heartbeats are read by opening the file (an NFS client then revalidates what it cached) and judged by
its mtime, which the file server sets; a skewed clock cannot break a live lock, which is broken only
after standing still for 1.5 beats while watched. Mount Lustre with ``-o flock``, not ``localflock``,
and NFS without ``nolock`` / ``local_lock=flock``: those make flock local to each node, so two nodes
could train one run. A holder stalled (or cut off from the server) for over ``NBH_LOCK_STALE_S``
loses a soft lock, and warns when it sees that: raise it where the storage stalls for long. A lock that
cannot be taken (no permission, a read-only file system) is a ``StorageError`` naming file and fix.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import secrets
import socket
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

from nasbench_harness.errors import ConfigError, RunBusyError
from nasbench_harness.tracking.atomic import storage_error
from nasbench_harness.tracking.provenance import utc_now

try:
    import fcntl
except ImportError:  # Windows: every lock is soft there
    fcntl = None  # type: ignore[assignment]

LOCK_SUFFIX = ".lock"
SOFT_SUFFIX = ".lock.soft"
_LOCK_TAG = "nbh-run-lock"
_RECORD_BYTES = 1024  # a record's padded size: a heartbeat rewrites it in place, never shorter
_NO_FLOCK = frozenset({errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP, errno.ENOLCK})
_HELD = frozenset({errno.EAGAIN, errno.EWOULDBLOCK, errno.EACCES})  # some file systems say EACCES
_LIVE_BEATS = 1.5  # a heartbeat younger than this many beats, or still for less while watched, may be live


def lock_timing() -> tuple[float, float]:
    """``(beat, stale)`` in seconds: ``NBH_LOCK_BEAT_S`` (default 30) and ``NBH_LOCK_STALE_S``
    (default 120, at least 2 beats); ``ConfigError`` for a value that is no positive number."""
    beat = _seconds("NBH_LOCK_BEAT_S", 30.0)
    return beat, max(_seconds("NBH_LOCK_STALE_S", 120.0), 2 * beat)


def _seconds(name: str, default: float) -> float:
    text = os.environ.get(name, "").strip()
    with contextlib.suppress(ValueError):
        value = float(text) if text else default
        if 0 < value < float("inf"):
            return value
    raise ConfigError(f"{name}={text!r} is not a number of seconds > 0; set a positive number, or unset it")


def _flock(fd: int) -> bool:
    """An exclusive flock on ``fd`` without waiting: True taken, False held by another; an
    ``OSError`` otherwise (errno in :data:`_NO_FLOCK`: this file system has no flock)."""
    if fcntl is None:
        raise OSError(errno.ENOSYS, "no flock on this platform")
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in _HELD:
            return False
        raise
    return True


class _Beat(NamedTuple):
    """A lock file as read now: ``identity`` changes with every heartbeat; ``age`` (s) by the clock."""

    identity: tuple[int, int, bytes]
    age: float
    record: dict[str, Any] | None

    def beat_s(self, default: float) -> float:
        """The holder's beat interval as recorded (else ``default``; a damaged record cannot stall a claimant)."""
        value = (self.record or {}).get("beat_s")
        return float(value) if isinstance(value, int | float) and 0.001 <= value <= 3600 else default


def _read_beat(path: Path) -> _Beat | None:
    """``path``'s heartbeat; None when there is no such file. Opening it makes an NFS client
    revalidate what it cached of the file (close-to-open consistency)."""
    try:
        with open(path, "rb") as f:
            st = os.fstat(f.fileno())
            data = f.read(4 * _RECORD_BYTES)
    except FileNotFoundError:
        return None
    except OSError:
        data, st = b"", None
    record = None
    if _LOCK_TAG.encode() in data:
        with contextlib.suppress(ValueError):
            record = json.loads(data.decode("utf-8", "replace"))
    identity = (st.st_ino, st.st_mtime_ns, data) if st else (0, 0, data)
    age = max(0.0, time.time() - st.st_mtime) if st else 0.0
    return _Beat(identity, age, record if isinstance(record, dict) else None)


def _describe(beat: _Beat) -> str:
    """``pid N on host H, since T, heartbeat A s ago`` (the host when another machine), as recorded."""
    record = beat.record or {}
    if "pid" not in record:
        return "its pid is not recorded"
    host = str(record.get("host"))
    where = "" if host == socket.gethostname() else f" on host {host[:60]}"
    text = f"pid {record['pid']}{where}, since {record.get('since')}"
    return f"{text}, heartbeat {beat.age:.0f} s ago" if "beat_s" in record else text


class RunLock:
    """The lock of run directory ``path`` (see the module's docstring); re-entrant in the thread
    holding it (:func:`run_lock` gives that thread the same object)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.lock_file = Path(str(path) + LOCK_SUFFIX)
        self.soft_file = Path(str(path) + SOFT_SUFFIX)
        self.soft = self.lost = False  # soft: no flock here; lost: the lock file was broken or replaced while held
        self.count = 0
        self._fd: int | None = None
        self._record: dict[str, Any] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._beat_s = 30.0
        self._key = ("", 0)

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def acquire(self) -> None:
        """Take the lock (waiting only while a holder that stopped beating may be dead); a
        :class:`RunBusyError` when a live holder has it, a ``StorageError`` when it cannot be taken."""
        if self.count:
            self.count += 1
            return
        beat, stale = lock_timing()
        self._beat_s, self._key = beat, (os.path.abspath(self.path), threading.get_ident())
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise storage_error(exc, self.lock_file) from None
        try:
            self._wait_and_take(beat, stale)
            self.count = 1
            self._stop.clear()
            self._thread = threading.Thread(target=self._beat, args=(beat,), name="nbh-run-lock-heartbeat", daemon=True)
            self._thread.start()
            with _REGISTRY_LOCK:
                _REGISTRY[self._key] = self
        except BaseException:
            self._let_go()
            raise

    def release(self) -> None:
        """Undo one :meth:`acquire`; the last one stops the heartbeat and frees the lock."""
        if self.count > 1:
            self.count -= 1
        elif self.count == 1:
            self._let_go()

    def _wait_and_take(self, beat: float, stale: float) -> None:
        seen: dict[Path, tuple[tuple[int, int, bytes], float]] = {}
        ignored: set[Path] = set()  # another kind's lock files judged dead
        started = time.monotonic()
        while (blocker := self._take(ignored)) is not None:
            found, now = _read_beat(blocker), time.monotonic()
            if found is None:
                continue  # released meanwhile
            if blocker == self.lock_file and not (found.record and "beat_s" in found.record):
                if self.soft:
                    continue  # its flock holder let go meanwhile
                raise self._busy(found)  # a holder without heartbeat: nothing tells whether it lives
            holder_beat = found.beat_s(beat)
            window, holder_stale = _LIVE_BEATS * holder_beat, max(stale, 2 * holder_beat)
            first = seen.setdefault(blocker, (found.identity, now))
            if first[0] != found.identity or found.age <= window:
                raise self._busy(found)  # it beats: a live holder
            if found.age > holder_stale and now - first[1] >= window:  # dead
                if blocker == self.lock_file and not self.soft:
                    raise self._busy(found, dead=True)  # flock still held: the file server keeps it
                if blocker == self.soft_file and self.soft:
                    _break(self.soft_file, found)
                else:
                    ignored.add(blocker)
                seen.pop(blocker, None)
            elif now - started > holder_stale + holder_beat:
                raise self._busy(found)  # never reached unless the files keep changing hands
            else:
                time.sleep(max(0.01, min(1.0, holder_beat / 4)))

    def _take(self, ignored: set[Path]) -> Path | None:
        """Try once to take the lock: None when taken (record written), else the file whose holder blocks it."""
        if not self.soft:
            fd = _open(self.lock_file, os.O_RDWR | os.O_CREAT)
            try:
                taken = _flock(fd)
            except OSError as exc:
                os.close(fd)
                if exc.errno not in _NO_FLOCK:
                    raise storage_error(exc, self.lock_file) from None
                self.soft = True  # no flock on this file system
                return self._take(ignored)
            if not taken:
                os.close(fd)
                return self.lock_file
            self._hold(fd, mine=False)
            other = self.soft_file  # a node without flock may hold the soft lock
        else:
            try:
                fd = _open(self.soft_file, os.O_RDWR | os.O_CREAT | os.O_EXCL)
            except FileExistsError:
                return self.soft_file
            self._hold(fd, mine=True)
            other = self.lock_file  # a node with flock may hold the run (its record beats)
        # Written, then looked: of two claimants of different kinds, one at least sees the other.
        found = None if other in ignored else _read_beat(other)
        if found and (not self.soft or (found.record and "beat_s" in found.record)):
            self._let_go()
            return other
        return None

    def _hold(self, fd: int, mine: bool) -> None:
        """Keep ``fd`` and write the holder record in it: over an empty file or a record of ours
        only, unless the file is ``mine`` (a lock library's own marker is left alone)."""
        self._fd, self.lost = fd, False
        record = {_LOCK_TAG: 1, "pid": os.getpid(), "host": socket.gethostname(), "since": utc_now()}
        record.update(beat_s=self._beat_s, beats=0, nonce=secrets.token_hex(4))
        with contextlib.suppress(OSError):
            text = os.pread(fd, 4 * _RECORD_BYTES, 0)
            if mine or not text.strip() or _LOCK_TAG.encode() in text:
                os.ftruncate(fd, 0)
                self._record = record
                self._write_record()

    def _write_record(self) -> None:
        data = json.dumps(self._record).encode()
        assert self._fd is not None
        os.pwrite(self._fd, data.ljust(_RECORD_BYTES), 0)
        os.fsync(self._fd)

    def _beat(self, beat: float) -> None:
        """The heartbeat thread: rewrite the record every ``beat`` seconds until stopped."""
        while not self._stop.wait(beat):
            try:
                if self._record is None:  # a foreign marker: only the mtime moves
                    raise OSError
                self._record["beats"] += 1
                self._write_record()
            except OSError:  # a full disk too; a file server away: next beat
                with contextlib.suppress(OSError):
                    os.utime(self._fd)  # type: ignore[arg-type]
            if not self.lost and not self._still_ours():
                self.lost = True
                why = "its heartbeat stood still for over NBH_LOCK_STALE_S?"
                text = f"the run lock {self._held_file()} was broken or replaced while held ({why}); another process"
                warnings.warn(f"{text} may train {self.path} too", RuntimeWarning, stacklevel=1)

    def _held_file(self) -> Path:
        return self.soft_file if self.soft else self.lock_file

    def _still_ours(self) -> bool:
        try:
            return os.path.samestat(os.stat(self._held_file()), os.fstat(self._fd))  # type: ignore[arg-type]
        except OSError:
            return False

    def _let_go(self) -> None:
        """Stop the heartbeat, clear the record (flock) or delete the file (soft), free the lock."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        with _REGISTRY_LOCK:
            if _REGISTRY.get(self._key) is self:
                del _REGISTRY[self._key]
        self.count, fd, self._fd = 0, self._fd, None
        if fd is None:
            return
        try:
            with contextlib.suppress(OSError):
                if self.soft and os.path.samestat(os.stat(self.soft_file), os.fstat(fd)):
                    os.unlink(self.soft_file)
                elif not self.soft and self._record is not None:
                    os.ftruncate(fd, 0)
        finally:
            self._record = None
            os.close(fd)  # frees the flock

    def _busy(self, found: _Beat, dead: bool = False) -> RunBusyError:
        who = _describe(found)
        if dead:
            return RunBusyError(
                f"{self.path} is locked by {who}, whose heartbeat is {found.age:.0f} s old: it may be a dead node "
                f"whose lock the file server still keeps (an NFS server frees it when the node's lease ends); try "
                f"again later, or delete {self.lock_file} once you know that no process trains the run"
            )
        return RunBusyError(
            f"{self.path} is being trained by another process ({who}); wait for it or choose another --out"
        )


def _open(path: Path, flags: int) -> int:
    """``os.open``; an error other than ``FileExistsError`` is a :class:`StorageError` naming ``path``."""
    try:
        return os.open(path, flags, 0o666)
    except OSError as exc:
        if isinstance(exc, FileExistsError):
            raise
        raise storage_error(exc, path) from None


def _break(path: Path, stale: _Beat) -> None:
    """Remove the stale soft lock ``path`` as read in ``stale``: renamed to a unique name first, so
    of two breakers one only moves it; a file that is not the stale one (a breaker's new lock) is put back."""
    aside = path.with_name(f"{path.name}.{secrets.token_hex(6)}.broken")
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return  # released, or broken by another claimant
    except OSError as exc:
        raise storage_error(exc, path) from None
    moved = _read_beat(aside)
    if moved is None or moved.identity == stale.identity:
        with contextlib.suppress(OSError):
            os.unlink(aside)
        return
    try:  # a live lock: back in place, unless another is there already (its holder then sees it lost)
        os.link(aside, path)
    except FileExistsError:
        pass
    except OSError:  # no hard links here
        with contextlib.suppress(OSError):
            if not os.path.lexists(path):
                os.rename(aside, path)
    with contextlib.suppress(OSError):
        os.unlink(aside)


_REGISTRY: dict[tuple[str, int], RunLock] = {}
"""Held locks by (absolute run path, thread id): what :func:`run_lock` gives a thread that holds one."""
_REGISTRY_LOCK = threading.Lock()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_REGISTRY.clear)  # a forked child holds no lock of its own


def run_lock(path: str | os.PathLike[str]) -> RunLock:
    """The lock run directory ``path`` trains under: the one this thread holds, if it does (so a
    sweep holding it can call :func:`~nasbench_harness.methods.engine.run.run_search`), else a new one."""
    with _REGISTRY_LOCK:
        held = _REGISTRY.get((os.path.abspath(path), threading.get_ident()))
    return held if held is not None else RunLock(path)


@contextlib.contextmanager
def claim_run_dir(path: Path) -> Iterator[None]:
    """Hold the run's lock for the block: :class:`RunBusyError` when a live process holds it (after
    a bounded wait where its holder may be dead), ``StorageError`` when it cannot be taken."""
    with run_lock(path):
        yield
