"""The synthetic NB201 table the method tests score against: the real table's layout, every cell
and metric imported, the real table's internal relations, deterministic."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from synthetic_nb201 import table_columns, write_synthetic_table

from nasbench_harness.spaces.nb201 import NUM_CELLS, all_genotypes
from nasbench_harness.tabular.nb201 import NB201Benchmark
from nasbench_harness.tabular.nb201_metrics import resolve_metric


@pytest.mark.data
def test_it_has_the_real_tables_columns_and_types(real_data_dir: Path, tmp_path: Path) -> None:
    real = pq.read_schema(real_data_dir / "nb201" / "nb201_table.parquet").remove_metadata()
    ours = pq.read_schema(write_synthetic_table(tmp_path / "t.parquet")).remove_metadata()
    assert ours.equals(real), set(real.names) ^ set(ours.names)


def test_every_cell_and_metric_is_imported(synthetic_nb201: NB201Benchmark) -> None:
    assert len(synthetic_nb201.metrics) == 40
    for metric in synthetic_nb201.metrics:
        if not metric.endswith("#2"):  # the third seed exists only for cells trained with three
            assert synthetic_nb201.coverage(metric) == NUM_CELLS, metric
    seeds = synthetic_nb201.values("cifar10-valid/n_seeds@200")
    third = synthetic_nb201.values("cifar10-valid/x-valid/accuracy@200#2")
    assert set(np.unique(seeds)) == {2.0, 3.0} and np.array_equal(np.isnan(third), seeds == 2)


def test_relations_of_the_real_table_hold(synthetic_nb201: NB201Benchmark) -> None:
    for dataset in ("cifar100", "ImageNet16-120"):
        trials = np.vstack([synthetic_nb201.values(f"{dataset}/ori-test/accuracy@200#{k}") for k in range(3)])
        valtest = synthetic_nb201.values(f"{dataset}/ori-test/accuracy@200")
        np.testing.assert_allclose(np.nanmean(trials, axis=0), valtest, atol=1e-9)
        test, valid = (synthetic_nb201.values(resolve_metric(dataset, split)) for split in ("test", "valid"))
        np.testing.assert_allclose(valid, 2 * valtest - test, atol=1e-9)
    c10 = synthetic_nb201.values(resolve_metric("cifar10", "test"))
    connected = np.array([g.is_connected for g in all_genotypes()])
    assert np.all(c10[~connected] == 10.0) and c10[connected].min() > 10.0
    assert 90 < c10.max() < 95 and synthetic_nb201.optimum(resolve_metric("cifar10", "test")).value == c10.max()


def test_it_is_deterministic() -> None:
    first, second = table_columns(), table_columns()
    assert first.keys() == second.keys()
    for name in first:
        assert np.array_equal(first[name], second[name], equal_nan=first[name].dtype.kind == "f"), name
    assert not np.array_equal(first["cifar10_test_acc"], table_columns(seed=1)["cifar10_test_acc"])
