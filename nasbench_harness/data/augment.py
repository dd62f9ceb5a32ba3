"""Batch augmentation with torch ops: NB201's random crop (zero padding) and horizontal flip.

Works on a uint8 NHWC batch on any device and returns float32 NCHW normalised as
``(x / 255 - mean) / std``. Crop and flip are one gather over a padded copy (no per-image loop);
every random number comes from the ``torch.Generator`` passed in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from nasbench_harness.errors import ConfigError


def crop_padding(image_size: int) -> int:
    """Zero padding (pixels) of the random crop: 4 for 32x32 (CIFAR), 2 for 16x16 (ImageNet16)."""
    return image_size // 8


@dataclass(frozen=True)
class CropFlip:
    """Per-image crop offsets into the padded image (pixels, 0..2*pad) and whether to flip."""

    top: torch.Tensor
    left: torch.Tensor
    flip: torch.Tensor

    FIELDS = ("top", "left", "flip")


def draw_crop_flip(n: int, pad: int, *, generator: torch.Generator, crop: bool = True, flip: bool = True) -> CropFlip:
    """Random crop offsets (uniform over 0..2*pad) and flips (p = 0.5) for ``n`` images.

    Draws, in this order and only when enabled: top offsets, left offsets, flips. With ``crop``
    off the offsets are ``pad`` (no shift); with ``flip`` off no image is flipped.
    """
    device = generator.device
    if crop and pad > 0:
        top = torch.randint(0, 2 * pad + 1, (n,), generator=generator, device=device)
        left = torch.randint(0, 2 * pad + 1, (n,), generator=generator, device=device)
    else:
        top = torch.full((n,), pad, dtype=torch.int64, device=device)
        left = top.clone()
    if flip:
        flips = torch.rand((n,), generator=generator, device=device) < 0.5
    else:
        flips = torch.zeros((n,), dtype=torch.bool, device=device)
    return CropFlip(top, left, flips)


def apply_crop_flip(images: torch.Tensor, params: CropFlip, pad: int) -> torch.Tensor:
    """Crop each uint8 (N, H, W, C) image at its offsets from a zero-padded copy, then flip it if asked."""
    n, height, width, channels = images.shape
    device = images.device
    padded_h, padded_w = height + 2 * pad, width + 2 * pad
    padded = images.new_zeros((n, padded_h, padded_w, channels))
    padded[:, pad : pad + height, pad : pad + width] = images
    top, left, flips = (t.to(device) for t in (params.top, params.left, params.flip))
    rows = top[:, None] + torch.arange(height, device=device)
    steps = torch.arange(width, device=device)
    cols = left[:, None] + torch.where(flips[:, None], width - 1 - steps, steps)
    # One index_select of whole pixels over the flattened padded batch: ~3x faster on CPU than
    # advanced indexing with three broadcast index tensors.
    first_row = torch.arange(n, device=device)[:, None, None] * padded_h
    pixel = ((first_row + rows[:, :, None]) * padded_w + cols[:, None, :]).reshape(-1)
    return padded.view(-1, channels).index_select(0, pixel).view(n, height, width, channels)


def normalize(
    images: torch.Tensor,
    mean: Sequence[float] | torch.Tensor,
    std: Sequence[float] | torch.Tensor,
    *,
    channels_last: bool = False,
) -> torch.Tensor:
    """uint8 (N, H, W, 3) -> float32 (N, 3, H, W) ``(x / 255 - mean) / std`` (mean/std in pixel/255 units,
    numbers or float32 tensors on the images' device; tensors cost no host-to-device copy).

    With ``channels_last`` the result keeps NHWC strides (``torch.channels_last`` memory format).
    """
    if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[3] != len(mean):
        raise ConfigError(
            f"a batch of {images.dtype} {tuple(images.shape)} cannot be normalised; expected uint8 (N, H, W, "
            f"{len(mean)}) images"
        )
    mean_t = (
        mean if isinstance(mean, torch.Tensor) else torch.tensor(list(mean), dtype=torch.float32, device=images.device)
    )
    std_t = std if isinstance(std, torch.Tensor) else torch.tensor(list(std), dtype=torch.float32, device=images.device)
    x = images.to(torch.float32).div_(255.0).sub_(mean_t).div_(std_t).permute(0, 3, 1, 2)
    return x if channels_last else x.contiguous()


def augment_batch(
    images: torch.Tensor,
    mean: Sequence[float],
    std: Sequence[float],
    *,
    generator: torch.Generator,
    crop: bool = True,
    flip: bool = True,
    pad: int | None = None,
    channels_last: bool = False,
) -> torch.Tensor:
    """Random crop (zero padding ``pad``, default size // 8) and flip of uint8 NHWC images, normalised to NCHW."""
    pad = crop_padding(int(images.shape[1])) if pad is None else pad
    if pad < 0:
        raise ConfigError(f"crop padding is {pad}; expected a non-negative number of pixels")
    if crop or flip:
        pad = pad if crop else 0
        params = draw_crop_flip(int(images.shape[0]), pad, generator=generator, crop=crop, flip=flip)
        images = apply_crop_flip(images, params, pad)
    return normalize(images, mean, std, channels_last=channels_last)
