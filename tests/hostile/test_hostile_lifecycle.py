"""Hostile lifecycle cases: two commands on one run directory, signals, read-only and full disks,
output paths that are files or directories, damaged runs in a folder, and the CLI's last resort.

Every case runs the command as a user would (a real process where the exit code or a signal
matters, else ``nbh`` in-process) and checks the exit code, a one-line message naming the problem
and the fix, and that what was already written did not change.

Mechanisms (CI runs as root, which ignores permission bits): a full disk is a small tmpfs mounted
in the test; a read-only folder is a read-only bind mount (EROFS) or ``chattr +i`` (EPERM); a file
size limit is RLIMIT_FSIZE in a child process (EFBIG). A test that cannot set these up fails.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from checks import snapshot
from test_cli import nbh
from test_cli_search import TINY
from tiny import tiny_search, without_times

from nasbench_harness.tracking import read_trajectory

EPOCHS = "3"
CHILD = r"""
import os, sys, time
from pathlib import Path

import nasbench_harness.cli.search as cli_search
from nasbench_harness.cli.main import main

if os.environ.get("NBH_TEST_FSIZE"):  # a file size limit: writes beyond it fail with EFBIG
    import resource

    resource.setrlimit(resource.RLIMIT_FSIZE, (int(os.environ["NBH_TEST_FSIZE"]), resource.RLIM_INFINITY))
gate = os.environ.get("NBH_TEST_GATE")
if gate:  # pause after the first committed epoch until the test creates GATE/go
    gate = Path(gate)
    original = cli_search._SearchProgress.__call__

    def paused(self, kind, info):
        original(self, kind, info)
        if kind == "epoch" and info["epoch"] == 1:
            (gate / "paused").write_text(str(os.getpid()))
            while not (gate / "go").exists():
                time.sleep(0.02)

    cli_search._SearchProgress.__call__ = paused
sys.argv = ["nbh", *sys.argv[1:]]
main()
"""


# -- helpers --------------------------------------------------------------------------------------
def search_args(out: Path, data_dir: Path, cache_dir: Path, *extra: str) -> list[str]:
    return ["search", "--epochs", EPOCHS, "--out", str(out), "--data-dir", str(data_dir), "--cache-dir", str(cache_dir),
            *TINY, *extra]  # fmt: skip


def start(args: list[str], gate: Path | None = None, **env: str) -> subprocess.Popen[str]:
    """``nbh ARGS`` in a child process (paused after epoch 1 until GATE/go exists, when ``gate``)."""
    if gate is not None:
        gate.mkdir(parents=True)
        env["NBH_TEST_GATE"] = str(gate)
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, *args], env={**os.environ, **env},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=_default_signals,
    )  # fmt: skip


def _default_signals() -> None:
    """The child starts with SIGINT and SIGHUP at their defaults, as a terminal gives them. A test
    run started under ``nohup`` or as a background job would pass them on ignored, and ``nbh``
    rightly keeps an inherited ignore (``nohup nbh search`` must survive a hang-up)."""
    for sig in (signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)


def finish(proc: subprocess.Popen[str], timeout: float = 300) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def wait_paused(proc: subprocess.Popen[str], gate: Path, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not (gate / "paused").exists():
        if proc.poll() is not None:
            pytest.fail(f"the search ended before pausing (exit {proc.returncode}): {proc.communicate()[1][-2000:]}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("the search did not commit its first epoch in time")
        time.sleep(0.05)


def one_line_error(err: str) -> str:
    """The last stderr line, which must be the only ``error:`` line and carry no traceback."""
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert lines and "Traceback" not in err, err
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1 and errors[0] == lines[-1], err
    return errors[0]


def manifest(run: Path) -> dict[str, Any]:
    return json.loads((run / "manifest.json").read_text())


def rows(run: Path) -> list[dict[str, Any]]:
    return without_times(read_trajectory(run).to_pylist())


def sh(*command: str) -> None:
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode:
        pytest.fail(f"this test needs root to run {' '.join(command)} (CI runs as root): {done.stderr.strip()}")


@contextlib.contextmanager
def tmpfs(path: Path, size: str) -> Iterator[Path]:
    """A small tmpfs mounted at ``path`` (a full disk, once filled)."""
    path.mkdir()
    sh("mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path))
    try:
        yield path
    finally:
        sh("umount", "-l", str(path))


def fill(disk: Path) -> Path:
    """Fill ``disk`` to the last byte with one file; returns it (delete it to free the space)."""
    filler = disk / "filler"
    chunk = b"\0" * 65536
    with open(filler, "wb", buffering=0) as f:
        with contextlib.suppress(OSError):
            while True:
                f.write(chunk)
        with contextlib.suppress(OSError):
            while True:
                f.write(b"\0")
    return filler


@contextlib.contextmanager
def read_only(path: Path, how: str) -> Iterator[None]:
    """``path`` made read-only even for root: a read-only bind mount (writes fail with EROFS) or
    the immutable attribute (EPERM)."""
    if how == "ro-bind":
        sh("mount", "--bind", str(path), str(path))
        try:
            sh("mount", "-o", "remount,bind,ro", str(path), str(path))
            yield
        finally:
            sh("umount", "-l", str(path))
    else:
        sh("chattr", "+i", str(path))
        try:
            yield
        finally:
            sh("chattr", "-i", str(path))


CAUSES = {"ro-bind": "read-only file system", "immutable": "operation not permitted"}


@pytest.fixture(scope="module")
def cache_dir(synthetic_nb201: Any) -> Path:
    """The session's imported synthetic NB201 cache (only read by these tests)."""
    return Path(synthetic_nb201.path).parent


