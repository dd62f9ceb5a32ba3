"""Random search and regularized evolution on the tabular benchmarks (methods.tabular_baselines)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from nasbench_harness.baselines.tabular import (
    TabularTrace,
    mutate,
    random_search,
    regularized_evolution,
    write_trace,
)
from nasbench_harness.errors import ConfigError, GenotypeError, NotInBenchmarkError, RunDirError
from nasbench_harness.spaces.nb1shot1 import NB1Shot1Genotype, get_space, random_genotype
from nasbench_harness.spaces.nb201 import NUM_CELLS, NB201Genotype
from nasbench_harness.tabular.nb1shot1 import score
from nasbench_harness.tabular.nb101 import NB101Benchmark
from nasbench_harness.tabular.nb201 import NB201Benchmark
from nasbench_harness.tabular.nb201_metrics import resolve_metric
from nasbench_harness.tracking.manifest import read_manifest_file

METHODS = (random_search, regularized_evolution)


def _final_test(trace: TabularTrace) -> float:
    return trace.rows[-1]["incumbent_test_acc"]


def _check_trace(trace: TabularTrace, n: int) -> None:
    """Rows numbered 1..n, incumbent = running best validation accuracy, regrets >= 0, skips cumulative."""
    rows = trace.rows
    assert [r["evaluation"] for r in rows] == list(range(1, n + 1))
    valid = np.array([r["valid_acc"] for r in rows])
    incumbent = np.array([r["incumbent_valid_acc"] for r in rows])
    assert np.isfinite(valid).all()
    assert np.array_equal(incumbent, np.maximum.accumulate(valid))
    for r in rows:
        assert math.isfinite(r["incumbent_test_acc"])
        assert r["regret_valid"] >= 0
        assert r["regret_test"] >= 0
    skipped = [r["skipped_not_in_benchmark"] for r in rows]
    assert skipped == sorted(skipped)
    assert trace.skipped_not_in_benchmark == skipped[-1]


# -- mutation (no data) ------------------------------------------------------------------------
def test_nb201_mutation_changes_exactly_one_edge() -> None:
    rng = np.random.default_rng(0)
    edges, ops = set(), set()
    for index in rng.integers(NUM_CELLS, size=300):
        parent = NB201Genotype.from_index(int(index))
        child = mutate(parent, rng)
        changed = [e for e, (a, b) in enumerate(zip(parent.ops, child.ops, strict=True)) if a != b]
        assert len(changed) == 1
        edges.add(changed[0])
        ops.add(child.ops[changed[0]])
    assert edges == set(range(6))
    assert ops == set(range(5))


@pytest.mark.parametrize("space", [1, 2, 3])
def test_nb1shot1_mutants_are_valid_and_one_decision_away(space: int) -> None:
    rng = np.random.default_rng(space)
    s = get_space(space)
    kinds = set()
    for _ in range(300):
        parent = random_genotype(space, rng)
        child = mutate(parent, rng)
        assert isinstance(child, NB1Shot1Genotype)
        assert child.space == space
        assert NB1Shot1Genotype.from_string(space, child.to_string()) == child  # a valid genotype of its space
        op_changes = [b for b, (x, y) in enumerate(zip(parent.ops, child.ops, strict=True)) if x != y]
        parent_changes = [
            node for node, (x, y) in enumerate(zip(parent.parents, child.parents, strict=True), 1) if x != y
        ]
        assert len(op_changes) + len(parent_changes) == 1
        kinds.update(("op", b) for b in op_changes)
        kinds.update(("parents", node) for node in parent_changes)
    free_nodes = {node for node in range(1, s.output_node + 1) if len(s.parent_choices(node)) > 1}
    assert kinds == {("op", b) for b in range(s.num_choice_blocks)} | {("parents", node) for node in free_nodes}
    assert ("parents", s.output_node) in kinds


def test_mutate_rejects_other_objects() -> None:
    with pytest.raises(GenotypeError, match="NB201Genotype or an NB1Shot1Genotype"):
        mutate("|none~0|", np.random.default_rng(0))  # type: ignore[arg-type]


# -- bad parameters (no data) ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n": 0}, r"n must be an integer in 1..1000000, got 0"),
        ({"n": 2.5}, r"n must be an integer in 1..1000000, got 2.5"),
        ({"n": True}, r"n must be an integer in 1..1000000, got True"),
        ({"seed": -1}, r"seed must be an integer >= 0, got -1"),
        ({"population": 1}, r"population must be an integer in 2..1000000, got 1"),
        ({"sample": 0}, r"sample must be an integer in 1..population \(10\), got 0"),
        ({"population": 4, "sample": 5}, r"sample must be an integer in 1..population \(4\), got 5"),
        ({"space": "nb101"}, r"unknown search space 'nb101'.*nb201, nb1shot1-1, nb1shot1-2, nb1shot1-3"),
        ({"dataset": "mnist"}, r"unknown NB201 dataset 'mnist'.*cifar10, cifar100 or ImageNet16-120"),
        ({"space": "nb1shot1-2", "dataset": "cifar100"}, r"CIFAR-10 only; use dataset 'cifar10', not 'cifar100'"),
        ({"space": "nb1shot1-1"}, r"nb1shot1-1 is scored on an NB101Benchmark.*got object"),
        ({}, r"nb201 is scored on an NB201Benchmark, got object"),
    ],
)
def test_bad_parameters_raise_config_errors(kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"space": "nb201", "dataset": "cifar10", "n": 10, "seed": 0} | kwargs
    with pytest.raises(ConfigError, match=message):
        regularized_evolution(object(), **args)  # type: ignore[arg-type]
    if "population" not in kwargs and "sample" not in kwargs:
        with pytest.raises(ConfigError, match=message):
            random_search(object(), **args)  # type: ignore[arg-type]


# -- NB201: measured behaviour on the real table -------------------------------------------------
@pytest.mark.data
def test_known_behaviour_on_nb201_cifar10(real_nb201: NB201Benchmark) -> None:
    rs = np.mean([_final_test(random_search(real_nb201, "nb201", "cifar10", 100, seed)) for seed in range(20)])
    rea = np.mean([_final_test(regularized_evolution(real_nb201, "nb201", "cifar10", 100, seed)) for seed in range(20)])
    assert rs > 93.5  # measured 93.81 (20-seed means over seeds 0..499: 93.67-93.89)
    assert rea >= rs - 0.3  # measured 94.14, i.e. REA - RS = +0.33 (+0.14..+0.41 over 25 seed groups)


# -- NB201: bookkeeping, on the synthetic table ---------------------------------------------------
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("dataset", ["cifar10", "cifar100", "ImageNet16-120"])
def test_nb201_traces_are_consistent_with_the_table(synthetic_nb201: NB201Benchmark, method, dataset: str) -> None:  # type: ignore[no-untyped-def]
    valid, test = resolve_metric(dataset, "valid"), resolve_metric(dataset, "test")
    trace = method(synthetic_nb201, "nb201", dataset, 60, 3)
    assert trace.space == "nb201"
    assert trace.dataset == dataset
    _check_trace(trace, 60)
    assert trace.skipped_not_in_benchmark == 0  # the table has every cell
    for row in trace.rows:
        assert row["valid_acc"] == synthetic_nb201.query(row["genotype"], valid)
        assert row["incumbent_test_acc"] == synthetic_nb201.query(row["incumbent"], test)
        assert row["regret_test"] == pytest.approx(synthetic_nb201.regret(row["incumbent"], test))
    if method is random_search:
        assert len({row["genotype"] for row in trace.rows}) == 60  # without replacement
        assert all(row["parent"] is None for row in trace.rows)


@pytest.mark.parametrize("method", METHODS)
def test_seeds_make_runs_reproducible(synthetic_nb201: NB201Benchmark, method) -> None:  # type: ignore[no-untyped-def]
    first = method(synthetic_nb201, "nb201", "cifar10", 40, 7)
    assert method(synthetic_nb201, "nb201", "cifar10", 40, 7) == first
    other = method(synthetic_nb201, "nb201", "cifar10", 40, 8)
    assert [r["genotype"] for r in other.rows] != [r["genotype"] for r in first.rows]


def test_evolution_keeps_an_aging_population(synthetic_nb201: NB201Benchmark) -> None:
    p = 5
    trace = regularized_evolution(synthetic_nb201, "nb201", "cifar100", 80, 1, population=p, sample=2)
    rows = trace.rows
    assert (trace.population, trace.sample) == (p, 2)
    assert all(r["parent"] is None for r in rows[:p])
    for k in range(p, len(rows)):
        members = [r["genotype"] for r in rows[k - p : k]]  # the population = the p most recent evaluations
        assert rows[k]["parent"] in members
        parent, child = (NB201Genotype.from_string(rows[k][key]) for key in ("parent", "genotype"))
        assert sum(a != b for a, b in zip(parent.ops, child.ops, strict=True)) == 1
    # tournaments as large as the population always pick the best of the p most recent members
    full = regularized_evolution(synthetic_nb201, "nb201", "cifar10", 40, 2, population=4, sample=4).rows
    for k in range(4, len(full)):
        best = max(full[k - 4 : k], key=lambda r: r["valid_acc"])
        assert full[k]["parent"] == best["genotype"]


@pytest.mark.parametrize("method", METHODS)
def test_partial_nb201_table_skips_missing_cells(synthetic_nb201: NB201Benchmark, method) -> None:  # type: ignore[no-untyped-def]
    matrix = np.stack([synthetic_nb201.values(m) for m in synthetic_nb201.metrics])
    missing = np.random.default_rng(0).random(NUM_CELLS) < 0.8
    matrix[:, missing] = np.nan
    partial = NB201Benchmark(synthetic_nb201.path, synthetic_nb201.info, matrix)
    trace = method(partial, "nb201", "cifar10", 50, 0)
    _check_trace(trace, 50)
    assert trace.skipped_not_in_benchmark > 0
    assert not any(missing[NB201Genotype.from_string(r["genotype"]).index] for r in trace.rows)
    with pytest.raises(NotInBenchmarkError, match=r"only \d+ of the 4000 requested evaluations on nb201"):
        random_search(partial, "nb201", "cifar10", 4000, 0)


def test_write_trace(synthetic_nb201: NB201Benchmark, tmp_path: Path) -> None:
    trace = regularized_evolution(synthetic_nb201, "nb201", "cifar10", 30, 0)
    run = write_trace(trace, tmp_path / "rea")
    table = pq.read_table(run / "trajectory.parquet")
    assert table.column_names == ["method", "seed", *trace.rows[0]]
    assert table.num_rows == 30
    assert set(table.column("method").to_pylist()) == {"regularized-evolution"}
    assert table.column("incumbent_test_acc").to_pylist() == [r["incumbent_test_acc"] for r in trace.rows]
    manifest = read_manifest_file(run / "manifest.json")
    assert manifest["status"] == "finished"
    expected = {"method": "regularized-evolution", "space": "nb201", "dataset": "cifar10", "seed": 0, "n": 30}
    assert expected.items() <= manifest.items()
    assert (manifest["population"], manifest["sample"]) == (10, 3)
    assert manifest["metrics"]["test"] == "cifar10/ori-test/accuracy@200"
    assert not list(run.glob(".*"))  # no temp files left
    with pytest.raises(RunDirError, match=r"already holds manifest\.json, trajectory\.parquet"):
        write_trace(trace, run)
    rs = write_trace(random_search(synthetic_nb201, "nb201", "cifar10", 5, 0), tmp_path / "rs")
    assert pq.read_table(rs / "trajectory.parquet").schema == table.schema  # same columns and types
    assert json.loads((rs / "manifest.json").read_text())["population"] is None


# -- NB-1Shot1 on the partial NB101 table -------------------------------------------------------
@pytest.mark.data
@pytest.mark.parametrize("method", METHODS)
def test_nb1shot1_space3_on_the_partial_table(real_nb101: NB101Benchmark, method) -> None:  # type: ignore[no-untyped-def]
    trace = method(real_nb101, "nb1shot1-3", "cifar10", 30, 0)
    assert (trace.space, trace.dataset) == ("nb1shot1-3", "cifar10")
    _check_trace(trace, 30)
    assert trace.skipped_not_in_benchmark > 0  # the shared table lacks about half the configurations
    for row in trace.rows:
        result = score(real_nb101, NB1Shot1Genotype.from_string(3, row["genotype"]))
        assert result.in_benchmark
        assert row["valid_acc"] == pytest.approx(100 * result.validation_accuracy)
    last = trace.rows[-1]
    incumbent = score(real_nb101, NB1Shot1Genotype.from_string(3, last["incumbent"]))
    assert last["regret_test"] == pytest.approx(100 * incumbent.test_regret)
