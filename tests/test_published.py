"""Published vs reproduced: the shipped ``<suite>.published.yaml`` files load, name their suite's
cells and carry the numbers their sources print; bad files are errors naming the entry; the
verdicts (within, outside, not comparable, no runs) on run directories with known numbers; the
report's section; ``nbh report --published``; ``nbh sweep --report`` finds the file by itself."""

from __future__ import annotations

import re
import subprocess
import textwrap
from pathlib import Path
from typing import Any

import pytest
from analysis_runs import write_run, write_sweep
from test_cli import nbh

from nasbench_harness.analysis.published import (
    MIN_TOLERANCE,
    PublishedEntry,
    compare_published,
    load_published,
    published_for_suite,
)
from nasbench_harness.analysis.runs import load_runs
from nasbench_harness.errors import ConfigError
from nasbench_harness.execution.suite import load_suite
from nasbench_harness.report.build import build_report

SUITES = Path(__file__).parents[1] / "benchmarks" / "suites"
PUBLISHED = ("nb201-robust", "rdarts-eigenvalue", "nb1shot1-regret", "nb201-paper")
MIRRORS = Path("/work/.mirror")
CITED = re.compile(r"(?P<repo>[\w.-]+/[\w.-]+)@(?P<commit>[0-9a-f]{7,40}) (?P<file>[\w./-]+):(?P<line>\d+)")


# -- the shipped files ------------------------------------------------------------------------
@pytest.mark.parametrize("name", PUBLISHED)
def test_shipped_files_account_for_every_cell_of_their_suite(name: str) -> None:
    suite = load_suite(SUITES / f"{name}.yaml")
    published = load_published(SUITES / f"{name}.published.yaml")
    assert published_for_suite(SUITES / f"{name}.yaml") == SUITES / f"{name}.published.yaml"
    assert published.suite == suite.name
    cells = {(m.name, s, d) for m in suite.methods for s in suite.spaces for d in suite.datasets}
    entered = {(e.method, e.space, e.dataset) for e in published.entries}
    gaps = {(m, s, d) for g in published.not_sourced for m in g.methods for s in g.spaces for d in g.datasets}
    assert entered <= cells, f"entries outside the suite: {entered - cells}"
    assert gaps <= cells, f"not_sourced outside the suite: {gaps - cells}"
    assert not entered & gaps, f"both entered and not sourced: {entered & gaps}"
    assert entered | gaps == cells, f"suite cells neither entered nor listed as not sourced: {cells - entered - gaps}"
    for entry in published.entries:
        assert CITED.search(entry.source), f"{entry.method}: the source names no repo@commit file:line"
        assert entry.preset in suite.variants


def test_key_values_are_the_ones_copied() -> None:
    robust = {e.method: e for e in load_published(SUITES / "nb201-robust.published.yaml").entries}
    assert (robust["darts"].mean, robust["darts"].std, robust["darts"].n) == (54.30, 0.0, None)
    assert (robust["drnas"].mean, robust["drnas"].std) == (94.36, 0.0)
    assert robust["darts"].text() == "54.30 ± 0.00"
    assert all(e.metric == "test_acc" and e.preset == "paper" for e in robust.values())
    (rdarts,) = load_published(SUITES / "rdarts-eigenvalue.published.yaml").entries
    assert (rdarts.method, rdarts.mean, rdarts.std) == ("darts", 54.30, 0.0)
    assert load_published(SUITES / "nb1shot1-regret.published.yaml").entries == ()
    paper = {(e.method, e.metric): e for e in load_published(SUITES / "nb201-paper.published.yaml").entries}
    assert (paper["gdas", "test_acc"].mean, paper["gdas", "test_acc"].std, paper["gdas", "test_acc"].n) == (
        93.61,
        0.09,
        3,
    )
    assert paper["gdas", "nb201_imagenet16_120_test"].mean == 41.71 and paper["enas", "test_acc"].mean == 54.30
    assert paper["darts-2nd", "nb201_cifar100_test"].text() == "15.61 ± 0.00"


def _mirror_line(repo: str, commit: str, file: str, line: int) -> str | None:
    root = MIRRORS / repo.replace("/", "+") / "repo"
    git_dir = root / ".git" if (root / ".git").is_dir() else root
    if not git_dir.is_dir():
        return None
    shown = subprocess.run(
        ["git", "--git-dir", str(git_dir), "show", f"{commit}:{file}"], capture_output=True, text=True, check=False
    )
    return shown.stdout.splitlines()[line - 1] if shown.returncode == 0 else None


