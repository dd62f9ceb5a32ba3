"""Tabular scores of a derived NB201 genotype: the trajectory's ground-truth columns.

Accuracies are in % (200-epoch training, mean over the benchmark's seeds); the columns are
named and explained in :mod:`nasbench_harness.tracking.schema`.
"""

from __future__ import annotations

from nasbench_harness.spaces.nb201 import NB201Genotype
from nasbench_harness.tabular.nb201 import NB201Benchmark
from nasbench_harness.tabular.nb201_metrics import canonical_dataset, resolve_metric
from nasbench_harness.tracking.schema import NB201_DATASETS, nb201_table_column

SPLITS = ("valid", "test")


def score_columns(bench: NB201Benchmark, genotype: NB201Genotype, search_dataset: str) -> dict[str, float]:
    """The ground-truth columns of ``genotype`` (accuracy in %, regret in points)."""
    out: dict[str, float] = {}
    for dataset in NB201_DATASETS:
        for split in SPLITS:
            out[nb201_table_column(dataset, split)] = bench.query(genotype, resolve_metric(dataset, split))
    searched = canonical_dataset(search_dataset)
    for split in SPLITS:
        out[f"regret_{split}"] = bench.regret(genotype, resolve_metric(searched, split))
    return out