@pytest.fixture(scope="module")
def reference(synthetic_data_dir: Path, cache_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    """The trajectory of the tiny CLI search run without interruption."""
    out = tmp_path_factory.mktemp("reference") / "run"
    code, _, err = finish(start(search_args(out, synthetic_data_dir, cache_dir)))
    assert code == 0, err
    return rows(out)


# -- 1. two commands on one run directory --------------------------------------------------------
@pytest.mark.parametrize("second", [[], ["--resume"]], ids=["same-command", "resume"])
def test_a_second_search_on_a_busy_run_fails_at_once(
    tmp_path: Path, synthetic_data_dir: Path, cache_dir: Path, reference: list[dict], second: list[str]
) -> None:
    out = tmp_path / "run"
    first = start(search_args(out, synthetic_data_dir, cache_dir), gate=tmp_path / "gate")
    wait_paused(first, tmp_path / "gate")
    before = snapshot(out)
    code, _, err = finish(start(search_args(out, synthetic_data_dir, cache_dir, *second)))
    message = one_line_error(err)
    assert code == 1
    assert f"{out} is being trained by another process (pid {first.pid}, since " in message
    assert "wait for it or choose another --out" in message
    assert snapshot(out) == before  # the second command changed nothing, removed no temp file
    (tmp_path / "gate" / "go").touch()
    code, _, err = finish(first)
    assert code == 0, err
    assert manifest(out)["status"] == "finished" and manifest(out)["error"] is None
    assert rows(out) == reference


def test_a_killed_search_leaves_no_stale_lock(
    tmp_path: Path, synthetic_data_dir: Path, cache_dir: Path, reference: list[dict]
) -> None:
    out = tmp_path / "run"
    first = start(search_args(out, synthetic_data_dir, cache_dir), gate=tmp_path / "gate")
    wait_paused(first, tmp_path / "gate")
    first.kill()
    first.communicate()
    assert Path(f"{out}.lock").exists() and manifest(out)["status"] == "running"
    code, out_text, err = finish(start(search_args(out, synthetic_data_dir, cache_dir, "--resume")))
    assert code == 0, err
    assert "resumed after epoch 1" in out_text
    assert rows(out) == reference


def test_a_sweep_and_a_search_exclude_each_other(tmp_path: Path, synthetic_data_dir: Path, cache_dir: Path) -> None:
    from filelock import FileLock, Timeout

    out = tmp_path / "run"
    out.mkdir()
    with FileLock(f"{out}.lock"):  # as nasbench_harness.execution.job.run_one holds it
        code, _, err = finish(start(search_args(out, synthetic_data_dir, cache_dir)))
    assert code == 1 and "is being trained by another process" in one_line_error(err)
    assert list(out.iterdir()) == []
    first = start(search_args(out, synthetic_data_dir, cache_dir), gate=tmp_path / "gate")
    wait_paused(first, tmp_path / "gate")
    with pytest.raises(Timeout):
        FileLock(f"{out}.lock").acquire(timeout=0)  # a sweep finds the run busy
    (tmp_path / "gate" / "go").touch()
    assert finish(first)[0] == 0


def test_the_lock_is_reentrant_for_the_sweep_in_process(tmp_path: Path, synthetic_nb201: Any, one_thread: None) -> None:
    from filelock import FileLock

    from nasbench_harness.errors import RunDirError
    from nasbench_harness.methods.engine.run import run_lock

    with run_lock(tmp_path / "run"):  # what the sweep's run_one holds while it calls run_search
        assert tiny_search(tmp_path, synthetic_nb201, "run", epochs=1).status == "finished"
    other = FileLock(f"{tmp_path / 'other'}.lock")  # another holder: refused, nothing written
    with other, pytest.raises(RunDirError, match="is being trained by another process"):
        tiny_search(tmp_path, synthetic_nb201, "other", epochs=1)
    assert not (tmp_path / "other").exists()


# -- 2. signals ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT], ids=["SIGTERM", "SIGHUP", "SIGINT (Ctrl-C)"]
)
def test_a_signal_marks_the_run_interrupted_and_it_resumes(
    tmp_path: Path, synthetic_data_dir: Path, cache_dir: Path, reference: list[dict], signum: signal.Signals
) -> None:
    out = tmp_path / "run"
    proc = start(search_args(out, synthetic_data_dir, cache_dir), gate=tmp_path / "gate")
    wait_paused(proc, tmp_path / "gate")
    kept = {name: (out / name).read_bytes() for name in ("trajectory.parquet", "alphas.parquet", "checkpoint.pt")}
    proc.send_signal(signum)
    code, _, err = finish(proc)
    assert code == 128 + signum
    message = one_line_error(err)
    assert f"terminated by {signum.name}" in message and "keeps its 1 complete epoch" in message
    assert "nbh search ... --resume" in message
    recorded = manifest(out)
    assert recorded["status"] == "failed" and recorded["epochs_completed"] == 1
    by = "the user" if signum == signal.SIGINT else f"signal {signum.name}"
    assert recorded["error"] == f"interrupted by {by}; continue with `nbh search ... --resume`"
    assert {name: (out / name).read_bytes() for name in kept} == kept
    assert not list(out.glob(".*nbh-tmp"))
    code, text, err = finish(start(search_args(out, synthetic_data_dir, cache_dir, "--resume")))
    assert code == 0, err
    assert "resumed after epoch 1" in text and rows(out) == reference
    assert manifest(out)["status"] == "finished" and len(manifest(out)["resumed_at"]) == 1


