"""Run locks (:mod:`nasbench_harness.tracking.runlock`): a live holder is busy at once, a dead one's
lock is taken (at once where the kernel freed a flock, once stale for a soft lock), a file system
without flock falls back to the soft lock, of two breakers of one stale lock exactly one wins, a
lock that cannot be made is a StorageError naming the file, the heartbeat thread ends on release,
and a sweep trains a run whose soft lock a dead holder left. Beats are 0.2 s here, not 30 s."""

from __future__ import annotations

import errno
import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from nasbench_harness.errors import RunBusyError, StorageError
from nasbench_harness.tracking import runlock
from nasbench_harness.tracking.runlock import LOCK_SUFFIX, SOFT_SUFFIX, claim_run_dir, run_lock

BEAT, STALE = 0.2, 1.0
HEARTBEAT = "nbh-run-lock-heartbeat"
HOLDER = """
import errno, fcntl, sys, time
from pathlib import Path
from nasbench_harness.tracking.runlock import claim_run_dir

if sys.argv[2] == "soft":
    def no_flock(fd, op):
        raise OSError(errno.ENOSYS, "Function not implemented")
    fcntl.flock = no_flock
with claim_run_dir(Path(sys.argv[1])):
    print("held", flush=True)
    time.sleep(600)
"""


@pytest.fixture(autouse=True)
def fast_beats(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NBH_LOCK_BEAT_S", str(BEAT))
    monkeypatch.setenv("NBH_LOCK_STALE_S", str(STALE))


def no_flock(monkeypatch: pytest.MonkeyPatch, code: int = errno.ENOSYS) -> None:
    """flock fails as on a file system without it (filelock's unix lock sees the same OSError)."""

    def flock(fd: int, op: int) -> None:
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(fcntl, "flock", flock)


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[list[subprocess.Popen[str]]]:
    """Start holder processes with ``start(run, kind)``; each is killed after the test."""
    procs: list[subprocess.Popen[str]] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGCONT)
            proc.kill()
        proc.wait(timeout=30)


def start(procs: list[subprocess.Popen[str]], run: Path, kind: str = "flock") -> subprocess.Popen[str]:
    """Another process holding ``run``'s lock (``kind``: flock, or soft as without flock), beating."""
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(run), kind], stdout=subprocess.PIPE, text=True)
    procs.append(proc)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def dead_soft_lock(run: Path, age: float) -> Path:
    """A soft lock as a process that died ``age`` seconds ago leaves it: its record, its heartbeat stopped."""
    run.parent.mkdir(parents=True, exist_ok=True)
    path = Path(str(run) + SOFT_SUFFIX)
    record = {"nbh-run-lock": 1, "pid": 999_999, "host": "node-7", "since": "2024-01-01T00:00:00+00:00"}
    path.write_text(json.dumps({**record, "beat_s": BEAT, "beats": 41, "nonce": "0"}).ljust(1024))
    then = time.time() - age
    os.utime(path, (then, then))
    return path


def heartbeats() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == HEARTBEAT]


