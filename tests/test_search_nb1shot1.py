"""Searches on the three NB-1Shot1 spaces: two-epoch runs with every column (scored on a small
NB101 table: numbers when the cell is in it, an explicit marker when it is not), scores of a cell
of the real NB101 table against the spaces' published optima, final nets, the correlation column."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from tiny import alphas, tiny_search, trajectory

from nasbench_harness.config import build_config
from nasbench_harness.errors import ConfigError
from nasbench_harness.methods.engine.adapters import get_search_space
from nasbench_harness.spaces.nb1shot1 import get_space, iter_genotypes
from nasbench_harness.spaces.nb1shot1_derive import genotype_weights

pytestmark = pytest.mark.usefixtures("one_thread")

COLUMNS = {
    "train_loss", "train_acc", "valid_loss", "valid_acc", "final_valid_acc", "gap", "genotype", "module_hash",
    "n_maxpool", "input_output_weight", "input_output_dominates", "in_benchmark", "benchmark_status",
    "nb101_valid_acc", "nb101_test_acc", "regret_valid", "regret_test", "eigenvalue", "lr", "arch_lr",
    "epoch_time_s", "tracking_time_s", "wall_time_s",
}  # fmt: skip


@pytest.mark.parametrize("space", ["nb1shot1-1", "nb1shot1-2", "nb1shot1-3"])
def test_two_epoch_search_on_each_space(space: str, tmp_path: Path, small_nb101: Any) -> None:
    result = tiny_search(tmp_path, small_nb101, space=space)
    rows = trajectory(result)
    assert [r["epoch"] for r in rows] == [1, 2]
    for row in rows:
        assert set(row) >= COLUMNS
        for column in COLUMNS - {"nb101_valid_acc", "nb101_test_acc", "regret_valid", "regret_test"}:
            assert row[column] is not None, column
        assert row["benchmark_status"] in {"in benchmark", "not in benchmark"}
        if row["in_benchmark"]:
            assert 0 < row["nb101_test_acc"] <= 100 and row["regret_test"] >= 0
        else:
            assert np.isnan(row["nb101_test_acc"])
    n_alphas = get_search_space(space).group_sizes
    assert len(alphas(result)) == 2 * sum(n_alphas)


@pytest.mark.data
def test_scores_of_a_cell_in_the_table_are_real_numbers(real_nb101: Any) -> None:
    adapter = get_search_space("nb1shot1-2")
    genotype = next(g for g in iter_genotypes(2) if real_nb101.row_of(g.module_hash()) is not None)
    columns = adapter.score_columns(real_nb101, genotype, "cifar10")
    assert columns["in_benchmark"] is True and columns["benchmark_status"] == "in benchmark"
    assert 50 < columns["nb101_test_acc"] < 100
    # regret in points: (1 - accuracy) - the space's best error, times 100
    best = get_space(2)
    assert columns["regret_test"] == pytest.approx(100 - columns["nb101_test_acc"] - 100 * best.test_min_error)
    assert columns["regret_valid"] == pytest.approx(100 - columns["nb101_valid_acc"] - 100 * best.valid_min_error)
    assert columns["regret_test"] >= 0 and columns["regret_valid"] >= 0


@pytest.mark.parametrize("space", [1, 2, 3])
def test_final_net_weights_derive_back_to_the_genotype(space: int) -> None:
    adapter = get_search_space(f"nb1shot1-{space}")
    for genotype in list(iter_genotypes(space))[::997][:20]:
        flat, mask = adapter.final_net(genotype, torch.device("cpu"))
        assert adapter.derive(flat, include_none=True) == genotype
        ops, output, _ = genotype_weights(genotype)
        assert mask.ops == tuple(tuple(bool(v) for v in row) for row in ops)
        assert mask.output == tuple(bool(v) for v in output)


def test_nb1shot1_is_cifar10_only() -> None:
    with pytest.raises(ConfigError, match="cifar10 only"):
        build_config("cpu", {"space": "nb1shot1-1", "dataset": "cifar100"})
    with pytest.raises(ConfigError, match=r"space: .*unknown search space 'nb1shot1-4'"):
        build_config("cpu", {"space": "nb1shot1-4"})


def test_correlation_with_the_table_is_tracked_on_nb201(
    tmp_path: Path, synthetic_nb201: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A one-shot model whose errors rank cells exactly as the table does has Spearman 1."""
    _check_correlation("nb201", synthetic_nb201, tmp_path, monkeypatch)


@pytest.mark.data
def test_correlation_with_the_table_is_tracked_on_nb1shot1(
    tmp_path: Path, real_nb101: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As on NB201; the sample needs 12 space-3 cells in the table, which the real one has."""
    _check_correlation("nb1shot1-3", real_nb101, tmp_path, monkeypatch)


def _check_correlation(space: str, bench: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from nasbench_harness.methods.engine.loop import Search

    truth: dict[str, float] = {}
    original = get_search_space(space).sample_with_truth

    def remember(self: Any, bench: Any, n: int, seed: int, dataset: str) -> list[tuple[Any, float]]:
        sample = original(bench, n, seed, dataset)
        truth.update({g.to_string(): err for g, err in sample})
        return sample

    def evaluate_like_the_table(self: Any, weights: Any, mask: Any, batch_stats: bool) -> tuple[float, float]:
        genotype = self.state.space.derive(weights, include_none=True)
        return 0.0, 100.0 - truth.get(genotype.to_string(), 50.0)

    monkeypatch.setattr(type(get_search_space(space)), "sample_with_truth", remember)
    monkeypatch.setattr(Search, "evaluate", evaluate_like_the_table)
    result = tiny_search(tmp_path, bench, space=space, epochs=1, tracking={"eigen_every": 0, "correlation_sample": 12})
    assert len(truth) == 12
    assert trajectory(result)[0]["spearman_valid"] == pytest.approx(1.0)
