"""Torch-op augmentation and the in-memory batch loader."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nasbench_harness.data import BatchLoader, ImageSet, synthetic_search_data
from nasbench_harness.data.augment import (
    apply_crop_flip,
    augment_batch,
    crop_padding,
    draw_crop_flip,
    normalize,
)
from nasbench_harness.data.loader import epoch_generator
from nasbench_harness.errors import ConfigError

MEAN = (0.5, 0.4, 0.3)
STD = (0.2, 0.25, 0.3)


def _images(n: int = 16, size: int = 32, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, size, size, 3), dtype=torch.uint8, generator=generator)


def _reference(images: torch.Tensor) -> torch.Tensor:
    """The normalisation formula written out directly, NCHW."""
    x = images.permute(0, 3, 1, 2).to(torch.float64) / 255
    return ((x - torch.tensor(MEAN, dtype=torch.float64)[:, None, None]) / torch.tensor(STD)[:, None, None]).float()


def test_normalize_converts_to_float_nchw_with_the_formula() -> None:
    images = _images()
    x = normalize(images, MEAN, STD)
    assert x.shape == (16, 3, 32, 32)
    assert x.dtype == torch.float32
    assert x.is_contiguous()
    torch.testing.assert_close(x, _reference(images), rtol=0, atol=1e-5)


def test_channels_last_output_has_channels_last_strides() -> None:
    x = normalize(_images(), MEAN, STD, channels_last=True)
    assert x.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(x, normalize(_images(), MEAN, STD))
    y = augment_batch(_images(), MEAN, STD, generator=torch.Generator().manual_seed(0), channels_last=True)
    assert y.is_contiguous(memory_format=torch.channels_last)


def test_normalize_refuses_a_float_batch() -> None:
    with pytest.raises(ConfigError, match="expected uint8"):
        normalize(_images().float(), MEAN, STD)


def test_padding_follows_nb201() -> None:
    assert crop_padding(32) == 4
    assert crop_padding(16) == 2


def test_flip_only_gives_each_image_flipped_or_not() -> None:
    images = _images(n=64)
    x = augment_batch(images, MEAN, STD, generator=torch.Generator().manual_seed(1), crop=False)
    reference, flipped = _reference(images), _reference(images.flip(2))
    same = [torch.allclose(x[i], reference[i], atol=1e-5) for i in range(64)]
    mirrored = [torch.allclose(x[i], flipped[i], atol=1e-5) for i in range(64)]
    assert all(a != b for a, b in zip(same, mirrored, strict=True))
    assert 10 < sum(mirrored) < 54  # p = 0.5


def test_crop_only_gives_a_shifted_copy_with_zero_fill() -> None:
    images = _images(n=32)
    params = draw_crop_flip(32, 4, generator=torch.Generator().manual_seed(2), flip=False)
    out = apply_crop_flip(images, params, 4)
    padded = torch.zeros(32, 40, 40, 3, dtype=torch.uint8)
    padded[:, 4:36, 4:36] = images
    for i in range(32):
        top, left = int(params.top[i]), int(params.left[i])
        assert torch.equal(out[i], padded[i, top : top + 32, left : left + 32])
    assert params.top.min() >= 0
    assert params.top.max() <= 8
    assert len(set(params.left.tolist())) > 3


def test_crop_and_flip_match_the_drawn_parameters_on_16x16() -> None:
    images = _images(n=20, size=16)
    params = draw_crop_flip(20, 2, generator=torch.Generator().manual_seed(3))
    out = apply_crop_flip(images, params, 2)
    padded = torch.nn.functional.pad(images.permute(0, 3, 1, 2), (2, 2, 2, 2)).permute(0, 2, 3, 1)
    for i in range(20):
        top, left = int(params.top[i]), int(params.left[i])
        crop = padded[i, top : top + 16, left : left + 16]
        assert torch.equal(out[i], crop.flip(1) if params.flip[i] else crop)
    assert params.top.max() <= 4


def test_augment_batch_is_the_parameters_then_normalisation() -> None:
    images = _images(n=8)
    x = augment_batch(images, MEAN, STD, generator=torch.Generator().manual_seed(4))
    params = draw_crop_flip(8, 4, generator=torch.Generator().manual_seed(4))
    torch.testing.assert_close(x, normalize(apply_crop_flip(images, params, 4), MEAN, STD))
    assert x.shape == (8, 3, 32, 32)
    assert x.dtype == torch.float32


def test_augmentation_is_deterministic_under_a_seeded_generator() -> None:
    images = _images()
    a = augment_batch(images, MEAN, STD, generator=torch.Generator().manual_seed(5))
    b = augment_batch(images, MEAN, STD, generator=torch.Generator().manual_seed(5))
    c = augment_batch(images, MEAN, STD, generator=torch.Generator().manual_seed(6))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


# --- loader ------------------------------------------------------------------------------------


def _set(n: int = 50, size: int = 8) -> ImageSet:
    images = np.random.default_rng(0).integers(0, 256, size=(n, size, size, 3), dtype=np.uint8)
    images[:, 0, 0, 0] = np.arange(n)  # tag each image with its index
    return ImageSet("tagged", images, (np.arange(n) % 5).astype(np.int64), 5)


def _loader(imageset: ImageSet, **options: object) -> BatchLoader:
    settings: dict = {"batch_size": 16, "mean": MEAN, "std": STD, "shuffle": True, "augment": False, "seed": 3}
    settings.update(options)
    return BatchLoader(imageset, **settings)


def _tags(x: torch.Tensor) -> list[int]:
    """The image indices _set wrote into pixel (0, 0) of the red channel, back from normalised x."""
    raw = (x[:, 0, 0, 0] * STD[0] + MEAN[0]) * 255
    return [round(v) for v in raw.tolist()]


def test_an_epoch_covers_every_image_once_when_shuffled_without_drop_last() -> None:
    imageset = _set()
    loader = _loader(imageset)
    batches = list(loader.epoch(0))
    assert len(loader) == len(batches) == 4
    assert [len(y) for _, y in batches] == [16, 16, 16, 2]
    tags = [t for x, _ in batches for t in _tags(x)]
    assert sorted(tags) == list(range(50))
    assert tags != list(range(50))
    labels = torch.cat([y for _, y in batches])
    assert labels.dtype == torch.int64
    assert labels.tolist() == [t % 5 for t in tags]  # labels travel with their images


def test_drop_last_drops_the_incomplete_batch() -> None:
    loader = _loader(_set(), drop_last=True)
    assert len(loader) == 3
    assert [len(y) for _, y in loader.epoch(0)] == [16, 16, 16]


def test_without_shuffle_the_order_is_the_set_order() -> None:
    loader = _loader(_set(), shuffle=False)
    assert [t for x, _ in loader.epoch(4) for t in _tags(x)] == list(range(50))


def test_an_epoch_depends_only_on_seed_and_epoch() -> None:
    imageset = _set(size=32)
    loader = _loader(imageset, augment=True)
    first = [x for x, _ in loader.epoch(2)]
    list(loader.epoch(0))  # other epochs in between do not matter
    resumed = _loader(imageset, augment=True)  # a new loader, as after a restart
    for a, b in zip(first, (x for x, _ in resumed.epoch(2)), strict=True):
        assert torch.equal(a, b)
    assert not torch.equal(first[0], next(iter(loader.epoch(3)))[0])
    other_seed = _loader(imageset, augment=True, seed=4)
    assert not torch.equal(first[0], next(iter(other_seed.epoch(2)))[0])
    assert torch.equal(loader.order(2), resumed.order(2))


def test_the_epoch_generator_mixes_seed_and_epoch() -> None:
    a = torch.randint(0, 10**6, (4,), generator=epoch_generator(1, 0))
    b = torch.randint(0, 10**6, (4,), generator=epoch_generator(0, 1))
    assert not torch.equal(a, b)


def test_the_loader_serves_a_synthetic_search() -> None:
    data = synthetic_search_data(n_train=40, image_size=16)
    loader = BatchLoader(data.train, batch_size=32, mean=data.mean, std=data.std, shuffle=True, augment=True, seed=0)
    x, y = next(iter(loader.epoch(0)))
    assert x.shape == (32, 3, 16, 16)
    assert y.shape == (32,)
    assert abs(float(x.mean())) < 0.5  # roughly normalised by the set's own statistics


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"batch_size": 0}, "batch_size is 0; expected a positive integer"),
        ({"seed": -1}, "seed is -1"),
        ({"batch_size": 64, "drop_last": True}, "yields no batch"),
        ({"std": (0.2, 0.0, 0.3)}, "expected three positive numbers"),
        ({"mean": (0.5, 0.5)}, "expected three numbers"),
    ],
)
def test_bad_loader_options_are_config_errors(options: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        _loader(_set(), **options)


def test_a_negative_epoch_is_refused() -> None:
    with pytest.raises(ConfigError, match="epoch is -1"):
        _loader(_set()).epoch(-1)
