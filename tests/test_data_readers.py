"""Readers of the official image formats: decoding, labels, class filter, and every bad input."""

from __future__ import annotations

import hashlib
import pickle
from pathlib import Path

import numpy as np
import pytest
from data_files import to_rows, write_cifar10, write_cifar100, write_imagenet16, write_pickle
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from nasbench_harness.data import canonical_dataset, find_dataset_dir, read_imageset
from nasbench_harness.data.readers import rows_to_hwc
from nasbench_harness.errors import ConfigError, DataFormatError, DatasetNotFoundError


def test_cifar10_train_and_test_decode_to_the_written_pixels(tmp_path: Path) -> None:
    written = write_cifar10(tmp_path)
    train = read_imageset("cifar10", tmp_path, "train")
    test = read_imageset("cifar10", tmp_path, "test")
    assert train.name == "cifar10/train"
    assert train.images.shape == (200, 32, 32, 3)
    assert train.images.flags.c_contiguous
    assert train.labels.dtype == np.int64
    assert train.num_classes == 10
    np.testing.assert_array_equal(train.images, written.train_images)
    np.testing.assert_array_equal(train.labels, written.train_labels)
    np.testing.assert_array_equal(test.images, written.test_images)
    np.testing.assert_array_equal(test.labels, written.test_labels)


def test_a_known_image_lands_on_the_right_hwc_pixels() -> None:
    row = np.zeros(3 * 32 * 32, dtype=np.uint8)
    row[0 * 1024 + 5 * 32 + 7] = 200  # red plane, y=5, x=7
    row[1 * 1024 + 31] = 100  # green plane, y=0, x=31
    row[2 * 1024 + 31 * 32] = 50  # blue plane, y=31, x=0
    image = rows_to_hwc(row[None], 32)[0]
    assert image[5, 7].tolist() == [200, 0, 0]
    assert image[0, 31].tolist() == [0, 100, 0]
    assert image[31, 0].tolist() == [0, 0, 50]
    assert int(image.sum()) == 350


@settings(max_examples=30, deadline=None)
@given(arrays(np.uint8, st.tuples(st.integers(0, 4), st.just(4), st.just(4), st.just(3))))
def test_rows_round_trip(images: np.ndarray) -> None:
    np.testing.assert_array_equal(rows_to_hwc(to_rows(images), 4), images)


def test_str_keys_and_protocol_5_are_read_too(tmp_path: Path) -> None:
    written = write_cifar10(tmp_path, bytes_keys=False)
    np.testing.assert_array_equal(read_imageset("cifar10", tmp_path).images, written.train_images)


def test_cifar100_uses_the_fine_labels(tmp_path: Path) -> None:
    written = write_cifar100(tmp_path)
    train = read_imageset("cifar100", tmp_path, "train")
    test = read_imageset("cifar100", tmp_path, "test")
    assert train.num_classes == 100
    np.testing.assert_array_equal(train.labels, written.train_labels)
    np.testing.assert_array_equal(test.images, written.test_images)
    assert train.labels.max() == 99


@pytest.mark.parametrize("dirname", ["ImageNet16", "imagenet16", "ImageNet16-120"])
def test_imagenet16_120_keeps_classes_1_to_120_and_makes_them_0_based(tmp_path: Path, dirname: str) -> None:
    written = write_imagenet16(tmp_path, dirname=dirname)
    train = read_imageset("ImageNet16-120", tmp_path, "train")
    val = read_imageset("imagenet16_120", tmp_path, "test")
    assert train.images.shape == (240, 16, 16, 3)
    assert train.num_classes == 120
    assert train.labels.min() == 0
    assert train.labels.max() == 119
    np.testing.assert_array_equal(train.images, written.train_images)
    np.testing.assert_array_equal(train.labels, written.train_labels)
    np.testing.assert_array_equal(val.images, written.test_images)
    np.testing.assert_array_equal(val.labels, written.test_labels)
    assert np.bincount(val.labels, minlength=120).tolist() == [2] * 120


