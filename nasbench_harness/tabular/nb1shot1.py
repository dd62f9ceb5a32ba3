"""Score NB-1Shot1 architectures against NB101: map to the NB101 cell, prune, hash, look up.

Regret follows NB-1Shot1: the cell's error (1 - accuracy, mean over NB101's training repeats,
final epoch of the 108-epoch budget) minus the space's reference optimum error
(:attr:`SearchSpace.test_min_error` / ``valid_min_error``). Errors and regrets are fractions.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from nasbench_harness.spaces.nb1shot1 import NB1Shot1Genotype, get_space
from nasbench_harness.tabular.nb101 import NB101Benchmark, status_text
from nasbench_harness.tabular.nb101_metrics import NB101Metric

VALID = NB101Metric("validation_accuracy", 108, "final")
TEST = NB101Metric("test_accuracy", 108, "final")


@dataclass(frozen=True, slots=True)
class NB1Shot1Score:
    """Ground truth for one NB-1Shot1 architecture; NaN numbers and ``in_benchmark=False`` when the
    imported NB101 table lacks its cell (``status`` then says so)."""

    space: int
    genotype: str
    module_hash: str
    in_benchmark: bool
    validation_accuracy: float
    test_accuracy: float
    validation_regret: float
    test_regret: float

    @property
    def status(self) -> str:
        return status_text(self.in_benchmark)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"status": self.status}


def score(bench: NB101Benchmark, genotype: NB1Shot1Genotype) -> NB1Shot1Score:
    """Validation/test accuracy (fractions, mean over repeats) and regret of ``genotype``."""
    space = get_space(genotype.space)
    module_hash = genotype.module_hash()
    row = bench.row_of(module_hash)
    if row is None:
        nan = math.nan
        return NB1Shot1Score(space.number, genotype.to_string(), module_hash, False, nan, nan, nan, nan)
    valid = float(bench.values(VALID)[row])
    test = float(bench.values(TEST)[row])
    return NB1Shot1Score(
        space.number,
        genotype.to_string(),
        module_hash,
        True,
        valid,
        test,
        (1.0 - valid) - space.valid_min_error,
        (1.0 - test) - space.test_min_error,
    )
