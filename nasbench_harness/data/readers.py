"""Readers of the official on-disk image formats: CIFAR-10/100 "python version" and ImageNet16.

Each reader returns an :class:`ImageSet` of uint8 HWC images held in memory. Decoding is numpy
reshapes and one transpose-copy per batch; the pickles are opened with a restricted unpickler.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from nasbench_harness import paths
from nasbench_harness.data._pickle import SourceFile, load_batch
from nasbench_harness.errors import ConfigError, DataFormatError, DatasetNotFoundError

Part = Literal["train", "test"]
PARTS: tuple[Part, ...] = ("train", "test")
DATASETS: tuple[str, ...] = ("cifar10", "cifar100", "ImageNet16-120")


@dataclass(frozen=True, eq=False)
class ImageSet:
    """Images of one part of a data set, in memory.

    ``images`` is uint8 (N, H, W, 3) C-contiguous RGB; ``labels`` int64 (N,) 0-based class ids
    below ``num_classes``; ``sources`` the files it was read from (empty for derived sets).
    """

    name: str
    images: np.ndarray
    labels: np.ndarray
    num_classes: int
    sources: tuple[SourceFile, ...] = field(default=())

    def __post_init__(self) -> None:
        images, labels = self.images, self.labels
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[3] != 3:
            raise DataFormatError(
                f"{self.name}: images are {images.dtype} of shape {images.shape}; expected uint8 (N, H, W, 3)"
            )
        if labels.dtype != np.int64 or labels.shape != (images.shape[0],):
            raise DataFormatError(
                f"{self.name}: labels are {labels.dtype} of shape {labels.shape}; expected int64 "
                f"({images.shape[0]},), one per image"
            )
        if labels.size and (labels.min() < 0 or labels.max() >= self.num_classes):
            raise DataFormatError(
                f"{self.name}: labels span {labels.min()}..{labels.max()}; expected 0..{self.num_classes - 1}"
            )

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def image_size(self) -> int:
        """Height (= width) of the images in pixels."""
        return int(self.images.shape[1])

    def class_counts(self) -> np.ndarray:
        """Number of images of each class, int64 (num_classes,)."""
        return np.bincount(self.labels, minlength=self.num_classes)

    def take(self, indices: np.ndarray, name: str | None = None) -> ImageSet:
        """A new set of the images at ``indices`` (in that order), keeping the sources."""
        idx = np.asarray(indices, dtype=np.int64)
        return ImageSet(
            name or self.name,
            np.ascontiguousarray(self.images[idx]),
            np.ascontiguousarray(self.labels[idx]),
            self.num_classes,
            self.sources,
        )


@dataclass(frozen=True)
class _Layout:
    """Where and how one data set is stored in the official format."""

    name: str
    title: str
    dir_names: tuple[str, ...]
    files: Mapping[str, tuple[str, ...]]
    label_key: str
    size: int
    label_low: int  # smallest label value stored in the files
    label_high: int  # largest label value stored in the files
    num_classes: int  # classes kept: stored labels label_low .. label_low + num_classes - 1
    origin: str

    def expected(self) -> str:
        pixels = 3 * self.size * self.size
        return (
            f"a pickled dict with 'data' (uint8, N x {pixels}: {self.size}x{self.size} R, G, B planes) and "
            f"'{self.label_key}' (N ints in {self.label_low}..{self.label_high})"
        )

    def listing(self) -> str:
        names = [n for part in PARTS for n in self.files[part]]
        shown = names if len(names) <= 4 else [*names[:2], "...", *names[-2:]]
        return ", ".join(shown)


_LAYOUTS: dict[str, _Layout] = {
    "cifar10": _Layout(
        name="cifar10",
        title="CIFAR-10",
        dir_names=("cifar-10-batches-py",),
        files={"train": tuple(f"data_batch_{i}" for i in range(1, 6)), "test": ("test_batch",)},
        label_key="labels",
        size=32,
        label_low=0,
        label_high=9,
        num_classes=10,
        origin="the 'CIFAR-10 python version' (cifar-10-python.tar.gz) extracted",
    ),
    "cifar100": _Layout(
        name="cifar100",
        title="CIFAR-100",
        dir_names=("cifar-100-python",),
        files={"train": ("train",), "test": ("test",)},
        label_key="fine_labels",
        size=32,
        label_low=0,
        label_high=99,
        num_classes=100,
        origin="the 'CIFAR-100 python version' (cifar-100-python.tar.gz) extracted",
    ),
    "ImageNet16-120": _Layout(
        name="ImageNet16-120",
        title="ImageNet16-120",
        dir_names=("ImageNet16", "imagenet16", "ImageNet16-120"),
        files={"train": tuple(f"train_data_batch_{i}" for i in range(1, 11)), "test": ("val_data",)},
        label_key="labels",
        size=16,
        label_low=1,
        label_high=1000,
        num_classes=120,
        origin="the 16x16 down-sampled ImageNet (Chrabaszcz et al. 2017, as used by NAS-Bench-201)",
    ),
}

_ALIASES = {
    "cifar10": "cifar10",
    "cifar-10": "cifar10",
    "cifar100": "cifar100",
    "cifar-100": "cifar100",
    "imagenet16-120": "ImageNet16-120",
}


def canonical_dataset(name: str) -> str:
    """The canonical data set name (``cifar10``, ``cifar100``, ``ImageNet16-120``) of a spelling."""
    canonical = _ALIASES.get(str(name).strip().lower().replace("_", "-"))
    if canonical is None:
        raise ConfigError(f"unknown data set {name!r}; expected one of {', '.join(DATASETS)}")
    return canonical


def num_classes(dataset: str) -> int:
    """Number of classes of a data set (after ImageNet16-120's class filter)."""
    return _LAYOUTS[canonical_dataset(dataset)].num_classes


def find_dataset_dir(dataset: str, data_dir: str | os.PathLike[str] | None = None) -> Path:
    """The directory holding a data set's official batch files inside the data directory."""
    layout = _LAYOUTS[canonical_dataset(dataset)]
    root = paths.data_dir(data_dir)
    candidates = [root / n for n in layout.dir_names]
    if root.name in layout.dir_names:
        candidates.insert(0, root)
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    raise DatasetNotFoundError(
        f"{layout.title} is not in the data directory {root}: expected the directory "
        f"{root / layout.dir_names[0]} (or {', '.join(layout.dir_names[1:]) or 'no other name'}) holding "
        f"{layout.listing()}, i.e. {layout.origin}; point at the directory that holds it with --data-dir "
        f"or NBH_DATA_DIR"
    )


def rows_to_hwc(rows: np.ndarray, size: int, out: np.ndarray | None = None) -> np.ndarray:
    """Decode (N, 3*size*size) rows of R, G, B planes (each row-major) into uint8 (N, size, size, 3)."""
    planes = rows.reshape(rows.shape[0], 3, size, size).transpose(0, 2, 3, 1)
    if out is None:
        return np.ascontiguousarray(planes)
    out[...] = planes
    return out


def read_imageset(dataset: str, data_dir: str | os.PathLike[str] | None = None, part: Part = "train") -> ImageSet:
    """One part of a data set from its official files.

    ``part`` is ``train`` (the training batches) or ``test`` (CIFAR ``test_batch``/``test``; for
    ImageNet16-120 ``val_data``, which NAS-Bench-201 splits into x-valid and x-test). ImageNet16-120
    keeps stored labels 1..120 and makes them 0-based; the other data sets keep all images.
    """
    layout = _LAYOUTS[canonical_dataset(dataset)]
    if part not in PARTS:
        raise ConfigError(f"unknown part {part!r} of {layout.title}; expected one of {', '.join(PARTS)}")
    directory = find_dataset_dir(layout.name, data_dir)
    rows_list: list[np.ndarray] = []
    labels_list: list[np.ndarray] = []
    sources: list[SourceFile] = []
    for file_name in layout.files[part]:
        rows, labels, source = _read_batch(layout, directory / file_name, directory.parent)
        rows_list.append(rows)
        labels_list.append(labels)
        sources.append(source)
    total = sum(r.shape[0] for r in rows_list)
    images = np.empty((total, layout.size, layout.size, 3), dtype=np.uint8)
    start = 0
    for rows in rows_list:
        rows_to_hwc(rows, layout.size, images[start : start + rows.shape[0]])
        start += rows.shape[0]
    labels = np.concatenate(labels_list) if labels_list else np.empty(0, np.int64)
    return ImageSet(f"{layout.name}/{part}", images, labels, layout.num_classes, tuple(sources))


def _read_batch(layout: _Layout, path: Path, root: Path) -> tuple[np.ndarray, np.ndarray, SourceFile]:
    """Checked rows and 0-based labels of the kept classes from one batch file."""
    if not path.is_file():
        raise DatasetNotFoundError(
            f"{path} is missing: a {layout.title} directory holds {layout.listing()} ({layout.origin}); "
            "point at a complete copy with --data-dir or NBH_DATA_DIR"
        )
    batch, source = load_batch(path, root, layout.expected())
    for key in ("data", layout.label_key):
        if key not in batch:
            raise DataFormatError(
                f"{path} has no '{key}' entry (it has {sorted(map(str, batch))}); expected {layout.expected()}"
            )
    rows = _check_rows(batch["data"], layout, path)
    labels = _check_labels(batch[layout.label_key], layout, path)
    if labels.shape[0] != rows.shape[0]:
        raise DataFormatError(
            f"{path} has {labels.shape[0]} labels for {rows.shape[0]} images; expected one label per image"
        )
    labels = labels - layout.label_low
    if layout.label_high - layout.label_low + 1 > layout.num_classes:
        keep = labels < layout.num_classes
        rows, labels = rows[keep], labels[keep]
    return rows, labels, source


def _check_rows(data: Any, layout: _Layout, path: Path) -> np.ndarray:
    width = 3 * layout.size * layout.size
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != width:
        found = f"{data.dtype} array of shape {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise DataFormatError(
            f"{path}: 'data' is a {found}; expected a uint8 array of shape (N, {width}) "
            f"({layout.size}x{layout.size} R, G, B planes per row)"
        )
    return data


def _check_labels(values: Any, layout: _Layout, path: Path) -> np.ndarray:
    try:
        labels = np.asarray(values)
    except (TypeError, ValueError) as exc:
        raise DataFormatError(f"{path}: '{layout.label_key}' is not a list of ints ({exc})") from exc
    if labels.ndim != 1 or not (np.issubdtype(labels.dtype, np.integer) or labels.size == 0):
        raise DataFormatError(
            f"{path}: '{layout.label_key}' is {labels.dtype} of shape {labels.shape}; expected a flat list of ints"
        )
    labels = labels.astype(np.int64, copy=False)
    if labels.size and (labels.min() < layout.label_low or labels.max() > layout.label_high):
        bad = labels[(labels < layout.label_low) | (labels > layout.label_high)][0]
        raise DataFormatError(
            f"{path}: '{layout.label_key}' holds {bad}, outside {layout.label_low}..{layout.label_high} "
            f"({layout.title} labels {'are 1-based' if layout.label_low else 'are 0-based'})"
        )
    return labels
