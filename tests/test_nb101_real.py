"""The shared NB101 file (the NB-1Shot1-reachable part of a NB101 subset): counts from its README."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import NB101_FILE

from nasbench_harness.spaces.nb1shot1 import SPACES, iter_genotypes
from nasbench_harness.spaces.nb101 import NB101Spec
from nasbench_harness.tabular.nb1shot1 import score
from nasbench_harness.tabular.nb101 import NB101Benchmark
from nasbench_harness.tabular.nb101_records import iter_nb101_records

pytestmark = pytest.mark.data


def test_contents_and_space_coverage(real_nb101: NB101Benchmark) -> None:
    assert real_nb101.num_cells == 20_401
    assert real_nb101.info["extra"]["records"] == 61_203
    assert real_nb101.info["extra"]["nb1shot1_coverage"] == {
        "1": {"reachable": 2_685, "covered": 802},
        "2": {"reachable": 7_773, "covered": 3_212},
        "3": {"reachable": 55_854, "covered": 16_452},
    }
    assert set(np.unique(real_nb101.values("n_repeats@108"))) == {3.0}


def test_summary_statistics(real_nb101: NB101Benchmark) -> None:
    valid = real_nb101.values("final/validation_accuracy@108")
    test = real_nb101.values("final/test_accuracy@108")
    assert round(float(valid.mean()), 5) == 0.90616
    assert round(float(test.mean()), 5) == 0.90050
    assert round(float(test.max()), 6) == 0.941774


def test_every_stored_hash_is_the_hash_of_its_spec(real_data_dir) -> None:  # type: ignore[no-untyped-def]
    seen = {}
    for record in iter_nb101_records(real_data_dir / NB101_FILE):
        if record.module_hash not in seen:
            seen[record.module_hash] = NB101Spec.from_strings(record.adjacency, record.ops).module_hash()
    mismatched = [h for h, ours in seen.items() if h != ours]
    assert len(seen) == 20_401 and mismatched == []


def test_regret_is_never_below_the_space_optimum(real_nb101: NB101Benchmark) -> None:
    """A mean error can never beat NB-1Shot1's reference optimum (the best error in the space)."""
    lowest = min(s.test_min_error for s in SPACES.values())
    for k in range(3):
        assert 1 - real_nb101.values(f"final/test_accuracy@108#{k}").max() >= lowest - 1e-12
    scored = [score(real_nb101, g) for g in iter_genotypes(1)]
    found = [s for s in scored if s.in_benchmark]
    assert len({s.module_hash for s in found}) == 802
    assert min(s.test_regret for s in found) >= 0
    assert min(s.validation_regret for s in found) >= 0
    assert all(np.isnan(s.test_regret) for s in scored if not s.in_benchmark)