# -- a live holder ----------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["flock", "soft"])
def test_a_live_holder_is_busy_at_once_naming_its_pid(
    tmp_path: Path, holder: list, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    monkeypatch.setenv("NBH_LOCK_STALE_S", "30")  # busy long before a lock could be stale
    run = tmp_path / "run"
    proc = start(holder, run, kind)
    if kind == "soft":
        no_flock(monkeypatch)
    lock_file = Path(str(run) + (SOFT_SUFFIX if kind == "soft" else LOCK_SUFFIX))
    for backdate in (False, True):  # a heartbeat that looks old (a skewed clock) is watched: it moves
        if backdate:
            os.utime(lock_file, (time.time() - 3600, time.time() - 3600))
        started = time.monotonic()
        with (
            pytest.raises(RunBusyError, match=f"is being trained by another process \\(pid {proc.pid}, since "),
            claim_run_dir(run),
        ):
            pass
        assert time.monotonic() - started < 15
    assert not run.exists()


# -- a dead holder ----------------------------------------------------------------------------------
@pytest.mark.parametrize("age", [3600.0, 0.6], ids=["long dead", "just died"])
def test_a_dead_holders_soft_lock_is_taken_once_stale(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, age: float
) -> None:
    no_flock(monkeypatch)
    run = tmp_path / "run"
    soft = dead_soft_lock(run, age)
    last_beat, started = soft.stat().st_mtime, time.monotonic()
    with claim_run_dir(run):
        waited, silent = time.monotonic() - started, time.time() - last_beat
        assert json.loads(soft.read_text())["pid"] == os.getpid()
    assert waited >= 1.5 * BEAT and silent > STALE  # watched for 1.5 beats, and taken only once stale
    assert not soft.exists() and not list(tmp_path.glob("*.broken"))


def test_a_killed_flock_holders_lock_is_taken_at_once(tmp_path: Path, holder: list) -> None:
    run = tmp_path / "run"
    proc = start(holder, run)
    proc.kill()
    proc.wait(timeout=30)  # the kernel frees its flock; its record (a fresh heartbeat) stays behind
    assert json.loads(Path(str(run) + LOCK_SUFFIX).read_text())["pid"] == proc.pid
    with claim_run_dir(run):
        assert json.loads(Path(str(run) + LOCK_SUFFIX).read_text())["pid"] == os.getpid()
    assert Path(str(run) + LOCK_SUFFIX).read_text() == ""  # cleared on release


def test_a_flock_still_held_after_its_heartbeat_stopped_is_busy_as_maybe_a_dead_node(
    tmp_path: Path, holder: list
) -> None:
    run = tmp_path / "run"
    proc = start(holder, run)
    proc.send_signal(signal.SIGSTOP)  # its heartbeat stands still, its flock stays (as an NFS server may keep it)
    time.sleep(2 * BEAT)  # until then it may be live: busy at once
    last_beat, started = Path(str(run) + LOCK_SUFFIX).stat().st_mtime, time.monotonic()
    with (
        pytest.raises(RunBusyError, match=f"pid {proc.pid}.* s old: it may be a dead node whose lock the file server"),
        claim_run_dir(run),
    ):
        pass
    assert time.time() - last_beat > STALE and time.monotonic() - started < STALE + 15  # busy once stale


# -- no flock ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("code", [errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOLCK])
def test_without_flock_the_soft_lock_is_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int) -> None:
    no_flock(monkeypatch, code)
    run = tmp_path / "run"
    run.parent.mkdir(parents=True, exist_ok=True)
    Path(str(run) + LOCK_SUFFIX).write_text("")  # left by a flock: no matter
    soft = Path(str(run) + SOFT_SUFFIX)
    held, done, errors = threading.Event(), threading.Event(), []

    def first() -> None:
        try:
            with claim_run_dir(run):
                held.set()
                done.wait(30)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
            held.set()

    thread = threading.Thread(target=first)
    thread.start()
    try:
        assert held.wait(30) and not errors
        record = json.loads(soft.read_text())
        assert record["pid"] == os.getpid() and record["host"] == socket.gethostname()
        with (
            pytest.raises(RunBusyError, match=f"is being trained by another process \\(pid {os.getpid()}"),
            claim_run_dir(run),
        ):  # another thread: a second claimant
            pass
    finally:
        done.set()
        thread.join(30)
    assert not errors and not soft.exists()
    with claim_run_dir(run):  # free again
        assert soft.exists()


