"""Tabular scores of a derived NB201 genotype: the trajectory's ground-truth columns.

Accuracies are in % (200-epoch training, mean over the benchmark's seeds). For each NB201
dataset ``d`` in (cifar10, cifar100, imagenet16_120): ``nb201_<d>_valid`` (x-valid; for
cifar10 the cifar10-valid setting), ``nb201_<d>_test`` (cifar10: ori-test of the model trained
on all 50k images; others: x-test). ``regret_valid`` / ``regret_test`` are the best cell's
value minus the genotype's, on the searched dataset, in accuracy points.
"""

from __future__ import annotations

from nasbench_harness.spaces.nb201 import NB201Genotype
from nasbench_harness.tabular.nb201 import NB201Benchmark
from nasbench_harness.tabular.nb201_metrics import canonical_dataset, resolve_metric

DATASETS = (("cifar10", "cifar10"), ("cifar100", "cifar100"), ("imagenet16_120", "ImageNet16-120"))
SPLITS = ("valid", "test")


def score_columns(bench: NB201Benchmark, genotype: NB201Genotype, search_dataset: str) -> dict[str, float]:
    """The ground-truth columns of ``genotype`` (accuracy in %, regret in points)."""
    out: dict[str, float] = {}
    for column, dataset in DATASETS:
        for split in SPLITS:
            out[f"nb201_{column}_{split}"] = bench.query(genotype, resolve_metric(dataset, split))
    searched = canonical_dataset(search_dataset)
    for split in SPLITS:
        out[f"regret_{split}"] = bench.regret(genotype, resolve_metric(searched, split))
    return out
