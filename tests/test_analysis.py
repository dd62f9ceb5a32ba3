"""Loading run directories into frames: identity, derived columns, aggregates, filters, errors."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from analysis_runs import default_columns, write_baseline, write_run, write_sweep

from nasbench_harness.analysis.runs import aggregate, final_table, find_runs, load_runs
from nasbench_harness.errors import ConfigError, RunDirError, UnknownMetricError


@pytest.fixture
def results(tmp_path: Path) -> Path:
    root = tmp_path / "results"
    write_sweep(root, ["darts", "sdarts"], [0, 1, 2])
    write_run(root / "failed-early", method="darts", seed=7, epochs=0, status="failed", error="NaN loss")
    write_run(root / "failed-late", method="darts", seed=8, epochs=3, status="failed", error="interrupted")
    write_run(root / "nb1shot1", space="nb1shot1-2", method="darts", seed=0, epochs=4)
    write_baseline(root / "rs", method="random-search", seed=0, n=10)
    return root


def test_find_runs(results: Path, tmp_path: Path) -> None:
    found = find_runs([results])
    assert len(found) == 10 and found == sorted(found)
    one = results / "nb201/cifar10/darts/cpu/seed-0"
    assert find_runs([one, results / "nb201"]) == sorted(p for p in found if "nb201" in str(p))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match=r"no run directories .* in .*empty"):
        find_runs([tmp_path / "empty"])
    with pytest.raises(ConfigError, match="does not exist"):
        find_runs([tmp_path / "nowhere"])


def test_runs_frame_keeps_every_run(results: Path) -> None:
    runs = load_runs([results]).runs.set_index("path")
    assert len(runs) == 10
    assert sorted(runs["status"].value_counts().items()) == [("failed", 2), ("finished", 8)]
    early = runs.loc[str(results / "failed-early")]
    assert early["epochs"] == 0 and early["error"] == "NaN loss" and math.isnan(early["final_test_acc"])
    late = runs.loc[str(results / "failed-late")]
    assert late["epochs"] == 3 and late["final_test_acc"] == pytest.approx(80 + 3 + 0.8)
    base = runs.loc[str(results / "rs")]
    assert (base["kind"], base["preset"], base["epochs"], base["final_test_acc"]) == ("baseline", "table", 10, 90.0)
    darts = runs.loc[str(results / "nb201/cifar10/darts/cpu/seed-2")]
    assert (darts["kind"], darts["space"], darts["dataset"], darts["method"], darts["seed"]) == (
        "search",
        "nb201",
        "cifar10",
        "darts",
        2,
    )
    assert darts["final_test_acc"] == pytest.approx(85.2) and darts["answer_epoch"] == 5
    assert darts["final_n_param_free"] == 5 % 4 and darts["final_gap_final"] == pytest.approx(15.0)


def test_epochs_frame_and_identity(results: Path) -> None:
    loaded = load_runs([results])
    epochs = loaded.epochs
    assert list(epochs.columns[:9]) == [
        "path",
        "kind",
        "space",
        "dataset",
        "method",
        "seed",
        "preset",
        "status",
        "epoch",
    ]
    assert len(epochs) == 6 * 5 + 3 + 4 + 10
    assert epochs.groupby("path")["answer"].sum().eq(1).all()  # one answer row per run with epochs
    assert epochs.loc[epochs["kind"] == "baseline", "epoch"].isna().all()
    assert len(loaded.answers()) == 9


def test_derived_columns_nb201(tmp_path: Path) -> None:
    cols = default_columns("nb201", seed=0, epochs=6)
    path = write_run(
        tmp_path / "run",
        dataset="ImageNet16-120",
        epochs=6,
        nb201_imagenet16_120_test=[60.0, 61, 62, 63, 64, 65],
        nb201_imagenet16_120_valid=[59.0, 60, 61, 62, 63, 64],
        eigenvalue=[0.1, None, 0.3, 0.5, None, 0.9],
        n_parameter_free=[0, 1, 2, 3, 4, 5],
    )
    epochs = load_runs([path]).epochs
    assert epochs["test_acc"].tolist() == [60.0, 61, 62, 63, 64, 65]
    valid = np.array(cols["valid_acc"])
    np.testing.assert_allclose(epochs["gap_table"], valid - [59.0, 60, 61, 62, 63, 64])
    np.testing.assert_allclose(epochs["gap_final"], valid - np.array(cols["final_valid_acc"]))
    np.testing.assert_allclose(epochs["test_regret"], cols["regret_test"])
    assert epochs["n_param_free"].tolist() == [0, 1, 2, 3, 4, 5]
    # trailing mean over the measured epochs only: 0.1 | 0.1,0.3 | 0.1,0.3,0.5 | 0.1,0.3,0.5,0.9
    expected = [0.1, np.nan, 0.2, 0.3, np.nan, 0.45]
    np.testing.assert_allclose(epochs["eigenvalue_smooth"], expected)
    assert epochs["early_stop_epoch"].isna().all()


def test_eigenvalue_window_is_five(tmp_path: Path) -> None:
    values = [1.0, 2, 3, 4, 5, 6, 7]
    epochs = load_runs([write_run(tmp_path / "r", epochs=7, eigenvalue=values)]).epochs
    assert epochs["eigenvalue_smooth"].iloc[-1] == pytest.approx(np.mean(values[-5:]))


def test_derived_columns_nb1shot1(tmp_path: Path) -> None:
    path = write_run(tmp_path / "run", space="nb1shot1-3", epochs=3, nb101_test_acc=[91.0, None, 93.0], n_maxpool=2)
    epochs = load_runs([path]).epochs
    assert epochs["test_acc"].iloc[0] == 91.0 and math.isnan(epochs["test_acc"].iloc[1])
    cols = default_columns("nb1shot1-3", seed=0, epochs=3)
    np.testing.assert_allclose(epochs["gap_table"], np.array(cols["valid_acc"]) - np.array(cols["nb101_valid_acc"]))
    assert epochs["n_param_free"].tolist() == [2, 2, 2]


def test_cifar100_uses_its_own_columns(tmp_path: Path) -> None:
    path = write_run(tmp_path / "run", dataset="cifar100", epochs=2, nb201_cifar100_test=[70.0, 71.0])
    runs = load_runs([path])
    assert runs.epochs["test_acc"].tolist() == [70.0, 71.0]
    assert runs.runs["final_test_acc"].iloc[0] == 71.0


def test_early_stopped_run_answers_with_its_result_epoch(tmp_path: Path) -> None:
    path = write_run(
        tmp_path / "es",
        method="darts-es",
        epochs=6,
        stopped_early="eigenvalue grew by 1.3",
        result_epoch=3,
        schedule_epoch=[1, 2, 3, 4, 5, 6],
    )
    loaded = load_runs([path])
    run = loaded.runs.iloc[0]
    assert run["stopped_early"] == "eigenvalue grew by 1.3" and run["result_epoch"] == 3
    assert run["answer_epoch"] == 3 and run["final_test_acc"] == pytest.approx(83.0)
    assert loaded.epochs["early_stop_epoch"].eq(6).all()
    assert loaded.epochs["answer"].tolist() == [False, False, True, False, False, False]


def test_aggregate_matches_numpy(results: Path) -> None:
    epochs = load_runs([results]).filter(space="nb201", status="finished", kind="search").epochs
    table = aggregate(epochs, "test_acc")
    row = table[(table["method"] == "darts") & (table["epoch"] == 4)].iloc[0]
    values = np.array([80 + 4 + s / 10 for s in (0, 1, 2)])
    assert row["n"] == 3 and row["mean"] == pytest.approx(values.mean())
    assert row["std"] == pytest.approx(values.std(ddof=1))
    assert row["sem"] == pytest.approx(values.std(ddof=1) / np.sqrt(3))
    assert list(table.columns) == ["space", "dataset", "method", "epoch", "mean", "std", "sem", "n"]


def test_aggregate_single_and_missing_values(results: Path) -> None:
    epochs = load_runs([results]).epochs
    table = aggregate(epochs, "test_acc", by=("space", "method", "epoch"))
    one = table[(table["space"] == "nb1shot1-2") & (table["epoch"] == 1)].iloc[0]
    assert one["n"] == 1 and math.isnan(one["std"]) and math.isnan(one["sem"])
    assert not (table["space"].eq("nb201") & table["method"].eq("random-search")).any()  # NA epochs form no group
    frame = pd.DataFrame({"g": ["a", "a", "b"], "v": [1.0, np.nan, np.nan]})
    out = aggregate(frame, "v", by=("g",)).set_index("g")
    assert out.loc["a", "n"] == 1 and out.loc["b", "n"] == 0 and math.isnan(out.loc["b", "mean"])
    with pytest.raises(UnknownMetricError, match=r"lacks; it has .*test_acc"):
        aggregate(epochs, "tset_acc")


def test_filter(results: Path) -> None:
    runs = load_runs([results])
    sdarts = runs.filter(method="sdarts", seed=[0, 2])
    assert len(sdarts) == 2 and set(sdarts.runs["seed"]) == {0, 2}
    assert set(sdarts.epochs["path"]) == set(sdarts.runs["path"]) and len(sdarts.epochs) == 10
    assert len(runs.filter(space="nb1shot1-2")) == 1
    assert len(runs.filter(dataset="cifar100")) == 0
    assert len(runs.filter(status="failed")) == 2


def test_final_table(results: Path) -> None:
    table = final_table(load_runs([results])).set_index(["space", "method"])
    darts = table.loc[("nb201", "darts")]
    values = np.array([85.0, 85.1, 85.2])
    assert darts["n"] == 3 and darts["n_unfinished"] == 2
    assert darts["test_acc_mean"] == pytest.approx(values.mean())
    assert darts["nb201_cifar100_test_std"] == pytest.approx(values.std(ddof=1))
    assert darts["nb201_imagenet16_120_test"] == "85.10 ± 0.10"
    assert table.loc[("nb1shot1-2", "darts"), "test_acc"] == "90.40"


def test_config_hash_and_diff(tmp_path: Path) -> None:
    write_sweep(tmp_path, ["darts"], [0, 1])
    write_run(tmp_path / "odd", method="darts", seed=5, config={"optim": {"lr": 0.05, "weight_decay": 0.0005}})
    runs = load_runs([tmp_path]).runs.set_index("path")
    assert runs["config_hash"].nunique() == 2  # seeds share a hash
    assert runs.loc[str(tmp_path / "odd"), "config_diff"] == "optim.lr"
    assert (runs.drop(index=str(tmp_path / "odd"))["config_diff"] == "").all()


def test_damaged_manifest_is_an_error(tmp_path: Path) -> None:
    path = write_run(tmp_path / "run")
    manifest = json.loads((path / "manifest.json").read_text())
    del manifest["config"], manifest["method"]
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(RunDirError, match="names no space, dataset, method"):
        load_runs([path])


def test_analysis_does_not_import_torch() -> None:
    code = (
        "import sys, nasbench_harness.analysis.runs, nasbench_harness.analysis.stats, nasbench_harness.cli.compare; "
        "assert 'torch' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_run_with_plugins_is_its_own_method_variant(tmp_path: Path) -> None:
    plain = write_run(tmp_path / "plain", method="darts", seed=0)
    plugged = write_run(
        tmp_path / "plugged", method="darts", seed=0, config={"plugins": [{"ref": "my_reg.py:SkipPenalty"}]}
    )
    runs = load_runs([plain, plugged]).runs.set_index("path")
    assert runs.loc[str(plain), "method"] == "darts"
    assert runs.loc[str(plugged), "method"] == "darts+SkipPenalty"
