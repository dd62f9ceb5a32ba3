"""NAS-Bench-201 search splits: which images the weights train on and which the architecture sees.

- cifar10: search-train and search-valid are two class-balanced halves (25k/25k) of the 50k
  training images (NB201's "cifar10-valid" setting); the test batch is not read.
- cifar100 / ImageNet16-120: search-train is the whole training set; search-valid is x-valid, a
  class-balanced half of the original test set (CIFAR-100 test, ImageNet16 ``val_data``). The other
  half (x-test) is never used for search.

Halves are drawn per class with ``split_seed`` (NB201 ships fixed split files instead; the rule is
the same, the draw is ours). CPU presets may then take class-balanced subsets (``subset_seed``)
and down-sample by an integer factor with area averaging.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nasbench_harness.data.readers import ImageSet, canonical_dataset, read_imageset
from nasbench_harness.errors import ConfigError

Triple = tuple[float, float, float]

# NB201's per-channel constants, in pixel/255 units (xautodl get_datasets).
NORMALIZATION: dict[str, tuple[Triple, Triple]] = {
    "cifar10": (
        (125.3 / 255, 123.0 / 255, 113.9 / 255),
        (63.0 / 255, 62.1 / 255, 66.7 / 255),
    ),
    "cifar100": (
        (129.3 / 255, 124.1 / 255, 112.4 / 255),
        (68.2 / 255, 65.4 / 255, 70.4 / 255),
    ),
    "ImageNet16-120": (
        (122.68 / 255, 116.66 / 255, 104.01 / 255),
        (63.22 / 255, 61.26 / 255, 65.09 / 255),
    ),
}

SPLIT_RULES: dict[str, str] = {
    "cifar10": (
        "search-train and search-valid are two class-balanced halves of the 50,000 CIFAR-10 training images "
        "(NB201 cifar10-valid setting): each class's images are split in half at random by split_seed; "
        "the test batch is not used"
    ),
    "cifar100": (
        "search-train is the 50,000-image CIFAR-100 training set; search-valid is x-valid, a class-balanced "
        "half of the 10,000-image test set drawn by split_seed; the other half (x-test) is not used for search"
    ),
    "ImageNet16-120": (
        "search-train is the ImageNet16-120 training set (classes 1-120); search-valid is x-valid, a "
        "class-balanced half of val_data (classes 1-120) drawn by split_seed; the other half (x-test) is not "
        "used for search"
    ),
}


@dataclass(frozen=True, eq=False)
class SearchData:
    """The two image sets of a search and their normalisation (mean/std in pixel/255 units)."""

    dataset: str
    train: ImageSet
    valid: ImageSet
    mean: Triple
    std: Triple
    info: Mapping[str, Any] = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        """Number of classes (the width of the classifier)."""
        return self.train.num_classes

    @property
    def image_size(self) -> int:
        """Height (= width) of the images in pixels, after any down-sampling."""
        return self.train.image_size

    def describe(self) -> dict[str, Any]:
        """JSON-able record for the run manifest: data set, source files, split rule, seeds, sizes, counts."""
        sources = list(dict.fromkeys(self.train.sources + self.valid.sources))
        return {
            "dataset": self.dataset,
            "num_classes": self.num_classes,
            "image_size": self.image_size,
            "mean": list(self.mean),
            "std": list(self.std),
            "counts": {"train": len(self.train), "valid": len(self.valid)},
            **{k: (list(v) if isinstance(v, tuple) else v) for k, v in self.info.items()},
            "sources": [s.to_dict() for s in sources],
        }


def _rng(seed: int, *stream: int) -> np.random.Generator:
    return np.random.default_rng([seed, *stream])


def _check_seed(name: str, seed: int) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"{name} is {seed!r}; expected a non-negative integer")
    return int(seed)


def balanced_halves(labels: np.ndarray, num_classes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Two disjoint index arrays (ascending) splitting every class in half at random by ``seed``.

    A class with an odd count puts the extra image in the second half.
    """
    rng = _rng(_check_seed("split_seed", seed))
    order = np.argsort(labels, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(np.bincount(labels, minlength=num_classes))])
    first, second = [], []
    for c in range(num_classes):
        members = rng.permutation(order[bounds[c] : bounds[c + 1]])
        half = members.shape[0] // 2
        first.append(members[:half])
        second.append(members[half:])
    return np.sort(np.concatenate(first)), np.sort(np.concatenate(second))