def test_sources_record_size_and_sha256(tmp_path: Path) -> None:
    written = write_cifar10(tmp_path)
    train = read_imageset("cifar10", tmp_path)
    assert [s.path for s in train.sources] == [f"cifar-10-batches-py/data_batch_{i}" for i in range(1, 6)]
    first = (written.directory / "data_batch_1").read_bytes()
    assert train.sources[0].size == len(first)
    assert train.sources[0].sha256 == hashlib.sha256(first).hexdigest()


def test_the_data_dir_may_be_the_dataset_directory_itself(tmp_path: Path) -> None:
    written = write_cifar10(tmp_path)
    assert find_dataset_dir("cifar10", written.directory) == written.directory


def test_the_data_dir_comes_from_nbh_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_cifar10(tmp_path / "elsewhere")
    monkeypatch.setenv("NBH_DATA_DIR", str(tmp_path / "elsewhere"))
    assert len(read_imageset("cifar10")) == 200


@pytest.mark.parametrize(
    ("spelling", "canonical"),
    [
        ("cifar10", "cifar10"),
        ("CIFAR10", "cifar10"),
        ("Cifar100", "cifar100"),
        ("ImageNet16-120", "ImageNet16-120"),
        ("imagenet16_120", "ImageNet16-120"),
        ("imagenet16-120", "ImageNet16-120"),
    ],
)
def test_dataset_names(spelling: str, canonical: str) -> None:
    assert canonical_dataset(spelling) == canonical


def test_an_unknown_dataset_lists_the_three() -> None:
    with pytest.raises(ConfigError, match=r"'mnist'.*cifar10, cifar100, ImageNet16-120"):
        canonical_dataset("mnist")


def test_an_unknown_part_is_a_config_error(tmp_path: Path) -> None:
    write_cifar10(tmp_path)
    with pytest.raises(ConfigError, match="expected one of train, test"):
        read_imageset("cifar10", tmp_path, "valid")  # type: ignore[arg-type]


# --- bad inputs --------------------------------------------------------------------------------


def test_a_missing_directory_names_the_layout_and_how_to_point_at_data(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError) as err:
        read_imageset("cifar10", tmp_path)
    message = str(err.value)
    assert str(tmp_path / "cifar-10-batches-py") in message
    assert "data_batch_1" in message
    assert "test_batch" in message
    assert "--data-dir" in message
    assert "NBH_DATA_DIR" in message


def test_a_missing_imagenet16_directory_names_the_accepted_names(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match=r"ImageNet16.*imagenet16, ImageNet16-120.*val_data"):
        read_imageset("ImageNet16-120", tmp_path)


def test_a_missing_batch_file_is_named(tmp_path: Path) -> None:
    written = write_cifar10(tmp_path)
    (written.directory / "data_batch_3").unlink()
    with pytest.raises(DatasetNotFoundError, match="data_batch_3 is missing"):
        read_imageset("cifar10", tmp_path)
    read_imageset("cifar10", tmp_path, "test")  # the test part does not need it


def test_a_truncated_file_is_a_format_error_naming_it(tmp_path: Path) -> None:
    written = write_cifar10(tmp_path)
    path = written.directory / "data_batch_2"
    path.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(DataFormatError, match=r"data_batch_2 is truncated or not a pickled data batch"):
        read_imageset("cifar10", tmp_path)


def test_a_file_of_another_kind_is_a_format_error(tmp_path: Path) -> None:
    written = write_cifar10(tmp_path)
    (written.directory / "test_batch").write_text("<html>404 not found</html>")
    with pytest.raises(DataFormatError, match="test_batch is truncated or not a pickled data batch"):
        read_imageset("cifar10", tmp_path, "test")


def test_a_pickle_that_calls_os_system_is_rejected_without_running(tmp_path: Path) -> None:
    written = write_cifar10(tmp_path)
    marker = tmp_path / "pwned"
    payload = f"cos\nsystem\n(S'touch {marker}'\ntR.".encode()
    (written.directory / "test_batch").write_bytes(payload)
    with pytest.raises(DataFormatError, match=r"refers to os.system, which a data batch never does"):
        read_imageset("cifar10", tmp_path, "test")
    assert not marker.exists()


