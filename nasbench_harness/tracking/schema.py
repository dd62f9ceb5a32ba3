"""The trajectory's columns, one place: name, unit and meaning of every column a run writes.

The search loop writes these columns, analysis reads them by these names, and
``results/README.md`` shows the tables :func:`markdown` renders (``tests/test_schema.py`` holds
the README to them). Columns a method's components report (``state_columns()``) are listed
under ``scope="method"`` with the methods that write them; ``reg_<name>`` stands for every
regularizer's column. No torch import.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from nasbench_harness.tracking.method_columns import METHOD_COLUMNS

if TYPE_CHECKING:
    import pandas as pd

SCOPES = ("common", "nb201", "nb1shot1", "method", "baseline")
NB201_DATASETS = ("cifar10", "cifar100", "imagenet16_120")
"""The datasets of NB201's table columns, spelled as in the column names."""


@dataclass(frozen=True)
class Column:
    """One trajectory column: ``unit`` ("%", "points", "s", ...; "" for text and flags),
    ``scope`` (one of :data:`SCOPES`) and, for method columns, the methods writing it."""

    name: str
    unit: str
    meaning: str
    scope: str
    methods: str = ""

    @property
    def pattern(self) -> re.Pattern[str]:
        """The names this entry stands for (``<name>`` matches any lower-case identifier)."""
        return re.compile("^" + re.escape(self.name).replace(re.escape("<name>"), "[a-z0-9_]+") + "$")


def nb201_table_column(dataset: str, split: str) -> str:
    """The NB201 table column of ``dataset`` (cifar10, cifar100, ImageNet16-120, any spelling
    :func:`~nasbench_harness.tabular.nb201_metrics.canonical_dataset` accepts) and ``split``
    ("valid" or "test"), e.g. ``nb201_cifar10_test``."""
    from nasbench_harness.errors import ConfigError
    from nasbench_harness.tabular.nb201_metrics import canonical_dataset

    if split not in ("valid", "test"):
        raise ConfigError(f"NB201 table columns have the splits valid and test, not {split!r}")
    canonical = canonical_dataset(dataset)
    key = {"cifar10-valid": "cifar10", "ImageNet16-120": "imagenet16_120"}.get(canonical, canonical)
    return f"nb201_{key}_{split}"


NB201_TEST_COLUMNS = tuple(f"nb201_{d}_test" for d in NB201_DATASETS)
"""The NB201 test-accuracy columns, one per dataset (the searched one and the transfer ones)."""


LEGACY_COLUMNS: dict[str, str] = {
    "beta_reg": "reg_beta_decay",
    "beta_weight": "reg_beta_decay_weight",
    "zero_one_loss": "reg_zero_one",
}
"""Columns of runs written before the re-cut of ``methods/`` and the names they have now;
analysis reads them under the new names (see :func:`rename_legacy`)."""