@pytest.mark.parametrize("name", PUBLISHED)
def test_values_equal_the_cited_line_of_the_mirrored_source(name: str) -> None:
    """Each entry's mean and std, as the source prints them, are on the line its source cites
    (read from the mirrored repository where this machine has it)."""
    checked = 0
    for entry in load_published(SUITES / f"{name}.published.yaml").entries:
        cited = CITED.search(entry.source)
        assert cited is not None
        text = _mirror_line(cited["repo"], cited["commit"], cited["file"], int(cited["line"]))
        if text is None:
            continue
        numbers = re.findall(r"\d+\.\d+", text)
        assert f"{entry.mean:.2f}" in numbers, f"{entry.method}: {entry.mean:.2f} not on the cited line {text!r}"
        if entry.std is not None:
            shown = re.search(rf"{entry.mean:.2f}\**\s*(&pm;|±)\s*(\d+\.\d+)", text)
            assert shown and float(shown.group(2)) == entry.std, f"{entry.method}: std not on {text!r}"
        checked += 1
    if not checked and load_published(SUITES / f"{name}.published.yaml").entries:
        pytest.skip("the cited repositories are not mirrored on this machine")


# -- bad files --------------------------------------------------------------------------------
GOOD_ENTRY = """\
    - method: darts
      space: nb201
      dataset: cifar10
      metric: test_acc
      mean: 54.30
      std: 0.00
      n: 4
      preset: paper
      source: a paper, table 1, row DARTS
"""


def _file(tmp_path: Path, entries: str, head: str = "suite: tiny\n") -> Path:
    path = tmp_path / "tiny.published.yaml"
    path.write_text(head + "entries:\n" + textwrap.indent(textwrap.dedent(entries), "  "), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("n: 4", "n: 4\n      colour: red"), r"entries\[0\] \(darts, nb201, cifar10\): unknown key\(s\) colour"),
        (("      std: 0.00\n", ""), r"entries\[0\] \(darts, nb201, cifar10\): missing std"),
        (("mean: 54.30", "mean: high"), r"entries\[0\] \(darts, nb201, cifar10\): mean: a number .*'high'"),
        (("mean: 54.30", "mean: .nan"), r"mean: a number"),
        (("mean: 54.30", "mean: true"), r"mean: a number"),
        (("std: 0.00", "std: -1"), r"std: a standard deviation is >= 0"),
        (("n: 4", "n: 2.5"), r"n: a number of runs"),
        (("preset: paper", "preset: laptop"), r"preset: unknown preset 'laptop'"),
        (("metric: test_acc", "metric: valid_acc"), r"metric: 'valid_acc' is not a final accuracy of nb201"),
        (("dataset: cifar10", "dataset: mnist"), r"dataset: unknown data set 'mnist'"),
        (("space: nb201", "space: nb999"), r"space: unknown space 'nb999'"),
        (("source: a paper, table 1, row DARTS", "source: ''"), r"source: a non-empty text"),
    ],
)
def test_a_bad_entry_is_an_error_naming_the_file_and_entry(
    tmp_path: Path, change: tuple[str, str], message: str
) -> None:
    path = _file(tmp_path, GOOD_ENTRY.replace(*change))
    with pytest.raises(ConfigError, match=message) as error:
        load_published(path)
    assert str(path) in str(error.value)