def balanced_subset(labels: np.ndarray, num_classes: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """``size`` indices (ascending) drawn at random with class counts as equal as the data allow."""
    counts = np.bincount(labels, minlength=num_classes)
    # Fill the smallest classes first so a class short of images hands its share to the others;
    # ties are broken at random so which classes get one extra image is not always the first ones.
    fill_order = np.lexsort((rng.permutation(num_classes), counts))
    quota = np.zeros(num_classes, dtype=np.int64)
    remaining = size
    for i, c in enumerate(fill_order):
        share = -(-remaining // (num_classes - i))
        quota[c] = min(counts[c], share)
        remaining -= quota[c]
    order = np.argsort(labels, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(counts)])
    chosen = [rng.choice(order[bounds[c] : bounds[c + 1]], size=quota[c], replace=False) for c in range(num_classes)]
    return np.sort(np.concatenate(chosen))


def downsample(images: np.ndarray, image_size: int) -> np.ndarray:
    """Area-average uint8 (N, H, W, 3) images to (N, image_size, image_size, 3), rounding half up."""
    n, height, width, _ = images.shape
    if height != width or image_size < 1 or height % image_size:
        raise ConfigError(
            f"image_size {image_size} does not divide the {height}x{width} images; expected a divisor of {height} "
            f"(e.g. {height // 2} to halve them)"
        )
    f = height // image_size
    if f == 1:
        return images
    blocks = images.reshape(n, image_size, f, image_size, f, 3).sum(axis=(2, 4), dtype=np.uint32)
    return ((blocks + (f * f) // 2) // (f * f)).astype(np.uint8)


def _subset(part: ImageSet, size: int | None, label: str, rng: np.random.Generator) -> ImageSet:
    if size is None:
        return part
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or not 1 <= size <= len(part):
        raise ConfigError(f"{label} is {size!r}; expected an integer from 1 to {len(part)} (the split's size)")
    if size == len(part):
        return part
    return part.take(balanced_subset(part.labels, part.num_classes, int(size), rng))


def _resize(part: ImageSet, image_size: int | None) -> ImageSet:
    if image_size is None or image_size == part.image_size:
        return part
    if isinstance(image_size, bool) or not isinstance(image_size, (int, np.integer)):
        raise ConfigError(f"image_size is {image_size!r}; expected an integer divisor of {part.image_size}")
    return ImageSet(part.name, downsample(part.images, int(image_size)), part.labels, part.num_classes, part.sources)


def load_search_data(
    dataset: str,
    data_dir: str | os.PathLike[str] | None = None,
    *,
    split_seed: int = 0,
    train_size: int | None = None,
    valid_size: int | None = None,
    image_size: int | None = None,
    subset_seed: int = 0,
) -> SearchData:
    """Search-train and search-valid sets of a data set (see the module docstring for the rule).

    ``train_size``/``valid_size`` (images) take class-balanced random subsets drawn by
    ``subset_seed``; ``image_size`` (pixels) down-samples by an integer factor, after subsetting.
    """
    name = canonical_dataset(dataset)
    _check_seed("split_seed", split_seed)
    _check_seed("subset_seed", subset_seed)
    if name == "cifar10":
        full = read_imageset(name, data_dir, "train")
        first, second = balanced_halves(full.labels, full.num_classes, split_seed)
        train, valid = full.take(first, "cifar10/search-train"), full.take(second, "cifar10/search-valid")
        del full
    else:
        train = read_imageset(name, data_dir, "train")
        test = read_imageset(name, data_dir, "test")
        xvalid, _ = balanced_halves(test.labels, test.num_classes, split_seed)
        valid = test.take(xvalid, f"{name}/x-valid")
        del test
    source_size = train.image_size
    train = _resize(_subset(train, train_size, "train_size", _rng(subset_seed, 0)), image_size)
    valid = _resize(_subset(valid, valid_size, "valid_size", _rng(subset_seed, 1)), image_size)
    mean, std = NORMALIZATION[name]
    info = {
        "split_rule": SPLIT_RULES[name],
        "split_seed": int(split_seed),
        "subset_seed": int(subset_seed),
        "train_size": train_size,
        "valid_size": valid_size,
        "source_image_size": source_size,
        "subset_rule": "class-balanced random subset of each split drawn by subset_seed, before down-sampling",
        "downsampling": "area average by an integer factor" if train.image_size != source_size else "none",
    }
    return SearchData(name, train, valid, mean, std, info)
