"""Hostile plugins: files that exit or raise while imported or created, and plugins that return
non-finite loss terms, raise, exit or hang while the search runs.

A plugin is code the user chose to run (README, "What is trusted"); what the harness owes them is
that a broken one ends the run with a one-line message naming the plugin, exit code 1, and the
epochs already written kept as they were.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from checks import error_line
from test_cli import nbh
from test_cli_search import TINY
from tiny import tiny_search

from nasbench_harness.errors import ConfigError, RunDirError, TrainingError
from nasbench_harness.tracking import read_trajectory

RUN_FILES = ("trajectory.parquet", "alphas.parquet", "checkpoint.pt")


def write_plugin(tmp_path: Path, body: str, name: str = "plugin.py") -> Path:
    file = tmp_path / name
    file.write_text(textwrap.dedent(body), encoding="utf-8")
    return file


# -- importing and creating a plugin ----------------------------------------------------------------
AT_IMPORT = {
    "sys-exit-3": ("import sys\nsys.exit(3)\n", "it called sys.exit(3); a plugin must not end the process"),
    "sys-exit-0": ("import sys\nsys.exit(0)\n", "it called sys.exit(0)"),
    "sys-exit-message": ("import sys\nsys.exit('bye')\n", "it called sys.exit('bye')"),
    "raise-systemexit": ("raise SystemExit\n", "it called sys.exit(None)"),
    "raise-runtimeerror": ("raise RuntimeError('boom at import')\n", "RuntimeError: boom at import"),
    "syntax-error": ("def broken(:\n", "SyntaxError"),
    "missing-import": ("import no_such_module_anywhere\n", "ModuleNotFoundError"),
}


@pytest.mark.parametrize("case", sorted(AT_IMPORT))
def test_a_plugin_file_that_exits_or_raises_at_import_is_a_config_error(
    case: str, tmp_path: Path, synthetic_data_dir: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    body, needle = AT_IMPORT[case]
    file = write_plugin(tmp_path, body)
    out = tmp_path / "run"
    code, _, err = nbh(capsys, monkeypatch, "search", "--out", str(out), "--data-dir", str(synthetic_data_dir),
                       "--regularizer", f"{file}:Reg", *TINY)  # fmt: skip
    error_line(code, err, f"importing plugin file {file} failed", needle)
    assert not out.exists()


def test_a_plugin_module_that_exits_at_import_is_a_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nasbench_harness.registry import load_regularizer

    write_plugin(tmp_path, "import sys\nsys.exit(4)\n", "exiting_plugin_mod.py")
    monkeypatch.syspath_prepend(str(tmp_path))
    expected = r"importing plugin module 'exiting_plugin_mod' failed: it called sys\.exit\(4\)"
    with pytest.raises(ConfigError, match=expected):
        load_regularizer("exiting_plugin_mod:Reg")


def test_sys_exit_at_import_ends_the_real_process_with_1_and_a_message(
    tmp_path: Path, synthetic_data_dir: Path
) -> None:
    file = write_plugin(tmp_path, "import sys\nsys.exit(3)\n")
    done = subprocess.run(
        [sys.executable, "-m", "nasbench_harness.cli.main", "search", "--out", str(tmp_path / "run"),
         "--data-dir", str(synthetic_data_dir), "--regularizer", f"{file}:Reg", *TINY],
        capture_output=True, text=True, timeout=300, env={**os.environ, "NBH_CACHE_DIR": str(tmp_path / "cache")},
    )  # fmt: skip
    error_line(done.returncode, done.stderr, f"{file}", "it called sys.exit(3)")


AT_CREATION = {
    "raise": ("raise ValueError('no such mode')", "creating it failed: ValueError: no such mode"),
    "sys-exit": ("import sys; sys.exit(5)", "creating it failed: it called sys.exit(5)"),
}


@pytest.mark.parametrize("case", sorted(AT_CREATION))
def test_a_plugin_whose_constructor_fails_is_a_config_error(case: str, tmp_path: Path) -> None:
    from nasbench_harness.config import build_config
    from nasbench_harness.registry import build_method

    statement, needle = AT_CREATION[case]
    file = write_plugin(tmp_path, f"""
        from nasbench_harness.plugins import Regularizer

        class Reg(Regularizer):
            def __init__(self, weight, params):
                {statement}
        """)  # fmt: skip
    with pytest.raises(ConfigError, match=rf"plugin {file}:Reg: {needle}".replace("(", r"\(").replace(")", r"\)")):
        build_method(build_config("cpu", {"plugins": [{"ref": f"{file}:Reg"}]}))


# -- while the search runs --------------------------------------------------------------------------
REGULARIZER = """
    import math, sys, time
    import torch
    from nasbench_harness.plugins import EarlyStopper, Regularizer

    class Reg(Regularizer):
        phases = ({phases})
        timeout_s = {timeout}

        def penalty(self, state, weights, phase):
            if state.epoch >= 2:
                {bad}
            return state.alphas.square().sum() * 0.01

    class Stopper(EarlyStopper):
        timeout_s = {timeout}

        def should_stop(self, state, row):
            if row["epoch"] >= 2:
                {bad}
            return None

    class FloatTerm(EarlyStopper):
        def should_stop(self, state, row):
            return None

        def extra_loss(self, state, phase, weights):
            return 0.5 if state.epoch >= 2 else None