def test_a_flock_claimant_respects_a_live_soft_lock_and_ignores_a_dead_one(
    tmp_path: Path, holder: list, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A folder some nodes mount with flock and some without: each kind sees the other."""
    monkeypatch.setenv("NBH_LOCK_STALE_S", "30")
    run = tmp_path / "run"
    proc = start(holder, run, "soft")
    with pytest.raises(RunBusyError, match=f"pid {proc.pid}"), claim_run_dir(run):
        pass
    proc.kill()
    proc.wait(timeout=30)
    monkeypatch.setenv("NBH_LOCK_STALE_S", str(STALE))
    dead_soft_lock(run, 3600)
    with claim_run_dir(run):  # with flock; the dead soft lock is left to flock-less nodes to break
        assert json.loads(Path(str(run) + LOCK_SUFFIX).read_text())["pid"] == os.getpid()


# -- breaking a stale soft lock ---------------------------------------------------------------------
@pytest.mark.parametrize("round_", range(3))
def test_of_two_breakers_exactly_one_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, round_: int) -> None:
    no_flock(monkeypatch)
    run = tmp_path / "run"
    dead_soft_lock(run, 3600)
    barrier, results, lock = threading.Barrier(2), [], threading.Lock()
    both = threading.Event()

    def claim() -> None:
        barrier.wait(30)
        try:
            with claim_run_dir(run):
                with lock:
                    results.append("won")
                both.wait(30)  # hold until the other has its answer
        except RunBusyError:
            with lock:
                results.append("busy")
        finally:
            with lock:
                if len(results) == 2:
                    both.set()

    threads = [threading.Thread(target=claim) for _ in range(2)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 60
    while len(results) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    both.set()
    for t in threads:
        t.join(30)
    assert sorted(results) == ["busy", "won"]
    assert not Path(str(run) + SOFT_SUFFIX).exists() and not list(tmp_path.glob("*.broken"))


def test_a_breaker_that_moved_a_fresh_lock_puts_it_back(tmp_path: Path) -> None:
    """A breaker late to a stale lock that another breaker replaced finds the new one, not the stale one."""
    run = tmp_path / "run"
    soft = dead_soft_lock(run, 3600)
    stale = runlock._read_beat(soft)
    assert stale is not None
    soft.unlink()  # the other breaker's work: broken and made again
    soft.write_text(json.dumps({"nbh-run-lock": 1, "pid": 4242, "beat_s": BEAT, "nonce": "1"}).ljust(1024))
    fresh = os.stat(soft)
    runlock._break(soft, stale)
    assert os.path.samestat(os.stat(soft), fresh) and not list(tmp_path.glob("*.broken"))


# -- a lock that cannot be taken --------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["flock", "soft"])
@pytest.mark.parametrize(
    ("code", "cause"), [(errno.EACCES, "permission denied"), (errno.EROFS, "read-only file system")]
)
def test_a_lock_that_cannot_be_made_is_a_storage_error_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str, code: int, cause: str
) -> None:
    # root ignores chmod 0o500, so the refusal is simulated where the lock file is created
    if kind == "soft":
        no_flock(monkeypatch)
    run = tmp_path / "run"
    lock_file = Path(str(run) + (SOFT_SUFFIX if kind == "soft" else LOCK_SUFFIX))
    real_open = os.open

    def refusing_open(path: str | os.PathLike[str], flags: int, mode: int = 0o777, **kwargs: object) -> int:
        if os.fspath(path) == str(lock_file):
            raise OSError(code, os.strerror(code), os.fspath(path))
        return real_open(path, flags, mode, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", refusing_open)
    with pytest.raises(StorageError) as info, claim_run_dir(run):
        pass
    assert info.value.path == str(lock_file) and info.value.cause == cause
    assert str(lock_file) in str(info.value) and "make the folder writable" in str(info.value)
    assert not heartbeats()


def test_a_flock_error_other_than_no_flock_is_a_storage_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    no_flock(monkeypatch, errno.EIO)
    with (
        pytest.raises(StorageError, match=f"while writing {tmp_path / 'run'}{LOCK_SUFFIX}"),
        claim_run_dir(tmp_path / "run"),
    ):
        pass


# -- heartbeat --------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["flock", "soft"])
def test_the_heartbeat_moves_while_held_and_stops_on_release(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    if kind == "soft":
        no_flock(monkeypatch)
    run = tmp_path / "run"
    lock_file = Path(str(run) + (SOFT_SUFFIX if kind == "soft" else LOCK_SUFFIX))
    with run_lock(run) as lock:
        with claim_run_dir(run):  # re-entrant in the holding thread: no second heartbeat
            assert run_lock(run) is lock and lock.count == 2 and len(heartbeats()) == 1
        first = json.loads(lock_file.read_text())
        deadline = time.monotonic() + 30
        while json.loads(lock_file.read_text())["beats"] < first["beats"] + 2 and time.monotonic() < deadline:
            time.sleep(BEAT / 2)
        assert json.loads(lock_file.read_text())["beats"] >= first["beats"] + 2
        assert first["beat_s"] == BEAT and first["since"]
    assert not heartbeats() and lock.count == 0 and not lock.lost
    assert (not lock_file.exists()) if kind == "soft" else lock_file.read_text() == ""
    assert run_lock(run) is not lock


def test_bad_timing_settings_are_config_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    from nasbench_harness.errors import ConfigError

    monkeypatch.setenv("NBH_LOCK_BEAT_S", "10")
    monkeypatch.setenv("NBH_LOCK_STALE_S", "5")
    assert runlock.lock_timing() == (10.0, 20.0)  # stale is at least 2 beats
    monkeypatch.delenv("NBH_LOCK_BEAT_S")
    monkeypatch.delenv("NBH_LOCK_STALE_S")
    assert runlock.lock_timing() == (30.0, 120.0)
    for value in ("0", "-1", "soon", "nan", "inf"):
        monkeypatch.setenv("NBH_LOCK_BEAT_S", value)
        with pytest.raises(ConfigError, match="NBH_LOCK_BEAT_S="):
            runlock.lock_timing()


# -- through a sweep --------------------------------------------------------------------------------
def test_a_sweep_trains_a_run_whose_soft_lock_a_dead_holder_left(
    tmp_path: Path, synthetic_data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from test_sweep import _suite

    from nasbench_harness.execution.local import run_sweep
    from nasbench_harness.execution.suite import expand, load_suite

    no_flock(monkeypatch)
    runs = expand(load_suite(_suite(tmp_path)), "cpu", tmp_path)[:1]
    soft = dead_soft_lock(runs[0].path, 3600)
    (outcome,) = run_sweep(runs, tmp_path, workers=1, data_dir=synthetic_data_dir)
    assert outcome.status == "finished", outcome.message
    assert (runs[0].path / "manifest.json").exists() and not soft.exists()