def test_signal_handlers_are_restored_and_an_ignored_hangup_stays_ignored(
    tmp_path: Path, synthetic_nb201: Any, one_thread: None
) -> None:
    term, hup = signal.signal(signal.SIGTERM, signal.SIG_DFL), signal.signal(signal.SIGHUP, signal.SIG_IGN)  # nohup
    seen = []

    def record(kind: str, info: dict[str, Any]) -> None:
        seen.append((signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGHUP)))

    try:
        tiny_search(tmp_path, synthetic_nb201, epochs=1, progress=record)
        after = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGHUP)
    finally:
        signal.signal(signal.SIGTERM, term)
        signal.signal(signal.SIGHUP, hup)
    assert seen and callable(seen[0][0]) and seen[0][1] == signal.SIG_IGN  # our handler; nohup respected
    assert after == (signal.SIG_DFL, signal.SIG_IGN)


# -- 3. full disks, file size limits, read-only folders ----------------------------------------------
def test_a_full_disk_mid_run_keeps_the_epochs_and_resumes(
    tmp_path: Path,
    synthetic_data_dir: Path,
    cache_dir: Path,
    reference: list[dict],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    one_thread: None,
) -> None:
    import nasbench_harness.cli.search as cli_search

    with tmpfs(tmp_path / "disk", "2m") as disk:
        out = disk / "run"
        state: dict[str, Any] = {}
        original = cli_search._SearchProgress.__call__

        def fill_after_first_epoch(self: Any, kind: str, info: dict[str, Any]) -> None:
            original(self, kind, info)
            if kind == "epoch" and info["epoch"] == 1:
                state["before"] = snapshot(out)
                state["filler"] = fill(disk)

        monkeypatch.setattr(cli_search._SearchProgress, "__call__", fill_after_first_epoch)
        code, _, err = nbh(capsys, monkeypatch, *search_args(out, synthetic_data_dir, cache_dir))
        message = one_line_error(err)
        assert code == 1
        assert message.startswith(f"error: no space left on device while writing {out}/")
        assert "free space (or raise the quota), then continue with `nbh search ... --resume`" in message
        assert f"({out} keeps its 1 complete epoch(s))" in message
        assert snapshot(out) == state["before"]  # epoch 1 intact; the manifest still says running
        assert manifest(out)["status"] == "running" and not list(out.glob(".*nbh-tmp"))
        state["filler"].unlink()
        monkeypatch.setattr(cli_search._SearchProgress, "__call__", original)
        code, text, err = nbh(capsys, monkeypatch, *search_args(out, synthetic_data_dir, cache_dir, "--resume"))
        assert code == 0, err
        assert "resumed after epoch 1" in text and rows(out) == reference