def rename_legacy(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` (a trajectory) with :data:`LEGACY_COLUMNS` under their new names; a run resumed
    after the re-cut has both, the old name in its early rows: they are merged into one column."""
    for old, new in LEGACY_COLUMNS.items():
        if old not in frame.columns:
            continue
        merged = frame[old] if new not in frame.columns else frame[new].where(frame[new].notna(), frame[old])
        frame = frame.drop(columns=old).assign(**{new: merged})
    return frame


def _c(scope: str, name: str, unit: str, meaning: str, methods: str = "") -> Column:
    return Column(name, unit, " ".join(meaning.split()), scope, methods)


_MIXED = "mixed as the method mixes for evaluation: DARTS's softmax"
COLUMNS: tuple[Column, ...] = (
    # --- common to both spaces
    _c("common", "epoch", "", "committed epochs, 1, 2, ... (equal to `schedule_epoch` unless the method rolled back)"),
    _c(
        "common",
        "schedule_epoch",
        "",
        """the epoch of the schedule (learning rate, temperatures) that was trained; after a DARTS-ADA rollback
it repeats the epochs trained again""",
    ),
    _c(
        "common",
        "action",
        "",
        """what the method decided after the epoch (an early stop or a rollback, with its reason), else null""",
    ),
    _c(
        "common",
        "train_loss",
        "nats",
        """supernet's mean cross-entropy on search-train during the epoch's weight steps (augmented batches,
weights changing)""",
    ),
    _c("common", "train_acc", "%", "supernet's accuracy on search-train during the epoch's weight steps"),
    _c("common", "lr", "", "learning rate of the weights in this epoch"),
    _c("common", "arch_lr", "", "learning rate of the alphas in this epoch"),
    _c(
        "common",
        "valid_loss",
        "nats",
        """supernet (mixed as the method mixes for evaluation: DARTS's softmax) mean cross-entropy on the
evaluation images after the epoch, eval mode""",
    ),
    _c(
        "common",
        "valid_acc",
        "%",
        """supernet (mixed as the method mixes for evaluation: DARTS's softmax) accuracy on the evaluation
images after the epoch, eval mode""",
    ),
    _c(
        "common",
        "final_valid_acc",
        "%",
        """the derived final net (one op per edge / the chosen ops and edges, inheriting the supernet's
weights, no retraining) on the same images; every BN normalises with the batch's statistics (a
discretised net's activations no longer match the supernet's running statistics), which are left
untouched. Near chance early in a search is real: a few SGD steps of the final net lift it quickly""",
    ),
    _c("common", "gap", "points", "`valid_acc - final_valid_acc`: the supernet-to-finalnet gap"),
    _c(
        "common",
        "genotype",
        "",
        """the derived cell: NB201's arch string, or NB-1Shot1's string (each block's `op~parents`, then
`output~parents`)""",
    ),
    _c(
        "common",
        "spearman_valid",
        "",
        """with `tracking.correlation_sample=n`: Spearman rank correlation between the one-shot error of n
fixed cells from the table (each as a final net with inherited weights) and their table validation
error, every `tracking.correlation_every` epochs and at the last (NB-1Shot1's correlation figure)""",
    ),
    _c(
        "common",
        "eigenvalue",
        "",
        """the trajectory measurement for comparing methods: the largest eigenvalue of the Hessian of the
validation loss in the alphas, on one fixed, unaugmented batch of `tracking.eigen_batch_size`
evaluation images (the same images every epoch, so its changes are the search's, not the batch's),
network in training mode, no L2 term, every `tracking.eigen_every` epochs (1-based epochs divisible
by it; null otherwise). Exact (in the basis of directions that change the softmax, one direction per
group being flat, for softmax methods), Lanczos iteration beyond 64 alphas. Not what DARTS-ES/ADA
decide on: see `es_eigenvalue`""",
    ),
    _c("common", "epoch_time_s", "s", "the epoch, its end-of-epoch measurements included"),
    _c("common", "tracking_time_s", "s", "the epoch's end-of-epoch measurements"),
    _c("common", "wall_time_s", "s", "since the run began, across resumptions"),
    # --- NB201
    _c(
        "nb201",
        "genotype_index",
        "",
        """the derived cell's official NB201 index (argmax op per edge; `none` may win unless the method
excludes it, as `fair-darts` does by default)""",
    ),
    _c("nb201", "n_skip_connect", "edges", "edges of the derived cell with skip_connect"),
    _c("nb201", "n_none", "edges", "edges of the derived cell with none"),
    _c(
        "nb201",
        "n_parameter_free",
        "edges",
        """edges of the derived cell with a parameter-free op (skip_connect, avg_pool_3x3)""",
    ),
    _c(
        "nb201",
        "nb201_cifar10_valid",
        "%",
        """NB201 table: cifar10-valid setting, x-valid accuracy (200 epochs, mean over seeds)""",
    ),
    _c("nb201", "nb201_cifar10_test", "%", "NB201 table: cifar10 setting (all 50k training images), ori-test accuracy"),
    _c("nb201", "nb201_cifar100_valid", "%", "NB201 table: CIFAR-100 x-valid accuracy"),
    _c("nb201", "nb201_cifar100_test", "%", "NB201 table: CIFAR-100 x-test accuracy"),
    _c("nb201", "nb201_imagenet16_120_valid", "%", "NB201 table: ImageNet16-120 x-valid accuracy"),
    _c("nb201", "nb201_imagenet16_120_test", "%", "NB201 table: ImageNet16-120 x-test accuracy"),
    _c(
        "nb201",
        "regret_valid",
        "points",
        """best cell's value minus the derived cell's, on the searched dataset's valid metric""",
    ),
    _c(
        "nb201",
        "regret_test",
        "points",
        """best cell's value minus the derived cell's, on the searched dataset's test metric""",
    ),
    _c(
        "nb201",
        "pt_genotype",
        "",
        """with `selection.perturbation`: the cell DARTS-PT's perturbation-based selection picks (each edge
the op whose removal costs the supernet most, fine-tuning between decisions), at the last epoch and
every `selection.every` epochs; null on other epochs""",
    ),
    _c("nb201", "pt_valid_acc_table", "%", "NB201 table: `pt_genotype`'s searched-dataset valid accuracy"),
    _c("nb201", "pt_test_acc_table", "%", "NB201 table: `pt_genotype`'s searched-dataset test accuracy"),
    _c("nb201", "pt_regret_valid", "points", "`regret_valid` of `pt_genotype`"),
    _c("nb201", "pt_regret_test", "points", "`regret_test` of `pt_genotype`"),
    _c("nb201", "pt_time_s", "s", "seconds the perturbation-based selection took (fine-tuning included)"),
    # --- NB-1Shot1
    _c("nb1shot1", "module_hash", "", "NB101 module hash of the derived cell (the spec NB-1Shot1 builds, pruned)"),
    _c(
        "nb1shot1",
        "in_benchmark",
        "",
        """whether the imported NB101 table has the cell (the shared table is partial; the accuracy and regret
columns are then NaN, never zero)""",
    ),
    _c("nb1shot1", "benchmark_status", "", "`in benchmark` or `not in benchmark`"),
    _c("nb1shot1", "nb101_valid_acc", "%", "NB101 validation accuracy"),
    _c("nb1shot1", "nb101_test_acc", "%", "NB101 test accuracy"),
    _c(
        "nb1shot1",
        "regret_valid",
        "points",
        """the space's reference optimum (from the full NB101, as NB-1Shot1 defines it) minus the cell's
validation accuracy; never 0 on a partial table that lacks the optimum""",
    ),
    _c("nb1shot1", "regret_test", "points", "as `regret_valid`, on test accuracy"),
    _c(
        "nb1shot1",
        "n_maxpool",
        "blocks",
        """choice blocks with maxpool3x3, the parameter-free op (NB201's `n_skip_connect` analogue)""",
    ),
    _c("nb1shot1", "input_output_weight", "", "the mixing weight of the cell-input-to-output projection"),
    _c(
        "nb1shot1",
        "input_output_dominates",
        "",
        """whether `input_output_weight` is the largest output weight (the "bypass" analogue of skip
connections)""",
    ),
    # --- method state (a component's state_columns): tracking/method_columns.py
    *(_c("method", *column) for column in METHOD_COLUMNS),
    # --- table-only baselines (one row per evaluated architecture)
    _c("baseline", "evaluation", "", "evaluated architectures so far, 1, 2, ..."),
    _c("baseline", "genotype", "", "the evaluated cell"),
    _c("baseline", "valid_acc", "%", "its table validation accuracy"),
    _c("baseline", "parent", "", "evolution: the mutated parent's genotype (null for the initial population)"),
    _c("baseline", "incumbent", "", "the best cell by validation accuracy so far"),
    _c("baseline", "incumbent_valid_acc", "%", "the incumbent's table validation accuracy"),
    _c("baseline", "incumbent_test_acc", "%", "the incumbent's table test accuracy"),
    _c("baseline", "regret_valid", "points", "the best cell's validation accuracy minus the incumbent's"),
    _c("baseline", "regret_test", "points", "the best cell's test accuracy minus the incumbent's"),
    _c("baseline", "skipped_not_in_benchmark", "", "cells drawn that the table lacks, so far"),
    _c("baseline", "policy_entropy", "nats", "reinforce: entropy of the policy that drew the cell, summed over edges"),
)


def columns(scope: str) -> tuple[Column, ...]:
    """The columns of ``scope`` (one of :data:`SCOPES`), in table order."""
    if scope not in SCOPES:
        raise ValueError(f"unknown column scope {scope!r}; use one of {', '.join(SCOPES)}")
    return tuple(c for c in COLUMNS if c.scope == scope)


def lookup(name: str, scopes: tuple[str, ...] = SCOPES) -> Column | None:
    """The entry documenting trajectory column ``name`` within ``scopes``, or None when none does
    (the most specific entry: ``reg_x_weight`` is ``reg_<name>_weight``, not ``reg_<name>``)."""
    found = [c for c in COLUMNS if c.scope in scopes and c.pattern.match(name)]
    return max(found, key=lambda c: len(c.name.replace("<name>", "")), default=None)


def search_scopes(space: str) -> tuple[str, ...]:
    """The scopes of a search trajectory on ``space`` (``nb201`` or an ``nb1shot1-*`` name)."""
    return ("common", "nb201" if space == "nb201" else "nb1shot1", "method")


def markdown(scope: str) -> str:
    """The README table of ``scope``: column, unit and meaning (method columns: also the methods)."""
    method = scope == "method"
    lines = ["| column | method | unit | meaning |" if method else "| column | unit | meaning |"]
    lines.append("| --- | --- | --- | --- |" if method else "| --- | --- | --- |")
    for c in columns(scope):
        cells = [f"`{c.name}`", *([c.methods] if method else []), c.unit, c.meaning]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
