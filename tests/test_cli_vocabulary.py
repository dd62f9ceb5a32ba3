"""One CLI vocabulary: ``--space``, ``--dataset``, ``--preset``, ``--device``, ``--cache-dir`` take
the same values and mean the same thing in every command; a value outside a closed set is typer's
usage error (exit code 2); the old spellings (``--variant``, ``query nb1shot1 --space 1``) still
work with a deprecation warning; ``--cache-dir`` travels as an argument, never through
``os.environ``; check-regularizer's steps live in ``execution.regcheck``."""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path
from typing import Any

import pytest
from nb101_files import S1
from typer.testing import CliRunner

import nasbench_harness.execution.regcheck as regcheck
import nasbench_harness.methods.engine.run as engine_run
import nasbench_harness.spaces.catalog as catalog
from nasbench_harness.cli.main import app
from nasbench_harness.errors import ConfigError
from nasbench_harness.spaces.catalog import SPACE_NAMES

SUITES = Path(__file__).parents[1] / "benchmarks" / "suites"
EXAMPLE = Path(__file__).parents[1] / "examples" / "skip_penalty.py"
NB1SHOT1_NAMES = [n for n in SPACE_NAMES if n.startswith("nb1shot1-")]
TINY_SUITE = """\
    name: tiny
    reproduces: a two-method smoke test
    command: nbh sweep tiny.yaml
    spaces: [nb201, nb1shot1-1]
    datasets: [cifar10]
    seeds: [0, 1]
    methods: [darts, rdarts-l2]
    overrides: {epochs: 2}
    variants:
      cpu: {}
      paper: {}
"""


class _Stop(Exception):
    """Raised by a stand-in once it has recorded what the command passed on."""