def test_a_new_run_on_a_full_disk_names_the_file(
    tmp_path: Path, synthetic_data_dir: Path, cache_dir: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch, one_thread: None,
) -> None:  # fmt: skip
    with tmpfs(tmp_path / "disk", "1m") as disk:
        fill(disk)
        code, _, err = nbh(capsys, monkeypatch, *search_args(disk / "run", synthetic_data_dir, cache_dir))
        message = one_line_error(err)
        assert code == 1
        assert f"no space left on device while writing {disk / 'run' / 'manifest.json'}; free space" in message
        assert not list((disk / "run").glob(".*nbh-tmp"))


def test_a_file_size_limit_fails_the_checkpoint_cleanly_and_the_run_resumes(
    tmp_path: Path, synthetic_data_dir: Path, cache_dir: Path, reference: list[dict]
) -> None:
    """RLIMIT_FSIZE in the child (64 KiB: the manifest and tables fit, the ~230 KB checkpoint does
    not): its writes fail with EFBIG (Python ignores SIGXFSZ)."""
    out = tmp_path / "run"
    code, _, err = finish(start(search_args(out, synthetic_data_dir, cache_dir), NBH_TEST_FSIZE="65536"))
    message = one_line_error(err)
    assert code == 1
    assert message.startswith(
        f"error: file too large (the file system's or the process's file size limit) while writing {out}/checkpoint.pt"
    )
    assert f"continue with `nbh search ... --resume` ({out} keeps its 0 complete epoch(s))" in message
    assert not (out / "checkpoint.pt").exists() and not list(out.glob(".*nbh-tmp"))
    recorded = manifest(out)
    assert recorded["epochs_completed"] == 0 and recorded["status"] == "failed"
    assert recorded["error"].startswith("StorageError: file too large")
    code, _, err = finish(start(search_args(out, synthetic_data_dir, cache_dir, "--resume")))
    assert code == 0, err
    assert rows(out) == reference  # the rows written before the failed checkpoint were dropped and redone


@pytest.mark.parametrize("how", ["ro-bind", "immutable"])
def test_resuming_in_a_read_only_run_directory(
    tmp_path: Path, synthetic_data_dir: Path, cache_dir: Path, synthetic_nb201: Any, how: str,
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, one_thread: None,
) -> None:  # fmt: skip
    out = tmp_path / "run"
    proc = start(search_args(out, synthetic_data_dir, cache_dir), gate=tmp_path / "gate")
    wait_paused(proc, tmp_path / "gate")
    proc.kill()
    proc.communicate()
    before = snapshot(out)
    with read_only(out, how):
        code, _, err = nbh(capsys, monkeypatch, *search_args(out, synthetic_data_dir, cache_dir, "--resume"))
    message = one_line_error(err)
    assert code == 1
    assert f"{CAUSES[how]}" in message and f"while writing {out / 'manifest.json'}" in message
    assert "make the folder writable for you, or write somewhere else" in message
    assert snapshot(out) == before