def test_a_pickled_object_of_another_class_is_rejected(tmp_path: Path) -> None:
    written = write_cifar10(tmp_path)
    (written.directory / "test_batch").write_bytes(pickle.dumps({"data": Path("x"), "labels": []}))
    with pytest.raises(DataFormatError, match=r"refers to pathlib\.\w*Path"):
        read_imageset("cifar10", tmp_path, "test")


def test_a_non_dict_pickle_is_rejected(tmp_path: Path) -> None:
    written = write_cifar10(tmp_path)
    (written.directory / "test_batch").write_bytes(pickle.dumps([1, 2, 3]))
    with pytest.raises(DataFormatError, match="holds a list, not a dict"):
        read_imageset("cifar10", tmp_path, "test")


def _rewrite_test_batch(written_dir: Path, **changes: object) -> None:
    path = written_dir / "test_batch"
    with path.open("rb") as f:
        batch = pickle.load(f, encoding="latin1")  # our own fixture file
    batch = {(k.decode() if isinstance(k, bytes) else k): v for k, v in batch.items()}
    batch.update(changes)
    for key in [k for k, v in changes.items() if v is None]:
        del batch[key]
    write_pickle(path, batch, protocol=2, bytes_keys=True)


def test_a_missing_key_is_named(tmp_path: Path) -> None:
    written = write_cifar10(tmp_path)
    _rewrite_test_batch(written.directory, labels=None)
    with pytest.raises(DataFormatError, match=r"test_batch has no 'labels' entry"):
        read_imageset("cifar10", tmp_path, "test")


@pytest.mark.parametrize(
    "data",
    [
        np.zeros((40, 3000), np.uint8),
        np.zeros((40, 3072), np.float32),
        np.zeros((40, 3, 32, 32), np.uint8),
        "not an array",
    ],
)
def test_a_wrong_data_shape_or_dtype_is_a_format_error(tmp_path: Path, data: object) -> None:
    written = write_cifar10(tmp_path)
    _rewrite_test_batch(written.directory, data=data)
    with pytest.raises(DataFormatError, match=r"test_batch: 'data' is a .*expected a uint8 array of shape \(N, 3072\)"):
        read_imageset("cifar10", tmp_path, "test")


def test_a_label_out_of_range_is_a_format_error(tmp_path: Path) -> None:
    written = write_cifar10(tmp_path)
    _rewrite_test_batch(written.directory, labels=[0] * 39 + [10])
    with pytest.raises(DataFormatError, match=r"'labels' holds 10, outside 0..9"):
        read_imageset("cifar10", tmp_path, "test")


def test_imagenet16_label_zero_is_out_of_range(tmp_path: Path) -> None:
    written = write_imagenet16(tmp_path)
    write_pickle(
        written.directory / "val_data",
        {"data": np.zeros((2, 768), np.uint8), "labels": [0, 5]},
        protocol=2,
        bytes_keys=False,
    )
    with pytest.raises(DataFormatError, match=r"holds 0, outside 1..1000 \(ImageNet16-120 labels are 1-based\)"):
        read_imageset("ImageNet16-120", tmp_path, "test")


def test_a_label_count_other_than_the_image_count_is_a_format_error(tmp_path: Path) -> None:
    written = write_cifar10(tmp_path)
    _rewrite_test_batch(written.directory, labels=[0] * 39)
    with pytest.raises(DataFormatError, match="test_batch has 39 labels for 40 images"):
        read_imageset("cifar10", tmp_path, "test")


def test_non_integer_labels_are_a_format_error(tmp_path: Path) -> None:
    written = write_cifar10(tmp_path)
    _rewrite_test_batch(written.directory, labels=[0.5] * 40)
    with pytest.raises(DataFormatError, match="expected a flat list of ints"):
        read_imageset("cifar10", tmp_path, "test")
