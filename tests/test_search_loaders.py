"""The loaders of a search: which batches are augmented (the weight and arch steps) and which not."""

from __future__ import annotations

import torch
from tiny import tiny_config, tiny_data

from nasbench_harness.data.loader import BatchLoader
from nasbench_harness.methods.engine.loop import build_loaders


def _plain(loader: BatchLoader, shuffle: bool) -> BatchLoader:
    """The same images, order and seed as ``loader``, without augmentation."""
    imageset = tiny_data().valid
    return BatchLoader(
        imageset, batch_size=loader.batch_size, mean=loader.mean, std=loader.std, shuffle=shuffle,
        augment=False, seed=loader.seed,
    )


def test_arch_step_batches_go_through_the_training_transform() -> None:
    loaders = build_loaders(tiny_config(), tiny_data(), torch.device("cpu"))
    plain = _plain(loaders.valid, shuffle=True)
    pairs = list(zip(loaders.valid.epoch(3), plain.epoch(3), strict=True))
    assert all(torch.equal(a[1], b[1]) for a, b in pairs)  # the same images in the same order ...
    assert any(not torch.equal(a[0], b[0]) for a, b in pairs)  # ... cropped and flipped


def test_evaluation_and_eigenvalue_batches_are_not_augmented() -> None:
    loaders = build_loaders(tiny_config(), tiny_data(), torch.device("cpu"))
    assert not loaders.evaluation.augment
    assert torch.equal(next(iter(loaders.evaluation.epoch(0)))[0], next(iter(loaders.evaluation.epoch(5)))[0])
    x, _ = loaders.eigen_batch
    assert float(x.abs().sum()) > 0


def test_no_augmentation_anywhere_when_switched_off() -> None:
    loaders = build_loaders(tiny_config(data={"augment": False}), tiny_data(), torch.device("cpu"))
    assert not loaders.train.augment and not loaders.valid.augment