@pytest.mark.parametrize("how", ["ro-bind", "immutable"])
@pytest.mark.parametrize("where", ["parent-of-out", "empty-cache"])
def test_a_new_run_under_a_read_only_folder(
    tmp_path: Path, synthetic_data_dir: Path, cache_dir: Path, how: str, where: str,
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, one_thread: None,
) -> None:  # fmt: skip
    folder = tmp_path / "folder"
    folder.mkdir()
    out = folder / "run" if where == "parent-of-out" else tmp_path / "run"
    cache = cache_dir if where == "parent-of-out" else folder
    with read_only(folder, how):
        code, _, err = nbh(capsys, monkeypatch, *search_args(out, synthetic_data_dir, cache))
    message = one_line_error(err)
    assert code == 1 and str(folder) in message and CAUSES[how] in message.lower()
    assert list(folder.iterdir()) == [] and not out.exists()


def test_a_read_only_cache_that_holds_the_table_is_enough(
    tmp_path: Path, synthetic_data_dir: Path, cache_dir: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch, one_thread: None,
) -> None:  # fmt: skip
    cache = tmp_path / "cache"
    shutil.copytree(cache_dir, cache)
    before = snapshot(cache)
    with read_only(cache, "ro-bind"):
        code, _, err = nbh(
            capsys, monkeypatch, *search_args(tmp_path / "run", synthetic_data_dir, cache, "--epochs", "1")
        )
    assert code == 0, err
    assert snapshot(cache) == before


# -- 4. output paths -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("command", "option"),
    [
        (["search", *TINY], "--out"),
        (["baseline", "--n", "5"], "--out"),
        (["figures", "regret", "RUNS"], "-o/--out"),
    ],
    ids=["search", "baseline", "figures"],
)
@pytest.mark.parametrize("at", ["file", "under-a-file"])
def test_an_output_directory_that_is_a_file(
    tmp_path: Path, synthetic_data_dir: Path, command: list[str], option: str, at: str,
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, one_thread: None,
) -> None:  # fmt: skip
    blocker = tmp_path / "taken.txt"
    blocker.write_text("mine\n")
    out = blocker if at == "file" else blocker / "sub"
    if command[0] == "figures":
        args = [*command[:-1], str(tmp_path), "-o", str(out)]
    else:
        args = [*command, "--out", str(out), "--data-dir", str(synthetic_data_dir)]
    code, _, err = nbh(capsys, monkeypatch, *args)
    message = one_line_error(err)
    assert code == 1
    what = "is a file" if at == "file" else f"lies under {blocker}, which is a file"
    assert f"{option} {out} {what}, not a directory; give a directory" in message
    assert blocker.read_text() == "mine\n"


