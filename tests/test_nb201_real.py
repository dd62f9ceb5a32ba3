"""The real NB201 table in NBH_DATA_DIR: published reference points (fails without the data)."""

from __future__ import annotations

import numpy as np
import pytest

from nasbench_harness.spaces.nb201 import NUM_CELLS, NB201Genotype, all_genotypes
from nasbench_harness.tabular.nb201 import NB201Benchmark
from nasbench_harness.tabular.nb201_metrics import resolve_metric

pytestmark = pytest.mark.data

BEST_C100 = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
ALL_SKIP = "|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|skip_connect~2|"


def test_reference_cells(real_nb201: NB201Benchmark) -> None:
    c10, c100 = resolve_metric("cifar10", "test"), resolve_metric("cifar100", "test")
    assert round(real_nb201.query(BEST_C100, c10), 2) == 94.36
    assert round(real_nb201.query(BEST_C100, c100), 2) == 73.51
    assert real_nb201.optimum(c100).genotype == NB201Genotype.from_string(BEST_C100)
    assert real_nb201.regret(BEST_C100, c100) == 0.0
    assert round(real_nb201.query(ALL_SKIP, c10), 2) == 54.30
    assert round(real_nb201.query(11472, c10), 2) == 93.91  # ResNet-like cell


@pytest.mark.parametrize(
    ("dataset", "split", "index", "value"),
    [
        ("cifar10", "valid", 6111, 91.61),
        ("cifar10", "test", 6111, 94.37),
        ("cifar100", "test", 9930, 73.51),
        ("cifar100", "valid", None, 73.49),
        ("ImageNet16-120", "test", 857, 47.31),
        ("ImageNet16-120", "valid", None, 46.73),
    ],
)
def test_published_optima(
    real_nb201: NB201Benchmark, dataset: str, split: str, index: int | None, value: float
) -> None:
    optimum = real_nb201.optimum(resolve_metric(dataset, split))
    assert round(optimum.value, 2) == value
    if index is not None:
        assert optimum.index == index


def test_every_cell_and_every_default_metric_is_present(real_nb201: NB201Benchmark) -> None:
    assert len(real_nb201.metrics) == 40
    for dataset in ("cifar10", "cifar100", "ImageNet16-120"):
        for split in ("valid", "test"):
            for hp in (200, 12):
                assert real_nb201.coverage(resolve_metric(dataset, split, hp)) == NUM_CELLS
    seeds = real_nb201.values("cifar10-valid/n_seeds@200")
    third = real_nb201.values("cifar10-valid/x-valid/accuracy@200#2")
    assert set(np.unique(seeds)) == {2.0, 3.0}
    assert np.array_equal(np.isnan(third), seeds == 2)  # 2-seed cells have no trial #2


def test_trials_average_to_the_mean(real_nb201: NB201Benchmark) -> None:
    trials = np.vstack([real_nb201.values(f"cifar100/ori-test/accuracy@200#{k}") for k in range(3)])
    np.testing.assert_allclose(
        np.nanmean(trials, axis=0), real_nb201.values("cifar100/ori-test/accuracy@200"), atol=1e-6
    )


def test_disconnected_cells_score_chance(real_nb201: NB201Benchmark) -> None:
    disconnected = [g for g in all_genotypes() if not g.is_connected]
    test = real_nb201.query_many(disconnected, resolve_metric("cifar10", "test"))
    assert test.max() < 11.0  # 10 classes: chance is 10 %
    connected = real_nb201.query_many([g for g in all_genotypes() if g.is_connected], resolve_metric("cifar10", "test"))
    assert np.median(connected) > 80


def test_twelve_epoch_numbers_are_not_the_200_epoch_ones(real_nb201: NB201Benchmark) -> None:
    hp12 = real_nb201.values(resolve_metric("cifar10", "valid", 12))
    hp200 = real_nb201.values(resolve_metric("cifar10", "valid", 200))
    assert np.nanmean(hp12) < np.nanmean(hp200) - 5
