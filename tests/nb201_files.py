"""Small NB201 source files in the official formats, written by the tests themselves."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nasbench_harness.spaces.nb201 import NUM_CELLS, NB201Genotype

# eval sets of each training setting in the official files
EVAL_SETS = {
    "cifar10-valid": ("x-valid", "ori-test"),
    "cifar10": ("ori-test",),
    "cifar100": ("x-valid", "x-test", "ori-test"),
    "ImageNet16-120": ("x-valid", "x-test", "ori-test"),
}
TABLE_COLUMNS = ("cifar10_valid_valid_acc", "cifar10_test_acc", "cifar100_test_acc", "cifar10_valid_n_seeds")


def table_rows(indices: list[int], seed: int = 0) -> dict[str, list]:
    """Columns of a small table in the nb201_table layout (a subset of its columns)."""
    rng = np.random.default_rng(seed)
    n = len(indices)
    return {
        "index": indices,
        "arch_str": [NB201Genotype.from_index(i).to_string() for i in indices],
        "cifar10_valid_valid_acc": rng.uniform(10, 92, n).tolist(),
        "cifar10_test_acc": rng.uniform(10, 94, n).tolist(),
        "cifar100_test_acc": rng.uniform(1, 73, n).tolist(),
        "cifar10_valid_n_seeds": rng.integers(2, 4, n).tolist(),
    }


def write_table(path: Path, columns: dict[str, list]) -> Path:
    """Write ``columns`` as Parquet or CSV (gzipped for ``.csv.gz``), chosen by suffix."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    table = pa.table(columns)
    if path.name.endswith(".parquet"):
        pq.write_table(table, path)
    elif path.name.endswith(".csv.gz"):
        with pa.CompressedOutputStream(str(path), "gzip") as out:
            pacsv.write_csv(table, out)
    else:
        pacsv.write_csv(table, path)
    return path


def mapping_yaml(path: Path) -> Path:
    """A column mapping for :func:`table_rows` tables."""
    path.write_text(
        "name: small\nindex_column: index\narch_column: arch_str\ncolumns:\n"
        "  cifar10-valid/x-valid/accuracy@200: cifar10_valid_valid_acc\n"
        "  cifar10/ori-test/accuracy@200: cifar10_test_acc\n"
        "  cifar100/x-test/accuracy@200: cifar100_test_acc\n"
        "  cifar10-valid/n_seeds@200: cifar10_valid_n_seeds\n"
    )
    return path


def write_official_pth(
    path: Path, indices: list[int], seed: int = 0, datasets: tuple[str, ...] = tuple(EVAL_SETS)
) -> Path:
    """An official-format NAS-Bench-201 file covering ``indices``, built with the official classes."""
    import torch
    from nas_201_api import ArchResults, ResultsCount

    rng = np.random.default_rng(seed)
    arch2infos = {}
    for index in indices:
        arch = NB201Genotype.from_index(index).to_string()
        entry = {}
        for hp, epochs in (("12", 12), ("200", 200)):
            results = ArchResults(index, arch)
            for dataset in datasets:
                n_seeds = int(rng.integers(1, 4))
                for s in sorted(rng.choice([777, 888, 999], size=n_seeds, replace=False).tolist()):
                    results.update(dataset, s, _trial(ResultsCount, rng, dataset, arch, s, epochs))
            entry["less" if hp == "12" else "full"] = results.state_dict()
        arch2infos[index] = entry
    meta_archs = [NB201Genotype.from_index(i).to_string() for i in range(NUM_CELLS)]
    torch.save({"meta_archs": meta_archs, "arch2infos": arch2infos, "evaluated_indexes": list(indices)}, path)
    return path


def _trial(result_cls, rng, dataset: str, arch: str, seed: int, epochs: int):  # type: ignore[no-untyped-def]
    def curve(lo: float, hi: float) -> dict[int, float]:
        return {e: float(rng.uniform(lo, hi)) for e in range(epochs)}

    config = {"channel": 16, "num_cells": 5, "arch_str": arch, "class_num": 10}
    result = result_cls(
        dataset,
        None,
        curve(10, 100),
        curve(0.1, 2.5),
        float(rng.uniform(0.1, 1.5)),
        float(rng.uniform(10, 200)),
        config,
        seed,
        epochs,
        [float(rng.uniform(0.005, 0.03))],
    )
    result.update_train_info(curve(10, 100), None, curve(0.1, 2.5), curve(5, 20))
    accs, losses, times = {}, {}, {}
    for name in EVAL_SETS[dataset]:
        for e in range(epochs):
            key = f"{name}@{e}"
            accs[key], losses[key], times[key] = (
                float(rng.uniform(10, 95)),
                float(rng.uniform(0.2, 2.3)),
                float(rng.uniform(1, 3)),
            )
    result.update_eval(accs, losses, times)
    return result
