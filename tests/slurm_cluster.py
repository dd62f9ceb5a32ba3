"""A real single-node SLURM cluster on this machine for the ``slurm`` executor's tests.

:func:`slurm_cluster` (session-scoped) starts, all in a fresh temporary folder:

- its own ``munged`` (its own key and socket; the machine's munge, if any, is left alone),
- ``slurmctld`` and ``slurmd`` with a ``slurm.conf`` written there: this machine as the one node
  of partition ``debug`` (its CPUs, no GPU), on free ports, so a SLURM already running here with
  another config does not clash,

sets ``SLURM_CONF`` for the tests and every SLURM command they run (restored after), waits until
``sinfo`` shows the node idle, and stops the daemons by their pid files at the end (after
cancelling what the tests left queued). It fails, naming the fix, when the SLURM or munge programs
are missing or the daemons do not come up (``apt-get install slurm-wlm munge``).

``cred_expire=10`` in ``AuthInfo``: a requeued job waits that long before it may start again
(SLURM's default, 120 s, would dominate the requeue test). ``KillWait=1``: a cancelled job's
processes get SIGKILL 1 s after SIGTERM (default 30 s; submitit's job ignores SIGTERM).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

PROGRAMS = ("munged", "slurmctld", "slurmd", "sbatch", "sinfo", "squeue", "scancel", "scontrol", "srun")
INSTALL = "apt-get install -y slurm-wlm munge (as root; .ci/run does it)"
START_TIMEOUT_S = 60


@dataclass(frozen=True)
class SlurmCluster:
    """The running test cluster: its config, its one partition and node, and its folder (logs)."""

    conf: Path
    partition: str
    node: str
    folder: Path

    def run(self, *args: str, check: bool = True) -> str:
        """A SLURM command's stdout (``SLURM_CONF`` is already this cluster's)."""
        done = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)
        if check and done.returncode:
            raise AssertionError(f"{' '.join(args)} failed ({done.returncode}): {done.stderr.strip()}")
        return done.stdout

    def logs(self) -> str:
        """The end of the daemons' logs, for a failure message."""
        parts = [f"(the cluster's folder: {self.folder})"]
        for name in ("munged.log", "slurmctld.log", "slurmd.log"):
            path = self.folder / name
            text = path.read_text(errors="replace") if path.is_file() else "(none)"
            parts.append(f"--- {name}:\n" + "\n".join(text.splitlines()[-15:]))
        return "\n".join(parts)


def _program(name: str) -> str | None:
    """``name`` on PATH or in the sbin folders (daemons live there, often off a user's PATH)."""
    found = shutil.which(name)
    for folder in ("/usr/sbin", "/usr/local/sbin", "/sbin"):
        if found is None and os.access(f"{folder}/{name}", os.X_OK):
            found = f"{folder}/{name}"
    return found


def _user() -> str:
    """The user this process runs as (the cluster's SlurmUser: root here, as in CI)."""
    return pwd.getpwuid(os.getuid()).pw_name


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _conf(folder: Path, host: str, user: str) -> str:
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return f"""\
ClusterName=nbhtest
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={_free_port()}
SlurmdPort={_free_port()}
SlurmUser={user}
SlurmdUser={user}
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={folder}/munge/munge.socket,cred_expire=10
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/builtin
SchedulerParameters=sched_interval=1
StateSaveLocation={folder}/state
SlurmdSpoolDir={folder}/spool
SlurmctldPidFile={folder}/slurmctld.pid
SlurmdPidFile={folder}/slurmd.pid
SlurmctldLogFile={folder}/slurmctld.log
SlurmdLogFile={folder}/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
MailProg=/bin/true
ReturnToService=2
MpiDefault=none
KillWait=1
MinJobAge=300
InactiveLimit=0
NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} State=UNKNOWN
PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP
"""


