"""Small image data sets written in the official on-disk formats, for the data tests.

Every image carries its own index in pixel (0, 0) (R = index // 256, G = index % 256), so a test
can tell which source images a split or subset holds.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Written:
    """What a writer put on disk: HWC images and 0-based labels of each part, as a reader should return them."""

    directory: Path
    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray


def make_images(n: int, size: int, seed: int, first_index: int = 0) -> np.ndarray:
    """Random uint8 (n, size, size, 3) images tagged with indices first_index.. in pixel (0, 0)."""
    images = np.random.default_rng(seed).integers(0, 256, size=(n, size, size, 3), dtype=np.uint8)
    index = np.arange(first_index, first_index + n)
    images[:, 0, 0, 0] = index // 256
    images[:, 0, 0, 1] = index % 256
    return images


def image_index(images: np.ndarray) -> np.ndarray:
    """The indices make_images wrote into pixel (0, 0)."""
    return images[:, 0, 0, 0].astype(np.int64) * 256 + images[:, 0, 0, 1]


def to_rows(images: np.ndarray) -> np.ndarray:
    """HWC images -> official rows: R plane, G plane, B plane, each row-major."""
    return np.ascontiguousarray(
        images.transpose(0, 3, 1, 2).reshape(images.shape[0], 3 * images.shape[1] * images.shape[2])
    )


def write_pickle(path: Path, batch: dict, *, protocol: int, bytes_keys: bool) -> None:
    """Pickle a batch dict, with bytes keys (as the Python 2 originals) or str keys."""
    if bytes_keys:
        batch = {k.encode(): v for k, v in batch.items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(batch, protocol=protocol))


def balanced_labels(n: int, num_classes: int, seed: int) -> np.ndarray:
    """n labels cycling through the classes, shuffled."""
    return np.random.default_rng(seed).permutation(np.arange(n) % num_classes).astype(np.int64)


def write_cifar10(root: Path, *, per_batch: int = 40, n_test: int = 40, bytes_keys: bool = True) -> Written:
    """cifar-10-batches-py/ with data_batch_1..5 and test_batch (protocol 2, bytes keys by default)."""
    directory = root / "cifar-10-batches-py"
    train_images = make_images(5 * per_batch, 32, seed=1)
    train_labels = balanced_labels(5 * per_batch, 10, seed=2)
    test_images = make_images(n_test, 32, seed=3, first_index=5 * per_batch)
    test_labels = np.sort(balanced_labels(n_test, 10, seed=4))
    for b in range(5):
        part = slice(b * per_batch, (b + 1) * per_batch)
        batch = {
            "batch_label": f"training batch {b + 1} of 5",
            "labels": [int(v) for v in train_labels[part]],
            "data": to_rows(train_images[part]),
            "filenames": [f"img_{i}.png" for i in range(per_batch)],
        }
        write_pickle(directory / f"data_batch_{b + 1}", batch, protocol=2, bytes_keys=bytes_keys)
    test = {"batch_label": "testing batch 1 of 1", "labels": list(map(int, test_labels)), "data": to_rows(test_images)}
    write_pickle(directory / "test_batch", test, protocol=2, bytes_keys=bytes_keys)
    return Written(directory, train_images, train_labels, test_images, test_labels)


def write_cifar100(root: Path, *, n_train: int = 300, n_test: int = 400) -> Written:
    """cifar-100-python/ with train and test (protocol 5, str keys, fine and coarse labels)."""
    directory = root / "cifar-100-python"
    written = Written(
        directory,
        make_images(n_train, 32, seed=5),
        balanced_labels(n_train, 100, seed=6),
        make_images(n_test, 32, seed=7, first_index=n_train),
        balanced_labels(n_test, 100, seed=8),
    )
    for name, images, labels in (
        ("train", written.train_images, written.train_labels),
        ("test", written.test_images, written.test_labels),
    ):
        batch = {
            "filenames": [f"{name}_{i}.png" for i in range(len(labels))],
            "batch_label": f"{name} batch",
            "fine_labels": [int(v) for v in labels],
            "coarse_labels": [int(v) // 5 for v in labels],
            "data": to_rows(images),
        }
        write_pickle(directory / name, batch, protocol=5, bytes_keys=False)
    return written


def _imagenet_labels(n_kept: int, n_other: int, seed: int, first: int = 0) -> np.ndarray:
    """1-based labels: n_kept cycling through 1..120 from first + 1, n_other in 121..1000 (1000 included), shuffled."""
    kept = (np.arange(n_kept) + first) % 120 + 1
    other = np.random.default_rng(seed).integers(121, 1001, size=n_other)
    other[0] = 1000
    return np.random.default_rng(seed + 1).permutation(np.concatenate([kept, other])).astype(np.int64)


def write_imagenet16(root: Path, *, dirname: str = "ImageNet16", per_batch: int = 30, n_val: int = 300) -> Written:
    """ImageNet16/ with train_data_batch_1..10 and val_data (1-based labels, some above 120).

    Per train batch: 24 images of classes 1..120 and 6 of other classes; val_data: 240 images of
    classes 1..120 (2 each) and 60 of other classes.
    """
    directory = root / dirname
    kept_images, kept_labels = [], []
    first = 0
    for b in range(10):
        labels = _imagenet_labels(24, per_batch - 24, seed=10 + b, first=24 * b)
        images = make_images(per_batch, 16, seed=30 + b, first_index=first)
        first += per_batch
        batch = {"data": to_rows(images), "labels": [int(v) for v in labels], "mean": np.zeros(768)}
        write_pickle(directory / f"train_data_batch_{b + 1}", batch, protocol=2, bytes_keys=False)
        keep = labels <= 120
        kept_images.append(images[keep])
        kept_labels.append(labels[keep] - 1)
    val_labels = _imagenet_labels(240, n_val - 240, seed=50)
    val_images = make_images(n_val, 16, seed=51, first_index=first)
    write_pickle(
        directory / "val_data",
        {"data": to_rows(val_images), "labels": [int(v) for v in val_labels]},
        protocol=2,
        bytes_keys=False,
    )
    keep = val_labels <= 120
    return Written(
        directory,
        np.concatenate(kept_images),
        np.concatenate(kept_labels),
        val_images[keep],
        val_labels[keep] - 1,
    )
