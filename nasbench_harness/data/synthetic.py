"""A small synthetic search data set with a learnable signal, for tests of other modules."""

from __future__ import annotations

import numpy as np

from nasbench_harness.data.readers import ImageSet
from nasbench_harness.data.splits import SearchData
from nasbench_harness.errors import ConfigError


def _draw(n: int, prototypes: np.ndarray, rng: np.random.Generator, name: str) -> ImageSet:
    num_classes = prototypes.shape[0]
    labels = rng.permutation(np.arange(n, dtype=np.int64) % num_classes)
    noise = rng.normal(0.0, 24.0, size=(n, *prototypes.shape[1:]))
    images = np.clip(prototypes[labels] + noise, 0, 255).round().astype(np.uint8)
    return ImageSet(name, images, labels, num_classes)


def synthetic_search_data(
    n_train: int = 64, n_valid: int = 64, num_classes: int = 10, image_size: int = 32, seed: int = 0
) -> SearchData:
    """Random uint8 images whose class decides a colour and a coarse pattern (learnable in a few steps).

    Labels are spread evenly over the classes; mean/std (pixel/255) are the training images' own.
    """
    checks = (("n_train", n_train, 1), ("n_valid", n_valid, 1), ("num_classes", num_classes, 2), ("seed", seed, 0))
    for label, value, low in checks:
        if not isinstance(value, int) or value < low:
            raise ConfigError(f"{label} is {value!r}; expected an integer >= {low}")
    if not isinstance(image_size, int) or image_size < 4 or image_size % 4:
        raise ConfigError(f"image_size is {image_size!r}; expected a multiple of 4 (e.g. 16 or 32)")
    rng = np.random.default_rng([seed, 7])
    # Per class: a base colour plus a 4x4 pattern scaled up to the image, so both colour statistics
    # and spatial structure carry the label.
    colour = rng.uniform(60, 195, size=(num_classes, 1, 1, 3))
    coarse = rng.uniform(-50, 50, size=(num_classes, 4, 4, 3))
    pattern = np.repeat(np.repeat(coarse, image_size // 4, axis=1), image_size // 4, axis=2)
    prototypes = colour + pattern
    train = _draw(n_train, prototypes, rng, "synthetic/train")
    valid = _draw(n_valid, prototypes, rng, "synthetic/valid")
    pixels = train.images.reshape(-1, 3) / 255.0
    m, s = pixels.mean(axis=0), pixels.std(axis=0)
    mean = (float(m[0]), float(m[1]), float(m[2]))
    std = (float(s[0]), float(s[1]), float(s[2]))
    info = {"synthetic": True, "seed": seed, "rule": "class prototype (colour + 4x4 pattern) + Gaussian noise"}
    return SearchData("synthetic", train, valid, mean, std, info)
