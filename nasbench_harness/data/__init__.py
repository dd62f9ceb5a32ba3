"""Image data for searches: official-format readers, NB201 search splits, augmentation, batches.

Readers and splits need numpy only; the torch parts (``BatchLoader``, ``augment_batch``,
``normalize``) load on first use, so importing this package stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nasbench_harness.data._pickle import SourceFile
from nasbench_harness.data.readers import DATASETS, ImageSet, canonical_dataset, find_dataset_dir, read_imageset
from nasbench_harness.data.splits import NORMALIZATION, SearchData, load_search_data
from nasbench_harness.data.synthetic import synthetic_search_data

if TYPE_CHECKING:
    from nasbench_harness.data.augment import augment_batch, normalize
    from nasbench_harness.data.loader import BatchLoader

_LAZY = {
    "BatchLoader": "nasbench_harness.data.loader",
    "augment_batch": "nasbench_harness.data.augment",
    "normalize": "nasbench_harness.data.augment",
}

__all__ = [
    "DATASETS",
    "NORMALIZATION",
    "BatchLoader",
    "ImageSet",
    "SearchData",
    "SourceFile",
    "augment_batch",
    "canonical_dataset",
    "find_dataset_dir",
    "load_search_data",
    "normalize",
    "read_imageset",
    "synthetic_search_data",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
