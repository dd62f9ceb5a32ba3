"""NB201 search splits, CPU-preset subsets and down-sampling, the manifest record, synthetic data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from data_files import image_index, write_cifar10, write_cifar100, write_imagenet16

from nasbench_harness.data import NORMALIZATION, load_search_data, synthetic_search_data
from nasbench_harness.data.splits import balanced_halves, balanced_subset, downsample
from nasbench_harness.errors import ConfigError


def test_cifar10_search_sets_are_balanced_disjoint_halves_of_the_training_set(tmp_path: Path) -> None:
    written = write_cifar10(tmp_path)  # 200 training images, 20 per class
    data = load_search_data("cifar10", tmp_path)
    assert (len(data.train), len(data.valid)) == (100, 100)
    assert data.train.class_counts().tolist() == [10] * 10
    assert data.valid.class_counts().tolist() == [10] * 10
    train_ids, valid_ids = image_index(data.train.images), image_index(data.valid.images)
    assert set(train_ids).isdisjoint(valid_ids)
    assert sorted([*train_ids, *valid_ids]) == list(range(200))  # only training images, each once
    np.testing.assert_array_equal(data.train.labels, written.train_labels[train_ids])
    assert (data.mean, data.std) == NORMALIZATION["cifar10"]
    assert data.mean[0] == pytest.approx(125.3 / 255)


def test_the_split_is_deterministic_by_seed_and_differs_across_seeds(tmp_path: Path) -> None:
    write_cifar10(tmp_path)
    ids = {seed: image_index(load_search_data("cifar10", tmp_path, split_seed=seed).train.images) for seed in (0, 1)}
    again = image_index(load_search_data("cifar10", tmp_path, split_seed=0).train.images)
    np.testing.assert_array_equal(ids[0], again)
    assert set(ids[0]) != set(ids[1])


def test_balanced_halves_put_an_odd_class_member_in_the_second_half() -> None:
    labels = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2, 2])
    first, second = balanced_halves(labels, 3, seed=4)
    assert np.bincount(labels[first], minlength=3).tolist() == [1, 1, 2]
    assert np.bincount(labels[second], minlength=3).tolist() == [2, 1, 3]
    assert sorted([*first, *second]) == list(range(10))


def test_cifar100_valid_is_the_x_valid_half_of_the_test_set(tmp_path: Path) -> None:
    written = write_cifar100(tmp_path)  # train 300, test 400 (4 per class)
    data = load_search_data("CIFAR100", tmp_path, split_seed=3)
    np.testing.assert_array_equal(data.train.images, written.train_images)
    assert len(data.valid) == 200
    assert data.valid.class_counts().tolist() == [2] * 100
    test_ids = image_index(written.test_images)
    assert set(image_index(data.valid.images)) < set(test_ids)
    assert data.mean == NORMALIZATION["cifar100"][0]


def test_imagenet16_120_valid_is_the_x_valid_half_of_val_data(tmp_path: Path) -> None:
    written = write_imagenet16(tmp_path)
    data = load_search_data("imagenet16-120", tmp_path)
    assert data.dataset == "ImageNet16-120"
    assert data.num_classes == 120
    assert data.image_size == 16
    assert len(data.train) == 240
    assert len(data.valid) == 120
    assert data.valid.class_counts().tolist() == [1] * 120
    assert set(image_index(data.valid.images)) < set(image_index(written.test_images))
    assert data.std == pytest.approx((63.22 / 255, 61.26 / 255, 65.09 / 255))


def test_subsets_are_class_balanced_deterministic_and_seeded(tmp_path: Path) -> None:
    write_cifar10(tmp_path)
    data = load_search_data("cifar10", tmp_path, train_size=30, valid_size=25)
    assert (len(data.train), len(data.valid)) == (30, 25)
    assert data.train.class_counts().tolist() == [3] * 10
    assert sorted(data.valid.class_counts().tolist()) == [2] * 5 + [3] * 5
    full = load_search_data("cifar10", tmp_path)
    assert set(image_index(data.train.images)) <= set(image_index(full.train.images))
    same = load_search_data("cifar10", tmp_path, train_size=30, valid_size=25)
    np.testing.assert_array_equal(same.train.images, data.train.images)
    other = load_search_data("cifar10", tmp_path, train_size=30, valid_size=25, subset_seed=1)
    assert set(image_index(other.train.images)) != set(image_index(data.train.images))


def test_a_subset_of_an_unbalanced_set_fills_from_the_larger_classes() -> None:
    labels = np.array([0] * 2 + [1] * 10 + [2] * 10)
    chosen = balanced_subset(labels, 3, 14, np.random.default_rng(0))
    assert np.bincount(labels[chosen], minlength=3).tolist() in ([2, 6, 6],)
    assert len(set(chosen.tolist())) == 14


@pytest.mark.parametrize("size", [0, 101, -3, 2.5])
def test_a_subset_larger_than_the_split_or_not_positive_is_refused(tmp_path: Path, size: object) -> None:
    write_cifar10(tmp_path)
    with pytest.raises(ConfigError, match=r"train_size is .*; expected an integer from 1 to 100"):
        load_search_data("cifar10", tmp_path, train_size=size)  # type: ignore[arg-type]


def test_downsampling_averages_areas_after_subsetting(tmp_path: Path) -> None:
    write_cifar10(tmp_path)
    small = load_search_data("cifar10", tmp_path, train_size=20, image_size=16)
    full = load_search_data("cifar10", tmp_path, train_size=20)
    assert small.train.images.shape == (20, 16, 16, 3)
    assert small.valid.images.shape == (100, 16, 16, 3)
    blocks = full.train.images.astype(np.float64).reshape(20, 16, 2, 16, 2, 3).mean(axis=(2, 4))
    np.testing.assert_array_equal(small.train.images, np.floor(blocks + 0.5).astype(np.uint8))
    np.testing.assert_array_equal(small.train.labels, full.train.labels)
    assert small.describe()["downsampling"] == "area average by an integer factor"


def test_downsample_by_four_and_identity() -> None:
    images = np.arange(2 * 8 * 8 * 3, dtype=np.int64).reshape(2, 8, 8, 3).astype(np.uint8)
    out = downsample(images, 2)
    assert out.shape == (2, 2, 2, 3)
    assert out[0, 0, 0, 0] == int(images[0, :4, :4, 0].astype(float).mean() + 0.5)  # 40.5 rounds up
    assert downsample(images, 8) is images


@pytest.mark.parametrize("size", [12, 64, 0])
def test_an_image_size_that_does_not_divide_is_refused(tmp_path: Path, size: int) -> None:
    write_cifar10(tmp_path)
    with pytest.raises(ConfigError, match=rf"image_size {size} does not divide the 32x32 images"):
        load_search_data("cifar10", tmp_path, image_size=size)


def test_bad_seeds_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="split_seed is -1; expected a non-negative integer"):
        load_search_data("cifar10", tmp_path, split_seed=-1)


def test_describe_is_json_and_names_sources_rule_seeds_and_counts(tmp_path: Path) -> None:
    write_cifar10(tmp_path)
    data = load_search_data("cifar10", tmp_path, split_seed=2, train_size=40, subset_seed=5)
    record = json.loads(json.dumps(data.describe()))
    assert record["dataset"] == "cifar10"
    assert record["counts"] == {"train": 40, "valid": 100}
    assert record["split_seed"] == 2
    assert record["subset_seed"] == 5
    assert record["train_size"] == 40
    assert record["valid_size"] is None
    assert record["image_size"] == 32
    assert "class-balanced halves" in record["split_rule"]
    assert [s["path"] for s in record["sources"]] == [f"cifar-10-batches-py/data_batch_{i}" for i in range(1, 6)]
    assert all(len(s["sha256"]) == 64 and s["bytes"] > 0 for s in record["sources"])


def test_synthetic_data_is_deterministic_balanced_and_learnable() -> None:
    data = synthetic_search_data(n_train=200, n_valid=100, num_classes=10, image_size=16, seed=1)
    again = synthetic_search_data(n_train=200, n_valid=100, num_classes=10, image_size=16, seed=1)
    np.testing.assert_array_equal(data.train.images, again.train.images)
    assert data.train.images.shape == (200, 16, 16, 3)
    assert data.train.class_counts().tolist() == [20] * 10
    assert len(data.valid) == 100
    json.dumps(data.describe())
    # A nearest-class-mean classifier fit on train separates valid: the signal is learnable.
    x_train = data.train.images.reshape(200, -1).astype(float)
    centroids = np.stack([x_train[data.train.labels == c].mean(0) for c in range(10)])
    x_valid = data.valid.images.reshape(100, -1).astype(float)
    predicted = ((x_valid[:, None] - centroids[None]) ** 2).sum(-1).argmin(1)
    assert (predicted == data.valid.labels).mean() > 0.9


def test_synthetic_defaults_match_the_documented_shape() -> None:
    data = synthetic_search_data()
    assert (len(data.train), len(data.valid), data.num_classes, data.image_size) == (64, 64, 10, 32)
    assert all(0 < s < 1 for s in data.std)
    with pytest.raises(ConfigError, match="image_size"):
        synthetic_search_data(image_size=10)
