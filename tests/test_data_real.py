"""The real shared CIFAR-10 (official "python version" layout) through reader and search split."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from nasbench_harness.data import load_search_data, read_imageset
from nasbench_harness.data.splits import balanced_halves


@pytest.mark.data
def test_real_cifar10_reads_fast_with_the_documented_statistics_and_splits_25k_25k(real_data_dir: Path) -> None:
    start = time.perf_counter()
    train = read_imageset("cifar10", real_data_dir, "train")
    seconds = time.perf_counter() - start
    print(f"read 50,000 CIFAR-10 training images in {seconds:.2f} s")
    # Generous bound: a regression guard only (speed is measured in benchmarks/perf/).
    assert seconds < 10
    assert train.images.shape == (50000, 32, 32, 3)
    assert train.class_counts().tolist() == [5000] * 10
    # Per-channel pixel histograms give exact mean and std without a float copy of 150M values.
    histograms = [np.bincount(train.images[..., c].ravel(), minlength=256) for c in range(3)]
    values = np.arange(256) / 255.0
    mean = np.array([(h * values).sum() / h.sum() for h in histograms])
    std = np.array([np.sqrt((h * (values - m) ** 2).sum() / h.sum()) for h, m in zip(histograms, mean, strict=True)])
    np.testing.assert_allclose(mean, (0.4913, 0.4821, 0.4465), atol=1e-4)
    np.testing.assert_allclose(std, (0.2452, 0.2428, 0.2606), atol=1e-4)
    assert [s.size for s in train.sources[:1]] == [30_949_442]
    assert train.sources[0].sha256 == "c46a948a3928fe65f49ff4eaaddca4dd7390083a548fd96645541799c8a1e991"

    data = load_search_data("cifar10", real_data_dir)
    assert (len(data.train), len(data.valid)) == (25000, 25000)
    assert data.train.class_counts().tolist() == [2500] * 10
    assert data.valid.class_counts().tolist() == [2500] * 10
    # The halves are the balanced index halves of split_seed 0: disjoint and together every image once.
    first, second = balanced_halves(train.labels, 10, seed=0)
    assert np.intersect1d(first, second).size == 0
    assert np.union1d(first, second).size == 50000
    assert np.array_equal(data.train.images, train.images[first])
    assert np.array_equal(data.valid.images, train.images[second])
