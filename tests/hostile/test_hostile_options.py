"""Absurd option values and bad config or suite files, as a careless or hostile user would give
them: each is refused with a one-line message naming the option or key, the bad value and what
is allowed (the file and line for a suite), with the documented exit code, and nothing already
written changes. Two sweeps of one suite at once leave a consistent ``sweep.json``."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
import torch
from analysis_runs import write_sweep
from filelock import FileLock
from test_cli import nbh
from test_sweep import TINY
from test_sweep import _suite as write_suite
from tiny import tiny_search

from nasbench_harness.errors import ConfigError, TrainingError
from nasbench_harness.execution.local import SWEEP_FILE, run_sweep
from nasbench_harness.execution.suite import expand, load_suite
from nasbench_harness.threads import _cgroup_cpu_quota, usable_cpus

CPUS = usable_cpus()
SUITE = TINY.replace("      epochs: 2\n", "      epochs: 1\n")  # test_sweep's two-method suite, one epoch


def _suite(tmp_path: Path, text: str = SUITE) -> Path:
    return write_suite(tmp_path, text)


def _one_line_error(code: int, err: str, expected_code: int = 1) -> str:
    """The error message, checked to be one line, no traceback, with the expected exit code."""
    assert code == expected_code, err
    assert "Traceback" not in err and err.startswith("error:"), err
    assert len(err.strip().splitlines()) == 1, err
    return err


def _usage_error(code: int, err: str, option: str) -> str:
    """A click usage error (exit 2) for ``option``, its box joined into one line."""
    assert code == 2, err
    assert "Traceback" not in err
    text = " ".join(line.strip("│ ╭╮╰╯─") for line in err.splitlines())
    text = " ".join(text.replace("'", "").split())
    assert f"Invalid value for {option}" in text, text
    return text


# --- threads and workers: bounded by the CPUs this process may use -----------------------------


@pytest.mark.parametrize("threads", ["100000", "1000", str(CPUS + 1), "0", "-3"])
def test_threads_beyond_the_cpus_exit_2_before_torch_starts(tmp_path: Path, threads: str) -> None:
    out = tmp_path / "run"
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "nasbench_harness.cli.main", "search", "--threads", threads, "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert time.monotonic() - started < 60  # no thread storm: refused before torch is imported
    text = _usage_error(proc.returncode, proc.stderr, "--threads")
    assert f"--threads: {threads}:" in text and f"use 1..{CPUS}" in text
    if int(threads) > CPUS:
        assert f"at most {CPUS} (the CPUs this process may use)" in text
    assert not out.exists() and not Path(f"{out}.lock").exists()


def test_threads_set_in_the_config_are_checked_when_the_run_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "run"
    before = torch.get_num_threads()
    code, _, err = nbh(capsys, monkeypatch, "search", "--set", "threads=100000", "--device", "cpu", "--out", str(out))
    message = _one_line_error(code, err)
    assert f"threads 100000: this machine allows at most {CPUS}" in message and f"use 1..{CPUS}" in message
    assert torch.get_num_threads() == before and not (out / "manifest.json").exists()


def test_an_existing_run_resumed_with_too_many_threads_is_left_as_it_was(tmp_path: Path, synthetic_nb201: Any) -> None:
    done = tiny_search(tmp_path, synthetic_nb201, epochs=1)
    files = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in done.path.iterdir()}
    with pytest.raises(ConfigError, match=rf"threads {CPUS * 64}: this machine allows at most {CPUS}"):
        tiny_search(tmp_path, synthetic_nb201, epochs=1, threads=CPUS * 64)
    assert {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in done.path.iterdir()} == files


def test_a_cgroup_cpu_quota_lowers_the_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert _cgroup_cpu_quota(tmp_path) == 2  # 1.5 CPUs: two threads may run
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert _cgroup_cpu_quota(tmp_path) is None
    import nasbench_harness.threads as threads

    monkeypatch.setattr(threads, "_cgroup_cpu_quota", lambda: 1)
    assert threads.usable_cpus() == 1
    with pytest.raises(ConfigError, match=r"threads 2: this machine allows at most 1 .*use 1\.\.1"):
        threads.check_threads(2)


def test_sweep_workers_beyond_the_cpus_are_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    suite = _suite(tmp_path)
    code, _, err = nbh(capsys, monkeypatch, "sweep", str(suite), "--workers", "1000", "--root", str(tmp_path / "r"))
    text = _usage_error(code, err, "--workers")
    assert f"1000: this machine allows at most {CPUS} runs at once" in text
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize(
    ("workers", "threads", "message"),
    [
        (CPUS + 1, 1, rf"--workers {CPUS + 1}: this machine allows 1\.\.{CPUS} runs at once"),
        (1, CPUS * 8, rf"threads per run {CPUS * 8}: this machine allows at most {CPUS}"),
        (CPUS, 2, rf"--workers {CPUS} with 2 threads per run needs {CPUS * 2} CPUs; this machine allows at most"),
        (0, 1, r"--workers 0: this machine allows 1\.\."),
    ],
)
def test_run_sweep_bounds_workers_times_threads(tmp_path: Path, workers: int, threads: int, message: str) -> None:
    runs = expand(load_suite(_suite(tmp_path)), "cpu", tmp_path / "r")
    with pytest.raises(ConfigError, match=message):
        run_sweep(runs, tmp_path / "r" / "tiny" / "cpu", workers=workers, threads=threads)
    assert not (tmp_path / "r").exists()


# --- config values: finite, in range, named -------------------------------------------------


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("optim.lr=inf", "optim.lr: Input should be a finite number (got 'inf')"),
        ("optim.lr=nan", "optim.lr: Input should be a finite number"),
        ("optim.lr=-Infinity", "optim.lr: Input should be a finite number (got -inf)"),
        ("optim.weight_decay=Infinity", "optim.weight_decay: Input should be a finite number (got inf)"),
        ("optim.grad_clip=inf", "optim.grad_clip: Input should be a finite number"),
        ("optim.lr=0", "optim.lr: Input should be greater than 0 (got 0)"),
        ("optim.lr=-0.1", "optim.lr: Input should be greater than 0 (got -0.1)"),
        ("optim.weight_decay=-1", "optim.weight_decay: Input should be greater than or equal to 0 (got -1)"),
        ("optim.momentum=1", "optim.momentum: Input should be less than 1 (got 1)"),
        ("optim.momentum=-0.5", "optim.momentum: Input should be greater than or equal to 0"),
        ("optim.lr_min=1", "optim: lr_min (1.0) must not exceed lr (0.025)"),
        ("arch_optim.lr=inf", "arch_optim.lr: Input should be a finite number"),
        ("arch_optim.lr=-1", "arch_optim.lr: Input should be greater than 0 (got -1)"),
        ("arch_optim.weight_decay=NaN", "arch_optim.weight_decay: Input should be a finite number"),
        ("arch_optim.init_scale=1e999", "arch_optim.init_scale: Input should be a finite number"),
        ("arch_optim.betas=[1.5,0.9]", "arch_optim.betas.0: Input should be less than 1 (got 1.5)"),
        ("arch_optim.betas=[0.5,1.0]", "arch_optim.betas.1: Input should be less than 1 (got 1.0)"),
        ("arch_optim.betas=[-0.1,0.9]", "arch_optim.betas.0: Input should be greater than or equal to 0"),
        ("arch_optim.betas=[0.5,NaN]", "arch_optim.betas.1: Input should be a finite number"),
        ("arch_optim.betas=[0.5]", "arch_optim.betas: betas is [0.5]; give a pair [beta1, beta2], each in [0, 1)"),
        ("arch_optim.betas=0.5", "arch_optim.betas: betas is 0.5; give a pair"),
        ("arch_optim.betas=[0.5,0.9,0.99]", "arch_optim.betas: betas is [0.5, 0.9, 0.99]; give a pair"),
        ("batch_size=0", "batch_size: Input should be greater than or equal to 2 (got 0)"),
        ("batch_size=-64", "batch_size: Input should be greater than or equal to 2 (got -64)"),
        ("epochs=0", "epochs: Input should be greater than or equal to 1 (got 0)"),
        ("epochs=1000000000", "epochs: Input should be less than or equal to 10000 (got 1000000000)"),
        ("model.channels=100000", "model.channels: Input should be less than or equal to 128 (got 100000)"),
        ("model.channels=0", "model.channels: Input should be greater than or equal to 1 (got 0)"),
        ("model.cells_per_stage=100000", "model.cells_per_stage: Input should be less than or equal to 16"),
        ("model.num_cells=100000", "model.num_cells: Input should be less than or equal to 48 (got 100000)"),
        ("data.image_size=3", "data.image_size: Input should be greater than or equal to 4 (got 3)"),
        ("data.image_size=17", "data.image_size: image_size 17: images are down-sampled by an integer factor"),
        ("data.image_size=100000", "data.image_size: Input should be less than or equal to 32 (got 100000)"),
        ("threads=0", "threads: Input should be greater than or equal to 1 (got 0)"),
        ("data.train_size=1", "data.train_size: Input should be greater than or equal to 2 (got 1)"),
        ("plugin_timeout_s=0", "plugin_timeout_s: Input should be greater than 0 (got 0)"),
        ("plugin_timeout_s=inf", "plugin_timeout_s: Input should be a finite number"),
        ("plugin_timeout_s=1e9", "plugin_timeout_s: Input should be less than or equal to 86400"),
    ],
)
def test_bad_config_values_name_the_key_and_the_range(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, override: str, expected: str
) -> None:
    out = tmp_path / "run"
    code, _, err = nbh(capsys, monkeypatch, "search", "--set", override, "--device", "cpu", "--out", str(out))
    assert expected in _one_line_error(code, err)
    assert not out.exists()


@pytest.mark.parametrize(
    ("args", "option"),
    [(["--method", "rdarts-l2", "--set", "method_options.weight_decay=inf"], None), (["--epochs", "0"], "--epochs")],
)
def test_bad_option_values(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, args: list[str], option: Any
) -> None:
    out = tmp_path / "run"
    code, _, err = nbh(capsys, monkeypatch, "search", *args, "--device", "cpu", "--out", str(out))
    if option:
        assert "--epochs: Input should be greater than or equal to 1" in _usage_error(code, err, option)
    else:
        assert "rdarts-l2: weight_decay: Input should be a finite number" in _one_line_error(code, err)
    assert not out.exists()


def test_epochs_option_has_an_upper_bound(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    code, _, err = nbh(capsys, monkeypatch, "search", "--epochs", "1000000000", "--device", "cpu")
    assert "--epochs: Input should be less than or equal to 10000" in _usage_error(code, err, "--epochs")


def test_a_regularizer_weight_must_be_finite(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for weight in ("inf", "nan", "0:inf"):
        code, _, err = nbh(capsys, monkeypatch, "search", "--regularizer", "entropy", "--reg-weight", weight,
                           "--device", "cpu", "--out", str(tmp_path / "run"))  # fmt: skip
        assert "finite" in _one_line_error(code, err)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--n", "1000000000"], "n must be an integer in 1..1000000, got 1000000000"),
        (["--n", "0"], "n must be an integer in 1..1000000, got 0"),
        (["--method", "regularized-evolution", "--population", "10000000"], "population must be an integer in 2.."),
        (["--seed", "-1"], "seed must be an integer >= 0, got -1"),
    ],
)
def test_absurd_baseline_options_are_refused_before_any_table_is_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, args: list[str], expected: str
) -> None:
    out = tmp_path / "run"
    nothing = str(tmp_path / "nothing")
    code, _, err = nbh(capsys, monkeypatch, "baseline", *args, "--data-dir", nothing, "--out", str(out))
    assert expected in _one_line_error(code, err)
    assert not out.exists()


def test_a_batch_larger_than_the_training_split_is_refused(tmp_path: Path, synthetic_nb201: Any) -> None:
    with pytest.raises(ConfigError, match=r"batch_size 100000 is more than the 48 search-train images; use 2\.\.48"):
        tiny_search(tmp_path, synthetic_nb201, batch_size=100000)
    assert not (tmp_path / "run" / "manifest.json").exists()


# --- divergence: the advice follows the config ----------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "says", "never"),
    [
        ({"optim": {"lr": 1e30}}, "Gradient clipping is already on (optim.grad_clip=5): lower the learning rate",
         "enable gradient clipping"),
        ({"optim": {"lr": 1e30, "grad_clip": None}}, "or enable gradient clipping (--set optim.grad_clip=5)",
         "already on"),
        ({"arch_optim": {"lr": 1e30}}, "The alphas diverged: lower their learning rate (--set arch_optim.lr=..., "
         "now 1e+30)", "optim.grad_clip"),
        ({"optim": {"lr": 1e30}, "plugins": [{"ref": "entropy"}]}, "or the weight of the extra loss terms (Entropy)",
         "enable gradient clipping"),
    ],
)  # fmt: skip
def test_the_divergence_advice_depends_on_the_config(
    tmp_path: Path, synthetic_nb201: Any, overrides: dict[str, Any], says: str, never: str
) -> None:
    with pytest.raises(TrainingError) as info:
        tiny_search(tmp_path, synthetic_nb201, **overrides)
    message = str(info.value)
    assert "in epoch 1, step " in message and "keeps the epochs already written" in message
    assert says in message and never not in message
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["status"] == "failed" and says in manifest["error"]


# --- compare and check-regularizer thresholds -----------------------------------------------


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--threshold", "nan"], "--threshold nan: the largest tolerated drop must be <= 0 and finite"),
        (["--threshold", "inf"], "--threshold inf: the largest tolerated drop must be <= 0 and finite"),
        (["--threshold", "-inf"], "--threshold -inf: the largest tolerated drop must be <= 0 and finite"),
        (["--threshold", "0.5"], "--threshold 0.5: the largest tolerated drop must be <= 0 and finite"),
        (["--alpha", "nan"], "--alpha must lie between 0 and 1"),
        (["--alpha", "1.5"], "--alpha must lie between 0 and 1"),
    ],
)
def test_compare_refuses_non_finite_thresholds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, args: list[str], expected: str
) -> None:
    write_sweep(tmp_path / "base", ["darts"], [0, 1])
    write_sweep(tmp_path / "cand", ["sdarts"], [0, 1])
    before = sorted((p, p.stat().st_mtime_ns) for p in tmp_path.rglob("*"))
    code, out, err = nbh(capsys, monkeypatch, "compare", "-b", str(tmp_path / "base"), "-c", str(tmp_path / "cand"),
                         *args)  # fmt: skip
    assert expected in _one_line_error(code, err) and not out
    assert sorted((p, p.stat().st_mtime_ns) for p in tmp_path.rglob("*")) == before


def test_compare_refuses_a_negative_bootstrap_seed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    write_sweep(tmp_path / "base", ["darts"], [0, 1])
    write_sweep(tmp_path / "cand", ["sdarts"], [0, 1])
    code, _, err = nbh(capsys, monkeypatch, "compare", "-b", str(tmp_path / "base"), "-c", str(tmp_path / "cand"),
                       "--seed", "-1")  # fmt: skip
    _usage_error(code, err, "--seed")


def test_check_regularizer_refuses_a_nan_threshold_before_training(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    suite = _suite(tmp_path)
    code, _, err = nbh(capsys, monkeypatch, "check-regularizer", "entropy", "--suite", str(suite), "--threshold", "nan",
                       "--root", str(tmp_path / "r"), "--device", "cpu")  # fmt: skip
    assert "--threshold nan: the largest tolerated drop must be <= 0 and finite" in _one_line_error(code, err)
    assert not (tmp_path / "r").exists()


# --- suite files ---------------------------------------------------------------------------------

SUITE_CASES = [
    (("seeds: [0, 1]", "seeds: [0, 0]"), "line 6: seeds: 0 is listed twice"),
    (("seeds: [0, 1]", "seeds:\n  - 3\n  - 1\n  - 3"), "line 9: seeds: 3 is listed twice"),
    (("seeds: [0, 1]", "seeds: [0, -1]"), "line 6: seeds: seeds are integers >= 0, got -1"),
    (("spaces: [nb201]", "spaces: [nb201, nb201]"), "line 4: spaces: 'nb201' is listed twice"),
    (("datasets: [cifar10]", "datasets: [cifar10, CIFAR10]"), "line 5: datasets: 'cifar10' is listed twice"),
    (("datasets: [cifar10]", "datasets: [mnist]"), "line 5: datasets: unknown data set 'mnist'"),
    (("  - darts\n", "  - darts\n  - darts\n"), "line 9: methods: 'darts' is listed twice"),
    (("  - darts\n", "  - darts\n  - {name: darts}\n"), "line 9: methods: 'darts' is listed twice"),
    (("[0.0027]", "[0.0027, 0.0027]"), "line 10: methods.1.options.weight_decay: 0.0027 is listed twice"),
    (("[0.0027]}", "[0.0027, 0.001]}\n  - name: rdarts-l2\n    options: {weight_decay: [0.001]}"),
     "line 11: methods.2: plans the run tiny/cpu/nb201/cifar10/rdarts-l2-weight_decay=0.001/seed-0 a second time"),
    (("[0.0027]", "[.inf]"), "line 9: bad method_options for rdarts-l2: weight_decay: Input should be a finite number"),
    (("  epochs: 1\n", "  epochs: 1\n  optim: {lrr: 0.1}\n"), "line 13: overrides.optim.lrr: unknown key"),
    (("  epochs: 1\n", "  epochs: 1\n  optim: {lr: .inf}\n"),
     "line 13: overrides.optim.lr: Input should be a finite number (got inf)"),
    (("  epochs: 1\n", "  epochs: 0\n"), "line 12: overrides.epochs: Input should be greater than or equal to 1"),
    (("channels: 4}", "channels: 100000}"), "line 14: overrides.model.channels: Input should be less than or equal"),
    (("  cpu: {}", "  cpu: {optim: {lr: -1}}"), "line 18: variants.cpu.optim.lr: Input should be greater than 0"),
    (("  cpu: {}", "  cpu:\n    optim: {lr: 0.0001}"), "line 19: variants.cpu.optim: lr_min (0.001) must not exceed"),
    (("  cpu: {}", "  cpu: 5"), "line 18: variants.cpu: Input should be a valid dictionary"),
    (("seeds: [0, 1]", "seeds: [0, 1]\nseeds: [2]"), "line 7: key 'seeds' appears twice"),
    (("seeds: [0, 1]", "? [0, 1]\n: x"), "line 6: a key must be a name or a number, not a list"),
]  # fmt: skip


@pytest.mark.parametrize(("change", "expected"), SUITE_CASES)
def test_bad_suites_name_the_file_and_line(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    change: tuple[str, str],
    expected: str,
) -> None:
    text = textwrap.dedent(SUITE)
    assert change[0] in text
    suite = _suite(tmp_path, text.replace(*change, 1))
    before = suite.read_bytes()
    code, _, err = nbh(capsys, monkeypatch, "sweep", str(suite), "--dry-run", "--root", str(tmp_path / "r"))
    message = _one_line_error(code, err)
    assert f"{suite}, {expected}" in message, message
    assert suite.read_bytes() == before and not (tmp_path / "r").exists()


def _recursive(path: Path) -> None:
    path.write_text("name: &a [*a]\n")


def _laughs(path: Path) -> None:
    lines = ['a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 8)]
    path.write_text("\n".join(lines) + "\n")


BAD_FILES = {
    "a list": (lambda p: p.write_text("- name: tiny\n"), "a suite is a mapping of keys (name, reproduces"),
    "empty": (lambda p: p.write_text(""), "got an empty file"),
    "a directory": (lambda p: p.mkdir(), "is a directory; give a YAML file"),
    "not UTF-8": (lambda p: p.write_bytes(b"name: \xff\xfe tiny\n"), "is not a UTF-8 text file"),
    "huge": (lambda p: p.write_bytes(b"# " + b"x" * (2 << 20) + b"\n"), "is larger than 1024 KiB"),
    "recursive alias": (_recursive, "line 1: an alias refers to a value that contains it"),
    "billion laughs": (_laughs, "more than 100000 values once its aliases (*name) are expanded"),
    "nested too deeply": (lambda p: p.write_text("a: " + "[" * 5000 + "]" * 5000), "nests lists or mappings too deep"),
    "not YAML": (lambda p: p.write_text("name: [tiny\n"), "line 2, column 1: not valid YAML"),
    "missing": (lambda p: None, "cannot read"),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_suite_files_that_are_not_suites(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    make, expected = BAD_FILES[case]
    path = tmp_path / "suite.yaml"
    make(path)
    started = time.monotonic()
    code, _, err = nbh(capsys, monkeypatch, "sweep", str(path), "--dry-run", "--root", str(tmp_path / "r"))
    message = _one_line_error(code, err)
    assert str(path) in message and expected in message, message
    assert time.monotonic() - started < 30 and not (tmp_path / "r").exists()


# --- two sweeps of one suite at once --------------------------------------------------------


def test_a_busy_report_never_replaces_the_other_sweeps_outcome(tmp_path: Path, synthetic_data_dir: Path) -> None:
    """Sweep B finds run 0 held by sweep A, which then finishes every run before B writes again:
    B's last write must not bring back "busy" (it did: each sweep replaced the file by its own view)."""
    suite = _suite(tmp_path, SUITE.replace("      - name: rdarts-l2\n        options: {weight_decay: [0.0027]}\n", ""))
    runs = expand(load_suite(suite), "cpu", tmp_path / "r")
    where = tmp_path / "r" / "tiny" / "cpu"
    held = FileLock(str(runs[0].path) + ".lock")
    runs[0].path.parent.mkdir(parents=True)
    held.acquire()
    seen: list[str] = []

    def sweep_a_finishes_meanwhile(outcome: Any) -> None:
        seen.append(outcome.status)
        if outcome.status == "busy":
            held.release()
            run_sweep(runs, where, workers=1, threads=1, data_dir=synthetic_data_dir)

    try:
        run_sweep(runs, where, workers=1, threads=1, data_dir=synthetic_data_dir, on_outcome=sweep_a_finishes_meanwhile)
    finally:
        if held.is_locked:
            held.release()
    assert seen == ["busy", "finished"]
    recorded = json.loads((where / SWEEP_FILE).read_text())
    assert recorded["counts"] == {"finished": 2}
    assert {r["status"] for r in recorded["runs"].values()} == {"finished"} and set(recorded["runs"]) == {
        r.run_id for r in runs
    }