"""

AT_RUN_TIME = {  # case: (class, phases, what it does from epoch 2 on, the message says)
    "penalty-nan": (
        "Reg", '"arch",', "return state.alphas.sum() * math.nan",
        "added a non-finite term (nan) to the arch loss in epoch 2, step 1",
    ),
    "penalty-inf": ("Reg", '"arch",', "return state.alphas.sum() + math.inf", "non-finite term (inf) to the arch loss"),
    "penalty-minus-inf-no-grad": (
        "Reg", '"arch",', "return torch.tensor(-math.inf)", "non-finite term (-inf) to the arch loss",
    ),
    "weight-penalty-nan": (
        "Reg", '"weights",', "return state.alphas.sum() * math.nan",
        "non-finite term (nan) to the weights loss in epoch 2, step 1",
    ),
    "penalty-not-a-tensor": (
        "FloatTerm", '"arch",', "pass", "extra_loss returned 0.5 for the arch loss; it must return a 0-dim tensor",
    ),
    "penalty-raises": (
        "Reg", '"arch",', "raise ValueError('bad alphas')",
        "failed in extra_loss() (epoch 2, step 1): ValueError: bad alphas",
    ),
    "penalty-sys-exit": (
        "Reg", '"arch",', "sys.exit(7)",
        "failed in extra_loss() (epoch 2, step 1): it called sys.exit(7); a plugin must not end the process",
    ),
    "penalty-sleeps-forever": (
        "Reg", '"arch",', "time.sleep(10**6)", "did not return from extra_loss() within 1 s (epoch 2, step 1)",
    ),
    "should-stop-busy-loop": (
        "Stopper", '"arch",', "while True: pass", "did not return from end_of_epoch() within 1 s",
    ),
    "should-stop-raises": (
        "Stopper", '"arch",', "raise KeyError('eigenvalue')",
        "failed in end_of_epoch() (epoch 2, step 3): KeyError: 'eigenvalue'",
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(AT_RUN_TIME))
def test_a_plugin_failing_at_run_time_stops_the_run_naming_it_and_keeps_the_epochs(
    case: str, tmp_path: Path, synthetic_nb201: Any
) -> None:
    cls, phases, statement, needle = AT_RUN_TIME[case]
    file = write_plugin(tmp_path, REGULARIZER.format(phases=phases, timeout=1.0, bad=statement))
    after_epoch_1: dict[str, bytes] = {}

    def capture(kind: str, info: dict[str, Any]) -> None:
        if kind == "epoch" and info["epoch"] == 1:
            after_epoch_1.update({name: (tmp_path / "run" / name).read_bytes() for name in RUN_FILES})

    started = time.monotonic()
    with pytest.raises(TrainingError) as info:
        tiny_search(tmp_path, synthetic_nb201, "run", epochs=3, tracking={"eigen_every": 0}, progress=capture,
                    plugins=[{"ref": f"{file}:{cls}"}])  # fmt: skip
    assert time.monotonic() - started < 120
    message = str(info.value)
    assert f"plugin {file}:{cls}" in message and needle in message and "\n" not in message, message
    assert "keeps the epochs already written" in message, message
    assert after_epoch_1 and {n: (tmp_path / "run" / n).read_bytes() for n in RUN_FILES} == after_epoch_1
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["status"] == "failed" and f"plugin {file}:{cls}" in manifest["error"]
    assert manifest["epochs_completed"] == 1 and manifest["plugins"][0]["trust"].startswith("plugins are Python code")


@pytest.mark.parametrize("bound_by", ["class", "config"])
def test_a_hanging_plugin_fails_the_real_process_within_its_bound(
    bound_by: str, tmp_path: Path, synthetic_data_dir: Path
) -> None:
    """The bound comes from the plugin class's ``timeout_s`` or from the run's ``plugin_timeout_s``."""
    timeout = 2.0 if bound_by == "class" else None
    file = write_plugin(tmp_path, REGULARIZER.format(phases='"arch",', timeout=timeout, bad="time.sleep(10**6)"))
    option = [] if bound_by == "class" else ["--set", "plugin_timeout_s=2"]
    out = tmp_path / "run"
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "nasbench_harness.cli.main", "search", "--epochs", "3", "--out", str(out),
         "--data-dir", str(synthetic_data_dir), "--regularizer", f"{file}:Reg", *option, *TINY],
        capture_output=True, text=True, timeout=300, env={**os.environ, "NBH_CACHE_DIR": str(tmp_path / "cache")},
    )  # fmt: skip
    elapsed = time.monotonic() - started
    error_line(done.returncode, done.stderr, f"plugin {file}:Reg did not return from extra_loss() within 2 s")
    assert elapsed < 120, elapsed
    assert [row["epoch"] for row in read_trajectory(out).to_pylist()] == [1]


def test_a_plugin_within_its_bound_runs_to_the_end(tmp_path: Path, synthetic_nb201: Any) -> None:
    file = write_plugin(tmp_path, REGULARIZER.format(phases='"arch",', timeout=30.0, bad="pass"))
    result = tiny_search(tmp_path, synthetic_nb201, "run", epochs=2, tracking={"eigen_every": 0},
                         plugins=[{"ref": f"{file}:Reg"}, {"ref": f"{file}:Stopper"}])  # fmt: skip
    assert result.status == "finished" and result.epochs_completed == 2
    import signal

    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0) and signal.getsignal(signal.SIGALRM) == signal.SIG_DFL


def test_a_resume_may_change_the_plugin_time_limit_not_the_plugins(tmp_path: Path, synthetic_nb201: Any) -> None:
    """``plugin_timeout_s`` only decides whether a slow call fails, so a resume may change it (a
    run written before the setting existed resumes too); the plugins themselves may not change."""
    file = write_plugin(tmp_path, REGULARIZER.format(phases='"arch",', timeout=None, bad="pass"))
    plugins = [{"ref": f"{file}:Reg"}]
    tiny_search(tmp_path, synthetic_nb201, "run", epochs=2, tracking={"eigen_every": 0}, plugins=plugins)
    manifest = tmp_path / "run" / "manifest.json"
    recorded = json.loads(manifest.read_text())
    assert recorded["config"].pop("plugin_timeout_s") is None  # as an older version wrote it
    manifest.write_text(json.dumps(recorded))
    result = tiny_search(tmp_path, synthetic_nb201, "run", epochs=2, tracking={"eigen_every": 0}, plugins=plugins,
                         plugin_timeout_s=30.0)  # fmt: skip
    assert result.status == "finished" and result.epochs_completed == 2
    with pytest.raises(RunDirError, match=r"different config \(differs in plugins "):
        tiny_search(tmp_path, synthetic_nb201, "run", epochs=2, tracking={"eigen_every": 0},
                    plugins=[{"ref": f"{file}:Stopper"}])  # fmt: skip