def invoke(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


def flat(text: str) -> str:
    """Rich's error box without its frame and line breaks."""
    return " ".join(text.replace("│", " ").replace("╭", " ").replace("╰", " ").split())


def _usage_error(result: Any, option: str) -> str:
    assert result.exit_code == 2, result.output
    message = flat(result.stderr)
    assert f"Invalid value for '{option}'" in message, message
    return message


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Stand-ins at the first step of search (the table), baseline (the table) and
    check-regularizer (its plan, then its training) that record their arguments and stop."""
    seen: dict[str, Any] = {}

    def open_benchmark(space: str, data_dir: Any = None, cache_dir: Any = None) -> Any:
        seen.update(space=space, data_dir=data_dir, cache_dir=cache_dir)
        raise _Stop

    def run_search(config: Any, out: Any, **kwargs: Any) -> Any:
        seen.update(config=config, **kwargs)
        raise _Stop

    def plan_check(regularizer: str, suite: Any, **kwargs: Any) -> Any:
        seen.update(regularizer=regularizer, suite=suite, **kwargs)
        return "planned"

    def train_check(check: Any, **kwargs: Any) -> Any:
        seen.update(check=check, **kwargs)
        raise _Stop

    monkeypatch.setattr(catalog, "open_benchmark", open_benchmark)
    monkeypatch.setattr(engine_run, "open_benchmark", open_benchmark)
    monkeypatch.setattr(regcheck, "plan_check", plan_check)
    monkeypatch.setattr(regcheck, "train_check", train_check)
    seen["run_search"] = run_search
    return seen


def _stopped(result: Any) -> None:
    assert isinstance(result.exception, _Stop), (result.output, result.exception)


# --- --space ------------------------------------------------------------------------------------


@pytest.mark.parametrize("space", SPACE_NAMES)
def test_search_and_baseline_take_every_catalog_space(
    space: str, captured: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine_run, "run_search", captured["run_search"])
    _stopped(invoke("search", "--space", space, "--device", "cpu", "--out", str(tmp_path / "s")))
    assert captured["config"].space == space and captured["config"].preset == "cpu"
    _stopped(invoke("baseline", "--space", space, "--out", str(tmp_path / "b")))
    assert captured["space"] == space


@pytest.mark.parametrize("space", NB1SHOT1_NAMES[1:])
def test_query_nb1shot1_takes_the_catalog_names(space: str) -> None:
    # S1[0] is a space-1 cell: spaces 2 and 3 reject it by their own rule, so the name was read as that space
    result = invoke("query", "nb1shot1", "--space", space, S1[0])
    assert result.exit_code == 1 and str(result.exception).startswith(f"space {space[-1]}")


@pytest.mark.parametrize(
    "command",
    [
        ["search", "--out", "x"],
        ["baseline", "--out", "x"],
        ["query", "nb1shot1", S1[0]],
    ],
)
@pytest.mark.parametrize("bad", ["nb1shot1-4", "NB201", "201"])
def test_a_bad_space_is_a_usage_error_in_every_command(command: list[str], bad: str) -> None:
    message = _usage_error(invoke(*command, "--space", bad), "--space" if command[0] != "query" else "--space' / '-s")
    assert "nb1shot1-3" in message  # the error names the choices


def test_query_nb1shot1_points_nb201_at_query_nb201() -> None:
    message = _usage_error(invoke("query", "nb1shot1", "--space", "nb201", S1[0]), "--space' / '-s")
    assert "nbh query nb201" in message


def test_query_nb1shot1_bare_number_is_deprecated_but_answers_the_same(tmp_path: Path, small_nb101: Any) -> None:
    cache = str(tmp_path / "nb101-cache")  # where small_nb101 imported its table
    new = invoke("query", "nb1shot1", "--space", "nb1shot1-1", S1[0], "--json", "--cache-dir", cache)
    old = invoke("query", "nb1shot1", "--space", "1", S1[0], "--json", "--cache-dir", cache)
    short = invoke("query", "nb1shot1", "-s", "1", S1[0], "--json", "--cache-dir", cache)
    assert new.exit_code == old.exit_code == short.exit_code == 0, old.output
    assert json.loads(new.stdout)["in_benchmark"] is True
    assert old.stdout == new.stdout == short.stdout
    assert "deprecated" not in new.stderr
    assert "--space 1 is deprecated" in old.stderr and "--space nb1shot1-1" in old.stderr
    table = invoke("query", "nb1shot1", "--space", "nb1shot1-1", S1[0], "--cache-dir", cache)
    answer = json.loads(new.stdout)
    cells = [line.replace("│", " ").split() for line in table.stdout.splitlines()]
    rows = {cell[0]: cell[1:] for cell in cells if cell}
    assert rows["validation"][0] == f"{answer['validation_accuracy']:.5f}"
    assert rows["test"][:3] == [f"{answer['test_accuracy']:.5f}", f"{1 - answer['test_accuracy']:.5f}",
                                f"{answer['test_regret']:.5f}"]  # fmt: skip


# --- --dataset ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spelling", "canonical"),
    [
        ("cifar10", "cifar10"),
        ("CIFAR-100", "cifar100"),
        ("imagenet16_120", "ImageNet16-120"),
        ("imagenet16-120", "ImageNet16-120"),
    ],
)
def test_dataset_spellings_keep_working(
    spelling: str, canonical: str, captured: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine_run, "run_search", captured["run_search"])
    _stopped(invoke("search", "--dataset", spelling, "--device", "cpu", "--out", str(tmp_path / "s")))
    assert captured["config"].dataset == canonical
    captured.clear()
    _stopped(invoke("baseline", "--dataset", spelling, "--out", str(tmp_path / "b")))
    assert captured["space"] == "nb201"


@pytest.mark.parametrize("command", [["search", "--out", "x"], ["baseline", "--out", "x"], ["query", "nb201", "1"]])
def test_a_bad_dataset_is_a_usage_error_in_every_command(command: list[str]) -> None:
    option = "--dataset' / '-d" if command[0] == "query" else "--dataset"
    message = _usage_error(invoke(*command, "--dataset", "svhn"), option)
    assert "'svhn' is not one of" in message and "'ImageNet16-120'" in message


# --- --preset, --variant, --device ----------------------------------------------------------------


def test_variant_is_a_deprecated_alias_of_preset() -> None:
    suite = str(SUITES / "rdarts-eigenvalue.yaml")
    new = invoke("sweep", suite, "--dry-run", "--preset", "paper", "--device", "cpu")
    old = invoke("sweep", suite, "--dry-run", "--variant", "paper", "--device", "cpu")
    assert new.exit_code == old.exit_code == 0, old.output
    assert "rdarts-eigenvalue (paper): 27 runs." in new.stdout and old.stdout == new.stdout
    assert "deprecated" not in new.stderr and "--variant is deprecated" in old.stderr and "--preset" in old.stderr
    clash = invoke("sweep", suite, "--dry-run", "--preset", "paper", "--variant", "cpu")
    assert clash.exit_code == 2 and "disagree" in flat(clash.stderr)


def test_check_regularizer_takes_preset_variant_and_device(
    captured: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from nasbench_harness.execution import local
    from nasbench_harness.execution.resources import Capacity, Node

    two_gpus = Capacity("local", (Node(2, 2, "this machine"),), "this machine", ("0", "1"))
    monkeypatch.setattr(local, "local_capacity", lambda: two_gpus)
    _stopped(invoke("check-regularizer", "x.py:R", "--preset", "paper", "--device", "cuda:1", "--workers", "2"))
    placement = captured["placement"]
    assert captured["preset"] == "paper" and placement.device == "cuda:1" and placement.workers == 2
    assert captured["check"] == "planned" and captured["weight"] == "1" and captured["params"] == {}
    result = invoke("check-regularizer", "x.py:R", "--variant", "paper", "--device", "cpu")
    _stopped(result)
    assert captured["preset"] == "paper" and "--variant is deprecated" in result.stderr
    # the default follows the device, as for search and sweep: the suite's CPU-sized variant
    _stopped(invoke("check-regularizer", "x.py:R", "--device", "cpu", "--reg-weight", "0:2", "--reg-param", "k=3"))
    assert captured["preset"] == "collapse" and captured["placement"].device == "cpu"
    assert captured["weight"] == "0:2" and captured["params"] == {"k": 3}


@pytest.mark.parametrize(("suite", "preset"), [("quickstart", "collapse"), ("rdarts-eigenvalue", "cpu")])
def test_a_suite_on_the_cpu_defaults_to_its_cpu_sized_variant(suite: str, preset: str) -> None:
    result = invoke("sweep", str(SUITES / f"{suite}.yaml"), "--dry-run", "--device", "cpu")
    assert result.exit_code == 0 and f"{suite} ({preset}):" in result.stdout


def test_check_regularizer_takes_the_sweeps_executor_options(captured: dict[str, Any]) -> None:
    _stopped(invoke("check-regularizer", "x.py:R", "--device", "cpu", "--cpus-per-run", "1", "--workers", "2"))
    assert captured["placement"].cpus_per_run == 1 and captured["placement"].workers == 2
    result = invoke("check-regularizer", "x.py:R", "--executor", "ray", "--workers", "2")
    assert result.exit_code == 2 and "--workers" in result.stderr  # the local executor's option


def test_check_regularizer_help_lists_device_and_preset() -> None:
    result = invoke("check-regularizer", "--help")
    assert result.exit_code == 0
    executor = ("--executor", "--ray-address", "--gpus-per-run", "--cpus-per-run", "--slurm-partition", "--slurm-time")
    for option in ("--device", "--preset", "--root", "--workers", "--data-dir", *executor):
        assert option in result.stdout
    assert "--variant" not in result.stdout  # the deprecated name works but is not advertised


@pytest.mark.parametrize(
    "command",
    [
        ["search", "--out", "x"],
        ["sweep", str(SUITES / "quickstart.yaml"), "--dry-run"],
        ["check-regularizer", "x.py:R"],
    ],
)
def test_device_and_preset_are_checked_alike_everywhere(command: list[str]) -> None:
    message = _usage_error(invoke(*command, "--device", "gpu"), "--device")
    assert "use auto, cpu, cuda or cuda:N" in message
    message = _usage_error(invoke(*command, "--preset", "fast"), "--preset")
    assert "'fast' is not one of 'paper', 'cpu', 'collapse', 'common'" in message


def test_other_closed_sets_are_usage_errors() -> None:
    suite = str(SUITES / "quickstart.yaml")
    assert "registered methods: beta-darts, darts" in _usage_error(invoke("search", "--method", "dartz"), "--method")
    _usage_error(invoke("check-regularizer", "x.py:R", "--baseline-method", "dartz"), "--baseline-method")
    _usage_error(invoke("baseline", "--method", "bayesopt"), "--method")
    _usage_error(invoke("sweep", suite, "--executor", "dask"), "--executor")
    _usage_error(invoke("sweep", suite, "--workers", "0"), "--workers")
    assert "'200', '12'" in _usage_error(invoke("query", "nb201", "1", "--hp", "100"), "--hp")


# --- --cache-dir --------------------------------------------------------------------------------


def test_search_passes_cache_dir_on_without_touching_the_environment(captured: dict[str, Any], tmp_path: Path) -> None:
    import torch._inductor.config  # noqa: F401  (sets TORCHINDUCTOR_CACHE_DIR the first time; not ours)

    before = dict(os.environ)
    result = invoke("search", "--cache-dir", str(tmp_path / "c"), "--device", "cpu", "--out", str(tmp_path / "r"))
    _stopped(result)  # stopped inside run_search, where it opens the space's table
    assert captured["space"] == "nb201" and Path(captured["cache_dir"]) == tmp_path / "c"
    assert dict(os.environ) == before


def test_baseline_reads_the_table_from_cache_dir_without_touching_the_environment(
    tmp_path: Path, synthetic_data_dir: Path
) -> None:
    before = dict(os.environ)
    cache, out = tmp_path / "explicit-cache", tmp_path / "rs"
    args = ["baseline", "--n", "5", "--dataset", "cifar-100", "--data-dir", str(synthetic_data_dir)]
    result = invoke(*args, "--cache-dir", str(cache), "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "5 evaluations" in result.stdout and (out / "trajectory.parquet").is_file()
    assert (cache / "nb201").is_dir()  # imported into --cache-dir ...
    assert not Path(os.environ["NBH_CACHE_DIR"]).exists()  # ... not into $NBH_CACHE_DIR
    assert dict(os.environ) == before


# --- check-regularizer's plan (execution.regcheck) --------------------------------------------------


def test_plan_check_adds_the_regularizer_to_the_baseline_method_runs(tmp_path: Path) -> None:
    suite = tmp_path / "tiny.yaml"
    suite.write_text(textwrap.dedent(TINY_SUITE))
    check = regcheck.plan_check(
        f"{EXAMPLE}:SkipPenalty", suite, preset="cpu", root=tmp_path / "results", weight="0:1", params={"a": 1}
    )
    assert (check.suite, check.preset, check.regularizer, check.label) == (
        "tiny",
        "cpu",
        "SkipPenalty",
        "darts+SkipPenalty",
    )
    assert len(check.baselines) == 8 and len(check.chosen) == 4 and len(check.candidates) == 4
    assert all(r.config.method == "darts" and not r.config.plugins for r in check.chosen)
    first = check.candidates[0]
    assert first.path == tmp_path / "results/tiny/cpu/candidates/nb201/cifar10/darts+SkipPenalty/seed-0"
    assert first.run_id == "tiny/cpu/nb201/cifar10/darts/seed-0+SkipPenalty"
    (plugin,) = first.config.plugins
    assert plugin.ref == f"{EXAMPLE}:SkipPenalty" and plugin.params == {"a": 1}
    assert check.sweep_dir == tmp_path / "results" / "tiny" / "cpu"
    assert regcheck.default_report_path(check) == Path("reports/tiny-SkipPenalty.html")
    with pytest.raises(ConfigError, match="has no 'sdarts-rs' runs"):
        regcheck.plan_check(f"{EXAMPLE}:SkipPenalty", suite, preset="cpu", baseline_method="sdarts-rs")


def test_sweep_passes_cache_dir_to_every_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    suite = tmp_path / "tiny.yaml"
    suite.write_text(textwrap.dedent(TINY_SUITE))
    seen: list[Any] = []

    def run_search(config: Any, out: Any, **kwargs: Any) -> Any:
        seen.append(kwargs["cache_dir"])
        raise RuntimeError("recorded")

    monkeypatch.setattr(engine_run, "run_search", run_search)
    before = dict(os.environ)
    args = ["sweep", str(suite), "--preset", "cpu", "--root", str(tmp_path / "r"), "--device", "cpu"]
    result = invoke(*args, "--cache-dir", str(tmp_path / "c"))
    assert seen and all(Path(c) == tmp_path / "c" for c in seen), result.output
    assert len(seen) == 8  # every run of the grid got it (each then failed, as the stand-in does)
    assert dict(os.environ) == before


def test_check_regularizer_passes_cache_dir(captured: dict[str, Any], tmp_path: Path) -> None:
    result = invoke("check-regularizer", f"{EXAMPLE}:SkipPenalty", "--cache-dir", str(tmp_path / "c"))
    _stopped(result)
    assert Path(captured["cache_dir"]) == tmp_path / "c"


def test_figures_takes_only_known_figures(tmp_path: Path) -> None:
    message = _usage_error(invoke("figures", "histogram", str(tmp_path), "-o", str(tmp_path / "f")), "FIGURE")
    assert "'regret'" in message and "'all'" in message
