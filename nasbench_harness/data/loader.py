"""A fast in-memory batch loader whose epochs are reproducible from (seed, epoch) alone.

All uint8 images live as one tensor on the target device; a batch is one index gather plus the
torch-op augmentation. Because epoch ``e``'s order and augmentation come from a generator seeded
by ``(seed, e)`` only, a resumed run re-creates epoch ``e`` exactly.

Nothing crosses between host and device per batch: an epoch's order and all its crop and flip
parameters are drawn on the CPU when the epoch starts (in the same sequence as batch by batch,
so the batches are bit-identical) and uploaded in one copy each; mean and std live on the device.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch

from nasbench_harness.data.augment import CropFlip, apply_crop_flip, crop_padding, draw_crop_flip, normalize
from nasbench_harness.data.readers import ImageSet
from nasbench_harness.errors import ConfigError

_EPOCH_STRIDE = 1_000_003
_SEED_MOD = 2**63


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """A CPU generator seeded from ``seed * 1_000_003 + epoch`` (mod 2**63)."""
    generator = torch.Generator(device="cpu")
    generator.manual_seed((seed * _EPOCH_STRIDE + epoch) % _SEED_MOD)
    return generator


def _check_triple(name: str, values: Sequence[float], positive: bool) -> tuple[float, ...]:
    triple = tuple(float(v) for v in values)
    if len(triple) != 3 or (positive and min(triple) <= 0):
        need = "three positive numbers" if positive else "three numbers"
        raise ConfigError(f"{name} is {values!r}; expected {need} in pixel/255 units, one per RGB channel")
    return triple


class BatchLoader:
    """Batches ``(x float32 (B, 3, H, W), y int64 (B,))`` of an :class:`ImageSet`, epoch by epoch.

    ``augment`` applies NB201's random crop (pad = size // 8) and horizontal flip; ``shuffle``
    permutes the images each epoch; ``drop_last`` drops a final incomplete batch.
    """

    def __init__(
        self,
        imageset: ImageSet,
        *,
        batch_size: int,
        mean: Sequence[float],
        std: Sequence[float],
        shuffle: bool,
        augment: bool,
        seed: int,
        drop_last: bool = False,
        device: str | torch.device = "cpu",
        channels_last: bool = False,
    ) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ConfigError(f"batch_size is {batch_size!r}; expected a positive integer")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ConfigError(f"seed is {seed!r}; expected a non-negative integer")
        if len(imageset) == 0 or (drop_last and len(imageset) < batch_size):
            raise ConfigError(
                f"{imageset.name} has {len(imageset)} images, so batch_size {batch_size} with drop_last={drop_last} "
                "yields no batch; expected a smaller batch_size or more images"
            )
        self.name = imageset.name
        self.batch_size = int(batch_size)
        self.mean = _check_triple("mean", mean, positive=False)
        self.std = _check_triple("std", std, positive=True)
        self.shuffle = shuffle
        self.augment = augment
        self.seed = int(seed)
        self.drop_last = drop_last
        self.channels_last = channels_last
        self.device = torch.device(device)
        self.images = torch.from_numpy(np.ascontiguousarray(imageset.images)).to(self.device)
        self.labels = torch.from_numpy(np.ascontiguousarray(imageset.labels)).to(self.device)
        self._mean = torch.tensor(self.mean, dtype=torch.float32, device=self.device)
        self._std = torch.tensor(self.std, dtype=torch.float32, device=self.device)

    @property
    def num_images(self) -> int:
        """Images in the set (one epoch visits each once, less a dropped last batch)."""
        return int(self.labels.shape[0])

    def __len__(self) -> int:
        """Batches per epoch."""
        full, rest = divmod(self.num_images, self.batch_size)
        return full if self.drop_last or rest == 0 else full + 1

    def order(self, epoch: int) -> torch.Tensor:
        """Image indices (CPU int64) in the order epoch ``epoch`` visits them."""
        return self._order(epoch_generator(self.seed, self._check_epoch(epoch)))

    def epoch(self, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The batches of epoch ``epoch`` (0-based); the same (seed, epoch) always gives the same batches."""
        generator = epoch_generator(self.seed, self._check_epoch(epoch))
        return self._batches(self._order(generator), generator)

    def _check_epoch(self, epoch: int) -> int:
        if isinstance(epoch, bool) or not isinstance(epoch, (int, np.integer)) or epoch < 0:
            raise ConfigError(f"epoch is {epoch!r}; expected a non-negative integer")
        return int(epoch)

    def _order(self, generator: torch.Generator) -> torch.Tensor:
        if self.shuffle:
            return torch.randperm(self.num_images, generator=generator)
        return torch.arange(self.num_images)

    def _batches(self, order: torch.Tensor, generator: torch.Generator) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        bounds = [(b * self.batch_size, min((b + 1) * self.batch_size, self.num_images)) for b in range(len(self))]
        pad = crop_padding(int(self.images.shape[1]))
        params = self._epoch_crop_flip(bounds, pad, generator) if self.augment else None
        order = order.to(self.device)  # one upload per epoch
        for start, stop in bounds:
            index = order[start:stop]
            images, labels = self.images[index], self.labels[index]
            if params is not None:
                top, left, flip = (t[start:stop] for t in (params.top, params.left, params.flip))
                images = apply_crop_flip(images, CropFlip(top, left, flip), pad)
            yield normalize(images, self._mean, self._std, channels_last=self.channels_last), labels

    def _epoch_crop_flip(self, bounds: list[tuple[int, int]], pad: int, generator: torch.Generator) -> CropFlip:
        """The crop offsets and flips of every batch of the epoch, drawn batch by batch in the
        order :func:`draw_crop_flip` draws them for one batch, and uploaded once."""
        drawn = [draw_crop_flip(stop - start, pad, generator=generator) for start, stop in bounds]
        top, left, flip = (torch.cat([getattr(d, name) for d in drawn]).to(self.device) for name in CropFlip.FIELDS)
        return CropFlip(top, left, flip)