def test_bad_file_shapes_are_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"entries\[1\] \(darts, nb201, cifar10\): the same method.*entries\[0\]"):
        load_published(_file(tmp_path, GOOD_ENTRY + GOOD_ENTRY))
    with pytest.raises(ConfigError, match=r"unknown key\(s\) sources"):
        load_published(_file(tmp_path, GOOD_ENTRY, head="sources: []\n"))
    path = tmp_path / "none.published.yaml"
    path.write_text("suite: tiny\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="no 'entries'"):
        load_published(path)
    gap = "not_sourced:\n  - {methods: [gdas], spaces: [nb201], reason: none}\n"
    with pytest.raises(ConfigError, match=r"not_sourced\[0\]: needs exactly .*missing: datasets"):
        load_published(_file(tmp_path, "[]\n", head=gap))
    assert load_published(_file(tmp_path, GOOD_ENTRY)).entries[0].n == 4  # the good one loads


# -- verdicts ---------------------------------------------------------------------------------
def _entry(mean: float, std: float | None = 0.2, method: str = "darts", preset: str = "paper") -> PublishedEntry:
    return PublishedEntry(method, "nb201", "cifar10", "test_acc", mean, std, 3, preset, "synthetic")


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """darts at preset paper, seeds 0-2: final test accuracy 85 + seed / 10 (mean 85.1, std 0.1);
    sdarts-rs at preset cpu; a failed drnas run at paper."""
    root = tmp_path / "runs"
    write_sweep(root, ["darts"], [0, 1, 2], preset="paper")
    write_sweep(root / "cpu", ["sdarts-rs"], [0, 1], preset="cpu")
    write_run(root / "failed", method="drnas", seed=0, epochs=2, status="failed", preset="paper", error="boom")
    return root


@pytest.fixture
def runs(root: Path) -> Any:
    return load_runs([root])


def test_verdicts(runs: Any) -> None:
    entries = [
        _entry(85.0, 0.2),  # |+0.10| within max(0.2, 0.5)
        _entry(83.0, 1.5),  # |+2.10| > 1.5
        _entry(85.6, 0.0),  # std 0: the 0.5 floor; |-0.50| is within
        _entry(84.5, None),  # no std published: the floor; |+0.60| is outside
        _entry(85.1, 0.1, method="sdarts-rs"),  # only cpu runs
        _entry(94.36, 0.0, method="gdas"),  # no runs at all
        _entry(94.36, 0.0, method="drnas"),  # a run, but it failed
    ]
    rows = compare_published(runs, entries)
    assert [r.verdict for r in rows] == [
        "within",
        "outside",
        "within",
        "outside",
        "not comparable",
        "no runs",
        "no runs",
    ]
    within, outside, floor, no_std, other_preset, none, failed = rows
    assert within.ours.n == 3 and within.ours.mean == pytest.approx(85.1) and within.ours.std == pytest.approx(0.1)
    assert within.difference == pytest.approx(0.1) and within.tolerance == MIN_TOLERANCE
    assert within.ours_text() == "85.10 ± 0.10"
    assert outside.tolerance == 1.5 and "published std (1.50)" in outside.reason
    assert floor.tolerance == MIN_TOLERANCE and "0.5-point floor" in floor.reason
    assert "no std published" in no_std.reason and no_std.difference == pytest.approx(0.6)
    assert other_preset.presets == ("cpu",) and other_preset.ours.n == 2
    assert "preset cpu" in other_preset.reason and "--preset paper" in other_preset.reason
    assert none.ours.n == 0 and none.ours_text() == "—" and "no runs of gdas" in none.reason
    assert "none finished" in failed.reason


def test_a_run_frame_and_a_published_path_are_accepted(runs: Any, tmp_path: Path) -> None:
    rows = compare_published(runs.runs, _file(tmp_path, GOOD_ENTRY.replace("mean: 54.30", "mean: 85.30")))
    assert [(r.entry.method, r.verdict) for r in rows] == [("darts", "within")]


# -- the report and the commands --------------------------------------------------------------
def _section(page: str) -> str:
    return page[page.index('id="published"') : page.index('id="coverage"')]


def test_report_section_has_a_row_per_published_number(root: Path) -> None:
    path = SUITES / "nb201-robust.published.yaml"
    page = build_report([root], published=path)
    section = _section(page)
    assert "Published vs reproduced" in section and 'href="#published"' in page
    darts = re.search(r"<tr><td>darts</td>(.*?)</tr>", section, re.S)
    assert darts is not None
    assert "54.30 ± 0.00 (n ?)" in darts.group(1) and "85.10 ± 0.10 (3)" in darts.group(1)
    assert "+30.80" in darts.group(1) and 'class="verdict bad">outside' in darts.group(1)
    assert "xiangning-chen/DrNAS@f2caa4d README.MD:24" in darts.group(1)
    drnas = re.search(r"<tr><td>drnas</td>(.*?)</tr>", section, re.S)
    assert drnas is not None and 'class="verdict unknown">no runs' in drnas.group(1)
    assert "No published number could be cited for:" in section and "sp-darts on nb201" in section
    assert 'id="published"' not in build_report([root])


def test_report_cli_takes_published(
    root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "r.html"
    published = _file(tmp_path, GOOD_ENTRY.replace("mean: 54.30", "mean: 85.30"))
    code, stdout, err = nbh(capsys, monkeypatch, "report", str(root), "-o", str(out), "--published", str(published))
    assert code == 0, err
    assert str(out) in stdout and 'class="verdict good">within' in _section(out.read_text())
    bad = _file(tmp_path, GOOD_ENTRY.replace("mean: 54.30", "mean: high"))
    code, _, err = nbh(capsys, monkeypatch, "report", str(root), "-o", str(out), "--published", str(bad))
    assert code == 1 and "mean: a number" in err


def test_sweep_report_passes_the_suites_published_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """No run trains: the sweep's executor returns no outcomes and the report is a stand-in."""
    import nasbench_harness.execution.local as local
    import nasbench_harness.report.build as build

    suite = tmp_path / "tiny.yaml"
    suite.write_text(
        "name: tiny\nreproduces: a smoke test\ncommand: nbh sweep tiny.yaml\nspaces: [nb201]\n"
        "datasets: [cifar10]\nseeds: [0]\nmethods: [darts, drnas]\nvariants: {cpu: {}}\n",
        encoding="utf-8",
    )
    seen: list[Any] = []

    def write_report(paths: Any, out: Any, *args: Any, **kwargs: Any) -> Path:
        seen.append(kwargs.get("published"))
        return Path(out)

    monkeypatch.setattr(local, "run_sweep", lambda runs, *a, **k: [])
    monkeypatch.setattr(build, "write_report", write_report)
    args = ["sweep", str(suite), "--root", str(tmp_path / "results"), "--device", "cpu"]
    code, _, err = nbh(capsys, monkeypatch, *args, "--report", str(tmp_path / "r.html"))
    assert code == 0, err
    _file(tmp_path, GOOD_ENTRY)  # tiny.published.yaml next to tiny.yaml
    code, _, err = nbh(capsys, monkeypatch, *args, "--report", str(tmp_path / "r.html"))
    assert code == 0, err
    assert seen == [None, tmp_path / "tiny.published.yaml"]