def test_two_sweep_processes_at_once_leave_a_consistent_sweep_json(tmp_path: Path, synthetic_data_dir: Path) -> None:
    suite = _suite(
        tmp_path,
        SUITE.replace("seeds: [0, 1]", "seeds: [0, 1, 2]").replace(
            "      - name: rdarts-l2\n        options: {weight_decay: [0.0027]}\n", ""
        ),
    )
    root = tmp_path / "r"
    command = [sys.executable, "-m", "nasbench_harness.cli.main", "sweep", str(suite), "--root", str(root),
               "--data-dir", str(synthetic_data_dir), "--device", "cpu"]  # fmt: skip
    procs = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=300) for p in procs]
    # a run the other sweep was training is busy here: incomplete, exit 1, and said so
    for proc, (out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0 or (proc.returncode == 1 and "busy ones are held by another sweep" in out), (
            out,
            err,
        )
    recorded = json.loads((root / "tiny" / "cpu" / SWEEP_FILE).read_text())
    assert recorded["counts"] == {"finished": 3}, recorded
    assert all(entry["status"] == "finished" for entry in recorded["runs"].values())
    for run in expand(load_suite(suite), "cpu", root):
        assert json.loads((run.path / "manifest.json").read_text())["status"] == "finished"


def test_a_sweep_forgets_runs_an_edited_suite_no_longer_plans(tmp_path: Path, synthetic_data_dir: Path) -> None:
    suite = _suite(tmp_path, SUITE.replace("      - name: rdarts-l2\n        options: {weight_decay: [0.0027]}\n", ""))
    where = tmp_path / "r" / "tiny" / "cpu"
    run_sweep(expand(load_suite(suite), "cpu", tmp_path / "r"), where, threads=1, data_dir=synthetic_data_dir)
    suite.write_text(suite.read_text().replace("seeds: [0, 1]", "seeds: [0]"))
    run_sweep(expand(load_suite(suite), "cpu", tmp_path / "r"), where, threads=1, data_dir=synthetic_data_dir)
    recorded = json.loads((where / SWEEP_FILE).read_text())
    assert recorded["counts"] == {"finished": 1} and list(recorded["runs"]) == ["tiny/cpu/nb201/cifar10/darts/seed-0"]