def _stop(folder: Path, names: tuple[str, ...]) -> None:
    """Stop the daemons this fixture started, by their pid files: SIGTERM, then SIGKILL after 10 s."""
    pids = []
    for name in names:
        with contextlib.suppress(OSError, ValueError):
            pid = int((folder / f"{name}.pid").read_text().strip())
            os.kill(pid, signal.SIGTERM)
            pids.append(pid)
    deadline = time.monotonic() + 10
    for pid in pids:
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except OSError:
                break
            time.sleep(0.2)
        else:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)


@pytest.fixture(scope="session")
def slurm_cluster() -> Iterator[SlurmCluster]:
    """A one-node SLURM cluster on this machine (see the module docstring)."""
    missing = [p for p in PROGRAMS if _program(p) is None]
    if missing:
        pytest.fail(f"the slurm tests need a local SLURM: {', '.join(missing)} not found; {INSTALL}")
    folder = Path(tempfile.mkdtemp(prefix="nbh-slurm-"))
    folder.chmod(0o711)  # munged wants its socket's folders searchable by all and writable by none else
    for sub in ("munge", "state", "spool"):
        (folder / sub).mkdir(mode=0o711)
    key = folder / "munge" / "munge.key"
    key.write_bytes(os.urandom(128))
    key.chmod(0o400)
    host = socket.gethostname().split(".")[0]
    conf = folder / "slurm.conf"
    conf.write_text(_conf(folder, host, _user()), encoding="utf-8")
    cluster = SlurmCluster(conf, "debug", host, folder)
    started: tuple[str, ...] = ()
    up = False  # the folder is kept when the cluster did not come up (its logs say why)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SLURM_CONF", str(conf))
        try:
            munge = [f"--socket={folder}/munge/munge.socket", f"--key-file={key}", f"--pid-file={folder}/munged.pid",
                     f"--log-file={folder}/munged.log", f"--seed-file={folder}/munge/munged.seed"]  # fmt: skip
            for name, args in (
                ("munged", ["--force", *munge]),
                ("slurmctld", ["-c", "-f", str(conf)]),
                ("slurmd", ["-f", str(conf), "-N", host]),
            ):
                done = subprocess.run([str(_program(name)), *args], capture_output=True, text=True, timeout=60)
                started = (*started, name)
                if done.returncode:
                    pytest.fail(f"{name} did not start ({done.returncode}): {done.stderr.strip()}\n{cluster.logs()}")
            _wait_idle(cluster)
            up = True
            yield cluster
        finally:
            if "slurmctld" in started:
                _cancel_all(cluster)
            _stop(folder, tuple(reversed(started)))
            if up:
                shutil.rmtree(folder, ignore_errors=True)


def _wait_idle(cluster: SlurmCluster) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    state = ""
    while time.monotonic() < deadline:
        done = subprocess.run(["sinfo", "-h", "-N", "-o", "%t"], capture_output=True, text=True, timeout=30)
        state = done.stdout.strip() or done.stderr.strip()[-300:]
        if state == "idle":
            return
        for name in ("slurmctld", "slurmd"):  # a daemon that forked and then died (e.g. a bad config)
            with contextlib.suppress(OSError, ValueError):
                pid = int((cluster.folder / f"{name}.pid").read_text().strip())
                if not Path(f"/proc/{pid}").exists():
                    pytest.fail(f"{name} stopped after starting\n{cluster.logs()}")
        time.sleep(0.5)
    pytest.fail(
        f"the test SLURM cluster did not come up in {START_TIMEOUT_S} s (node state {state!r}); "
        f"is {INSTALL.split(' (')[0]} complete?\n{cluster.logs()}"
    )


def _cancel_all(cluster: SlurmCluster) -> None:
    """Cancel what the tests left queued and wait (at most 20 s) for it to end."""
    cluster.run("scancel", f"--user={_user()}", check=False)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and cluster.run("squeue", "-h", check=False).strip():
        time.sleep(0.5)
