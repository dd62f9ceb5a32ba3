"""Baseline-vs-candidate statistics (against scipy), every verdict branch, pairing, and `nbh compare`."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from analysis_runs import write_run, write_sweep
from scipy import stats
from test_cli import nbh

from nasbench_harness.analysis.runs import load_runs
from nasbench_harness.analysis.stats import compare_runs, compare_values, lower_is_better
from nasbench_harness.errors import ConfigError, UnknownMetricError

BASE = np.array([90.1, 89.7, 90.4, 90.0, 89.5, 90.8, 90.2, 89.9])
UPS = np.array([1.1, 0.8, 1.4, 0.9, 1.2, 1.0, 1.3, 0.7])


def test_paired_statistics_match_scipy() -> None:
    cand = BASE + UPS
    out = compare_values(BASE, cand, paired=True)
    assert out["test"] == "wilcoxon" and out["n_baseline"] == out["n_candidate"] == 8
    assert out["p_value"] == pytest.approx(stats.wilcoxon(cand, BASE).pvalue)
    assert out["p_value"] == pytest.approx(2 / 2**8)  # exact: all differences positive
    assert out["min_p"] == pytest.approx(2 / 2**8)
    assert out["difference"] == pytest.approx(UPS.mean())
    assert out["median_baseline"] == pytest.approx(np.median(BASE))
    assert UPS.min() <= out["ci_low"] < UPS.mean() < out["ci_high"] <= UPS.max()
    assert compare_values(BASE, cand, paired=True) == out  # seeded


def test_unpaired_statistics_match_scipy() -> None:
    cand = np.array([91.0, 91.5, 90.9, 92.0, 91.2])
    out = compare_values(BASE, cand, paired=False)
    assert out["test"] == "mann-whitney"
    assert out["p_value"] == pytest.approx(stats.mannwhitneyu(cand, BASE, alternative="two-sided").pvalue)
    assert out["min_p"] == pytest.approx(2 / math.comb(13, 8))
    assert out["difference"] == pytest.approx(np.median(cand) - np.median(BASE))
    assert out["ci_low"] <= out["difference"] <= out["ci_high"]


def test_verdict_improved_and_regressed() -> None:
    assert compare_values(BASE, BASE + UPS, paired=True)["verdict"] == "improved"
    down = compare_values(BASE, BASE - UPS, paired=True)
    assert down["verdict"] == "regressed" and down["ci_high"] < -0.5
    # significant, but the drop's CI reaches above the tolerated -0.5: not a regression
    small = compare_values(BASE, BASE - UPS / 2, paired=True)
    assert small["p_value"] <= 0.05 and small["ci_high"] > -0.5
    assert small["verdict"] == "inconclusive" and "crosses" in small["reason"]


def test_verdict_no_change() -> None:
    noise = np.array([0.1, -0.05, 0.08, -0.1, 0.02, -0.03, 0.06, -0.07])
    out = compare_values(BASE, BASE + noise, paired=True)
    assert out["ci_low"] >= -0.5 and out["ci_high"] <= 0.5
    assert out["verdict"] == "no change"
    # the same tight interval from 3 pairs: significance is unattainable, so never "no change"
    few = compare_values(BASE[:3], BASE[:3] + noise[:3], paired=True)
    assert few["ci_low"] >= -0.5 and few["ci_high"] <= 0.5
    assert few["verdict"] == "inconclusive" and "too few runs" in few["reason"]


def test_verdict_inconclusive_when_significance_is_unattainable() -> None:
    out = compare_values(BASE[:5], BASE[:5] + 2.0, paired=True)  # huge effect, 5 pairs: min p = 2/32 > 0.05
    assert out["min_p"] == pytest.approx(0.0625) and out["ci_low"] > 0
    assert out["verdict"] == "inconclusive" and "too few runs" in out["reason"]
    three = compare_values([1.0, 2, 3], [5.0, 6, 7], paired=False)
    assert three["min_p"] == pytest.approx(0.1) and three["verdict"] == "inconclusive"
    one = compare_values([90.0], [95.0], paired=False)
    assert one["verdict"] == "inconclusive" and math.isnan(one["p_value"])


def test_verdict_inconclusive_when_ci_crosses() -> None:
    spread = np.array([-3.0, 2.0, -1.0, 4.0, -2.0, 3.0, 1.0, -4.0])
    out = compare_values(BASE, BASE + spread, paired=True)
    assert out["p_value"] > 0.05 and out["ci_low"] < -0.5 < 0.5 < out["ci_high"]
    assert out["verdict"] == "inconclusive" and "reaches beyond" in out["reason"]


def test_lower_is_better_flips_the_direction() -> None:
    assert lower_is_better("test_regret") and lower_is_better("n_param_free") and lower_is_better("gap_final")
    assert not lower_is_better("test_acc")
    assert compare_values(BASE, BASE - UPS, paired=True, higher_is_better=False)["verdict"] == "improved"
    assert compare_values(BASE, BASE + UPS, paired=True, higher_is_better=False)["verdict"] == "regressed"


def test_threshold_must_not_be_positive() -> None:
    with pytest.raises(ConfigError, match="must be <= 0"):
        compare_values(BASE, BASE, paired=True, threshold=0.5)


def _sweeps(root: Path, base_seeds: list[int], cand_seeds: list[int], shift: float) -> tuple[Path, Path]:
    """Baseline seed s scores BASE[s]; the candidate BASE[s] + shift * (1 + UPS[s]) (test accuracy, %)."""

    def values(offset: float) -> Callable[[str, int], dict[str, float]]:
        return lambda method, seed: {"nb201_cifar10_test": float(BASE[seed] + offset * (1 + UPS[seed]))}

    write_sweep(root / "base", ["darts"], base_seeds, columns=values(0.0))
    write_sweep(root / "cand", ["sdarts"], cand_seeds, columns=values(shift))
    return root / "base", root / "cand"


def test_compare_runs_pairs_when_seeds_match(tmp_path: Path) -> None:
    base, cand = _sweeps(tmp_path, list(range(8)), list(range(8)), shift=1.0)
    write_run(base / "failed", method="darts", seed=3, epochs=2, status="failed")  # left out, counted
    [cell] = compare_runs(load_runs([base]), load_runs([cand]))
    assert cell.paired and cell.seeds == list(range(8)) and cell.test == "wilcoxon"
    assert (cell.space, cell.dataset, cell.n_baseline, cell.excluded_baseline) == ("nb201", "cifar10", 8, 1)
    assert cell.difference == pytest.approx(1.0 + UPS.mean()) and cell.verdict == "improved"


def test_compare_runs_unpaired_when_seeds_differ(tmp_path: Path) -> None:
    base, cand = _sweeps(tmp_path, list(range(5)), list(range(3, 8)), shift=1.0)
    [cell] = compare_runs(load_runs([base]), load_runs([cand]))
    assert not cell.paired and cell.test == "mann-whitney" and cell.seeds == []
    b = BASE[:5]
    c = BASE[3:8] + 1.0 + UPS[3:8]
    assert cell.p_value == pytest.approx(stats.mannwhitneyu(c, b, alternative="two-sided").pvalue)


def test_compare_runs_unknown_metric_names_the_present_ones(tmp_path: Path) -> None:
    base, cand = _sweeps(tmp_path, [0, 1], [0, 1], shift=0.0)
    with pytest.raises(UnknownMetricError, match=r"'tst_acc'; metrics present: .*test_acc"):
        compare_runs(load_runs([base]), load_runs([cand]), metric="tst_acc")


def test_cli_regression_exits_1_with_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    base, cand = _sweeps(tmp_path, list(range(8)), list(range(8)), shift=-1.0)
    code, out, _ = nbh(capsys, monkeypatch, "compare", "--baseline", str(base), "--candidate", str(cand), "--json")
    assert code == 1
    data = json.loads(out)
    assert data["regressed"] is True and data["metric"] == "test_acc" and data["threshold"] == -0.5
    [cell] = data["cells"]
    assert cell["verdict"] == "regressed" and cell["paired"] is True and cell["n_candidate"] == 8
    assert set(cell["indicators"]) == {"n_param_free", "gap_final"}
    assert cell["indicators"]["gap_final"]["difference"] == pytest.approx(0.0)


def test_cli_table_and_exit_0(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    base, cand = _sweeps(tmp_path, list(range(8)), list(range(8)), shift=1.0)
    code, out, _ = nbh(capsys, monkeypatch, "compare", "-b", str(base), "-c", str(cand))
    assert code == 0
    assert "nb201 / cifar10: paired Wilcoxon" in out and "improved" in out and "n_param_free" in out
    code, out, _ = nbh(capsys, monkeypatch, "compare", "-b", str(base), "-c", str(cand), "-m", "test_regret")
    assert code == 0 and "test_regret: no change: the values do not differ at all" in out


def test_cli_bad_input_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    base, cand = _sweeps(tmp_path, [0, 1], [0, 1], shift=0.0)
    code, out, err = nbh(capsys, monkeypatch, "compare", "-b", str(base), "-c", str(cand), "-m", "accuracy")
    assert code == 1 and out == "" and "metrics present:" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    (tmp_path / "empty").mkdir()
    code, _, err = nbh(capsys, monkeypatch, "compare", "-b", str(tmp_path / "empty"), "-c", str(cand))
    assert code == 1 and "no run directories" in err
    code, _, err = nbh(capsys, monkeypatch, "compare", "-b", str(base), "-c", str(cand), "--threshold", "1")
    assert code == 1 and "must be <= 0" in err


def test_cell_on_one_side_only_is_inconclusive(tmp_path: Path) -> None:
    base, cand = _sweeps(tmp_path, list(range(8)), list(range(8)), shift=1.0)
    write_sweep(base, ["darts"], [0, 1], dataset="cifar100")
    cells = compare_runs(load_runs([base]), load_runs([cand]))
    assert [(c.dataset, c.paired, c.verdict) for c in cells] == [
        ("cifar10", True, "improved"),
        ("cifar100", False, "inconclusive"),
    ]
    assert (cells[1].n_baseline, cells[1].n_candidate) == (2, 0)
