"""A synthetic full-size NB201 table, written by the tests themselves in the layout of the real
``nb201/nb201_table.parquet`` (see the data README): all 15,625 cells, the same 49 columns with
the same names and types, accuracies in %.

The numbers are made up but deterministic (a function of the cell's op counts plus noise from a
seeded generator) and in plausible ranges: a disconnected cell scores chance (10 % on CIFAR-10,
1 % on CIFAR-100, 0.833 % on ImageNet16-120); the more convolutions a connected cell has, the
better it does (best CIFAR-10 test accuracy about 94 %, CIFAR-100 about 73.5 %, ImageNet16-120
about 47 %). As in the real table, each ``*_valtest_acc`` is the mean of its per-seed columns,
the CIFAR-100 / ImageNet16-120 ``*_valid_acc`` is derived as ``2 * valtest - test``, and the
FLOPs are the README's exact linear functions of the op counts. ``nats_unique_str`` holds the
arch string (nothing in the package reads it; the real isomorphism classes are not computed).

Tests whose assertions hold for any table use it (fixture ``synthetic_nb201`` in conftest.py);
tests comparing against published or measured real numbers use ``real_nb201`` and the ``data``
mark.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nasbench_harness.spaces.nb201 import NUM_CELLS, all_genotypes, all_op_indices

CHANCE = {"cifar10": 10.0, "cifar100": 1.0, "imagenet16_120": 100.0 / 120.0}
DATASETS = ("cifar10_valid", "cifar100", "imagenet16_120")
# op indices: none, skip_connect, nor_conv_1x1, nor_conv_3x3, avg_pool_3x3
STRENGTH = np.array([0.0, 0.15, 0.6, 1.0, 0.1])


def connected(ops: np.ndarray) -> np.ndarray:
    """Whether a path of non-``none`` edges leads from the input to the output (rows of op indices)."""
    live = ops != 0
    node1 = live[:, 0]
    node2 = live[:, 1] | (node1 & live[:, 2])
    return live[:, 3] | (node1 & live[:, 4]) | (node2 & live[:, 5])


def table_columns(seed: int = 0) -> dict[str, np.ndarray]:
    """The 49 columns of the synthetic table, in the real table's order, row i = official index i."""
    rng = np.random.default_rng(seed)
    ops = all_op_indices().astype(np.int64)
    counts = {k: (ops == k).sum(1) for k in range(5)}
    n1x1, n3x3, npool = counts[2], counts[3], counts[4]
    ok = connected(ops)
    quality = np.where(ok, 1.0 - np.exp(-STRENGTH[ops].sum(1)), 0.0)  # 0 (chance) .. 0.9975

    def acc(chance: float, best: float, noise: float, size: int = NUM_CELLS) -> np.ndarray:
        """Accuracy in %: chance for disconnected cells, up to about ``best`` for the strongest."""
        value = chance + (best - chance) * quality + rng.normal(0.0, noise, size) * ok
        return np.clip(value, chance, 100.0)

    n_seeds = np.where(rng.random(NUM_CELLS) < 0.52, 3, 2).astype(np.int8)

    def seeds(mean: np.ndarray, chance: float, noise: float) -> list[np.ndarray]:
        """Three per-seed values around ``mean``; the third NaN where a cell has two seeds."""
        out = [np.clip(mean + rng.normal(0.0, noise, NUM_CELLS) * ok, chance, 100.0) for _ in range(3)]
        out[2] = np.where(n_seeds == 3, out[2], np.nan)
        return out

    c10_test = acc(CHANCE["cifar10"], 94.4, 0.3)
    c10v_seeds = seeds(acc(CHANCE["cifar10"], 91.6, 0.3), CHANCE["cifar10"], 0.2)
    c10v_valid = np.nanmean(np.stack(c10v_seeds), axis=0)
    c10v_test = np.clip(c10v_valid + rng.normal(0.0, 0.15, NUM_CELLS) * ok, 10.0, 100.0)
    c100_test = acc(CHANCE["cifar100"], 73.5, 0.5)
    c100_seeds = seeds(c100_test, CHANCE["cifar100"], 0.4)
    c100_valtest = np.nanmean(np.stack(c100_seeds), axis=0)
    in16_test = acc(CHANCE["imagenet16_120"], 47.3, 0.5)
    in16_seeds = seeds(in16_test, CHANCE["imagenet16_120"], 0.4)
    in16_valtest = np.nanmean(np.stack(in16_seeds), axis=0)
    train_acc = np.where(ok, np.clip(c10v_valid + 8.0 + 2.0 * quality, 10.0, 100.0), 10.0)
    params = 0.073306 + 0.027708 * n1x1 + 0.241407 * n3x3
    time = 700.0 + 350.0 * n1x1 + 460.0 * n3x3 + 165.0 * npool + rng.normal(0.0, 40.0, NUM_CELLS)
    flops = {
        "cifar10_valid": 7.943872 + 4.36224 * n1x1 + 35.81952 * n3x3 + 1.29024 * npool,
        "cifar100": 7.949632 + 4.36224 * n1x1 + 35.81952 * n3x3 + 1.29024 * npool,
        "imagenet16_120": 1.993792 + 1.09056 * n1x1 + 8.95488 * n3x3 + 0.32256 * npool,
    }
    hp12 = {name: np.maximum(values - 12.0 * quality, chance) for name, values, chance in (
        ("cifar10_valid_valid", c10v_valid, 10.0), ("cifar10_test", c10_test, 10.0),
        ("cifar100_valid", 2 * c100_valtest - c100_test, 1.0), ("cifar100_test", c100_test, 1.0),
        ("imagenet16_120_valid", 2 * in16_valtest - in16_test, 100 / 120),
        ("imagenet16_120_test", in16_test, 100 / 120),
    )}  # fmt: skip
    arch = np.array([g.to_string() for g in all_genotypes()], dtype=object)
    columns: dict[str, np.ndarray] = {
        "index": np.arange(NUM_CELLS, dtype=np.int32),
        "arch_str": arch,
        "nats_unique_str": arch,
        **{f"op{e}": ops[:, e].astype(np.int8) for e in range(6)},
        "cifar10_valid_valid_acc": c10v_valid,
        "cifar10_valid_test_acc": c10v_test,
        "cifar10_test_acc": c10_test,
        "cifar100_valid_acc": 2 * c100_valtest - c100_test,
        "cifar100_test_acc": c100_test,
        "cifar100_valtest_acc": c100_valtest,
        "imagenet16_120_valid_acc": 2 * in16_valtest - in16_test,
        "imagenet16_120_test_acc": in16_test,
        "imagenet16_120_valtest_acc": in16_valtest,
    }
    per_seed = {"cifar10_valid": ("valid_acc", c10v_seeds), "cifar100": ("valtest_acc", c100_seeds),
                "imagenet16_120": ("valtest_acc", in16_seeds)}  # fmt: skip
    for scale, name in enumerate(DATASETS):
        what, values = per_seed[name]
        columns[f"{name}_n_seeds"] = n_seeds
        columns.update({f"{name}_{what}_seed{k}": values[k] for k in range(3)})
        columns[f"{name}_params_M"] = params + (0.0, 0.00585, 0.00715)[scale]
        columns[f"{name}_train_time_s"] = time * (1.0, 2.0, 6.07)[scale]
    columns.update(
        {
            "cifar10_valid_train_acc": train_acc,
            "cifar10_valid_train_loss": 2.302 * (1.0 - train_acc / 100.0) ** 1.5 + 0.001,
            "cifar10_valid_valid_loss": 0.39 + 1.91 * (1.0 - c10v_valid / 100.0) ** 2 / 0.81,
            "cifar10_valid_test_loss": 0.40 + 1.90 * (1.0 - c10v_test / 100.0) ** 2 / 0.81,
            **{f"hp12_{name}_acc": values for name, values in hp12.items()},
            **{f"{name}_flops_M": flops[name] for name in DATASETS},
        }
    )
    return columns


def write_synthetic_table(path: Path, seed: int = 0) -> Path:
    """Write the synthetic table to ``path`` (Parquet, or CSV / gzipped CSV by suffix); return ``path``."""
    import pyarrow as pa
    from nb201_files import write_table

    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {name: pa.array(values, type=pa.large_string()) if values.dtype == object else pa.array(values)
              for name, values in table_columns(seed).items()}  # fmt: skip
    return write_table(path, arrays)