@pytest.fixture(scope="module")
def runs_folder(synthetic_nb201: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two finished tiny searches (seeds 0 and 1) under one folder."""
    import torch

    root = tmp_path_factory.mktemp("runs")
    threads = torch.get_num_threads()
    try:
        for seed in (0, 1):
            tiny_search(root, synthetic_nb201, f"seed-{seed}", seed=seed, epochs=1)
    finally:
        torch.set_num_threads(threads)
    return root


def test_report_to_a_directory_writes_report_html_there(
    tmp_path: Path, runs_folder: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "reports"
    target.mkdir()
    code, out, err = nbh(capsys, monkeypatch, "report", str(runs_folder), "-o", str(target))
    assert code == 0, err
    assert f"wrote {target / 'report.html'}" in out and (target / "report.html").read_text().startswith("<!")
    (target / "blocked" / "report.html").mkdir(parents=True)  # a directory where the file would go
    code, _, err = nbh(capsys, monkeypatch, "report", str(runs_folder), "-o", str(target / "blocked"))
    assert code == 1 and "report.html is a directory; give -o a file path" in one_line_error(err)
    blocker = tmp_path / "file"
    blocker.write_text("mine\n")
    code, _, err = nbh(capsys, monkeypatch, "report", str(runs_folder), "-o", str(blocker / "r.html"))
    assert code == 1 and f"{blocker}, which is a file" in one_line_error(err)
    assert blocker.read_text() == "mine\n"


# -- 5. damaged runs in a folder -------------------------------------------------------------------
def _damage(run: Path, how: str) -> Path:
    if how == "manifest-garbage":
        (run / "manifest.json").write_bytes(b"{garbage")
    elif how == "manifest-truncated":
        data = (run / "manifest.json").read_bytes()
        (run / "manifest.json").write_bytes(data[: len(data) // 2])
    elif how == "manifest-not-a-run":
        (run / "manifest.json").write_text(json.dumps({"schema_version": 1, "status": "finished"}))
    elif how == "trajectory-truncated":
        data = (run / "trajectory.parquet").read_bytes()
        (run / "trajectory.parquet").write_bytes(data[:100])
    else:  # the footer's magic bytes overwritten
        data = bytearray((run / "trajectory.parquet").read_bytes())
        data[-8:] = b"\xff" * 8
        (run / "trajectory.parquet").write_bytes(bytes(data))
    return run / ("manifest.json" if how.startswith("manifest") else "trajectory.parquet")


DAMAGES = ["manifest-garbage", "manifest-truncated", "manifest-not-a-run", "trajectory-truncated", "trajectory-footer"]


@pytest.mark.parametrize("damage", DAMAGES)
@pytest.mark.parametrize("command", ["report", "figures", "compare"])
def test_a_damaged_run_stops_the_command_or_is_skipped_and_listed(
    tmp_path: Path, runs_folder: Path, damage: str, command: str,
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    folder = tmp_path / "runs"
    shutil.copytree(runs_folder, folder)
    bad = _damage(folder / "seed-1", damage)
    before = snapshot(folder)
    args = {
        "report": ["report", str(folder), "-o", str(tmp_path / "report.html")],
        "figures": ["figures", "regret", str(folder), "-o", str(tmp_path / "figs")],
        "compare": ["compare", "-b", str(folder), "-c", str(folder)],
    }[command]
    code, _, err = nbh(capsys, monkeypatch, *args)
    message = one_line_error(err)
    assert code == 1 and str(bad) in message and message.endswith("or leave damaged runs out with --skip-damaged")
    assert not (tmp_path / "report.html").exists() and not (tmp_path / "figs").exists()
    code, _, err = nbh(capsys, monkeypatch, *args, "--skip-damaged")
    assert code == 0, err
    warnings = [line for line in err.splitlines() if line.startswith("warning: skipped damaged run")]
    assert warnings and all(str(folder / "seed-1") in line and str(bad) in line for line in warnings)
    if command == "report":
        html = (tmp_path / "report.html").read_text()
        assert "Left out (damaged): " in html and str(bad) in html and "damaged, left out" in html
    assert snapshot(folder) == before


def test_a_folder_of_only_damaged_runs_says_so(
    tmp_path: Path, runs_folder: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "runs"
    shutil.copytree(runs_folder, folder)
    for run in ("seed-0", "seed-1"):
        _damage(folder / run, "manifest-garbage")
    code, _, err = nbh(capsys, monkeypatch, "report", str(folder), "-o", str(tmp_path / "r.html"), "--skip-damaged")
    assert code == 1 and "all 2 run(s) found are damaged; the first: " in one_line_error(err)


# -- 6. the CLI's last resort -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (PermissionError(13, "Permission denied", "/srv/r.html"), "error: permission denied: /srv/r.html; you may not"),
        (OSError(28, "No space left on device"), "error: no space left on device; free space (or raise the quota)"),
        (OSError("a library's message without errno"), "error: a library's message without errno"),
    ],
    ids=["EACCES", "ENOSPC-no-file", "no-errno"],
)  # fmt: skip
def test_an_unexpected_os_error_is_one_line(
    tmp_path: Path, runs_folder: Path, error: OSError, expected: str,
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    import nasbench_harness.report.build as build

    def fail(*args: Any, **kwargs: Any) -> None:
        raise error

    monkeypatch.setattr(build, "write_report", fail)
    code, _, err = nbh(capsys, monkeypatch, "report", str(runs_folder), "-o", str(tmp_path / "r.html"))
    assert code == 1 and one_line_error(err).startswith(expected)


def test_a_bug_keeps_its_traceback_and_asks_for_a_report(
    tmp_path: Path, runs_folder: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import nasbench_harness.report.build as build

    def fail(*args: Any, **kwargs: Any) -> None:
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(build, "write_report", fail)
    code, _, err = nbh(capsys, monkeypatch, "report", str(runs_folder), "-o", str(tmp_path / "r.html"))
    assert code == 1
    assert "Traceback" in err and "ZeroDivisionError: division by zero" in err
    assert err.strip().splitlines()[-1].startswith("error: an unexpected error (above): a bug in nasbench-harness")
