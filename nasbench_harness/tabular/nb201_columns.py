"""What every NB201 cache holds whichever source it came from: the benchmark name, the row key,
the per-cell identity columns and the order of the metric columns.

Shared by the table importer (:mod:`.nb201_import`) and the official ``.pth`` reader
(:mod:`.nb201_pth`), so neither imports the other at module level.
"""

from __future__ import annotations

import numpy as np

from nasbench_harness.spaces.nb201 import NUM_CELLS, NUM_EDGES, all_genotypes, all_op_indices
from nasbench_harness.tabular.nb201_metrics import MetricKey, metric_sort_key

BENCHMARK = "nb201"
ROW_KEY = "official NAS-Bench-201 architecture index (0..15624)"


def identity_columns() -> dict[str, np.ndarray]:
    """Per-cell columns of every NB201 cache: index, arch string and op indices."""
    ops = all_op_indices()
    return {
        "index": np.arange(NUM_CELLS, dtype=np.int32),
        "arch_str": np.array([g.to_string() for g in all_genotypes()], dtype=object),
        **{f"op{e}": ops[:, e].copy() for e in range(NUM_EDGES)},
    }


def sorted_metrics(metrics: dict[MetricKey, np.ndarray]) -> dict[str, np.ndarray]:
    """Metrics keyed by canonical string, in the stable column order."""
    return {str(k): metrics[k] for k in sorted(metrics, key=metric_sort_key)}
